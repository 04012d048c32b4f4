//! SMTP with lettre: STARTTLS (required), implicit TLS, or none on loopback; AUTH;
//! bounded retries with backoff per message, each attempt bounded in time.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::PoolConfig;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::settings::{Secret, Security, SmtpSettings};

type Pooled = AsyncSmtpTransport<Tokio1Executor>;

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The slowest upload an attempt waits for on top of the timeout: 256 KiB/s, so an
/// owner's 100 kB message gets the timeout and no more, an admin's 20 MB one (15 MB of
/// attachments in base64) about 80 s more.
pub const MIN_UPLOAD_BYTES_PER_SEC: u64 = 256 * 1024;

/// The SMTP transport of one delivery: lettre's pooled transport, replaced by a new
/// one after an attempt that timed out.
///
/// lettre's timeout covers connecting only: a server that accepts and then never
/// answers (or answers the greeting and goes silent) would hold a send forever. Each
/// attempt is therefore bounded here ([`attempt_limit`]), which abandons the exchange
/// mid-command; lettre's pool would take that connection back as healthy (it knows
/// failed connections, not abandoned ones) and hand it, with a reply still due, to
/// the next message. So the pool it came from is no longer used: later attempts get
/// a new transport with a new pool, and the old one is dropped with its connections.
pub struct Smtp {
    settings: SmtpSettings,
    timeout: Duration,
    pool: u32,
    current: Mutex<Arc<Pooled>>,
}

impl Smtp {
    fn current(&self) -> Arc<Pooled> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops using `stuck` (if no other attempt already did): later attempts get a
    /// new pool.
    fn replace(&self, stuck: &Arc<Pooled>) {
        let mut cur = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if !Arc::ptr_eq(&cur, stuck) {
            return;
        }
        match pooled(&self.settings, self.timeout, self.pool) {
            Ok(t) => *cur = Arc::new(t),
            // It was built once with the same settings; keep it rather than none.
            Err(e) => tracing::warn!(error = %e, "mail: could not rebuild the SMTP transport"),
        }
    }
}

/// How long one attempt to send a message of `bytes` may take: the SMTP timeout, plus
/// the upload at [`MIN_UPLOAD_BYTES_PER_SEC`].
pub fn attempt_limit(timeout: Duration, bytes: usize) -> Duration {
    timeout.saturating_add(Duration::from_secs(bytes as u64 / MIN_UPLOAD_BYTES_PER_SEC))
}

pub fn build(s: &SmtpSettings, timeout: Duration, pool: u32) -> anyhow::Result<Smtp> {
    Ok(Smtp {
        current: Mutex::new(Arc::new(pooled(s, timeout, pool)?)),
        settings: s.clone(),
        timeout,
        pool,
    })
}

fn pooled(s: &SmtpSettings, timeout: Duration, pool: u32) -> anyhow::Result<Pooled> {
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

/// Sends one message, retrying transient failures up to `retries` times. An attempt
/// that takes longer than [`attempt_limit`] is abandoned and counts as a transient
/// failure. The error text has the secret redacted.
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
    let limit = attempt_limit(smtp.timeout, bytes.len());
    let mut attempt = 0;
    loop {
        let transport = smtp.current();
        let msg = match tokio::time::timeout(limit, transport.send_raw(&envelope, bytes)).await {
            Ok(Ok(_)) => return Ok(attempt),
            Ok(Err(e)) => {
                let msg = redact(error_chain(&e));
                if !should_retry(&e) {
                    return Err(msg);
                }
                msg
            }
            Err(_elapsed) => {
                smtp.replace(&transport);
                format!(
                    "no reply from the SMTP server: the exchange did not finish within {} s (timed out)",
                    limit.as_secs()
                )
            }
        };
        if attempt >= retries {
            return Err(msg);
        }
        attempt += 1;
        let wait = backoff(base, attempt);
        tracing::warn!(file = label, attempt, retry_in_ms = wait.as_millis() as u64, error = %msg, "mail: send failed, will retry");
        tokio::time::sleep(wait).await;
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    /// An SMTP server that greets and answers EHLO, then never says another word: the
    /// connection is set up and pooled, and the first command of the transaction hangs.
    /// Counts the connections it accepted.
    async fn goes_silent_after_ehlo() -> (u16, Arc<AtomicUsize>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else { return };
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let (r, mut w) = s.into_split();
                    let mut lines = BufReader::new(r).lines();
                    w.write_all(b"220 silent.test ESMTP\r\n").await.unwrap();
                    if let Ok(Some(_ehlo)) = lines.next_line().await {
                        w.write_all(b"250 silent.test\r\n").await.unwrap();
                    }
                    // Read (and never answer) whatever comes next, keeping the line open.
                    while let Ok(Some(_)) = lines.next_line().await {}
                });
            }
        });
        (port, accepted)
    }

    #[tokio::test]
    async fn a_silent_server_times_out_each_attempt_and_its_connection_is_not_reused() {
        let (port, accepted) = goes_silent_after_ehlo().await;
        let settings =
            crate::mail::settings::parse_smtp_url(&format!("smtp://127.0.0.1:{port}?tls=none"))
                .unwrap();
        let smtp = build(&settings, Duration::from_secs(1), 2).unwrap();
        let first = smtp.current();
        let from: Address = "audit@contoso.com".parse().unwrap();
        let to: Address = "owner@contoso.com".parse().unwrap();
        let retry = Retry {
            retries: 2,
            base: Duration::from_millis(200),
            secret: None,
        };
        let started = std::time::Instant::now();
        let bytes = b"Subject: x\r\n\r\nx\r\n";
        let sent = tokio::time::timeout(
            Duration::from_secs(60),
            send(&smtp, (&from, &to), bytes, &retry, "t.eml"),
        )
        .await
        .expect("sending hung");
        let took = started.elapsed();
        let e = sent.unwrap_err();
        assert!(e.contains("timed out"), "{e}");
        // Three attempts of 1 s and two waits: bounded, not forever.
        assert!(took < Duration::from_secs(20), "{took:?}");
        // Every attempt got a new connection: the abandoned one, with a reply still
        // due, went nowhere near the next message.
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
        assert!(!Arc::ptr_eq(&first, &smtp.current()), "a new pool");
    }

    #[test]
    fn an_attempt_may_take_the_timeout_plus_a_slow_upload() {
        let t = Duration::from_secs(30);
        assert_eq!(attempt_limit(t, 100_000), t);
        assert_eq!(
            attempt_limit(t, 20 * 1024 * 1024),
            t + Duration::from_secs(80)
        );
        assert_eq!(attempt_limit(Duration::MAX, usize::MAX), Duration::MAX);
    }

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
