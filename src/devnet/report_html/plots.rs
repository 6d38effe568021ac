//! The report's time and latency plots, each an SVG string from a [`RunRecord`]: latency CDF per
//! node, per-block reach (50% / 90% / all followers), heads over time (the late joiner's
//! catch-up), how each block arrived (gossip or payload_by_number: the dropped-gossip holes
//! filled), the adversary's messages and the bans, and engine insertions. `None` when the run has
//! nothing for that plot (no adversary, no engine, nothing fetched).

use plotters::prelude::*;

use super::chart::{self, Frame, Series, steps};
use super::data::{RunRecord, cumulative};
use super::svg::{self, PlotError};

/// Above this ratio of the slowest to the median time, the block-reach plot's axis is
/// logarithmic (a linear one would flatten the gossip times to a line at zero).
const LOG_SCALE_RATIO: f64 = 10.0;

/// A plot, or `None` when the run has nothing to draw in it.
pub type Plot = Result<Option<String>, PlotError>;

fn node_name(i: usize, late: Option<usize>) -> String {
    let role = if i == 0 {
        " (sequencer)"
    } else if Some(i) == late {
        " (late joiner)"
    } else {
        ""
    };
    format!("node {i}{role}")
}

/// Node `i`'s line through `samples`, drawn as steps, in its own colour.
fn node_line(i: usize, late: Option<usize>, samples: &[(f64, f64)]) -> Series {
    Series {
        name: node_name(i, late),
        color: i,
        points: steps(samples),
        markers: false,
    }
}

fn max_of(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(0.0, f64::max)
}

/// Publish → accept latency as a cumulative distribution, one line per follower.
pub fn latency_cdf(record: &RunRecord, late: Option<usize>) -> Plot {
    let mut series = Vec::new();
    for i in 1..record.nodes.len() {
        let mut samples = record.latencies(i);
        if samples.is_empty() {
            continue;
        }
        samples.sort_unstable();
        let n = samples.len() as f64;
        let points: Vec<(f64, f64)> = samples
            .iter()
            .enumerate()
            .map(|(k, ms)| (*ms as f64, (k + 1) as f64 / n))
            .collect();
        series.push(node_line(i, late, &points));
    }
    if series.is_empty() {
        return Ok(None);
    }
    let max_ms = max_of(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let frame = Frame {
        plot: "latency CDF",
        caption: "Publish → accept latency, cumulative, per follower".into(),
        x_desc: "latency (ms)",
        y_desc: "fraction of blocks accepted",
        x: 0.0..svg::upper(max_ms),
        y: 0.0..1.02,
        log_y: false,
        legend: SeriesLabelPosition::LowerRight,
    };
    chart::lines(&frame, &series, |_| Ok(())).map(Some)
}

/// Per block: how long until 50%, 90% and all of the followers had it (gossip or fetched).
pub fn block_reach(record: &RunRecord) -> Plot {
    let reach = record.reach();
    if reach.is_empty() {
        return Ok(None);
    }
    let line = |name: &str, color: usize, pick: fn(&super::data::Reach) -> Option<u64>| Series {
        name: name.to_owned(),
        color,
        points: reach
            .iter()
            .filter_map(|r| Some((r.number as f64, pick(r)? as f64)))
            .collect(),
        markers: true,
    };
    // Slowest first, so a faster share that coincides with it (with fewer than ten followers
    // 90% of them is all of them) is drawn on top and stays visible.
    let series = vec![
        line("all followers", 0, |r| r.all),
        line("90% of followers", 4, |r| r.p90),
        line("50% of followers", 2, |r| r.p50),
    ];
    let max_ms = max_of(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let median_ms = {
        let mut all: Vec<f64> = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .collect();
        all.sort_by(f64::total_cmp);
        all.get(all.len() / 2).copied().unwrap_or(0.0)
    };
    // A late joiner's catch-up takes seconds where gossip takes milliseconds: a logarithmic
    // axis keeps both readable once the slowest is LOG_SCALE_RATIO times the median.
    let log_y = max_ms > LOG_SCALE_RATIO * median_ms.max(1.0);
    let first = reach.first().map_or(0, |r| r.number) as f64;
    let last = reach.last().map_or(0, |r| r.number) as f64;
    let frame = Frame {
        plot: "block reach",
        caption: "Time from publication until a share of the followers had each block".into(),
        x_desc: "block number",
        y_desc: "ms after publication",
        x: first - 0.5..last + 0.5,
        y: if log_y {
            1.0..max_ms * 1.5
        } else {
            0.0..svg::upper(max_ms)
        },
        log_y,
        // The late joiner's slow blocks come first, on the left.
        legend: SeriesLabelPosition::UpperRight,
    };
    chart::lines(&frame, &series, |_| Ok(())).map(Some)
}

/// Each node's unsafe head over time; the late joiner's line is its catch-up curve.
pub fn heads(record: &RunRecord, late: Option<usize>) -> Plot {
    let series: Vec<Series> = record
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| !n.heads.is_empty())
        .map(|(i, n)| {
            let points: Vec<(f64, f64)> = n
                .heads
                .iter()
                .map(|(at, head)| (record.secs(*at), *head as f64))
                .collect();
            node_line(i, late, &points)
        })
        .collect();
    if series.is_empty() {
        return Ok(None);
    }
    let points = || series.iter().flat_map(|s| s.points.iter());
    let x_min = points().map(|p| p.0).fold(0.0, f64::min);
    let x_max = max_of(points().map(|p| p.0));
    let y_max = max_of(points().map(|p| p.1));
    let frame = Frame {
        plot: "heads",
        caption: "Unsafe head of each node over time".into(),
        x_desc: "seconds since the first block",
        y_desc: "head block number",
        x: x_min..svg::upper(x_max),
        y: 0.0..svg::upper(y_max),
        log_y: false,
        legend: SeriesLabelPosition::LowerRight,
    };
    chart::lines(&frame, &series, |_| Ok(())).map(Some)
}

/// When and how each follower got each block: a dot for gossip, a cross for payload_by_number.
/// A cross right of the dots is a hole that was filled; `None` when nothing was fetched.
pub fn arrivals(record: &RunRecord, late: Option<usize>) -> Plot {
    if record.nodes.iter().all(|n| n.fetched.is_empty()) {
        return Ok(None);
    }
    let gossip = |i: usize| -> Vec<(f64, f64)> {
        record.nodes[i]
            .accepted
            .iter()
            .map(|(n, at)| (record.secs(*at), *n as f64))
            .collect()
    };
    let fetched = |i: usize| -> Vec<(f64, f64)> {
        record.nodes[i]
            .fetched
            .iter()
            .map(|(n, at)| (record.secs(*at), *n as f64))
            .collect()
    };
    let followers = 1..record.nodes.len();
    let all: Vec<(f64, f64)> = followers
        .clone()
        .flat_map(|i| gossip(i).into_iter().chain(fetched(i)))
        .collect();
    let x_min = all.iter().map(|p| p.0).fold(0.0, f64::min);
    let x_max = max_of(all.iter().map(|p| p.0));
    let y_max = max_of(all.iter().map(|p| p.1));
    let frame = Frame {
        plot: "arrivals",
        caption: "How each block arrived: • gossip, × payload_by_number (holes filled)".into(),
        x_desc: "seconds since the first block",
        y_desc: "block number",
        x: x_min..svg::upper(x_max),
        y: 0.0..svg::upper(y_max),
        log_y: false,
        legend: SeriesLabelPosition::LowerRight,
    };
    // The legend comes from empty series; the marks are drawn in the hook.
    let series: Vec<Series> = followers.clone().map(|i| node_line(i, late, &[])).collect();
    chart::lines(&frame, &series, |chart| {
        for i in followers {
            let color = svg::color(i);
            chart.draw_series(
                chart::thin(&gossip(i))
                    .into_iter()
                    .map(|p| Circle::new(p, 2, color.filled())),
            )?;
            chart.draw_series(
                chart::thin(&fetched(i))
                    .into_iter()
                    .map(|p| Cross::new(p, 5, color.stroke_width(2))),
            )?;
        }
        Ok(())
    })
    .map(Some)
}

/// The adversary's messages each node validated (cumulative), and the moment each banned it.
pub fn adversary(record: &RunRecord, late: Option<usize>) -> Plot {
    let series: Vec<Series> = record
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| !n.adversary_messages.is_empty())
        .map(|(i, n)| {
            let mut points = vec![];
            for (at, total) in cumulative(&n.adversary_messages) {
                points.push((record.secs(at), total as f64));
            }
            node_line(i, late, &points)
        })
        .collect();
    let bans: Vec<(usize, f64)> = record
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| Some((i, record.secs(n.adversary_banned_at?))))
        .collect();
    if series.is_empty() && bans.is_empty() {
        return Ok(None);
    }
    let xs = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .chain(bans.iter().map(|b| b.1));
    // The attack's own window (it starts after the meshes formed and ends at the bans), with a
    // tenth of it as margin on each side, so a ban a few ms after the first message is visible.
    let x_min = xs.clone().fold(f64::INFINITY, f64::min);
    let x_max = max_of(xs.clone()).max(x_min);
    let margin = ((x_max - x_min) / 10.0).max(0.05);
    let y_max = svg::upper(max_of(
        series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
    ));
    let frame = Frame {
        plot: "adversary",
        caption: "The adversary's messages validated per node; | marks each node's ban".into(),
        x_desc: "seconds since the first block",
        y_desc: "messages from the adversary (cumulative)",
        x: x_min - margin..x_max + margin,
        y: 0.0..y_max,
        log_y: false,
        legend: SeriesLabelPosition::LowerRight,
    };
    chart::lines(&frame, &series, |chart| {
        for (k, (i, at)) in bans.into_iter().enumerate() {
            let color = svg::color(i);
            // Labels stacked from the top so that simultaneous bans stay readable.
            let label_y = y_max * (0.95 - 0.07 * (k % 12) as f64);
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(at, 0.0), (at, label_y)],
                color.stroke_width(2),
            )))?;
            chart.draw_series(std::iter::once(Text::new(
                format!(" node {i} bans"),
                (at, label_y),
                (svg::FONT, 12).into_font().color(&color),
            )))?;
        }
        Ok(())
    })
    .map(Some)
}

/// Blocks the engine inserted over time, next to the node's head (only nodes with `--l2`).
pub fn engine(record: &RunRecord) -> Plot {
    let mut series = Vec::new();
    for (i, n) in record.nodes.iter().enumerate() {
        if n.engine.is_empty() {
            continue;
        }
        let inserted: Vec<(f64, f64)> = n
            .engine
            .iter()
            .map(|(at, count)| (record.secs(*at), *count as f64))
            .collect();
        series.push(Series {
            name: format!("node {i}: blocks inserted"),
            color: i,
            points: steps(&inserted),
            markers: true,
        });
        let heads: Vec<(f64, f64)> = n
            .heads
            .iter()
            .map(|(at, head)| (record.secs(*at), *head as f64))
            .collect();
        series.push(Series {
            name: format!("node {i}: unsafe head"),
            color: i + 1,
            points: steps(&heads),
            markers: false,
        });
    }
    if series.is_empty() {
        return Ok(None);
    }
    let points = || series.iter().flat_map(|s| s.points.iter());
    let frame = Frame {
        plot: "engine",
        caption: "Engine insertions (polled every 250 ms) and the node's head".into(),
        x_desc: "seconds since the first block",
        y_desc: "blocks",
        x: points().map(|p| p.0).fold(0.0, f64::min)..svg::upper(max_of(points().map(|p| p.0))),
        y: 0.0..svg::upper(max_of(points().map(|p| p.1))),
        log_y: false,
        legend: SeriesLabelPosition::LowerRight,
    };
    chart::lines(&frame, &series, |_| Ok(())).map(Some)
}
