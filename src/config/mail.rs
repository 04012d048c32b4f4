//! Mail: the flags (`--smtp`, `--mail-from`, `--admin`, ...) and the `[mail]` table,
//! resolved into [`MailSettings`]. The key of each flag is listed in its help
//! (`[config: mail.from]`); the names that differ are `--mail-from` (`from`),
//! `--admin` (`admins`), `--allowed-domain` (`allowed_domains`), `--no-email`
//! (`enabled = false`), `--smtp-timeout` (`timeout_seconds`), `--smtp-retries`
//! (`retries`).
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use lettre::message::Mailbox;
use lettre::Address;
use serde::Deserialize;

use super::problem::{in_range, pick, repeated, Names, Pick, Problem};
use crate::mail::address::{self, DomainPolicy};
use crate::mail::settings::{
    default_from, parse_smtp_url, GraphMail, MailSettings, MailWhen, Secret, Security,
    SmtpSettings, Transport, Via, DEFAULT_RETRIES, DEFAULT_TIMEOUT_SECONDS, MAX_RETRIES,
    MAX_TIMEOUT_SECONDS, PASSWORD_ENV,
};

/// Mail flags of `run` and `resend`; each has a `[mail]` key in the config file.
#[derive(Debug, Clone, Default, Args)]
pub struct MailArgs {
    /// How messages leave: smtp (--smtp), graph (Microsoft Graph sendMail as --mail-from, with
    /// the job's Azure credential) or outbox (.eml files only) [default: smtp with --smtp, else
    /// outbox; config: mail.via].
    #[arg(long, value_enum, value_name = "VIA")]
    pub mail_via: Option<Via>,
    /// SMTP server: smtp://[user@]host[:port] (STARTTLS required; port 587; `?tls=none` only
    /// for loopback) or smtps://[user@]host[:port] (implicit TLS; port 465). Without it,
    /// messages are written as .eml files to <out>/outbox/ [config: mail.smtp].
    #[arg(long, value_name = "URL")]
    pub smtp: Option<String>,
    /// File holding the SMTP password (else env AKS_AUDIT_SMTP_PASSWORD) [config: mail.smtp_password_file].
    #[arg(long, value_name = "FILE")]
    pub smtp_password_file: Option<PathBuf>,
    /// Extra trusted root certificate (PEM) for the SMTP server [config: mail.smtp_ca_cert].
    #[arg(long, value_name = "PEM")]
    pub smtp_ca_cert: Option<PathBuf>,
    /// Sender address, e.g. "AKS audit <aks-audit@contoso.com>" [config: mail.from; needed with --smtp].
    #[arg(long, value_name = "ADDR")]
    pub mail_from: Option<String>,
    /// Admin address that gets the full report and the unroutable owners (repeatable) [config: mail.admins].
    #[arg(long = "admin", value_name = "ADDR")]
    pub admins: Vec<String>,
    /// Domain whose addresses (and subdomains') may receive owner mail (repeatable)
    /// [config: mail.allowed_domains; default: the admins' and the sender's domains].
    #[arg(long = "allowed-domain", value_name = "DOMAIN")]
    pub allowed_domains: Vec<String>,
    /// When to mail an owner: `always` (every run: audit evidence), `changed` (their
    /// findings changed since the last run), `action` (they have a finding, or it
    /// changed) [default: always; config: mail.when].
    #[arg(long, value_name = "WHEN", conflicts_with_all = ["always_send", "no_always_send"])]
    pub mail_when: Option<String>,
    /// With `--mail-when changed|action`: mail every owner anyway on this weekday (UTC),
    /// a weekly digest: mon, tue, ... or monday, tuesday, ... [config: mail.digest].
    #[arg(long, value_name = "WEEKDAY")]
    pub mail_digest: Option<String>,
    /// Same as `--mail-when always` [config: mail.always_send].
    #[arg(long, overrides_with = "no_always_send")]
    pub always_send: bool,
    /// Same as `--mail-when changed`.
    #[arg(long, overrides_with = "always_send")]
    pub no_always_send: bool,
    /// Send no mail and write no outbox [config: mail.enabled = false].
    #[arg(long)]
    pub no_email: bool,
    /// SMTP connect and command timeout in seconds [default: 30; config: mail.timeout_seconds].
    #[arg(long, value_name = "SECONDS")]
    pub smtp_timeout: Option<u64>,
    /// Retries per message after a transient failure, with backoff [default: 3; config: mail.retries].
    #[arg(long, value_name = "N")]
    pub smtp_retries: Option<u32>,
}

/// The `[mail]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailFile {
    pub via: Option<Via>,
    pub smtp: Option<String>,
    pub smtp_password_file: Option<PathBuf>,
    pub smtp_ca_cert: Option<PathBuf>,
    pub from: Option<String>,
    pub admins: Option<Vec<String>>,
    pub allowed_domains: Option<Vec<String>>,
    pub always_send: Option<bool>,
    pub when: Option<String>,
    pub digest: Option<String>,
    pub enabled: Option<bool>,
    pub timeout_seconds: Option<u64>,
    pub retries: Option<u32>,
}

/// What the rest of the configuration tells mail.
#[derive(Debug, Clone, Copy, Default)]
pub struct MailContext {
    /// A `--demo` run: the sender defaults to the demo tenant's domain.
    pub demo: bool,
    pub csv_excel: bool,
    /// The language of the messages (`--lang`).
    pub lang: crate::i18n::Lang,
}

const VIA: Names = Names {
    flag: "--mail-via",
    key: "mail.via",
};
const SMTP: Names = Names {
    flag: "--smtp",
    key: "mail.smtp",
};
const PASSWORD_FILE: Names = Names {
    flag: "--smtp-password-file",
    key: "mail.smtp_password_file",
};
const CA_CERT: Names = Names {
    flag: "--smtp-ca-cert",
    key: "mail.smtp_ca_cert",
};
const FROM: Names = Names {
    flag: "--mail-from",
    key: "mail.from",
};
const ADMINS: Names = Names {
    flag: "--admin",
    key: "mail.admins",
};
const DOMAINS: Names = Names {
    flag: "--allowed-domain",
    key: "mail.allowed_domains",
};
const WHEN: Names = Names {
    flag: "--mail-when",
    key: "mail.when",
};
const DIGEST: Names = Names {
    flag: "--mail-digest",
    key: "mail.digest",
};
const TIMEOUT: Names = Names {
    flag: "--smtp-timeout",
    key: "mail.timeout_seconds",
};
const RETRIES: Names = Names {
    flag: "--smtp-retries",
    key: "mail.retries",
};

/// Flags over the file over defaults; every value given is checked, each problem
/// naming the flag or key it came from. `None` when there is a problem.
pub fn resolve(
    args: &MailArgs,
    file: &MailFile,
    ctx: MailContext,
    out: &mut Vec<Problem>,
) -> Option<MailSettings> {
    let before = out.len();
    let enabled = !args.no_email && file.enabled.unwrap_or(true);
    let via = pick(out, VIA, args.mail_via, file.via, Ok::<Via, String>);
    let smtp = pick(
        out,
        SMTP,
        args.smtp.as_deref(),
        file.smtp.as_deref(),
        check_smtp_url,
    );
    let from = pick(
        out,
        FROM,
        args.mail_from.as_deref(),
        file.from.as_deref(),
        parse_from,
    );
    let admins = pick(
        out,
        ADMINS,
        repeated(&args.admins),
        file.admins.clone(),
        |v| parse_admins(&v),
    );
    let domains = pick(
        out,
        DOMAINS,
        repeated(&args.allowed_domains),
        file.allowed_domains.clone(),
        |v| DomainPolicy::new(v).map_err(|e| e.to_string()),
    );
    let timeout = pick(
        out,
        TIMEOUT,
        args.smtp_timeout,
        file.timeout_seconds,
        in_range(1..=MAX_TIMEOUT_SECONDS, " seconds"),
    );
    let retries = pick(
        out,
        RETRIES,
        args.smtp_retries,
        file.retries,
        in_range(0..=MAX_RETRIES, ""),
    );
    let when = mail_when(args, file, out);
    let digest = pick(
        out,
        DIGEST,
        args.mail_digest.as_deref(),
        file.digest.as_deref(),
        weekday,
    );
    if let (Pick::Set(_, via), MailWhen::Always) = (&digest, when) {
        out.push(Problem::new(
            *via,
            "a weekly digest needs --mail-when changed or action (mail.when): with always every owner is mailed every run",
        ));
    }
    // Graph sends as a mailbox: the sender is not optional there.
    let graph_sender = match (&via, &from) {
        (Pick::Set(Via::Graph, v), Pick::Absent) if enabled => {
            out.push(Problem::new(
                *v,
                "--mail-via graph sends as a mailbox: give it with --mail-from ADDR or [mail] from \
                 (a user or shared mailbox the application may send as)",
            ));
            None
        }
        (Pick::Set(Via::Graph, _), Pick::Set(m, _)) => Some(m.email.clone()),
        _ => None,
    };
    let from = match (from, &smtp) {
        (Pick::Set(m, _), _) => m,
        (Pick::Absent, Pick::Set(_, via)) if enabled && graph_sender.is_none() => {
            let name = if via.starts_with("--") {
                FROM.flag
            } else {
                FROM.key
            };
            out.push(Problem::new(
                name,
                "--smtp needs a sender: give --mail-from ADDR or [mail] from",
            ));
            Mailbox::new(None, default_from(ctx.demo))
        }
        _ => Mailbox::new(None, default_from(ctx.demo)),
    };
    let admins = admins.value().unwrap_or_default();
    let policy = match domains {
        Pick::Set(p, _) => p,
        _ => {
            let mut d: Vec<String> = admins.iter().map(|a| a.domain().to_string()).collect();
            d.push(from.email.domain().to_string());
            DomainPolicy::new(d).unwrap_or_default()
        }
    };
    let transport = match (via, smtp) {
        _ if !enabled => Transport::Outbox,
        (Pick::Set(Via::Outbox, _), _) => Transport::Outbox,
        (Pick::Set(Via::Graph, v), smtp) => {
            if let Pick::Set(_, smtp_via) = smtp {
                out.push(Problem::new(
                    smtp_via,
                    format!("an SMTP server is given but {v} is graph: remove one of them"),
                ));
            }
            match graph_sender {
                Some(sender) => Transport::Graph(Box::new(GraphMail {
                    sender,
                    // The run's `[azure]` settings take its place (`config::settings`).
                    azure: crate::azure::AzureSettings::default(),
                })),
                None => Transport::Outbox,
            }
        }
        (Pick::Set(Via::Smtp, v), Pick::Absent) => {
            out.push(Problem::new(
                v,
                "smtp needs a server: give --smtp URL or [mail] smtp",
            ));
            Transport::Outbox
        }
        (_, Pick::Set(s, via)) => smtp_transport(args, file, s, via, out),
        _ => Transport::Outbox,
    };
    if out.len() > before {
        return None;
    }
    Some(MailSettings {
        enabled,
        transport,
        from,
        admins,
        policy,
        when,
        digest: digest.value(),
        timeout: Duration::from_secs(timeout.or(DEFAULT_TIMEOUT_SECONDS)),
        retries: retries.or(DEFAULT_RETRIES),
        backoff: Duration::from_secs(1),
        csv_excel: ctx.csv_excel,
        lang: ctx.lang,
        report_links: None,
    })
}

/// `--mail-when` / `mail.when`, or the older switch it replaces (`--always-send`,
/// `--no-always-send`, `mail.always_send`: always / changed); flags over the file.
/// The file may give one of `when` and `always_send`, not both.
fn mail_when(args: &MailArgs, file: &MailFile, out: &mut Vec<Problem>) -> MailWhen {
    let from_switch = |always: bool| {
        if always {
            MailWhen::Always
        } else {
            MailWhen::Changed
        }
    };
    if file.when.is_some() && file.always_send.is_some() {
        out.push(Problem::new(
            WHEN.key,
            "give one of mail.when and mail.always_send (mail.when = \"changed\" is always_send = false)",
        ));
    }
    let picked = pick(
        out,
        WHEN,
        args.mail_when.as_deref(),
        file.when.as_deref(),
        |v| {
            v.parse::<MailWhen>()
                .map_err(|_| format!("`{v}` is not one of always, changed, action"))
        },
    );
    if args.no_always_send {
        return MailWhen::Changed;
    }
    if args.always_send {
        return MailWhen::Always;
    }
    picked
        .value()
        .or_else(|| file.always_send.map(from_switch))
        .unwrap_or(MailWhen::Always)
}

/// A weekday by its English name or its first three letters, any case.
fn weekday(s: &str) -> Result<chrono::Weekday, String> {
    use chrono::Weekday::*;
    let lower = s.trim().to_ascii_lowercase();
    [Mon, Tue, Wed, Thu, Fri, Sat, Sun]
        .into_iter()
        .find(|d| {
            let long = format!("{d:?}").to_ascii_lowercase();
            lower == long[..3] || lower == full_name(*d)
        })
        .ok_or_else(|| format!("`{s}` is not a weekday (mon ... sun, or monday ... sunday)"))
}

fn full_name(d: chrono::Weekday) -> &'static str {
    use chrono::Weekday::*;
    match d {
        Mon => "monday",
        Tue => "tuesday",
        Wed => "wednesday",
        Thu => "thursday",
        Fri => "friday",
        Sat => "saturday",
        Sun => "sunday",
    }
}

/// `mail.smtp` / `--smtp`: a URL the mail module accepts, with a port in 1..=65535.
fn check_smtp_url(url: &str) -> Result<SmtpSettings, String> {
    match parse_smtp_url(url) {
        Ok(s) if s.port == 0 => Err("port 0 is out of range (1 to 65535)".into()),
        Ok(s) => Ok(s),
        // The URL parser says "invalid port number" for 65536 and above.
        Err(e) if e.contains("invalid port number") => {
            Err(format!("{e}: the port must be 1 to 65535"))
        }
        Err(e) => Err(e),
    }
}

/// The SMTP server's password (file or environment) and trusted CA, checked against
/// the URL; `via` names where the URL came from.
fn smtp_transport(
    args: &MailArgs,
    file: &MailFile,
    mut s: SmtpSettings,
    via: &'static str,
    out: &mut Vec<Problem>,
) -> Transport {
    let password = pick(
        out,
        PASSWORD_FILE,
        args.smtp_password_file.as_ref(),
        file.smtp_password_file.as_ref(),
        |p| {
            std::fs::read_to_string(p)
                .map(|text| Secret::new(text.trim_end_matches(['\r', '\n']).to_string()))
                .map_err(|e| format!("reading SMTP password file {}: {e}", p.display()))
        },
    );
    let password_invalid = matches!(password, Pick::Invalid);
    s.password = match password {
        Pick::Set(p, _) => Some(p),
        Pick::Invalid => None,
        Pick::Absent => std::env::var(PASSWORD_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Secret::new),
    };
    // No error or log line shows it, whatever the server echoes.
    if let Some(p) = &s.password {
        crate::redact::register(p.expose());
    }
    match (&s.user, &s.password) {
        (Some(_), None) if !password_invalid => out.push(Problem::new(
            via,
            format!(
                "SMTP user given in {} but no password: set {PASSWORD_ENV} or --smtp-password-file",
                s.display()
            ),
        )),
        (None, Some(_)) => out.push(Problem::new(
            via,
            format!(
                "an SMTP password is set but {} names no user: use smtp://USER@host:port",
                s.display()
            ),
        )),
        _ => {}
    }
    if s.password.is_some() && s.security == Security::None {
        out.push(Problem::new(
            via,
            format!(
                "refusing to send the SMTP password without TLS ({})",
                s.display()
            ),
        ));
    }
    s.ca_cert_pem = pick(
        out,
        CA_CERT,
        args.smtp_ca_cert.as_ref(),
        file.smtp_ca_cert.as_ref(),
        |p| read_ca_cert(p),
    )
    .value();
    Transport::Smtp(s)
}

fn read_ca_cert(p: &std::path::Path) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(p)
        .map_err(|e| format!("reading SMTP CA certificate {}: {e}", p.display()))?;
    lettre::transport::smtp::client::Certificate::from_pem(&pem)
        .map_err(|e| format!("SMTP CA certificate {}: {e}", p.display()))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!(
            "SMTP CA certificate {}: no PEM certificate in it",
            p.display()
        ));
    }
    Ok(pem)
}

fn parse_from(s: &str) -> Result<Mailbox, String> {
    if s.chars().any(|c| c.is_control()) {
        return Err(format!(
            "sender `{}` contains control characters",
            address::escape(s, 80)
        ));
    }
    let m: Mailbox = s
        .parse()
        .map_err(|e| format!("sender `{}`: {e}", address::escape(s, 80)))?;
    address::parse_one(m.email.as_ref())
        .map_err(|why| format!("sender `{}`: {why}", address::escape(s, 80)))?;
    Ok(m)
}

/// Admin addresses, normalised and without duplicates.
fn parse_admins(values: &[String]) -> Result<Vec<Address>, String> {
    let mut admins: Vec<Address> = Vec::new();
    for a in values {
        let parsed = address::parse_one(a)
            .map_err(|why| format!("admin address `{}`: {why}", address::escape(a, 80)))?;
        let parsed = address::normalise(&parsed);
        if !admins.contains(&parsed) {
            admins.push(parsed);
        }
    }
    Ok(admins)
}

/// What a run finds out only when it sends (`check-config`): the password and CA
/// files named in the file exist, whether or not SMTP is configured.
pub fn check_files(file: &MailFile, out: &mut Vec<Problem>) {
    for (key, path) in [
        (PASSWORD_FILE.key, &file.smtp_password_file),
        (CA_CERT.key, &file.smtp_ca_cert),
    ] {
        if let Some(p) = path {
            if let Err(e) = std::fs::metadata(p) {
                out.push(Problem::new(key, format!("{}: {e}", p.display())));
            }
        }
    }
}

#[cfg(test)]
mod tests;
