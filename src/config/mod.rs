//! The configuration: flags, and the TOML file given with `--config` (or
//! `AKS_AUDIT_CONFIG`) under them. Each section is a module that owns its flags (clap),
//! its table or keys in the file (serde, unknown keys refused), how the two resolve
//! (flags over file over defaults) and its checks, which return typed [`Problem`]s:
//!
//! | section | flags | file |
//! |---|---|---|
//! | [`source`] | `--inventory`, `--demo` | `inventory`, `demo` (top level) |
//! | [`outputs`] | `--state`, `--out`, `--baseline`, `--fail-on`, `--suppressions`, `--csv-excel`, `--history-days`, `--keep-reports`, `--lock-wait` | the same names with `_`, top level |
//! | [`lang`] | `--lang` | `lang` (top level) |
//! | [`owners`] | `--owner-tag` | `[owners]` `tag_keys`, `subscriptions`, `fallback` |
//! | [`mail`] | `--smtp`, `--mail-from`, `--admin`, ... | `[mail]` |
//! | [`azure`] | `--auth`, `--cloud`, `--subscription`, ... | `[azure]` |
//! | [`log_analytics`] | `--log-analytics`, `--dcr-id`, `--stream` | `[log_analytics]` |
//! | [`schedule`] | `--cron`, `--timezone`, `--no-run-missed`, `--shutdown-grace` | `[schedule]` |
//!
//! `--config`, `--now`, `--run-id` and `--backfill` are about one run and have no key.
//!
//! `check-config FILE`, `run`, `schedule` and `resend` read the file the same way
//! ([`document`]): every syntax error, unknown key and wrongly typed value is a
//! problem of its own, and the sections check what was right; all the problems are
//! reported together, each as `FILE: key: reason (line N)` (a flag's as
//! `--flag: reason`). A file `check-config` refuses is refused by every command.
//!
//! Sections depend on the settings types of the modules they configure
//! (`mail::MailSettings`, `azure::AzureSettings`, `schedule::ScheduleOptions`, ...);
//! those modules never depend on this one.
pub mod azure;
pub mod document;
pub mod lang;
pub mod log_analytics;
pub mod mail;
pub mod outputs;
pub mod owners;
pub mod problem;
pub mod schedule;
pub mod source;
pub mod upload;
pub mod webhooks;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;

pub use crate::retention::Retention;
use crate::rules::{owner, Severity};
pub use outputs::{DEFAULT_LOCK_WAIT_SECS, MAX_HISTORY_DAYS};
pub use problem::{Problem, Problems};
pub use source::Source;

use document::{Document, Lines};

/// Flags of `run` (and `schedule`). Each flag has a config-file key of the same name
/// with `_` for `-`, top level or in its section's table; the exceptions are named in
/// each section and in the README.
#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    /// TOML configuration file; flags override its keys.
    #[arg(long, value_name = "FILE", env = "AKS_AUDIT_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub source: source::SourceArgs,
    #[command(flatten)]
    pub outputs: outputs::OutputsArgs,
    /// Override the clock (RFC 3339), for backfills and tests.
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    /// This run's id: mail already accepted for it (a retry of the same Kubernetes Job)
    /// is not sent again [default: the run's UTC timestamp].
    #[arg(long, value_name = "ID", env = "AKS_AUDIT_RUN_ID")]
    pub run_id: Option<String>,
    /// Allow `--now` before the last run in --state: the run is inserted into runs.csv
    /// and state.json is left as it is.
    #[arg(long)]
    pub backfill: bool,
    #[command(flatten)]
    pub lang: lang::LangArgs,
    #[command(flatten)]
    pub owners: owners::OwnersArgs,
    #[command(flatten)]
    pub mail: mail::MailArgs,
    #[command(flatten)]
    pub azure: azure::AzureArgs,
    #[command(flatten)]
    pub webhooks: webhooks::WebhooksArgs,
    #[command(flatten)]
    pub log_analytics: log_analytics::LogAnalyticsArgs,
    #[command(flatten)]
    pub upload: upload::UploadArgs,
}

/// The configuration file, section by section. Every key is optional.
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    pub source: source::SourceFile,
    pub outputs: outputs::OutputsFile,
    pub lang: lang::LangFile,
    pub owners: owners::OwnersFile,
    pub mail: mail::MailFile,
    pub azure: azure::AzureFile,
    pub schedule: schedule::ScheduleFile,
    pub webhooks: webhooks::WebhooksFile,
    pub log_analytics: log_analytics::LogAnalyticsFile,
    pub upload: upload::UploadFile,
}

/// The tables of the file, each a section's.
const TABLES: [&str; 6] = [
    "owners",
    "mail",
    "azure",
    "schedule",
    "webhooks",
    "log_analytics",
];

impl ConfigFile {
    /// Reads `text` section by section: the problems found (syntax, unknown keys,
    /// types) go to `out`, what is right is kept.
    fn read<'i>(text: &'i str, out: &mut Vec<Problem>) -> (ConfigFile, Document<'i>) {
        let doc = Document::parse(text, out);
        let mut root_keys: Vec<&str> = TABLES.to_vec();
        root_keys.extend(document::field_names::<source::SourceFile>());
        root_keys.extend(document::field_names::<outputs::OutputsFile>());
        root_keys.extend(document::field_names::<lang::LangFile>());
        root_keys.extend(document::field_names::<upload::UploadFile>());
        root_keys.sort_unstable();
        doc.unknown_root_keys(&root_keys, out);
        let file = ConfigFile {
            source: doc.root_section(out),
            outputs: doc.root_section(out),
            lang: doc.root_section(out),
            owners: doc.table_section("owners", out),
            mail: doc.table_section("mail", out),
            azure: doc.table_section("azure", out),
            schedule: doc.table_section("schedule", out),
            webhooks: doc.table_section("webhooks", out),
            log_analytics: doc.table_section("log_analytics", out),
            upload: doc.root_section(out),
        };
        if doc.syntax_errors {
            // Past a syntax error keys may be misread (after a broken `[mail` header,
            // `smtp` would be an unknown top-level key): the syntax errors alone.
            out.retain(|p| p.key == "(syntax)");
        }
        (file, doc)
    }
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
    /// The language of report.html and the mail (`--lang`, `lang`).
    pub lang: crate::i18n::Lang,
    pub history_days: i64,
    pub owners: owner::OwnerPolicy,
    /// This run's id (`--run-id`, or the UTC timestamp of `now`).
    pub run_id: Option<String>,
    pub keep_reports: Option<Retention>,
    pub backfill: bool,
    pub lock_wait: Duration,
    pub mail: crate::mail::MailSettings,
    pub azure: crate::azure::AzureSettings,
    pub webhooks: crate::webhook::WebhookSettings,
    /// `None`: no Log Analytics delivery.
    pub log_analytics: Option<crate::log_analytics::LogAnalyticsSettings>,
    /// `--upload`: reports to Azure Blob Storage.
    pub upload: Option<crate::upload::UploadSettings>,
}

/// The file (when there is one) read, with the problems found reading it.
struct Loaded {
    path: Option<PathBuf>,
    file: ConfigFile,
    lines: Lines,
    /// The file did not parse: its values may be misread, so only what was found
    /// reading it is reported.
    unreadable: bool,
    problems: Vec<Problem>,
}

impl Loaded {
    fn new(path: Option<&Path>) -> Loaded {
        let Some(path) = path else {
            return Loaded::from_text(None, "");
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Loaded::from_text(Some(path), &text),
            Err(e) => {
                let mut loaded = Loaded::from_text(Some(path), "");
                loaded.unreadable = true;
                loaded
                    .problems
                    .push(Problem::new("(file)", format!("cannot read: {e}")));
                loaded
            }
        }
    }

    fn from_text(path: Option<&Path>, text: &str) -> Loaded {
        let mut problems = vec![];
        let (file, doc) = ConfigFile::read(text, &mut problems);
        Loaded {
            path: path.map(Path::to_path_buf),
            file,
            unreadable: doc.syntax_errors,
            lines: doc.lines,
            problems,
        }
    }

    /// Every problem, each of the file's with its line.
    fn problems(self, more: Vec<Problem>) -> Problems {
        let mut list = self.problems;
        list.extend(more);
        for p in &mut list {
            if p.line.is_none() && !p.is_flag() && !p.key.starts_with('(') {
                p.line = self.lines.of(&p.key);
            }
        }
        Problems::new(self.path, list)
    }
}

/// `run`'s settings, or every problem of its flags and configuration file.
pub fn resolve(args: &RunArgs) -> Result<Settings, Problems> {
    resolve_with(args, &schedule::ScheduleArgs::default()).map(|(s, _)| s)
}

/// `schedule`'s settings: the run's, and the schedule's (which needs `--state`).
pub fn resolve_schedule(
    run: &RunArgs,
    sched: &schedule::ScheduleArgs,
) -> Result<(Settings, crate::schedule::ScheduleOptions), Problems> {
    let (settings, valid) = resolve_with(run, sched)?;
    let mut out = vec![];
    let Some(state) = settings.state.clone() else {
        out.push(Problem::new(
            "--state",
            "schedule needs --state DIR (history is what makes the kubelet check work, and the scheduler keeps its own state there)",
        ));
        return Err(Problems::new(run.config.clone(), out));
    };
    match valid.options(&state, &mut out) {
        Some(opts) => Ok((settings, opts)),
        None => Err(Problems::new(run.config.clone(), out)),
    }
}

/// `resend`'s settings: the `[mail]` table (of a file valid as a whole) under the mail
/// flags, and how long to wait for the outbox (`lock_wait`).
pub fn resolve_resend(
    config: Option<&Path>,
    mail: &mail::MailArgs,
    azure: &azure::AzureArgs,
) -> Result<(crate::mail::MailSettings, Duration), Problems> {
    let args = RunArgs {
        config: config.map(Path::to_path_buf),
        mail: mail.clone(),
        azure: azure.clone(),
        ..Default::default()
    };
    // No context: a resend composes nothing and needs an SMTP sender anyway.
    let (s, _) = resolve_with(&args, &schedule::ScheduleArgs::default())?;
    Ok((s.mail, s.lock_wait))
}

fn resolve_with(
    args: &RunArgs,
    sched: &schedule::ScheduleArgs,
) -> Result<(Settings, schedule::ValidSchedule), Problems> {
    let loaded = Loaded::new(args.config.as_deref());
    let mut out = vec![];
    if loaded.unreadable {
        return Err(loaded.problems(out));
    }
    let settings = settings(args, &loaded.file, &mut out);
    let schedule = schedule::resolve(sched, &loaded.file.schedule, &mut out);
    match (settings, schedule) {
        (Some(s), Some(v)) if out.is_empty() && loaded.problems.is_empty() => Ok((s, v)),
        _ => Err(loaded.problems(out)),
    }
}

/// `check-config FILE`: every problem of the file, as a run with no flags would find
/// them, plus what a run finds only later (the baseline, suppressions, inventory and
/// certificate files it names). Empty: the file is valid.
pub fn check(path: &Path) -> Problems {
    check_loaded(Loaded::new(Some(path)))
}

fn check_loaded(loaded: Loaded) -> Problems {
    let mut out = vec![];
    if !loaded.unreadable {
        let f = &loaded.file;
        settings(&RunArgs::default(), f, &mut out);
        schedule::resolve(&schedule::ScheduleArgs::default(), &f.schedule, &mut out);
        source::check_files(&f.source, &mut out);
        outputs::check_files(&f.outputs, &mut out);
        mail::check_files(&f.mail, &mut out);
        azure::check_files(&f.azure, &mut out);
    }
    loaded.problems(out)
}

/// Every section resolved; `None` when one has a problem (in `out`).
fn settings(args: &RunArgs, file: &ConfigFile, out: &mut Vec<Problem>) -> Option<Settings> {
    let before = out.len();
    let source = source::resolve(&args.source, &file.source);
    let o = outputs::resolve(&args.outputs, &file.outputs, out);
    let lang = lang::resolve(&args.lang, &file.lang, out);
    let now = args.now.as_deref().and_then(|s| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                out.push(Problem::new(
                    "--now",
                    format!("`{s}` is not an RFC 3339 time ({e})"),
                ))
            })
            .ok()
    });
    // An empty id (a downward-API label that is absent) is no id: the timestamp.
    let run_id = match args.run_id.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => crate::state::check_run_id(id)
            .map_err(|e| {
                let why = e.to_string();
                let why = why.strip_prefix("--run-id ").unwrap_or(&why).to_string();
                out.push(Problem::new("--run-id", why));
            })
            .ok(),
        _ => None,
    };
    let mail = mail::resolve(
        &args.mail,
        &file.mail,
        mail::MailContext {
            demo: source == Source::Demo,
            csv_excel: o.csv_excel,
            lang,
        },
        out,
    );
    let azure = azure::resolve(&args.azure, &file.azure, out);
    let webhooks = webhooks::resolve(&args.webhooks, &file.webhooks, out).map(|mut w| {
        w.ca_cert = azure.as_ref().and_then(|a| a.ca_cert.clone());
        w
    });
    // Log Analytics uses the run's credential chain, cloud and CA.
    let log_analytics =
        log_analytics::resolve(&args.log_analytics, &file.log_analytics, out).map(|l| {
            l.map(|mut l| {
                if let Some(a) = &azure {
                    l.azure = a.clone();
                }
                l
            })
        });
    // The upload uses the run's credential chain, CA and request settings.
    let upload = upload::resolve(&args.upload, &file.upload, out).map(|mut u| {
        if let Some(a) = &azure {
            u.max_attempts = a.max_attempts;
            u.azure = a.clone();
        }
        u
    });
    // Graph mail uses the run's endpoint, credential chain and CA.
    let mail = mail.map(|mut m| {
        if let (crate::mail::Transport::Graph(g), Some(a)) = (&mut m.transport, &azure) {
            g.azure = a.clone();
        }
        m
    });
    if out.len() > before {
        return None;
    }
    Some(Settings {
        source,
        state: o.state,
        out: o.out,
        now,
        baseline: o.baseline,
        fail_on: o.fail_on,
        suppressions: o.suppressions,
        csv_excel: o.csv_excel,
        lang,
        history_days: o.history_days,
        owners: owners::resolve(&args.owners, &file.owners),
        run_id,
        keep_reports: o.keep_reports,
        backfill: args.backfill,
        lock_wait: o.lock_wait,
        mail: mail?,
        azure: azure?,
        webhooks: webhooks?,
        log_analytics: log_analytics?,
        upload,
    })
}

#[cfg(test)]
mod tests;
