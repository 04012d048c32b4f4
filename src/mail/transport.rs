//! SMTP with lettre: STARTTLS (required), implicit TLS, or none on loopback; AUTH;
//! bounded retries with backoff per message.
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::settings::{Secret, Security, SmtpSettings};

pub type Smtp = AsyncSmtpTransport<Tokio1Executor>;

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub fn build(s: &SmtpSettings, timeout: Duration, pool: u32) -> anyhow::Result<Smtp> {
    let tls = || -> anyhow::Result<TlsParameters> {
        let mut b = TlsParameters::builder(s.host.clone());
        if let Some(pem) = &s.ca_cert_pem {
            b = b.add_root_certificate(
                Certificate::from_pem(pem)
                    .map_err(|e| anyhow::anyhow!("SMTP CA certificate: {e}"))?,
            );
        }
        b.build_rustls()
            .map_err(|e| anyhow::anyhow!("SMTP TLS setup for {}: {e}", s.host))
    };
    let tls = match s.security {
        Security::StartTls => Tls::Required(tls()?),
        Security::Implicit => Tls::Wrapper(tls()?),
        Security::None => Tls::None,
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
        .port(s.port)
        .tls(tls)
        .timeout(Some(timeout))
        .pool_config(PoolConfig::new().max_size(pool.max(1)));
    if let (Some(user), Some(pw)) = (&s.user, &s.password) {
        b = b
            .credentials(Credentials::new(user.clone(), pw.expose().to_string()))
            .authentication(vec![Mechanism::Plain, Mechanism::Login]);
    }
    Ok(b.build())
}

/// Should a failed attempt be tried again? Transient (4xx), timeouts and dropped
/// connections: yes. Permanent refusals (5xx), TLS and client errors: no.
pub fn should_retry(e: &lettre::transport::smtp::Error) -> bool {
    if e.is_permanent() || e.is_tls() || e.is_client() {
        return false;
    }
    e.is_transient() || e.is_timeout() || e.status().is_none()
}

/// The wait before retry `attempt` (1-based): `base`, doubling, capped.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

/// How often and how patiently to retry, and what to keep out of error messages.
#[derive(Debug, Clone, Copy)]
pub struct Retry<'a> {
    pub retries: u32,
    pub base: Duration,
    pub secret: Option<&'a Secret>,
}

/// Sends one message, retrying transient failures up to `retries` times. The error
/// text has the secret redacted.
pub async fn send(
    smtp: &Smtp,
    envelope: (&Address, &Address),
    bytes: &[u8],
    retry: &Retry<'_>,
    label: &str,
) -> Result<u32, String> {
    let (from, to) = envelope;
    let Retry {
        retries,
        base,
        secret,
    } = *retry;
    let envelope =
        Envelope::new(Some(from.clone()), vec![to.clone()]).map_err(|e| e.to_string())?;
    let redact = |s: String| secret.map(|p| p.redact(&s)).unwrap_or(s);
    let mut attempt = 0;
    loop {
        match smtp.send_raw(&envelope, bytes).await {
            Ok(_) => return Ok(attempt),
            Err(e) => {
                let msg = redact(error_chain(&e));
                if attempt >= retries || !should_retry(&e) {
                    return Err(msg);
                }
                attempt += 1;
                let wait = backoff(base, attempt);
                tracing::warn!(file = label, attempt, retry_in_ms = wait.as_millis() as u64, error = %msg, "mail: send failed, will retry");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_secs(1);
        assert_eq!(backoff(b, 1), Duration::from_secs(1));
        assert_eq!(backoff(b, 2), Duration::from_secs(2));
        assert_eq!(backoff(b, 3), Duration::from_secs(4));
        assert_eq!(backoff(b, 10), MAX_BACKOFF);
        assert_eq!(backoff(b, 40), MAX_BACKOFF);
    }
}
