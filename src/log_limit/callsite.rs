//! A tracing layer that caps how many lines each log call site may write per window, so that
//! no remote party can fill the operator's disk through our logs or our dependencies' (rust-libp2p
//! writes a WARN for every gossip message that carries a signature field, for instance).
//!
//! Installed by `cli::init_tracing` in front of the formatter: an event the cap refuses reaches
//! no layer. Capped are every WARN and ERROR, whatever its target, and every event of the
//! networking crates (`libp2p*`, `yamux`, `multistream_select`), whatever its level, since all
//! of those can be caused by a peer. Our own INFO and below are not capped: they are written on
//! the node's own schedule (one line per produced block at most). What was refused is counted per
//! call site and summarised once per window by [`report_suppressed`], one line per call site.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tracing::callsite::Identifier;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// The window the cap counts in.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Lines one call site may write per window: enough to see what is happening (a burst of
/// failures, each with its details), few enough that a peer repeating it is a trickle (2 lines a
/// second at most from any one place).
pub const LINES_PER_WINDOW: u32 = 20;
/// The summary's own target, never capped (it is written once per window per capped site).
const SUMMARY_TARGET: &str = "op_gossip::log_limit";

/// One call site's count in the current window.
#[derive(Debug)]
struct Site {
    /// `target file:line`, for the summary.
    name: String,
    window_start: Instant,
    written: u32,
    suppressed: u64,
}

/// The counts of every capped call site. Bounded by the number of log call sites compiled into
/// the binary (static metadata), a few thousand at most.
#[derive(Debug, Default)]
pub struct SiteCounts {
    sites: Mutex<HashMap<Identifier, Site>>,
}

impl SiteCounts {
    /// Whether an event of `meta` may be written at `now`; counts it either way.
    fn admit(&self, meta: &'static Metadata<'static>, now: Instant) -> bool {
        let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        let site = sites.entry(meta.callsite()).or_insert_with(|| Site {
            name: format!(
                "{} {}:{}",
                meta.target(),
                meta.file().unwrap_or("?"),
                meta.line().unwrap_or(0)
            ),
            window_start: now,
            written: 0,
            suppressed: 0,
        });
        if now.duration_since(site.window_start) >= WINDOW {
            site.window_start = now;
            site.written = 0;
        }
        if site.written < LINES_PER_WINDOW {
            site.written += 1;
            true
        } else {
            site.suppressed += 1;
            false
        }
    }

    /// The call sites that had lines refused since the last call, with how many; resets them.
    pub fn take_suppressed(&self) -> Vec<(String, u64)> {
        let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<(String, u64)> = sites
            .values_mut()
            .filter(|s| s.suppressed > 0)
            .map(|s| (s.name.clone(), std::mem::take(&mut s.suppressed)))
            .collect();
        out.sort();
        out
    }
}

/// Whether events of `meta` are capped (see the module doc).
fn capped(meta: &Metadata<'_>) -> bool {
    let target = meta.target();
    if target == SUMMARY_TARGET {
        return false;
    }
    *meta.level() <= Level::WARN
        || ["libp2p", "yamux", "multistream_select"]
            .iter()
            .any(|prefix| target.starts_with(prefix))
}

/// The layer.
#[derive(Debug, Clone)]
pub struct CallsiteLimit {
    counts: Arc<SiteCounts>,
}

impl CallsiteLimit {
    /// A layer counting into `counts`.
    pub fn new(counts: Arc<SiteCounts>) -> Self {
        Self { counts }
    }

    /// The layer of the process-wide counts ([`global_counts`]).
    pub fn global() -> Self {
        Self::new(global_counts().clone())
    }
}

impl<S: Subscriber> Layer<S> for CallsiteLimit {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let meta = event.metadata();
        !capped(meta) || self.counts.admit(meta, Instant::now())
    }
}

/// The counts the installed layer uses (one logging setup per process).
pub fn global_counts() -> &'static Arc<SiteCounts> {
    static COUNTS: OnceLock<Arc<SiteCounts>> = OnceLock::new();
    COUNTS.get_or_init(Arc::default)
}

/// Writes, once per [`WINDOW`] until `shutdown`, one line per call site that had lines refused.
pub async fn report_suppressed(
    counts: Arc<SiteCounts>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(WINDOW);
    tick.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        for (site, suppressed) in counts.take_suppressed() {
            tracing::warn!(
                target: SUMMARY_TARGET,
                %site,
                suppressed,
                window_secs = WINDOW.as_secs(),
                "log lines suppressed (at most {LINES_PER_WINDOW} per call site per window)"
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Counts the events that reach it.
    struct Written(Arc<AtomicU64>);

    impl<S: Subscriber> Layer<S> for Written {
        fn on_event(&self, _event: &Event<'_>, _ctx: Context<'_, S>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_repeated_warning_is_capped_and_summarised_other_lines_pass() {
        let counts = Arc::new(SiteCounts::default());
        let written = Arc::new(AtomicU64::new(0));
        let subscriber = tracing_subscriber::registry()
            .with(CallsiteLimit::new(counts.clone()))
            .with(Written(written.clone()));
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..1000 {
                tracing::warn!(i, "a peer did it again");
            }
            for i in 0..100 {
                tracing::info!(i, "our own progress");
            }
            for i in 0..100 {
                tracing::debug!(target: "libp2p_gossipsub::protocol", i, "peer-triggered");
            }
        });
        let expected = u64::from(LINES_PER_WINDOW) * 2 + 100;
        assert_eq!(written.load(Ordering::Relaxed), expected);
        let suppressed = counts.take_suppressed();
        assert_eq!(suppressed.len(), 2, "{suppressed:?}");
        let total: u64 = suppressed.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 1000 - 20 + 100 - 20);
        assert!(counts.take_suppressed().is_empty(), "reset");
    }

    #[test]
    fn a_new_window_lets_lines_through_again() {
        let counts = SiteCounts::default();
        struct Cs;
        static CS: Cs = Cs;
        static META: Metadata<'static> = tracing::metadata! {
            name: "test",
            target: "libp2p_test",
            level: Level::WARN,
            fields: &[],
            callsite: &CS,
            kind: tracing::metadata::Kind::EVENT,
        };
        impl tracing::callsite::Callsite for Cs {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &Metadata<'_> {
                &META
            }
        }
        let t0 = Instant::now();
        for _ in 0..LINES_PER_WINDOW {
            assert!(counts.admit(&META, t0));
        }
        assert!(!counts.admit(&META, t0 + WINDOW / 2));
        assert!(counts.admit(&META, t0 + WINDOW));
    }
}
