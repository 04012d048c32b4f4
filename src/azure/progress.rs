//! Progress on stderr: a redrawn status line when stderr is a terminal, otherwise
//! one log line per stage (plain or JSON, per `--log-format`).
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::stats::CollectStats;

#[derive(Debug, Clone, Copy)]
pub struct Progress {
    interactive: bool,
}

impl Progress {
    /// Interactive when stderr is a terminal.
    pub fn for_stderr() -> Progress {
        Progress {
            interactive: std::io::stderr().is_terminal(),
        }
    }

    /// Log lines only.
    pub fn quiet() -> Progress {
        Progress { interactive: false }
    }

    pub fn is_interactive(&self) -> bool {
        self.interactive
    }

    /// A stage begins or ends: always a log line.
    pub fn stage(&self, msg: &str) {
        self.clear();
        tracing::info!("{msg}");
    }

    /// Redraws the status line (interactive only).
    pub fn draw(&self, stats: &CollectStats, started: Instant, throttled_for: Option<Duration>) {
        if !self.interactive {
            return;
        }
        let line = status_line(stats, started.elapsed(), throttled_for);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }

    pub fn clear(&self) {
        if self.interactive {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

/// `subscriptions 12 | clusters 3,000/3,400 | ... | 14 pages | waiting for quota 2.1 s, ETA 9 s`.
pub fn status_line(
    stats: &CollectStats,
    elapsed: Duration,
    throttled_for: Option<Duration>,
) -> String {
    let mut parts = vec![format!("{} subscriptions", stats.subscriptions)];
    let mut left_pages = 0u64;
    for (name, t) in &stats.tables {
        if name.contains('/') || name == "graph" {
            continue;
        }
        if t.total_records > 0 {
            parts.push(format!("{name} {}/{}", t.rows, t.total_records));
            left_pages += t.total_records.saturating_sub(t.rows).div_ceil(1000);
        } else {
            parts.push(format!("{name} {}", t.rows));
        }
    }
    let totals = stats.totals();
    parts.push(format!("{} pages", totals.pages));
    if let Some(wait) = throttled_for {
        let rate = totals.pages as f64 / elapsed.as_secs_f64().max(0.001);
        let eta = if rate > 0.0 {
            left_pages as f64 / rate
        } else {
            0.0
        };
        parts.push(format!(
            "waiting for quota {:.1} s, ETA {:.0} s",
            wait.as_secs_f64(),
            eta.max(wait.as_secs_f64())
        ));
    }
    parts.join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_shows_rows_against_totals_and_eta_when_throttled() {
        let mut s = CollectStats {
            subscriptions: 3,
            ..Default::default()
        };
        let t = s.tables.entry("role-assignments".into()).or_default();
        t.rows = 3000;
        t.total_records = 9000;
        t.pages = 3;
        s.tables
            .entry("arm/subscriptions".into())
            .or_default()
            .pages = 1;
        let line = status_line(
            &s,
            Duration::from_secs(1),
            Some(Duration::from_millis(2500)),
        );
        assert!(
            line.starts_with("3 subscriptions | role-assignments 3000/9000 | 4 pages"),
            "{line}"
        );
        // 6 pages left at 4 pages/s.
        assert!(
            line.contains("waiting for quota 2.5 s, ETA 2 s") || line.contains("ETA 3 s"),
            "{line}"
        );
        assert!(!status_line(&s, Duration::from_secs(1), None).contains("waiting"));
    }
}
