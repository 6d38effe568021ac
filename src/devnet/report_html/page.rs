//! The HTML page around the plots: the run's summary, the per-node table, the plots inlined as
//! SVG, and a stylesheet in a `<style>` element. Nothing is referenced outside the file (no
//! script, no stylesheet or font link, no image URL), so it renders offline and can be mailed or
//! attached to a ticket as it is.

use std::fmt::Write;

use super::data::RunRecord;
use crate::devnet::report::DevnetReport;

/// The inline stylesheet: generic font families only (no web font).
const STYLE: &str = "
body { font-family: sans-serif; margin: 24px auto; max-width: 1000px; color: #222; }
h1 { font-size: 24px; } h2 { font-size: 19px; margin-top: 32px; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
.ok { color: #1a7f37; font-weight: bold; } .bad { color: #c62828; font-weight: bold; }
figure { margin: 12px 0; } figcaption { font-size: 13px; color: #555; max-width: 960px; }
code { font-family: monospace; font-size: 12px; white-space: nowrap; }
.none { color: #777; font-style: italic; }
";

/// One section of the page: a heading, a caption, and a plot (or why there is none).
pub struct Section {
    /// Element id (for links within the page).
    pub id: &'static str,
    /// Heading.
    pub title: &'static str,
    /// What the plot shows and how to read it.
    pub caption: String,
    /// The SVG, or `None` with `absent` saying why.
    pub svg: Option<String>,
    /// Shown when there is no plot.
    pub absent: &'static str,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn yes_no(ok: bool) -> &'static str {
    if ok {
        "<span class=\"ok\">yes</span>"
    } else {
        "<span class=\"bad\">no</span>"
    }
}

fn row(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(
        out,
        "<tr><th class=\"l\">{}</th><td class=\"l\">{value}</td></tr>",
        escape(name)
    );
}

/// The summary table.
fn summary(report: &DevnetReport, record: &RunRecord) -> String {
    let mut t = String::from("<table id=\"summary-table\">\n");
    let l = &report.latency_ms;
    row(
        &mut t,
        "nodes",
        &format!(
            "{} (1 sequencer, {} followers)",
            report.nodes,
            report.nodes.saturating_sub(1)
        ),
    );
    row(&mut t, "topology", &escape(&report.topology));
    row(
        &mut t,
        "blocks",
        &format!(
            "{} published of {} requested{}, one every {} ms",
            report.published,
            report.blocks,
            if report.tail_blocks > 0 {
                format!(" (+{} tail blocks)", report.tail_blocks)
            } else {
                String::new()
            },
            report.block_time_ms
        ),
    );
    row(
        &mut t,
        "block size",
        &format!("{} bytes of transactions", report.block_size_bytes),
    );
    row(
        &mut t,
        "run time",
        &format!(
            "{:.1} s from the first block to the end of collection",
            report.duration_secs
        ),
    );
    row(
        &mut t,
        "every follower got every block by gossip",
        yes_no(report.all_delivered),
    );
    row(
        &mut t,
        "every follower stored every block",
        yes_no(report.all_stored),
    );
    let followers = record.nodes.len().saturating_sub(1);
    let delivered: usize = report
        .per_node
        .iter()
        .skip(1)
        .map(|n| n.received as usize)
        .sum();
    let possible = followers * report.published as usize;
    row(
        &mut t,
        "delivery by gossip",
        &format!(
            "{delivered} of {possible} ({:.1}%)",
            if possible == 0 {
                0.0
            } else {
                100.0 * delivered as f64 / possible as f64
            }
        ),
    );
    row(
        &mut t,
        "publish → accept latency",
        &format!(
            "p50 {} ms, p95 {} ms, p99 {} ms, max {} ms ({} samples)",
            l.p50, l.p95, l.p99, l.max, l.samples
        ),
    );
    match &report.cpu {
        Some(cpu) => row(
            &mut t,
            "node CPU",
            &format!(
                "{:.1} ms per block ({:.1} s over {} processes on {} cores; host steal {:.1} s)",
                cpu.node_cpu_ms_per_block,
                cpu.node_cpu_secs,
                report.nodes,
                cpu.cores,
                cpu.host_steal_secs
            ),
        ),
        None => row(&mut t, "node CPU", "not measured on this platform"),
    }
    row(
        &mut t,
        "largest peak RSS",
        &format!("{:.1} MiB", report.max_peak_rss_mib),
    );
    if let Some(k) = report.late_joiner_after {
        let catch_up = report
            .per_node
            .last()
            .and_then(|n| n.sync.as_ref())
            .and_then(|s| s.catch_up_secs)
            .map_or("did not catch up".to_owned(), |s| {
                format!("caught up in {s:.1} s")
            });
        row(
            &mut t,
            "late joiner",
            &format!(
                "node {} started after block {k}; {catch_up}",
                report.nodes - 1
            ),
        );
    }
    if report.drop_fraction > 0.0 {
        row(
            &mut t,
            "lost gossip",
            &format!(
                "each follower dropped {:.0}% of gossip deliveries",
                100.0 * report.drop_fraction
            ),
        );
    }
    if let Some(adv) = &report.adversary {
        row(
            &mut t,
            "adversary",
            &format!(
                "{} at {}/s: sent {}, reached {} of {} nodes, banned by {}; contained: {}; honest peers banned: {}",
                escape(adv.kind),
                adv.rate_per_sec,
                adv.counters.sent,
                adv.reached,
                adv.targets,
                adv.banned_by,
                yes_no(adv.contained),
                adv.honest_peers_banned
            ),
        );
    }
    t.push_str("</table>\n");
    t
}

/// The per-node table.
fn per_node(report: &DevnetReport, record: &RunRecord) -> String {
    let mut t = String::from(
        "<table id=\"per-node\">\n<tr><th>node</th><th class=\"l\">role</th><th class=\"l\">peer id</th>\
         <th>head</th><th>received (gossip)</th><th>stored</th><th>fetched (req/resp)</th>\
         <th>rejected</th><th>ignored</th><th>p50 ms</th><th>p99 ms</th><th>peak RSS MiB</th>\
         <th>engine inserted</th><th>banned adversary after</th></tr>\n",
    );
    for n in &report.per_node {
        let adv = report
            .adversary
            .as_ref()
            .and_then(|a| a.per_node.get(n.node));
        let banned = adv
            .and_then(|a| a.banned_after_ms)
            .map_or("-".to_owned(), |ms| format!("{ms} ms"));
        let (p50, p99) = if n.node == 0 {
            ("-".to_owned(), "-".to_owned())
        } else {
            (n.latency_ms.p50.to_string(), n.latency_ms.p99.to_string())
        };
        let short = n
            .peer_id
            .get(n.peer_id.len().saturating_sub(8)..)
            .unwrap_or(&n.peer_id);
        let _ = writeln!(
            t,
            "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"l\"><code title=\"{}\">…{}</code></td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{p50}</td><td>{p99}</td><td>{:.1}</td><td>{}</td><td>{banned}</td></tr>",
            n.node,
            n.role,
            escape(&n.peer_id),
            escape(short),
            n.head.map_or("-".to_owned(), |h| h.to_string()),
            n.received,
            record.stored(n.node),
            n.sync.as_ref().map_or(0, |s| s.fetched),
            n.rejected,
            n.ignored,
            n.peak_rss_mib,
            n.engine.map_or("-".to_owned(), |e| e.inserted.to_string()),
        );
    }
    t.push_str("</table>\n");
    t
}

/// The whole page.
pub fn page(report: &DevnetReport, record: &RunRecord, sections: &[Section]) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<title>op-gossip devnet report</title>\n<style>");
    out.push_str(STYLE);
    out.push_str("</style>\n</head>\n<body>\n");
    let _ = writeln!(
        out,
        "<h1>op-gossip devnet: {} nodes, {} topology, {} blocks</h1>",
        report.nodes,
        escape(&report.topology),
        report.published
    );
    out.push_str("<nav>");
    for s in sections {
        let _ = write!(out, "<a href=\"#{}\">{}</a> · ", s.id, escape(s.title));
    }
    out.push_str("<a href=\"#nodes\">Per node</a></nav>\n");
    out.push_str("<h2 id=\"summary\">Summary</h2>\n");
    out.push_str(&summary(report, record));
    for s in sections {
        let _ = writeln!(out, "<h2 id=\"{}\">{}</h2>", s.id, escape(s.title));
        match &s.svg {
            Some(svg) => {
                let _ = writeln!(
                    out,
                    "<figure>\n{svg}\n<figcaption>{}</figcaption>\n</figure>",
                    escape(&s.caption)
                );
            }
            None => {
                let _ = writeln!(out, "<p class=\"none\">{}</p>", escape(s.absent));
            }
        }
    }
    out.push_str("<h2 id=\"nodes\">Per node</h2>\n");
    out.push_str(&per_node(report, record));
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
