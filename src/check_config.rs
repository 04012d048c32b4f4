//! `check-config FILE`: every section of a configuration file validated the way a run
//! (or `schedule`) would, each problem printed as `FILE: key: reason`.
use std::path::Path;

use crate::config::FileConfig;

/// One problem: the dotted key (`mail.smtp`) and why it is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub reason: String,
}

impl Problem {
    fn new(key: &str, reason: impl std::fmt::Display) -> Problem {
        Problem {
            key: key.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Every problem of the file at `path` (empty = valid).
pub fn check_file(path: &Path) -> Vec<Problem> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return vec![Problem::new("(file)", format!("cannot read: {e}"))],
    };
    match FileConfig::parse(&text) {
        Ok(cfg) => check(&cfg),
        Err((key, reason)) => vec![Problem { key, reason }],
    }
}

/// `FILE: key: reason` lines.
pub fn render(path: &Path, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}: {}\n", path.display(), p.key, p.reason))
        .collect()
}

/// One line of an error chain (`a: b: c`).
fn chain(e: &anyhow::Error) -> String {
    format!("{e:#}")
}

/// The semantic checks of a structurally valid file.
pub fn check(cfg: &FileConfig) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(b) = &cfg.baseline {
        if let Err(e) = crate::rules::Baseline::load(b) {
            out.push(Problem::new("baseline", chain(&e)));
        }
    }
    if let Some(s) = &cfg.suppressions {
        if let Err(e) = crate::rules::suppress::load(s) {
            out.push(Problem::new("suppressions", chain(&e)));
        }
    }
    if let Some(dir) = &cfg.inventory {
        if !dir.is_dir() {
            out.push(Problem::new(
                "inventory",
                format!("{} is not a folder", dir.display()),
            ));
        }
    }
    check_history_days(cfg, &mut out);
    check_state_keys(cfg, &mut out);
    check_schedule(cfg, &mut out);
    check_mail(cfg, &mut out);
    check_azure(cfg, &mut out);
    out
}

/// `keep_reports` and `lock_wait`, the same checks `run` makes.
fn check_state_keys(cfg: &FileConfig, out: &mut Vec<Problem>) {
    if let Some(v) = &cfg.keep_reports {
        if let Err(e) = v.parse::<crate::config::Retention>() {
            out.push(Problem::new("keep_reports", e));
        }
    }
    if let Some(v) = cfg.lock_wait.filter(|v| *v > 86_400) {
        out.push(Problem::new(
            "lock_wait",
            format!("at most 86400 seconds, got {v}"),
        ));
    }
}

/// The checks a run or `schedule` makes at start, before anything else: the ones that
/// no flag can override (schedule, the file's SMTP URL, history length).
pub fn check_at_start(cfg: &FileConfig) -> Vec<Problem> {
    let mut out = Vec::new();
    check_history_days(cfg, &mut out);
    check_state_keys(cfg, &mut out);
    check_schedule(cfg, &mut out);
    check_smtp_url(cfg, &mut out);
    out
}

/// The longest history, `history_days` / `--history-days`: a hundred years (past that
/// the dates it computes leave the calendar's range).
pub const MAX_HISTORY_DAYS: i64 = 36_500;

fn check_history_days(cfg: &FileConfig, out: &mut Vec<Problem>) {
    if let Some(d) = cfg
        .history_days
        .filter(|d| !(1..=MAX_HISTORY_DAYS).contains(d))
    {
        out.push(Problem::new(
            "history_days",
            format!("must be 1 to {MAX_HISTORY_DAYS} days, got {d}"),
        ));
    }
}

fn check_schedule(cfg: &FileConfig, out: &mut Vec<Problem>) {
    let s = &cfg.schedule;
    let tz = match &s.timezone {
        Some(t) => match crate::schedule::parse_timezone(t) {
            Ok(tz) => Some(tz),
            Err(e) => {
                out.push(Problem::new("schedule.timezone", chain(&e)));
                None
            }
        },
        None => Some(chrono_tz::Tz::UTC),
    };
    if let (Some(c), Some(tz)) = (&s.cron, tz) {
        if let Err(e) = crate::schedule::parse_cron(c, tz) {
            out.push(Problem::new("schedule.cron", e));
        }
    }
    if s.cron.is_none() && (s.timezone.is_some() || s.run_missed.is_some()) {
        out.push(Problem::new(
            "schedule.cron",
            "is missing: the [schedule] table sets other keys but no schedule",
        ));
    }
    if let Some(g) = s.shutdown_grace_seconds {
        if g > crate::schedule::MAX_SHUTDOWN_GRACE_SECONDS {
            out.push(Problem::new(
                "schedule.shutdown_grace_seconds",
                format!("must be at most 86400 (a day), got {g}"),
            ));
        }
    }
}

/// `mail.smtp`: a URL the mail module accepts, with a port in 1..=65535.
fn check_smtp_url(cfg: &FileConfig, out: &mut Vec<Problem>) -> bool {
    let mut url_ok = true;
    if let Some(url) = &cfg.mail.smtp {
        match crate::mail::settings::parse_smtp_url(url) {
            Ok(s) if s.port == 0 => {
                url_ok = false;
                out.push(Problem::new(
                    "mail.smtp",
                    "port 0 is out of range (1 to 65535)",
                ));
            }
            Ok(_) => {}
            Err(e) => {
                url_ok = false;
                let reason = chain(&e);
                let reason = reason.strip_prefix("--smtp: ").unwrap_or(&reason);
                // The URL parser says "invalid port number" for 65536 and above.
                let reason = if reason.contains("invalid port number") {
                    format!("{reason}: the port must be 1 to 65535")
                } else {
                    reason.to_string()
                };
                out.push(Problem::new("mail.smtp", reason));
            }
        }
    }
    url_ok
}

fn check_mail(cfg: &FileConfig, out: &mut Vec<Problem>) {
    let m = &cfg.mail;
    let url_ok = check_smtp_url(cfg, out);
    for (key, file) in [
        ("mail.smtp_password_file", &m.smtp_password_file),
        ("mail.smtp_ca_cert", &m.smtp_ca_cert),
    ] {
        if let Some(p) = file {
            if let Err(e) = std::fs::metadata(p) {
                out.push(Problem::new(key, format!("{}: {e}", p.display())));
            }
        }
    }
    if !url_ok {
        return;
    }
    // Everything else the mail module resolves (sender, admins, domains, timeouts).
    if let Err(e) = crate::mail::MailSettings::resolve(
        &crate::mail::MailArgs::default(),
        m,
        crate::mail::MailContext {
            demo: cfg.demo == Some(true),
            csv_excel: cfg.csv_excel.unwrap_or(false),
        },
    ) {
        let reason = chain(&e);
        let key = key_in(
            &reason,
            &[
                ("sender", "mail.from"),
                ("from", "mail.from"),
                ("admin", "mail.admins"),
                ("domain", "mail.allowed_domains"),
                ("timeout", "mail.timeout_seconds"),
                ("retries", "mail.retries"),
                ("password", "mail.smtp_password_file"),
                ("certificate", "mail.smtp_ca_cert"),
                ("CA", "mail.smtp_ca_cert"),
            ],
            "mail",
        );
        out.push(Problem::new(key, reason));
    }
}

fn check_azure(cfg: &FileConfig, out: &mut Vec<Problem>) {
    let a = &cfg.azure;
    if let Some(p) = &a.ca_cert {
        match std::fs::read_to_string(p) {
            Ok(t) if t.contains("-----BEGIN CERTIFICATE-----") => {}
            Ok(_) => out.push(Problem::new(
                "azure.ca_cert",
                format!("{} holds no PEM certificate", p.display()),
            )),
            Err(e) => out.push(Problem::new(
                "azure.ca_cert",
                format!("{}: {e}", p.display()),
            )),
        }
    }
    if let Err(e) = crate::azure::AzureSettings::resolve(&crate::azure::AzureArgs::default(), a) {
        let reason = chain(&e);
        let key = key_in(
            &reason,
            &[
                ("max_attempts", "azure.max_attempts"),
                ("request_timeout", "azure.request_timeout"),
                ("concurrency", "azure.concurrency"),
                ("ARM endpoint", "azure.arm_endpoint"),
                ("Graph endpoint", "azure.graph_endpoint"),
                ("authority host", "azure.authority_host"),
                ("--subscription", "azure.subscriptions"),
                (
                    "subscriptions or management groups",
                    "azure.management_groups",
                ),
            ],
            "azure",
        );
        out.push(Problem::new(key, reason));
    }
}

/// The key a resolver's message is about, from words it uses.
fn key_in(reason: &str, words: &[(&str, &'static str)], fallback: &'static str) -> &'static str {
    words
        .iter()
        .find(|(w, _)| reason.contains(w))
        .map(|(_, k)| *k)
        .unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<Problem> {
        match FileConfig::parse(text) {
            Ok(cfg) => check(&cfg),
            Err((key, reason)) => vec![Problem { key, reason }],
        }
    }

    fn one(text: &str) -> Problem {
        let p = problems(text);
        assert_eq!(p.len(), 1, "{p:?}");
        p.into_iter().next().unwrap()
    }

    #[test]
    fn a_valid_file_has_no_problem() {
        let p = problems(
            "baseline = \"aks-docs-current\"\nhistory_days = 30\n\
             [schedule]\ncron = \"0 2 * * MON-FRI\"\ntimezone = \"Europe/Berlin\"\n\
             run_missed = false\nshutdown_grace_seconds = 30\n\
             [mail]\nsmtp = \"smtp://mail.contoso.com:587\"\nfrom = \"audit@contoso.com\"\n\
             [azure]\nauth = \"workload-identity\"\nmax_attempts = 4\n",
        );
        assert_eq!(p, vec![]);
    }

    #[test]
    fn unknown_keys_name_the_dotted_key_and_line() {
        let p = one("state = \"s\"\n[mail]\nsmtp_port = 25\n");
        assert_eq!(p.key, "mail.smtp_port");
        assert!(
            p.reason.contains("unknown field `smtp_port`") && p.reason.contains("line 3"),
            "{p:?}"
        );
        let p = one("[schedule]\ncronn = \"0 2 * * *\"\n");
        assert_eq!(p.key, "schedule.cronn");
        let p = one("fail_onn = \"high\"\n");
        assert_eq!(p.key, "fail_onn");
        assert!(
            p.reason.contains("unknown field") && p.reason.contains("line 1"),
            "{p:?}"
        );
    }

    #[test]
    fn wrong_types_name_the_key() {
        let p = one("history_days = \"thirty\"\n");
        assert_eq!(p.key, "history_days");
        assert!(p.reason.contains("invalid type"), "{p:?}");
        let p = one("[azure]\nmax_attempts = \"6\"\n");
        assert_eq!(p.key, "azure.max_attempts");
        let p = one("[schedule]\nrun_missed = \"yes\"\n");
        assert_eq!(p.key, "schedule.run_missed");
        let p = one("[mail]\nadmins = \"ops@contoso.com\"\n");
        assert_eq!(p.key, "mail.admins");
    }

    #[test]
    fn a_cron_that_does_not_parse_and_a_bad_timezone() {
        let p = one("[schedule]\ncron = \"0 25 * * *\"\n");
        assert_eq!(p.key, "schedule.cron");
        assert!(p.reason.contains("hour"), "{p:?}");
        let p = one("[schedule]\ncron = \"every night\"\n");
        assert_eq!(p.key, "schedule.cron");
        let p = one("[schedule]\ncron = \"0 2 * * *\"\ntimezone = \"Mars/Base\"\n");
        assert_eq!(p.key, "schedule.timezone");
        assert!(p.reason.contains("Mars/Base"), "{p:?}");
    }

    #[test]
    fn smtp_port_out_of_range_and_a_bad_smtp_url() {
        for url in ["smtp://mail.contoso.com:70000", "smtp://mail.contoso.com:0"] {
            let p = one(&format!(
                "[mail]\nsmtp = \"{url}\"\nfrom = \"a@contoso.com\"\n"
            ));
            assert_eq!(p.key, "mail.smtp");
            assert!(
                p.reason.contains("port") && p.reason.contains("65535"),
                "{p:?}"
            );
        }
        let p = one("[mail]\nsmtp = \"http://mail.contoso.com\"\nfrom = \"a@contoso.com\"\n");
        assert_eq!(p.key, "mail.smtp");
        let p = one("[mail]\nsmtp = \"smtp://mail.contoso.com\"\n");
        assert_eq!(p.key, "mail.from", "{p:?}");
    }

    #[test]
    fn azure_and_top_level_semantics() {
        let p = one("[azure]\nmax_attempts = 50\n");
        assert_eq!(p.key, "azure.max_attempts");
        let p = one("[azure]\narm_endpoint = \"http://arm.example.com\"\n");
        assert_eq!(p.key, "azure.arm_endpoint");
        let p = one("baseline = \"no-such-baseline\"\n");
        assert_eq!(p.key, "baseline");
        let p = one("suppressions = \"/nonexistent/s.toml\"\n");
        assert_eq!(p.key, "suppressions");
        let p = one("history_days = 0\n");
        assert_eq!(p.key, "history_days");
        // Several problems in one file are all listed.
        let p = problems("history_days = 0\n[schedule]\ncron = \"x\"\n[azure]\nconcurrency = 99\n");
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["history_days", "schedule.cron", "azure.concurrency"]);
    }
}
