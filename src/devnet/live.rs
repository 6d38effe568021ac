//! The devnet's live view on stderr while blocks are produced: on a terminal, a table redrawn in
//! place (ANSI cursor moves) with each node's head, the blocks it has so far, its p99 latency so
//! far and the bans it made; when stderr is not a terminal (a log file, CI), one plain summary
//! line per interval instead, so logs stay readable.
//!
//! Fed by the scenario's collection loops ([`super::scenario`]) with the per-node stats
//! collection keeps ([`super::collect`]); drawing is pure ([`table`], [`plain_line`],
//! [`redraw`]) so tests need no terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::report::{Latency, NodeStats};

/// Redraw period on a terminal: smooth enough to watch, cheap (one table of at most
/// [`MAX_ROWS`] lines).
const TERMINAL_INTERVAL: Duration = Duration::from_millis(250);
/// Period of the plain lines: a 20-block run logs a handful, not hundreds.
const PLAIN_INTERVAL: Duration = Duration::from_secs(2);
/// Most node rows in the table; the rest are summarised in one line, so the table fits a
/// terminal even with 200 nodes.
pub const MAX_ROWS: usize = 24;

/// One node's figures so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Node index.
    pub node: usize,
    /// Head number.
    pub head: Option<u64>,
    /// Published blocks it has (gossip or payload_by_number).
    pub has: usize,
    /// Publish → accept latency of what it accepted from gossip (followers).
    pub latency: Latency,
    /// Peers it banned (the adversary or others).
    pub bans: u64,
    /// Connected peers.
    pub peers: usize,
}

/// Figures of every node now; also the number of blocks published so far.
pub fn progress(stats: &[NodeStats]) -> (usize, Vec<Progress>) {
    let published = stats.first().map(|s| &s.published);
    let count = published.map_or(0, |p| p.len());
    let rows = stats
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut has = 0;
            let mut latencies = Vec::new();
            for (n, at) in published.into_iter().flatten() {
                if i == 0 || s.has(*n) {
                    has += 1;
                }
                if let (true, Some(accepted)) = (i > 0, s.accepted.get(n)) {
                    latencies.push(accepted.saturating_sub(*at));
                }
            }
            Progress {
                node: i,
                head: s.head,
                has,
                latency: Latency::of(&latencies),
                bans: u64::from(s.adversary.banned_at_ms.is_some()) + s.adversary.other_bans,
                peers: s.peers,
            }
        })
        .collect();
    (count, rows)
}

/// `published/blocks`, with the `--drop` scenario's tail blocks (published after the requested
/// ones) apart.
fn published_of(published: usize, blocks: u64) -> String {
    match (published as u64).checked_sub(blocks) {
        Some(tail) if tail > 0 => format!("{blocks}/{blocks} +{tail} tail"),
        _ => format!("{published}/{blocks}"),
    }
}

/// The table's lines (header first).
pub fn table(published: usize, blocks: u64, rows: &[Progress], elapsed: Duration) -> Vec<String> {
    let mut lines = vec![
        format!(
            "devnet {:>6.1}s  published {}",
            elapsed.as_secs_f64(),
            published_of(published, blocks)
        ),
        format!(
            "{:>5} {:>7} {:>11} {:>8} {:>5} {:>5}",
            "node", "head", "has", "p99 ms", "bans", "peers"
        ),
    ];
    for r in rows.iter().take(MAX_ROWS) {
        let p99 = if r.node == 0 || r.latency.samples == 0 {
            "-".to_owned()
        } else {
            r.latency.p99.to_string()
        };
        lines.push(format!(
            "{:>5} {:>7} {:>11} {:>8} {:>5} {:>5}",
            r.node,
            r.head.map_or("-".to_owned(), |h| h.to_string()),
            format!("{}/{published}", r.has),
            p99,
            r.bans,
            r.peers
        ));
    }
    if rows.len() > MAX_ROWS {
        let rest = &rows[MAX_ROWS..];
        let heads = rest.iter().filter_map(|r| r.head);
        lines.push(format!(
            "  … {} more nodes: heads {}..{}, {} complete",
            rest.len(),
            heads.clone().min().map_or("-".into(), |h| h.to_string()),
            heads.max().map_or("-".into(), |h| h.to_string()),
            rest.iter().filter(|r| r.has == published).count()
        ));
    }
    lines
}

/// The one-line summary for a non-terminal stderr.
pub fn plain_line(published: usize, blocks: u64, rows: &[Progress], elapsed: Duration) -> String {
    let followers = rows.iter().skip(1);
    let heads = rows.iter().filter_map(|r| r.head);
    let has: usize = followers.clone().map(|r| r.has).sum();
    let all_latency = followers.clone().map(|r| r.latency.p99).max().unwrap_or(0);
    format!(
        "devnet {:.1}s published {} | heads {}..{} | followers have {has}/{} | worst p99 {all_latency} ms | bans {}",
        elapsed.as_secs_f64(),
        published_of(published, blocks),
        heads.clone().min().map_or("-".into(), |h| h.to_string()),
        heads.max().map_or("-".into(), |h| h.to_string()),
        published * rows.len().saturating_sub(1),
        rows.iter().map(|r| r.bans).sum::<u64>()
    )
}

/// The bytes that replace a table of `previous` lines (0: none drawn yet) with `lines`: cursor
/// up to the table's first line, each line cleared and rewritten, anything below cleared.
pub fn redraw(previous: usize, lines: &[String]) -> String {
    let mut out = String::new();
    if previous > 0 {
        // CSI n F: cursor to the start of the line n lines up.
        out.push_str(&format!("\x1b[{previous}F"));
    }
    for line in lines {
        // CSI 2 K: clear the whole line.
        out.push_str("\x1b[2K");
        out.push_str(line);
        out.push('\n');
    }
    // CSI J: clear from the cursor to the end of the screen (a shorter table leaves no rest).
    out.push_str("\x1b[J");
    out
}

/// The view: where it draws and what it drew last.
#[derive(Debug)]
pub struct LiveView {
    blocks: u64,
    terminal: bool,
    started: Instant,
    last: Option<Instant>,
    drawn: usize,
}

impl LiveView {
    /// A view for a run of `blocks` blocks, drawing a table when stderr is a terminal.
    pub fn new(blocks: u64) -> Self {
        Self {
            blocks,
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last: None,
            drawn: 0,
        }
    }

    /// Draws if the interval passed (or `force`, for the final state).
    pub fn tick(&mut self, stats: &[NodeStats], force: bool) {
        let interval = if self.terminal {
            TERMINAL_INTERVAL
        } else {
            PLAIN_INTERVAL
        };
        if !force && self.last.is_some_and(|t| t.elapsed() < interval) {
            return;
        }
        self.last = Some(Instant::now());
        let (published, rows) = progress(stats);
        let elapsed = self.started.elapsed();
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let lines = table(published, self.blocks, &rows, elapsed);
            let _ = err.write_all(redraw(self.drawn, &lines).as_bytes());
            self.drawn = lines.len();
        } else {
            let _ = writeln!(
                err,
                "{}",
                plain_line(published, self.blocks, &rows, elapsed)
            );
        }
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> Vec<NodeStats> {
        let seq = NodeStats {
            published: [(1, 1000), (2, 2000)].into_iter().collect(),
            head: Some(2),
            ..NodeStats::default()
        };
        let mut f = NodeStats {
            accepted: [(1, 1040)].into_iter().collect(),
            fetched: [(2, 2500)].into_iter().collect(),
            head: Some(2),
            peers: 1,
            ..NodeStats::default()
        };
        f.adversary.other_bans = 1;
        vec![seq, f]
    }

    #[test]
    fn progress_counts_blocks_latency_and_bans() {
        let (published, rows) = progress(&stats());
        assert_eq!(published, 2);
        assert_eq!(rows[1].has, 2);
        assert_eq!(rows[1].latency.p99, 40);
        assert_eq!(rows[1].bans, 1);
        let table = table(published, 3, &rows, Duration::from_millis(1500));
        assert_eq!(table.len(), 4);
        assert!(table[0].contains("published 2/3"), "{table:?}");
        assert!(
            table[3].contains("2/2") && table[3].contains("40"),
            "{table:?}"
        );
        let line = plain_line(published, 3, &rows, Duration::from_secs(1));
        assert!(
            line.contains("followers have 2/2") && line.contains("bans 1"),
            "{line}"
        );
    }

    #[test]
    fn redraw_moves_up_over_the_previous_table() {
        let lines = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(redraw(0, &lines), "\x1b[2Ka\n\x1b[2Kb\n\x1b[J");
        assert!(redraw(3, &lines).starts_with("\x1b[3F"));
    }

    #[test]
    fn a_big_devnet_is_summarised_past_the_row_limit() {
        let rows: Vec<Progress> = (0..MAX_ROWS + 5)
            .map(|node| Progress {
                node,
                head: Some(node as u64),
                has: 1,
                latency: Latency::default(),
                bans: 0,
                peers: 2,
            })
            .collect();
        let lines = table(1, 1, &rows, Duration::ZERO);
        assert_eq!(lines.len(), 2 + MAX_ROWS + 1);
        assert!(
            lines.last().is_some_and(|l| l.contains("5 more nodes")),
            "{lines:?}"
        );
    }
}
