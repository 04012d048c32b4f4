//! "Should I retry?" as pure functions, apart from the loop that retries
//! ([`super::arg::ArmClient::send`]): [`classify`] judges one outcome, and
//! [`RetryPolicy::decide`] turns the verdict into a delay or a final answer.
use std::time::Duration;

use reqwest::header::HeaderMap;

/// What went wrong with one attempt, before any status was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The server answered with this status (not 2xx).
    Status(u16),
    /// Connecting failed or the connection was reset.
    Connect,
    /// The per-request timeout elapsed.
    Timeout,
    /// The reply body was cut off or unreadable.
    Body,
    /// Anything else the transport reported (TLS, bad URL...): not transient.
    Other,
}

/// The verdict on one failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The server said when to come back (429 / 503 with `Retry-After`).
    RetryAfter(Duration),
    /// Transient: retry with backoff.
    Transient,
    /// Retrying cannot help.
    Fatal(String),
}

/// What the loop does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Retry { after: Duration },
    GiveUp(String),
}

/// Seconds in `Retry-After` (the HTTP-date form is not used by ARM).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get("retry-after")?.to_str().ok()?.trim();
    v.parse::<u64>().ok().map(Duration::from_secs)
}

/// Judges one failed attempt. Pure.
pub fn classify(kind: ErrorKind, headers: &HeaderMap) -> Verdict {
    match kind {
        ErrorKind::Status(429) => match retry_after(headers) {
            Some(d) => Verdict::RetryAfter(d),
            None => Verdict::Transient,
        },
        ErrorKind::Status(s @ (500 | 502 | 503 | 504)) => match retry_after(headers) {
            Some(d) if s == 503 => Verdict::RetryAfter(d),
            _ => Verdict::Transient,
        },
        // 408 Request Timeout is transient too.
        ErrorKind::Status(408) => Verdict::Transient,
        ErrorKind::Status(s) => Verdict::Fatal(format!("HTTP {s}")),
        ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Body => Verdict::Transient,
        ErrorKind::Other => Verdict::Fatal("transport error".into()),
    }
}

/// Bounded attempts, capped jittered exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// After attempt number `attempt` (1-based) failed with `verdict`. `jitter` in
    /// `[0, 1)` picks a point in the upper half of the backoff window ("equal jitter").
    pub fn decide(&self, attempt: u32, verdict: Verdict, jitter: f64) -> Decision {
        if let Verdict::Fatal(reason) = verdict {
            return Decision::GiveUp(reason);
        }
        if attempt >= self.max_attempts {
            return Decision::GiveUp(format!("gave up after {attempt} attempts"));
        }
        let after = match verdict {
            // Honoured as given, but never beyond the cap (a hostile header must not stall us).
            Verdict::RetryAfter(d) => d.min(self.cap),
            _ => self.backoff(attempt, jitter),
        };
        Decision::Retry { after }
    }

    fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << (attempt.saturating_sub(1)).min(16))
            .min(self.cap);
        let jitter = jitter.clamp(0.0, 1.0);
        exp.mul_f64(0.5 + 0.5 * jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn classification() {
        let none = HeaderMap::new();
        assert_eq!(
            classify(ErrorKind::Status(429), &headers(&[("retry-after", "7")])),
            Verdict::RetryAfter(Duration::from_secs(7))
        );
        assert_eq!(classify(ErrorKind::Status(429), &none), Verdict::Transient);
        for s in [500, 502, 503, 504] {
            assert_eq!(
                classify(ErrorKind::Status(s), &none),
                Verdict::Transient,
                "{s}"
            );
        }
        assert_eq!(
            classify(ErrorKind::Status(503), &headers(&[("retry-after", "2")])),
            Verdict::RetryAfter(Duration::from_secs(2))
        );
        assert!(matches!(
            classify(ErrorKind::Status(400), &none),
            Verdict::Fatal(_)
        ));
        assert!(matches!(
            classify(ErrorKind::Status(403), &none),
            Verdict::Fatal(_)
        ));
        assert!(matches!(
            classify(ErrorKind::Status(404), &none),
            Verdict::Fatal(_)
        ));
        assert_eq!(classify(ErrorKind::Connect, &none), Verdict::Transient);
        assert_eq!(classify(ErrorKind::Timeout, &none), Verdict::Transient);
        assert_eq!(classify(ErrorKind::Body, &none), Verdict::Transient);
        assert!(matches!(
            classify(ErrorKind::Other, &none),
            Verdict::Fatal(_)
        ));
        // A date-form Retry-After is ignored, not misread.
        assert_eq!(
            classify(
                ErrorKind::Status(429),
                &headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")])
            ),
            Verdict::Transient
        );
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let p = RetryPolicy {
            max_attempts: 20,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
        };
        let d = |attempt, j| match p.decide(attempt, Verdict::Transient, j) {
            Decision::Retry { after } => after,
            other => panic!("{other:?}"),
        };
        assert_eq!(d(1, 0.0), Duration::from_millis(50));
        assert_eq!(d(1, 1.0), Duration::from_millis(100));
        assert_eq!(d(2, 1.0), Duration::from_millis(200));
        assert_eq!(d(3, 0.5), Duration::from_millis(300));
        assert_eq!(d(10, 1.0), Duration::from_secs(2));
        assert_eq!(d(19, 0.0), Duration::from_secs(1));
    }

    #[test]
    fn attempts_are_bounded_and_fatal_gives_up_at_once() {
        let p = RetryPolicy::default();
        assert!(matches!(
            p.decide(5, Verdict::Transient, 0.0),
            Decision::Retry { .. }
        ));
        assert_eq!(
            p.decide(6, Verdict::Transient, 0.0),
            Decision::GiveUp("gave up after 6 attempts".into())
        );
        assert_eq!(
            p.decide(1, Verdict::Fatal("HTTP 400".into()), 0.0),
            Decision::GiveUp("HTTP 400".into())
        );
        assert_eq!(
            p.decide(1, Verdict::RetryAfter(Duration::from_secs(3)), 0.9),
            Decision::Retry {
                after: Duration::from_secs(3)
            }
        );
        assert_eq!(
            p.decide(1, Verdict::RetryAfter(Duration::from_secs(3600)), 0.9),
            Decision::Retry {
                after: Duration::from_secs(30)
            }
        );
    }
}
