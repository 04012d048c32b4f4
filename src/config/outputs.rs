//! What a run judges by and what it writes and keeps: flags `--state`, `--out`,
//! `--baseline`, `--fail-on`, `--suppressions`, `--csv-excel`, `--history-days`,
//! `--keep-reports`, `--lock-wait`; keys of the same names (with `_`) at the top of
//! the file.
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use super::problem::{in_range, pick, Names, Problem};
use crate::retention::Retention;
use crate::rules::{baseline::DEFAULT_BASELINE, Severity};

#[derive(Debug, Clone, Default, Args)]
pub struct OutputsArgs {
    /// Folder for history between runs (needed to see kubelet migrations).
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Output folder [default: reports/<UTC timestamp>/].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Embedded baseline name (aks-docs-2021, aks-docs-current) or a TOML file [default: aks-docs-current].
    #[arg(long, value_name = "NAME|FILE")]
    pub baseline: Option<String>,
    /// Exit 1 when a finding at or above this severity is not suppressed [default: never].
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,
    /// Suppressions file (TOML).
    #[arg(long, value_name = "FILE")]
    pub suppressions: Option<PathBuf>,
    /// Add a UTF-8 byte-order mark to CSV files for Excel.
    #[arg(long)]
    pub csv_excel: bool,
    /// Days of history to keep [default: 400].
    #[arg(long, value_name = "DAYS")]
    pub history_days: Option<i64>,
    /// Prune report folders this tool created under the output root: `30d` keeps those
    /// younger than 30 days, `20` the 20 newest [default: keep all].
    #[arg(long, value_name = "DAYS|COUNT")]
    pub keep_reports: Option<String>,
    /// Seconds to wait for another run holding --state (or `resend` holding the outbox).
    #[arg(long, value_name = "SECONDS")]
    pub lock_wait: Option<u64>,
}

/// The file's keys (top level).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputsFile {
    pub state: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub baseline: Option<String>,
    pub fail_on: Option<Severity>,
    pub suppressions: Option<PathBuf>,
    pub csv_excel: Option<bool>,
    pub history_days: Option<i64>,
    /// As `--keep-reports`: `"30d"` or `"20"`.
    pub keep_reports: Option<String>,
    pub lock_wait: Option<u64>,
}

/// The longest history, `history_days` / `--history-days`: a hundred years (past that
/// the dates it computes leave the calendar's range).
pub const MAX_HISTORY_DAYS: i64 = 36_500;
pub const DEFAULT_HISTORY_DAYS: i64 = 400;
/// Default seconds a run waits for the lock of --state.
pub const DEFAULT_LOCK_WAIT_SECS: u64 = 300;
/// The longest `--lock-wait`: a day.
pub const MAX_LOCK_WAIT_SECS: u64 = 86_400;

const HISTORY_DAYS: Names = Names {
    flag: "--history-days",
    key: "history_days",
};
const KEEP_REPORTS: Names = Names {
    flag: "--keep-reports",
    key: "keep_reports",
};
const LOCK_WAIT: Names = Names {
    flag: "--lock-wait",
    key: "lock_wait",
};

/// The resolved section.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub state: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub baseline: String,
    pub fail_on: Option<Severity>,
    pub suppressions: Option<PathBuf>,
    pub csv_excel: bool,
    pub history_days: i64,
    pub keep_reports: Option<Retention>,
    pub lock_wait: Duration,
}

/// Flags over the file over defaults; every value given is checked.
pub fn resolve(args: &OutputsArgs, file: &OutputsFile, out: &mut Vec<Problem>) -> Outputs {
    let history_days = pick(
        out,
        HISTORY_DAYS,
        args.history_days,
        file.history_days,
        in_range(1..=MAX_HISTORY_DAYS, " days"),
    );
    let keep_reports = pick(
        out,
        KEEP_REPORTS,
        args.keep_reports.as_deref(),
        file.keep_reports.as_deref(),
        |v| v.parse::<Retention>(),
    );
    Outputs {
        state: args.state.clone().or_else(|| file.state.clone()),
        out: args.out.clone().or_else(|| file.out.clone()),
        baseline: args
            .baseline
            .clone()
            .or_else(|| file.baseline.clone())
            .unwrap_or_else(|| DEFAULT_BASELINE.to_string()),
        fail_on: args.fail_on.or(file.fail_on),
        suppressions: args
            .suppressions
            .clone()
            .or_else(|| file.suppressions.clone()),
        csv_excel: args.csv_excel || file.csv_excel.unwrap_or(false),
        history_days: history_days.or(DEFAULT_HISTORY_DAYS),
        keep_reports: keep_reports.value(),
        lock_wait: Duration::from_secs(lock_wait(out, args.lock_wait, file)),
    }
}

/// `--lock-wait` over `lock_wait` over the default (also what `resend` waits).
pub fn lock_wait(out: &mut Vec<Problem>, flag: Option<u64>, file: &OutputsFile) -> u64 {
    pick(
        out,
        LOCK_WAIT,
        flag,
        file.lock_wait,
        in_range(0..=MAX_LOCK_WAIT_SECS, " seconds"),
    )
    .or(DEFAULT_LOCK_WAIT_SECS)
}

/// What a run finds out only when it opens the files (`check-config`): the baseline
/// and the suppressions file load.
pub fn check_files(file: &OutputsFile, out: &mut Vec<Problem>) {
    if let Some(b) = &file.baseline {
        if let Err(e) = crate::rules::Baseline::load(b) {
            out.push(Problem::new("baseline", format!("{e:#}")));
        }
    }
    if let Some(s) = &file.suppressions {
        if let Err(e) = crate::rules::suppress::load(s) {
            out.push(Problem::new("suppressions", format!("{e:#}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> OutputsFile {
        toml::from_str(text).unwrap()
    }

    fn keys(out: &[Problem]) -> Vec<&str> {
        out.iter().map(|p| p.key.as_str()).collect()
    }

    #[test]
    fn defaults() {
        let mut out = vec![];
        let o = resolve(&OutputsArgs::default(), &file(""), &mut out);
        assert!(out.is_empty());
        assert_eq!(o.baseline, DEFAULT_BASELINE);
        assert_eq!((o.history_days, o.keep_reports), (400, None));
        assert_eq!(o.lock_wait, Duration::from_secs(300));
        assert!(!o.csv_excel && o.fail_on.is_none() && o.state.is_none());
    }

    #[test]
    fn flags_over_file() {
        let f = file(
            "state = \"s\"\nbaseline = \"aks-docs-current\"\nfail_on = \"high\"\n\
             csv_excel = true\nhistory_days = 30\nkeep_reports = \"20\"\nlock_wait = 5\n",
        );
        let mut out = vec![];
        let o = resolve(&OutputsArgs::default(), &f, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(o.baseline, "aks-docs-current");
        assert_eq!(o.fail_on, Some(Severity::High));
        assert_eq!(o.keep_reports, Some(Retention::Count(20)));
        assert_eq!((o.history_days, o.csv_excel), (30, true));
        assert_eq!(o.lock_wait, Duration::from_secs(5));
        let args = OutputsArgs {
            state: Some("t".into()),
            fail_on: Some(Severity::Critical),
            history_days: Some(7),
            keep_reports: Some("30d".into()),
            ..Default::default()
        };
        let o = resolve(&args, &f, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(o.state, Some("t".into()));
        assert_eq!(o.fail_on, Some(Severity::Critical));
        assert_eq!(o.history_days, 7);
        assert_eq!(o.keep_reports, Some(Retention::Days(30)));
    }

    #[test]
    fn bad_values_name_the_flag_or_key() {
        let mut out = vec![];
        resolve(
            &OutputsArgs::default(),
            &file("history_days = 0\nkeep_reports = \"0d\"\nlock_wait = 86401\n"),
            &mut out,
        );
        assert_eq!(keys(&out), ["history_days", "keep_reports", "lock_wait"]);
        assert_eq!(out[0].reason, "must be 1 to 36500 days, got 0");
        out.clear();
        let args = OutputsArgs {
            history_days: Some(2_147_483_648),
            keep_reports: Some("x".into()),
            lock_wait: Some(100_000),
            ..Default::default()
        };
        resolve(&args, &file(""), &mut out);
        assert_eq!(
            keys(&out),
            ["--history-days", "--keep-reports", "--lock-wait"]
        );
        assert!(out[1].reason.contains("neither DAYS"), "{out:?}");
    }

    #[test]
    fn files_a_run_opens_later() {
        let mut out = vec![];
        check_files(
            &file("baseline = \"no-such-baseline\"\nsuppressions = \"/nonexistent/s.toml\"\n"),
            &mut out,
        );
        assert_eq!(keys(&out), ["baseline", "suppressions"]);
    }
}
