//! Resolved mail settings: where messages go, from whom, to which domains. The flags
//! and the `[mail]` table that resolve into them are `crate::config::mail`'s.
use std::net::IpAddr;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::Address;

use super::address::{self, DomainPolicy};

/// Environment variable holding the SMTP password.
pub const PASSWORD_ENV: &str = "AKS_AUDIT_SMTP_PASSWORD";
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30;
pub const DEFAULT_RETRIES: u32 = 3;

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

/// `--mail-via`: how the messages of the outbox leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// An SMTP server (`--smtp URL`).
    Smtp,
    /// Microsoft Graph `sendMail` as the `--mail-from` mailbox, with the job's Azure credential.
    Graph,
    /// Only `.eml` files in `<out>/outbox/`; nothing is sent.
    Outbox,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Smtp => "smtp",
            Via::Graph => "graph",
            Via::Outbox => "outbox",
        }
    }
}

/// Microsoft Graph `sendMail`: `POST {graph}/v1.0/users/{sender}/sendMail` with a token
/// for Graph from the run's credential chain (`[azure]`: `--auth`, `--graph-endpoint`,
/// `--authority-host`, `--ca-cert`).
#[derive(Debug, Clone)]
pub struct GraphMail {
    /// The mailbox that sends: `--mail-from`.
    pub sender: Address,
    /// The run's Azure settings: endpoint, token scope, credential chain and CA.
    pub azure: crate::azure::AzureSettings,
}

impl GraphMail {
    /// `graph https://graph.microsoft.com/ as audit@contoso.com` (no secret in it).
    pub fn display(&self) -> String {
        format!(
            "graph {} as {}",
            self.azure.graph_endpoint.as_str(),
            self.sender
        )
    }
}

/// Where messages go.
#[derive(Debug, Clone)]
pub enum Transport {
    /// `.eml` files in `<out>/outbox/`, nothing sent.
    Outbox,
    Smtp(SmtpSettings),
    Graph(Box<GraphMail>),
}

impl Transport {
    /// Whether messages are sent (not only written to the outbox).
    pub fn sends(&self) -> bool {
        !matches!(self, Transport::Outbox)
    }

    /// Where messages go, for logs: never a password or token.
    pub fn display(&self) -> String {
        match self {
            Transport::Outbox => "outbox".into(),
            Transport::Smtp(s) => s.display(),
            Transport::Graph(g) => g.display(),
        }
    }
}

crate::named::named_enum! {
    /// When an owner is mailed (`--mail-when`, `mail.when`).
    pub enum MailWhen {
        /// Every run, changed or not: the mail is audit evidence.
        Always = "always",
        /// When a finding on their clusters appeared or went away since the last run
        /// (and on the first run).
        Changed = "changed",
        /// When their clusters have an unsuppressed finding, or their findings changed.
        Action = "action",
    }
}

/// Resolved mail settings of a run (or of `resend`).
#[derive(Debug, Clone)]
pub struct MailSettings {
    pub enabled: bool,
    pub transport: Transport,
    pub from: Mailbox,
    pub admins: Vec<Address>,
    pub policy: DomainPolicy,
    pub when: MailWhen,
    /// With `changed` or `action`: on this weekday (UTC, the run's clock) every owner
    /// is mailed anyway, a weekly digest (`--mail-digest`, `mail.digest`).
    pub digest: Option<chrono::Weekday>,
    pub timeout: Duration,
    pub retries: u32,
    /// First backoff; doubles per retry, capped at 30 s.
    pub backoff: Duration,
    /// Prefix CSV attachments with a UTF-8 BOM (follows `--csv-excel`).
    pub csv_excel: bool,
    /// The language of subjects and bodies (follows `--lang`).
    pub lang: crate::i18n::Lang,
    /// Where this run's report files are served after `--upload` with
    /// `--upload-base-url` (`https://.../aks/prod/<run id>/`): the admin message then
    /// links the files it does not attach. Set by the run, not by configuration.
    pub report_links: Option<url::Url>,
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            enabled: false,
            transport: Transport::Outbox,
            from: Mailbox::new(None, default_from(false)),
            admins: vec![],
            policy: DomainPolicy::default(),
            when: MailWhen::Always,
            digest: None,
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECONDS),
            retries: DEFAULT_RETRIES,
            backoff: Duration::from_secs(1),
            csv_excel: false,
            lang: crate::i18n::Lang::En,
            report_links: None,
        }
    }
}

/// The sender when none is configured (`--demo`: the demo tenant's domain).
pub fn default_from(demo: bool) -> Address {
    let domain = if demo { "contoso.com" } else { "localhost" };
    Address::new("aks-identity-audit", domain).expect("constant address")
}

/// The longest SMTP timeout: an hour.
pub const MAX_TIMEOUT_SECONDS: u64 = 3600;
/// The most retries per message.
pub const MAX_RETRIES: u32 = 10;

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
/// Errors never echo a password given in the URL; they do not name the flag or key
/// (the caller knows which it was).
pub fn parse_smtp_url(raw: &str) -> Result<SmtpSettings, String> {
    let url = url::Url::parse(raw.trim()).map_err(|e| format!("not a URL ({e})"))?;
    if url.password().is_some() {
        return Err(format!(
            "put no password in the URL; use {PASSWORD_ENV} or --smtp-password-file"
        ));
    }
    let (mut security, default_port) = match url.scheme() {
        "smtp" => (Security::StartTls, 587),
        "smtps" => (Security::Implicit, 465),
        other => {
            return Err(format!(
                "scheme must be smtp or smtps, got `{}`",
                address::escape(other, 20)
            ))
        }
    };
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err("no host".to_string()),
    };
    if url.path() != "" && url.path() != "/" {
        return Err(format!(
            "unexpected path `{}`",
            address::escape(url.path(), 40)
        ));
    }
    for (k, v) in url.query_pairs() {
        match (k.as_ref(), v.as_ref()) {
            ("tls", "none") if security == Security::StartTls => {
                if !is_loopback(&host) {
                    return Err(format!(
                        "tls=none is allowed only for loopback hosts, not {host}"
                    ));
                }
                security = Security::None;
            }
            ("tls", "starttls") if security == Security::StartTls => {}
            _ => {
                return Err(format!(
                    "unknown option `{}={}` (only tls=none, for loopback)",
                    address::escape(&k, 20),
                    address::escape(&v, 20)
                ))
            }
        }
    }
    let user = if url.username().is_empty() {
        None
    } else {
        Some(
            percent_decode(url.username())
                .ok_or_else(|| "user name is not valid UTF-8".to_string())?,
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
        let e = parse_smtp_url("smtp://mail.contoso.com?tls=none").unwrap_err();
        assert!(e.contains("loopback"), "{e}");
        assert!(parse_smtp_url("smtps://127.0.0.1?tls=none").is_err());
        assert!(parse_smtp_url("http://mail.contoso.com").is_err());
        let e = parse_smtp_url("smtp://u:hunter2@mail.contoso.com").unwrap_err();
        assert!(!e.contains("hunter2") && e.contains(PASSWORD_ENV), "{e}");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.redact("auth hunter2 failed"), "auth *** failed");
    }
}
