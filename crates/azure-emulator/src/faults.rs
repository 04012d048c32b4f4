//! `--faults SPEC`: comma-separated fault injections.
//!
//! `429-burst=N`, `5xx=PERCENT`, `drop=PERCENT`, `slow=MS`, `slow-requests=N`,
//! `forbidden-subscription=GUID` (repeatable), `token-expiry=SECONDS`,
//! `token-revoke=SECONDS`, `malformed-rows=N`, `graph-forbidden`, `graph-batch-429=N`, `token-echo`, `seed=S`,
//! and for Microsoft Graph `sendMail`: `mail-429=N`, `mail-5xx=N`, `mail-drop=N`,
//! `mail-forbidden`; for the Logs Ingestion API: `logs-429=N`, `logs-5xx=N`, `logs-drop=N`.
use std::time::Duration;

/// Parsed fault injections. `Default` = no faults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// The next N Resource Graph queries answer 429 with `Retry-After: 1`.
    pub burst_429: u32,
    /// Percentage of ARM / Resource Graph / Graph replies that are a random 500 or 503.
    pub error_5xx_percent: u8,
    /// Percentage of ARM / Resource Graph / Graph replies whose connection is cut mid-body.
    pub drop_percent: u8,
    /// Delay added to every ARM / Resource Graph / Graph reply.
    pub slow: Option<Duration>,
    /// Only the first N ARM / Resource Graph / Graph replies are slow (0 = all).
    pub slow_requests: u32,
    /// Subscriptions (lower-case GUIDs) that answer 403 `AuthorizationFailed`.
    pub forbidden_subscriptions: Vec<String>,
    /// Tokens are issued with this lifetime (stated honestly in the reply) and rejected
    /// with 401 `ExpiredAuthenticationToken` after it.
    pub token_expiry: Option<Duration>,
    /// Tokens claim 3600 s but are rejected after this long (a mid-run revocation).
    pub token_revoke: Option<Duration>,
    /// This many cluster rows in `resources` are served with wrongly typed fields.
    pub malformed_rows: u32,
    /// A query that summarizes returns at most N rows a page (0 = the request's
    /// `$top`): a summary has no `id` column, so a longer one is truncated without a
    /// `$skipToken`, as Resource Graph does with a result it cannot page.
    pub summary_page: u64,
    /// Microsoft Graph answers 403 `Authorization_RequestDenied`.
    pub graph_forbidden: bool,
    /// The first N requests inside Graph JSON batches answer 429 with `Retry-After: 1`.
    pub graph_batch_429: u32,
    /// The token endpoint refuses every request with an error that echoes the request
    /// body, client secret included (as some servers and proxies do).
    pub token_echo: bool,
    /// Seed of the fault RNG (reproducible 5xx/drop sequences).
    pub seed: u64,
    /// The next N `sendMail` calls answer 429 `ApplicationThrottled` with `Retry-After: 1`.
    pub mail_429: u32,
    /// The next N `sendMail` calls answer 503 (with `Retry-After: 1`) and 504 (without),
    /// alternately.
    pub mail_5xx: u32,
    /// The next N `sendMail` calls are accepted (the message is delivered) and then the
    /// connection is cut before the reply: the client cannot know it went through.
    pub mail_drop: u32,
    /// `sendMail` answers 403 `ErrorAccessDenied`, as Exchange does for a mailbox outside
    /// the application's access policy or RBAC scope.
    pub mail_forbidden: bool,
    /// The next N Logs Ingestion calls answer 429 with `Retry-After: 1`.
    pub logs_429: u32,
    /// The next N Logs Ingestion calls answer 503 (with `Retry-After: 1`) and 500
    /// (without), alternately.
    pub logs_5xx: u32,
    /// The next N Logs Ingestion calls store their rows and then the connection is cut
    /// before the reply: the client cannot know they went through.
    pub logs_drop: u32,
}

impl Faults {
    pub fn is_forbidden(&self, subscription: &str) -> bool {
        self.forbidden_subscriptions
            .iter()
            .any(|s| s.eq_ignore_ascii_case(subscription))
    }
}

fn number<T: std::str::FromStr>(key: &str, value: Option<&str>) -> anyhow::Result<T> {
    let value = value.ok_or_else(|| anyhow::anyhow!("fault {key:?} needs a value: {key}=N"))?;
    value
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("fault {key:?}: {value:?} is not a valid number"))
}

fn percent(key: &str, value: Option<&str>) -> anyhow::Result<u8> {
    let p: u8 = number(key, value)?;
    anyhow::ensure!(p <= 100, "fault {key:?}: percentage {p} is above 100");
    Ok(p)
}

impl std::str::FromStr for Faults {
    type Err = anyhow::Error;

    fn from_str(spec: &str) -> anyhow::Result<Faults> {
        let mut f = Faults::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = match part.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (part, None),
            };
            match key {
                "429-burst" => f.burst_429 = number(key, value)?,
                "5xx" => f.error_5xx_percent = percent(key, value)?,
                "drop" => f.drop_percent = percent(key, value)?,
                "slow" => f.slow = Some(Duration::from_millis(number(key, value)?)),
                "slow-requests" => f.slow_requests = number(key, value)?,
                "forbidden-subscription" => {
                    let v = value.ok_or_else(|| {
                        anyhow::anyhow!("fault \"forbidden-subscription\" needs a subscription id")
                    })?;
                    anyhow::ensure!(
                        uuid::Uuid::parse_str(v).is_ok(),
                        "fault \"forbidden-subscription\": {v:?} is not a subscription GUID"
                    );
                    f.forbidden_subscriptions.push(v.to_ascii_lowercase());
                }
                "token-expiry" | "token-revoke" => {
                    let secs: u64 = number(key, value)?;
                    anyhow::ensure!(secs > 0, "fault {key:?} must be at least 1 second");
                    let d = Some(Duration::from_secs(secs));
                    if key == "token-expiry" {
                        f.token_expiry = d;
                    } else {
                        f.token_revoke = d;
                    }
                }
                "malformed-rows" => f.malformed_rows = number(key, value)?,
                "summary-page" => f.summary_page = number(key, value)?,
                "graph-forbidden" => {
                    anyhow::ensure!(value.is_none(), "fault \"graph-forbidden\" takes no value");
                    f.graph_forbidden = true;
                }
                "graph-batch-429" => f.graph_batch_429 = number(key, value)?,
                "token-echo" => {
                    anyhow::ensure!(value.is_none(), "fault \"token-echo\" takes no value");
                    f.token_echo = true;
                }
                "seed" => f.seed = number(key, value)?,
                "mail-429" => f.mail_429 = number(key, value)?,
                "mail-5xx" => f.mail_5xx = number(key, value)?,
                "mail-drop" => f.mail_drop = number(key, value)?,
                "logs-429" => f.logs_429 = number(key, value)?,
                "logs-5xx" => f.logs_5xx = number(key, value)?,
                "logs-drop" => f.logs_drop = number(key, value)?,
                "mail-forbidden" => {
                    anyhow::ensure!(value.is_none(), "fault \"mail-forbidden\" takes no value");
                    f.mail_forbidden = true;
                }
                other => anyhow::bail!(
                    "unknown fault {other:?}; known: 429-burst=N, 5xx=PERCENT, drop=PERCENT, \
                     slow=MS, slow-requests=N, forbidden-subscription=GUID, token-expiry=SECONDS, \
                     token-revoke=SECONDS, malformed-rows=N, graph-forbidden, graph-batch-429=N, token-echo, seed=S, \
                     mail-429=N, mail-5xx=N, mail-drop=N, mail-forbidden, logs-429=N, logs-5xx=N, \
                     logs-drop=N"
                ),
            }
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_spec_is_no_faults() {
        assert_eq!("".parse::<Faults>().unwrap(), Faults::default());
        assert_eq!(" , ".parse::<Faults>().unwrap(), Faults::default());
    }

    #[test]
    fn parses_every_fault() {
        let f: Faults = "429-burst=3, 5xx=10,drop=5,slow=250,slow-requests=2,\
            forbidden-subscription=AAAAAAAA-0000-0000-0000-000000000001,token-expiry=30,\
            token-revoke=7,malformed-rows=2,summary-page=3,graph-forbidden,token-echo,seed=42,\
            mail-429=2,mail-5xx=3,mail-drop=1,mail-forbidden,logs-429=4,logs-5xx=5,logs-drop=6"
            .parse()
            .unwrap();
        assert_eq!(f.burst_429, 3);
        assert_eq!(f.error_5xx_percent, 10);
        assert_eq!(f.drop_percent, 5);
        assert_eq!(f.slow, Some(Duration::from_millis(250)));
        assert_eq!(f.slow_requests, 2);
        assert_eq!(
            f.forbidden_subscriptions,
            vec!["aaaaaaaa-0000-0000-0000-000000000001"]
        );
        assert!(f.is_forbidden("AAAAAAAA-0000-0000-0000-000000000001"));
        assert_eq!(f.token_expiry, Some(Duration::from_secs(30)));
        assert_eq!(f.token_revoke, Some(Duration::from_secs(7)));
        assert_eq!(f.malformed_rows, 2);
        assert_eq!(f.summary_page, 3);
        assert!(f.graph_forbidden);
        assert!(f.token_echo);
        assert_eq!(f.seed, 42);
        assert_eq!((f.mail_429, f.mail_5xx, f.mail_drop), (2, 3, 1));
        assert!(f.mail_forbidden);
        assert_eq!((f.logs_429, f.logs_5xx, f.logs_drop), (4, 5, 6));
    }

    #[test]
    fn clear_errors() {
        let err = |s: &str| s.parse::<Faults>().unwrap_err().to_string();
        assert!(err("5xx=101").contains("above 100"));
        assert!(err("5xx").contains("needs a value"));
        assert!(err("slow=fast").contains("not a valid number"));
        assert!(err("explode").contains("unknown fault \"explode\""));
        assert!(err("forbidden-subscription=nope").contains("not a subscription GUID"));
        assert!(err("graph-forbidden=1").contains("takes no value"));
        assert!(err("token-expiry=0").contains("at least 1"));
    }
}
