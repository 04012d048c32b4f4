//! One configuration for file and flags: the TOML file (`--config`) gives defaults,
//! flags override them. Unknown keys are errors that name the file, key and line.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::Args;
use serde::Deserialize;

use crate::rules::{baseline::DEFAULT_BASELINE, owner, Severity};

/// Flags of `run` (and `schedule`); each has a config-file key of the same name
/// with `_` for `-`.
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// TOML configuration file; flags override its keys.
    #[arg(long, value_name = "FILE", env = "AKS_AUDIT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Audit an inventory folder (clusters.json, role-assignments.json, ...) instead of Azure.
    #[arg(long, value_name = "DIR", conflicts_with = "demo")]
    pub inventory: Option<PathBuf>,
    /// Audit the built-in demo tenant, served by the embedded emulator.
    #[arg(long)]
    pub demo: bool,
    /// Folder for history between runs (needed to see kubelet migrations).
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Output folder [default: reports/<UTC timestamp>/].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Override the clock (RFC 3339), for backfills and tests.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    /// Embedded baseline name (aks-docs-2021, aks-docs-current) or a TOML file [default: aks-docs-2021].
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
    /// Tag keys that name a cluster's owner, in order (repeatable) [default: owner, Owner, owner-email, contact].
    #[arg(long = "owner-tag", value_name = "KEY")]
    pub owner_tags: Vec<String>,
    /// This run's id: mail already accepted for it (a retry of the same Kubernetes Job)
    /// is not sent again [default: the run's UTC timestamp].
    #[arg(long, value_name = "ID", env = "AKS_AUDIT_RUN_ID")]
    pub run_id: Option<String>,
    /// Prune report folders this tool created under the output root: `30d` keeps those
    /// younger than 30 days, `20` the 20 newest [default: keep all].
    #[arg(long, value_name = "DAYS|COUNT")]
    pub keep_reports: Option<String>,
    /// Allow `--now` before the last run in --state: the run is inserted into runs.csv
    /// and state.json is left as it is.
    #[arg(long)]
    pub backfill: bool,
    /// Seconds to wait for another run holding --state (or `resend` holding the outbox).
    #[arg(long, value_name = "SECONDS")]
    pub lock_wait: Option<u64>,
    #[command(flatten)]
    pub mail: crate::mail::MailArgs,
    #[command(flatten)]
    pub azure: crate::azure::AzureArgs,
}

/// The configuration file. Every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub inventory: Option<PathBuf>,
    pub demo: Option<bool>,
    pub state: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub baseline: Option<String>,
    pub fail_on: Option<Severity>,
    pub suppressions: Option<PathBuf>,
    pub csv_excel: Option<bool>,
    pub history_days: Option<i64>,
    /// As `--keep-reports`: `"30d"` or `"20"`.
    pub keep_reports: Option<String>,
    /// As `--lock-wait`.
    pub lock_wait: Option<u64>,
    #[serde(default)]
    pub owners: OwnersConfig,
    #[serde(default)]
    pub mail: crate::mail::MailConfig,
    #[serde(default)]
    pub azure: crate::azure::AzureConfig,
    #[serde(default)]
    pub schedule: ScheduleConfig,
}

/// The `[schedule]` table: what `schedule` runs by when its flags are absent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Kubernetes CronJob schedule, 5 fields (as `--cron`).
    pub cron: Option<String>,
    /// IANA timezone [default: UTC].
    pub timezone: Option<String>,
    /// Run the latest missed run at start [default: true].
    pub run_missed: Option<bool>,
    /// Seconds a run may finish after SIGTERM [default: 60].
    pub shutdown_grace_seconds: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnersConfig {
    pub tag_keys: Option<Vec<String>>,
    /// Subscription id or name → owner address.
    #[serde(default)]
    pub subscriptions: BTreeMap<String, String>,
    pub fallback: Option<String>,
}

/// Where the inventory comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Inventory(PathBuf),
    Demo,
    /// Azure Resource Graph, the default.
    Live,
}

/// The resolved settings of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub source: Source,
    pub state: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub now: Option<DateTime<Utc>>,
    pub baseline: String,
    pub fail_on: Option<Severity>,
    pub suppressions: Option<PathBuf>,
    pub csv_excel: bool,
    pub history_days: i64,
    pub owners: owner::OwnerPolicy,
    /// This run's id (`--run-id`, or the UTC timestamp of `now`).
    pub run_id: Option<String>,
    pub keep_reports: Option<Retention>,
    pub backfill: bool,
    pub lock_wait: std::time::Duration,
    pub mail: crate::mail::MailSettings,
    pub azure: crate::azure::AzureSettings,
}

/// What `--keep-reports` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Report folders younger than this many days.
    Days(u32),
    /// The newest this many report folders.
    Count(u32),
}

impl std::str::FromStr for Retention {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let bad = || format!("`{s}` is neither DAYS (`30d`) nor COUNT (`20`), at least 1");
        let (digits, days) = match t.strip_suffix(['d', 'D']) {
            Some(d) => (d, true),
            None => (t, false),
        };
        let n: u32 = digits.parse().map_err(|_| bad())?;
        if n == 0 || n > 100_000 {
            return Err(bad());
        }
        Ok(if days {
            Retention::Days(n)
        } else {
            Retention::Count(n)
        })
    }
}

/// Default seconds a run waits for the lock of --state.
pub const DEFAULT_LOCK_WAIT_SECS: u64 = 300;

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        Self::parse(&text)
            .map_err(|(key, reason)| anyhow::anyhow!("config {}: {key}: {reason}", path.display()))
    }

    /// Parses the file's text; an error is `(key, reason)`, the key dotted
    /// (`mail.smtp`), the reason with its line.
    pub fn parse(text: &str) -> Result<FileConfig, (String, String)> {
        let de = toml::Deserializer::parse(text).map_err(|e| {
            (
                "(syntax)".to_string(),
                format!("{}{}", e.message(), line_suffix(text, e.span())),
            )
        })?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let key = match e.path().to_string() {
                p if p == "." => "(top level)".to_string(),
                p => p,
            };
            let inner = e.into_inner();
            (
                key,
                format!("{}{}", inner.message(), line_suffix(text, inner.span())),
            )
        })
    }
}

fn line_suffix(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(r) => {
            let at = r.start.min(text.len());
            format!(" (line {})", text[..at].matches('\n').count() + 1)
        }
        None => String::new(),
    }
}

impl Settings {
    pub fn resolve(args: &RunArgs) -> anyhow::Result<Settings> {
        let file = match &args.config {
            Some(p) => {
                let f = FileConfig::load(p)?;
                let problems = crate::check_config::check_at_start(&f);
                if !problems.is_empty() {
                    bail!(
                        "config {}",
                        crate::check_config::render(p, &problems).trim_end()
                    );
                }
                f
            }
            None => FileConfig::default(),
        };
        let source = if args.demo {
            Source::Demo
        } else if let Some(dir) = &args.inventory {
            Source::Inventory(dir.clone())
        } else if let Some(dir) = &file.inventory {
            Source::Inventory(dir.clone())
        } else if file.demo == Some(true) {
            Source::Demo
        } else {
            Source::Live
        };
        let now = match &args.now {
            Some(s) => Some(
                DateTime::parse_from_rfc3339(s)
                    .with_context(|| format!("--now `{s}` is not an RFC 3339 time"))?
                    .with_timezone(&Utc),
            ),
            None => None,
        };
        let history_days = args.history_days.or(file.history_days).unwrap_or(400);
        if !(1..=crate::check_config::MAX_HISTORY_DAYS).contains(&history_days) {
            bail!(
                "{} must be 1 to {} days, got {history_days}",
                if args.history_days.is_some() {
                    "--history-days"
                } else {
                    "history_days (config)"
                },
                crate::check_config::MAX_HISTORY_DAYS
            );
        }
        let keep_reports = match (&args.keep_reports, &file.keep_reports) {
            (Some(v), _) => Some(
                v.parse::<Retention>()
                    .map_err(|e| anyhow::anyhow!("--keep-reports: {e}"))?,
            ),
            (None, Some(v)) => Some(
                v.parse::<Retention>()
                    .map_err(|e| anyhow::anyhow!("keep_reports: {e}"))?,
            ),
            (None, None) => None,
        };
        let lock_wait = args
            .lock_wait
            .or(file.lock_wait)
            .unwrap_or(DEFAULT_LOCK_WAIT_SECS);
        if lock_wait > 86_400 {
            bail!("--lock-wait / lock_wait: at most 86400 seconds, got {lock_wait}");
        }
        // An empty id (a downward-API label that is absent) is no id: the timestamp.
        let run_id = match args.run_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => Some(crate::state::check_run_id(id)?),
            _ => None,
        };
        let tag_keys = if !args.owner_tags.is_empty() {
            args.owner_tags.clone()
        } else {
            file.owners
                .tag_keys
                .clone()
                .unwrap_or_else(owner::default_tag_keys)
        };
        let csv_excel = args.csv_excel || file.csv_excel.unwrap_or(false);
        let mail = crate::mail::MailSettings::resolve(
            &args.mail,
            &file.mail,
            crate::mail::MailContext {
                demo: source == Source::Demo,
                csv_excel,
            },
        )?;
        Ok(Settings {
            source,
            state: args.state.clone().or(file.state),
            out: args.out.clone().or(file.out),
            now,
            baseline: args
                .baseline
                .clone()
                .or(file.baseline)
                .unwrap_or_else(|| DEFAULT_BASELINE.to_string()),
            fail_on: args.fail_on.or(file.fail_on),
            suppressions: args.suppressions.clone().or(file.suppressions),
            csv_excel: args.csv_excel || file.csv_excel.unwrap_or(false),
            history_days,
            owners: owner::OwnerPolicy {
                tag_keys,
                subscription_owners: file.owners.subscriptions,
                fallback: file.owners.fallback,
            },
            run_id,
            keep_reports,
            backfill: args.backfill,
            lock_wait: std::time::Duration::from_secs(lock_wait),
            mail,
            azure: crate::azure::AzureSettings::resolve(&args.azure, &file.azure)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "state = \"s\"\nfail_onn = \"high\"\n").unwrap();
        let e = FileConfig::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("c.toml") && e.contains("fail_onn") && e.contains("line 2"),
            "{e}"
        );
    }

    #[test]
    fn flags_override_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "inventory = \"inv\"\nbaseline = \"aks-docs-current\"\nfail_on = \"high\"\n[owners]\nfallback = \"ops@example.com\"\n").unwrap();
        let args = RunArgs {
            config: Some(p),
            fail_on: Some(Severity::Critical),
            ..Default::default()
        };
        let s = Settings::resolve(&args).unwrap();
        assert_eq!(s.source, Source::Inventory("inv".into()));
        assert_eq!(s.baseline, "aks-docs-current");
        assert_eq!(s.fail_on, Some(Severity::Critical));
        assert_eq!(s.owners.fallback.as_deref(), Some("ops@example.com"));
    }

    #[test]
    fn bad_now_is_an_error() {
        let args = RunArgs {
            inventory: Some("x".into()),
            now: Some("yesterday".into()),
            ..Default::default()
        };
        assert!(Settings::resolve(&args)
            .unwrap_err()
            .to_string()
            .contains("yesterday"));
    }
}
