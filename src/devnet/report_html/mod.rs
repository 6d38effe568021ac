//! `op-gossip devnet --report-html FILE`: the run as one self-contained HTML page with plots, for
//! an operator or a reviewer who wants to see how blocks spread, which node lagged, when the
//! adversary was banned and how the late joiner caught up.
//!
//! Data flow: the run ([`super::scenario`]) ends with its per-node stats → [`RunRecord`]
//! (time series, [`data`]) beside the JSON [`DevnetReport`] → each plot drawn to an SVG string
//! by plotters ([`plots`], [`topology`], [`bars`] through [`chart`] and [`svg`]) → [`page`] inlines them
//! with the summary and the per-node table → one file. Nothing in the file is fetched: no
//! script, no stylesheet or font link, no image URL; text uses generic font families.

pub mod bars;
pub mod chart;
pub mod data;
pub mod page;
pub mod plots;
pub mod svg;
pub mod topology;

use std::path::Path;

pub use data::RunRecord;
use page::Section;

use super::report::DevnetReport;

/// Why the HTML report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportHtmlError {
    /// A plot failed to draw.
    #[error(transparent)]
    Plot(#[from] svg::PlotError),
    /// The file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The late joiner's index, when the run had one (the last node).
fn late_joiner(report: &DevnetReport) -> Option<usize> {
    report
        .late_joiner_after
        .map(|_| report.nodes.saturating_sub(1))
}

/// The page for `report` and its `record`.
pub fn render(report: &DevnetReport, record: &RunRecord) -> Result<String, ReportHtmlError> {
    let late = late_joiner(report);
    let sections = vec![
        Section {
            id: "latency",
            title: "Latency",
            caption: "For each follower, the fraction of blocks it accepted from gossip within a \
                      given time of their publication (only blocks that came by gossip)."
                .into(),
            svg: plots::latency_cdf(record, late)?,
            absent: "No follower accepted a block from gossip.",
        },
        Section {
            id: "reach",
            title: "Spread of each block",
            caption: "For each block, the time after its publication when half, 90% and all of \
                      the followers had it, by gossip or payload_by_number. A missing point: that \
                      share never had the block."
                .into(),
            svg: plots::block_reach(record)?,
            absent: "No block was published.",
        },
        Section {
            id: "topology",
            title: "Topology",
            caption: "Nodes 0..n clockwise from the top. The lines are the connections each node \
                      reported when the run ended; blue ones carry gossip in the block topics' \
                      meshes."
                .into(),
            svg: Some(topology::topology(record, late)?),
            absent: "",
        },
        Section {
            id: "heads",
            title: "Heads over time",
            caption: "Each node's unsafe head. A late joiner's line starts late and climbs as it \
                      catches up through payload_by_number."
                .into(),
            svg: plots::heads(record, late)?,
            absent: "No head changes were reported.",
        },
        Section {
            id: "arrivals",
            title: "Holes filled",
            caption: "Each dot is a block a follower accepted from gossip; each cross a block it \
                      fetched by payload_by_number because gossip lost it or it joined late."
                .into(),
            svg: plots::arrivals(record, late)?,
            absent: "No follower had to fetch a block: gossip delivered everything.",
        },
        Section {
            id: "adversary",
            title: "Adversary",
            caption: "Messages from the adversary each node validated, counted over time, and \
                      the moment each node banned it."
                .into(),
            svg: plots::adversary(record, late)?,
            absent: "No adversary in this run, or none of its messages was validated.",
        },
        Section {
            id: "engine",
            title: "Engine insertions",
            caption: "Blocks the attached execution engine made its head (--l2), next to the \
                      node's unsafe head."
                .into(),
            svg: plots::engine(record)?,
            absent: "No engine attached in this run (--l2).",
        },
        Section {
            id: "counts",
            title: "Per node counts",
            caption: "What each node received by gossip, fetched by payload_by_number, and \
                      rejected or ignored (node 0, the sequencer, counts what it published)."
                .into(),
            svg: Some(bars::per_node_counts(report)?),
            absent: "",
        },
        Section {
            id: "memory",
            title: "Memory",
            caption: "Peak resident memory of each node process.".into(),
            svg: Some(bars::per_node_rss(report)?),
            absent: "",
        },
    ];
    Ok(page::page(report, record, &sections))
}

/// Renders and writes the page to `path`.
pub fn write(
    path: &Path,
    report: &DevnetReport,
    record: &RunRecord,
) -> Result<(), ReportHtmlError> {
    let html = render(report, record)?;
    std::fs::write(path, html).map_err(|source| ReportHtmlError::Write {
        path: path.display().to_string(),
        source,
    })
}
