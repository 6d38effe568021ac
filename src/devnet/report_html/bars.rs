//! The per-node bar charts of the HTML report, from the JSON report's per-node figures: what
//! each node received by gossip, fetched by payload_by_number, rejected and ignored; its peak
//! memory.

use plotters::prelude::*;

use super::svg::{self, PlotError};
use crate::devnet::report::{DevnetReport, NodeReport};

/// One of a node's figures.
type Count = fn(&NodeReport) -> u64;

/// Per node, grouped bars: blocks received by gossip, fetched by payload_by_number, messages
/// rejected and ignored.
pub fn per_node_counts(report: &DevnetReport) -> Result<String, PlotError> {
    let groups: [(&str, Count); 4] = [
        ("received by gossip", |n| n.received),
        ("fetched (payload_by_number)", |n| {
            n.sync.as_ref().map_or(0, |s| s.fetched)
        }),
        ("rejected", |n| n.rejected),
        ("ignored", |n| n.ignored),
    ];
    let max = report
        .per_node
        .iter()
        .flat_map(|n| groups.iter().map(move |(_, f)| f(n)))
        .max()
        .unwrap_or(0) as f64;
    bars(
        "per-node counts",
        "Per node: blocks received and fetched, messages rejected and ignored",
        "count",
        report.per_node.len(),
        svg::upper(max),
        &groups
            .iter()
            .map(|(name, f)| {
                (
                    (*name).to_owned(),
                    report.per_node.iter().map(|n| f(n) as f64).collect(),
                )
            })
            .collect::<Vec<_>>(),
    )
}

/// Per node: peak resident memory.
pub fn per_node_rss(report: &DevnetReport) -> Result<String, PlotError> {
    let values: Vec<f64> = report.per_node.iter().map(|n| n.peak_rss_mib).collect();
    bars(
        "peak RSS",
        "Peak resident memory per node",
        "MiB",
        values.len(),
        svg::upper(values.iter().copied().fold(0.0, f64::max)),
        &[("peak RSS".to_owned(), values)],
    )
}

/// Grouped bars: `groups` (name, one value per node) side by side for each of `nodes` nodes.
fn bars(
    plot: &'static str,
    caption: &str,
    y_desc: &str,
    nodes: usize,
    y_max: f64,
    groups: &[(String, Vec<f64>)],
) -> Result<String, PlotError> {
    svg::render(plot, (svg::WIDTH, svg::HEIGHT), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(caption, svg::title())
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5..nodes as f64 - 0.5, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("node")
            .y_desc(y_desc)
            .x_labels(nodes.min(40))
            .x_label_formatter(&|x| format!("{}", x.round() as i64))
            .label_style((svg::FONT, 13))
            .axis_desc_style((svg::FONT, 15))
            .light_line_style(RGBColor(238, 238, 238))
            .draw()?;
        // Each node gets 80% of its slot, split among the groups.
        let width = 0.8 / groups.len().max(1) as f64;
        for (g, (name, values)) in groups.iter().enumerate() {
            let color = svg::color(g);
            let left = |node: usize| node as f64 - 0.4 + g as f64 * width;
            chart
                .draw_series(values.iter().enumerate().map(|(node, v)| {
                    Rectangle::new(
                        [(left(node), 0.0), (left(node) + width, *v)],
                        color.filled(),
                    )
                }))?
                .label(name.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .label_font((svg::FONT, 13))
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()?;
        Ok(())
    })
}
