//! Mail flags, the `[mail]` section of the config file, and their resolution.
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use lettre::message::Mailbox;
use lettre::Address;
use serde::Deserialize;

use super::address::{self, DomainPolicy};

/// Environment variable holding the SMTP password.
pub const PASSWORD_ENV: &str = "AKS_AUDIT_SMTP_PASSWORD";
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30;
pub const DEFAULT_RETRIES: u32 = 3;

/// Mail flags of `run` and `resend`; each has a `[mail]` key in the config file.
#[derive(Debug, Clone, Default, Args)]
pub struct MailArgs {
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
    /// Mail every owner every run, even when nothing changed (audit evidence) [default: on; config: mail.always_send].
    #[arg(long, overrides_with = "no_always_send")]
    pub always_send: bool,
    /// Mail an owner only when their findings changed since the last run.
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

/// The `[mail]` section of the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    pub smtp: Option<String>,
    pub smtp_password_file: Option<PathBuf>,
    pub smtp_ca_cert: Option<PathBuf>,
    pub from: Option<String>,
    pub admins: Option<Vec<String>>,
    pub allowed_domains: Option<Vec<String>>,
    pub always_send: Option<bool>,
    pub enabled: Option<bool>,
    pub timeout_seconds: Option<u64>,
    pub retries: Option<u32>,
}

/// A secret string: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Replaces any occurrence of the secret in `text` (defence in depth for error
    /// messages that might echo what was sent).
    pub fn redact(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.0, "***")
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtp://`: plain connect, then STARTTLS, which must succeed.
    StartTls,
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// `smtp://...?tls=none`: loopback only.
    None,
}

/// A parsed `--smtp` URL plus credentials and trust.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub ca_cert_pem: Option<Vec<u8>>,
}

impl SmtpSettings {
    /// `smtp://user@host:port` as the user wrote it, minus anything secret.
    pub fn display(&self) -> String {
        let scheme = if self.security == Security::Implicit {
            "smtps"
        } else {
            "smtp"
        };
        let user = self
            .user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let q = if self.security == Security::None {
            "?tls=none"
        } else {
            ""
        };
        format!("{scheme}://{user}{}:{}{q}", self.host, self.port)
    }
}

/// Where messages go.
#[derive(Debug, Clone)]
pub enum Transport {
    /// `.eml` files in `<out>/outbox/`, nothing sent.
    Outbox,
    Smtp(SmtpSettings),
}

/// Resolved mail settings of a run (or of `resend`).
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub enabled: bool,
    pub transport: Transport,
    pub from: Mailbox,
    pub admins: Vec<Address>,
    pub policy: DomainPolicy,
    pub always_send: bool,
    pub timeout: Duration,
    pub retries: u32,
    /// First backoff; doubles per retry, capped at 30 s.
    pub backoff: Duration,
    /// Prefix CSV attachments with a UTF-8 BOM (follows `--csv-excel`).
    pub csv_excel: bool,
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            enabled: false,
            transport: Transport::Outbox,
            from: Mailbox::new(None, default_from(false)),
            admins: vec![],
            policy: DomainPolicy::default(),
            always_send: true,
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECONDS),
            retries: DEFAULT_RETRIES,
            backoff: Duration::from_secs(1),
            csv_excel: false,
        }
    }
}

/// What the rest of the configuration tells mail.
#[derive(Debug, Clone, Copy, Default)]
pub struct MailContext {
    /// A `--demo` run: the sender defaults to the demo tenant's domain.
    pub demo: bool,
    pub csv_excel: bool,
}

fn default_from(demo: bool) -> Address {
    let domain = if demo { "contoso.com" } else { "localhost" };
    Address::new("aks-identity-audit", domain).expect("constant address")
}

impl MailSettings {
    pub fn resolve(
        args: &MailArgs,
        file: &MailConfig,
        ctx: MailContext,
    ) -> anyhow::Result<MailSettings> {
        let enabled = !args.no_email && file.enabled.unwrap_or(true);
        let smtp_url = args.smtp.clone().or_else(|| file.smtp.clone());
        let from = match args.mail_from.as_ref().or(file.from.as_ref()) {
            Some(s) => parse_from(s)?,
            None if smtp_url.is_some() && enabled => {
                bail!("--smtp needs a sender: give --mail-from ADDR or [mail] from")
            }
            None => Mailbox::new(None, default_from(ctx.demo)),
        };
        let admin_values = if !args.admins.is_empty() {
            args.admins.clone()
        } else {
            file.admins.clone().unwrap_or_default()
        };
        let mut admins: Vec<Address> = Vec::new();
        for a in &admin_values {
            let parsed = address::parse_one(a).map_err(|why| {
                anyhow::anyhow!("admin address `{}`: {why}", address::escape(a, 80))
            })?;
            let parsed = address::normalise(&parsed);
            if !admins.contains(&parsed) {
                admins.push(parsed);
            }
        }
        let domains = if !args.allowed_domains.is_empty() {
            args.allowed_domains.clone()
        } else {
            file.allowed_domains.clone().unwrap_or_default()
        };
        let policy = if domains.is_empty() {
            let mut d: Vec<String> = admins.iter().map(|a| a.domain().to_string()).collect();
            d.push(from.email.domain().to_string());
            DomainPolicy::new(d)?
        } else {
            DomainPolicy::new(domains)?
        };
        let always_send = if args.no_always_send {
            false
        } else if args.always_send {
            true
        } else {
            file.always_send.unwrap_or(true)
        };
        let timeout_s = in_range(
            ("--smtp-timeout", args.smtp_timeout),
            ("mail.timeout_seconds", file.timeout_seconds),
            DEFAULT_TIMEOUT_SECONDS,
            1..=MAX_TIMEOUT_SECONDS,
            " seconds",
        )?;
        let retries = in_range(
            ("--smtp-retries", args.smtp_retries),
            ("mail.retries", file.retries),
            DEFAULT_RETRIES,
            0..=MAX_RETRIES,
            "",
        )?;
        let transport = match (&smtp_url, enabled) {
            (Some(url), true) => {
                let mut s = parse_smtp_url(url)?;
                let pw_file = args
                    .smtp_password_file
                    .as_ref()
                    .or(file.smtp_password_file.as_ref());
                let password = match pw_file {
                    Some(p) => {
                        let text = std::fs::read_to_string(p).with_context(|| {
                            format!("reading SMTP password file {}", p.display())
                        })?;
                        Some(Secret::new(text.trim_end_matches(['\r', '\n']).to_string()))
                    }
                    None => std::env::var(PASSWORD_ENV)
                        .ok()
                        .filter(|v| !v.is_empty())
                        .map(Secret::new),
                };
                // No error or log line shows it, whatever the server echoes.
                if let Some(p) = &password {
                    crate::redact::register(p.expose());
                }
                s.password = password;
                match (&s.user, &s.password) {
                    (Some(_), None) => bail!(
                        "SMTP user given in {} but no password: set {PASSWORD_ENV} or --smtp-password-file",
                        s.display()
                    ),
                    (None, Some(_)) => bail!(
                        "an SMTP password is set but {} names no user: use smtp://USER@host:port",
                        s.display()
                    ),
                    _ => {}
                }
                if s.password.is_some() && s.security == Security::None {
                    bail!(
                        "refusing to send the SMTP password without TLS ({})",
                        s.display()
                    );
                }
                if let Some(p) = args.smtp_ca_cert.as_ref().or(file.smtp_ca_cert.as_ref()) {
                    let pem = std::fs::read(p)
                        .with_context(|| format!("reading SMTP CA certificate {}", p.display()))?;
                    lettre::transport::smtp::client::Certificate::from_pem(&pem)
                        .map_err(|e| anyhow::anyhow!("SMTP CA certificate {}: {e}", p.display()))?;
                    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                        bail!(
                            "SMTP CA certificate {}: no PEM certificate in it",
                            p.display()
                        );
                    }
                    s.ca_cert_pem = Some(pem);
                }
                Transport::Smtp(s)
            }
            _ => Transport::Outbox,
        };
        Ok(MailSettings {
            enabled,
            transport,
            from,
            admins,
            policy,
            always_send,
            timeout: Duration::from_secs(timeout_s),
            retries,
            backoff: Duration::from_secs(1),
            csv_excel: ctx.csv_excel,
        })
    }
}

/// The longest SMTP timeout: an hour.
pub const MAX_TIMEOUT_SECONDS: u64 = 3600;
/// The most retries per message.
pub const MAX_RETRIES: u32 = 10;

/// The flag's value, else the config key's, else `default`, within `range`; an error
/// names the flag or key the value came from.
fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    (flag, from_flag): (&str, Option<T>),
    (key, from_file): (&str, Option<T>),
    default: T,
    range: std::ops::RangeInclusive<T>,
    unit: &str,
) -> anyhow::Result<T> {
    let (name, v) = match (from_flag, from_file) {
        (Some(v), _) => (flag, v),
        (None, Some(v)) => (key, v),
        (None, None) => return Ok(default),
    };
    if !range.contains(&v) {
        bail!(
            "{name} must be {} to {}{unit}, got {v}",
            range.start(),
            range.end()
        );
    }
    Ok(v)
}

fn parse_from(s: &str) -> anyhow::Result<Mailbox> {
    if s.chars().any(|c| c.is_control()) {
        bail!(
            "sender `{}` contains control characters",
            address::escape(s, 80)
        );
    }
    let m: Mailbox = s
        .parse()
        .map_err(|e| anyhow::anyhow!("sender `{}`: {e}", address::escape(s, 80)))?;
    address::parse_one(m.email.as_ref())
        .map_err(|why| anyhow::anyhow!("sender `{}`: {why}", address::escape(s, 80)))?;
    Ok(m)
}

fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

/// Parses `smtp://[user@]host[:port][?tls=none]` or `smtps://[user@]host[:port]`.
/// Errors never echo a password given in the URL.
pub fn parse_smtp_url(raw: &str) -> anyhow::Result<SmtpSettings> {
    let url =
        url::Url::parse(raw.trim()).map_err(|e| anyhow::anyhow!("--smtp: not a URL ({e})"))?;
    if url.password().is_some() {
        bail!("--smtp: put no password in the URL; use {PASSWORD_ENV} or --smtp-password-file");
    }
    let (mut security, default_port) = match url.scheme() {
        "smtp" => (Security::StartTls, 587),
        "smtps" => (Security::Implicit, 465),
        other => bail!(
            "--smtp: scheme must be smtp or smtps, got `{}`",
            address::escape(other, 20)
        ),
    };
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => bail!("--smtp: no host"),
    };
    if url.path() != "" && url.path() != "/" {
        bail!(
            "--smtp: unexpected path `{}`",
            address::escape(url.path(), 40)
        );
    }
    for (k, v) in url.query_pairs() {
        match (k.as_ref(), v.as_ref()) {
            ("tls", "none") if security == Security::StartTls => {
                if !is_loopback(&host) {
                    bail!("--smtp: tls=none is allowed only for loopback hosts, not {host}");
                }
                security = Security::None;
            }
            ("tls", "starttls") if security == Security::StartTls => {}
            _ => bail!(
                "--smtp: unknown option `{}={}` (only tls=none, for loopback)",
                address::escape(&k, 20),
                address::escape(&v, 20)
            ),
        }
    }
    let user = if url.username().is_empty() {
        None
    } else {
        Some(
            percent_decode(url.username())
                .ok_or_else(|| anyhow::anyhow!("--smtp: user name is not valid UTF-8"))?,
        )
    };
    Ok(SmtpSettings {
        host,
        port: url.port().unwrap_or(default_port),
        security,
        user,
        password: None,
        ca_cert_pem: None,
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        let s = parse_smtp_url("smtp://bot%40x@mail.contoso.com").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.security),
            ("mail.contoso.com", 587, Security::StartTls)
        );
        assert_eq!(s.user.as_deref(), Some("bot@x"));
        let s = parse_smtp_url("smtps://mail.contoso.com:2465").unwrap();
        assert_eq!((s.port, s.security), (2465, Security::Implicit));
        let s = parse_smtp_url("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!(s.security, Security::None);
        assert!(parse_smtp_url("smtp://localhost:25?tls=none").is_ok());
        assert!(parse_smtp_url("smtp://[::1]:25?tls=none").is_ok());
        let e = parse_smtp_url("smtp://mail.contoso.com?tls=none")
            .unwrap_err()
            .to_string();
        assert!(e.contains("loopback"), "{e}");
        assert!(parse_smtp_url("smtps://127.0.0.1?tls=none").is_err());
        assert!(parse_smtp_url("http://mail.contoso.com").is_err());
        let e = parse_smtp_url("smtp://u:hunter2@mail.contoso.com")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2") && e.contains(PASSWORD_ENV), "{e}");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.redact("auth hunter2 failed"), "auth *** failed");
    }

    #[test]
    fn default_policy_is_admins_and_sender_domains() {
        let args = MailArgs {
            admins: vec!["Sec@Corp.example.com".into()],
            mail_from: Some("AKS audit <audit@contoso.com>".into()),
            ..Default::default()
        };
        let s =
            MailSettings::resolve(&args, &MailConfig::default(), MailContext::default()).unwrap();
        assert_eq!(s.policy.domains(), ["corp.example.com", "contoso.com"]);
        assert_eq!(s.admins[0].to_string(), "sec@corp.example.com");
        assert!(s.always_send && s.enabled);
        assert!(matches!(s.transport, Transport::Outbox));
    }

    #[test]
    fn flags_override_file_and_smtp_needs_sender_and_password() {
        let file: MailConfig = toml::from_str(
            "smtp = \"smtp://bot@127.0.0.1:2525\"\nallowed_domains = [\"contoso.com\"]\nalways_send = false\nretries = 1\n",
        )
        .unwrap();
        let e =
            MailSettings::resolve(&MailArgs::default(), &file, MailContext::default()).unwrap_err();
        assert!(e.to_string().contains("--mail-from"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let args = MailArgs {
            mail_from: Some("audit@contoso.com".into()),
            smtp_password_file: Some(pw),
            always_send: true,
            ..Default::default()
        };
        let s = MailSettings::resolve(&args, &file, MailContext::default()).unwrap();
        assert!(s.always_send);
        assert_eq!(s.retries, 1);
        match &s.transport {
            Transport::Smtp(t) => {
                assert_eq!(t.password.as_ref().unwrap().expose(), "s3cret");
                assert!(!format!("{s:?}").contains("s3cret"));
                // Registered: no error or log line shows it, whatever a server echoes.
                assert_eq!(
                    crate::redact::redact("535 auth s3cret rejected"),
                    "535 auth *** rejected"
                );
            }
            Transport::Outbox => panic!("expected smtp"),
        }
        let e = MailSettings::resolve(
            &MailArgs {
                mail_from: Some("audit@contoso.com".into()),
                ..Default::default()
            },
            &MailConfig {
                smtp: Some("smtp://bot@mail.contoso.com".into()),
                ..Default::default()
            },
            MailContext::default(),
        );
        // Only fails when the environment has no password either.
        if std::env::var(PASSWORD_ENV).is_err() {
            assert!(e.unwrap_err().to_string().contains(PASSWORD_ENV));
        }
    }

    #[test]
    fn unknown_mail_keys_are_errors() {
        assert!(toml::from_str::<MailConfig>("smtp_host = \"x\"").is_err());
    }
}
