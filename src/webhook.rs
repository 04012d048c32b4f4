//! One digest per run to Microsoft Teams (an Adaptive Card in the message envelope that
//! Teams Workflows and incoming webhooks take) and Slack (Block Kit): headline counts,
//! changes since the last run, the findings to fix first, coverage, and a link to the
//! report when a base URL is configured.
//!
//! Shape: [`digest`] reads the report (pure), [`teams`] and [`slack`] render it to JSON
//! (pure), [`deliver`] posts it, after mail, retrying 429 (after `Retry-After`) and
//! 5xx. With `--state` the digest goes through the delivery queue
//! ([`crate::delivery_queue`]) instead: queued before history is committed, posted
//! after mail, kept until a webhook confirms it; one sent by a later run says it is
//! delayed. A webhook URL carries its credential in its path and query: it is never
//! printed — logs, errors and problems name the host only ([`Hook::host`]), and the
//! secret part is registered with [`crate::redact`] in case a server echoes it.
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use url::Url;

use crate::azure::retry::{classify, Decision, ErrorKind, RetryPolicy};
use crate::rules::{Report, Severity};

/// `--webhook-format`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// An Adaptive Card (1.5) in a `{"type": "message", "attachments": [...]}` envelope
    /// (Teams Workflows "post to a channel when a webhook request is received", and the
    /// older incoming webhooks).
    Teams,
    /// Block Kit `blocks` (Slack incoming webhooks).
    Slack,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Teams => "teams",
            Format::Slack => "slack",
        }
    }

    /// The format a webhook's host implies: Slack's `hooks.slack.com`; Teams incoming
    /// webhooks (`*.webhook.office.com`) and Workflows (`*.logic.azure.com`,
    /// `*.powerplatform.com`). `None`: the host does not say.
    pub fn from_host(host: &str) -> Option<Format> {
        let h = host.to_ascii_lowercase();
        let under = |d: &str| h == d || h.ends_with(&format!(".{d}"));
        if under("hooks.slack.com") {
            Some(Format::Slack)
        } else if under("webhook.office.com")
            || under("logic.azure.com")
            || under("powerplatform.com")
        {
            Some(Format::Teams)
        } else {
            None
        }
    }
}

/// One webhook. `Debug` shows the host only.
#[derive(Clone, PartialEq, Eq)]
pub struct Hook {
    url: Url,
    pub format: Format,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hook({} {})", self.format.as_str(), self.host())
    }
}

impl Hook {
    /// Parses a webhook URL: https (plain http only to loopback); the format is
    /// `format` or the host's. Errors name the host, never the path or query.
    pub fn parse(raw: &str, format: Option<Format>) -> Result<Hook, String> {
        let url = Url::parse(raw.trim())
            .map_err(|e| format!("not a URL ({e}); the value is not shown: it holds a secret"))?;
        let host = url.host_str().unwrap_or("(no host)").to_string();
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            other => return Err(format!("the webhook to {host} must use https, not {other}")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "the webhook to {host} has a user or password in it; put none there"
            ));
        }
        let format = match format.or_else(|| Format::from_host(&host)) {
            Some(f) => f,
            None => {
                return Err(format!(
                    "cannot tell from its host ({host}) whether the webhook is Teams or Slack: give --webhook-format"
                ))
            }
        };
        // Its path and query are the credential: masked wherever text is logged.
        let secret = &url[url::Position::BeforePath..];
        crate::redact::register(secret);
        Ok(Hook { url, format })
    }

    /// A stable key of the URL (64-bit FNV-1a, hex): names the webhook's queued digests
    /// without writing the URL, which is a credential.
    pub fn key(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.url.as_str().bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{h:016x}")
    }

    /// `https://host` — all a log or an error may show.
    pub fn host(&self) -> String {
        format!(
            "{}://{}",
            self.url.scheme(),
            self.url.host_str().unwrap_or("(no host)")
        )
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Resolved webhook settings of a run.
#[derive(Debug, Clone, Default)]
pub struct WebhookSettings {
    pub hooks: Vec<Hook>,
    /// Where this tool's output folders are served (`https://reports.contoso.com/aks/`):
    /// the digest links to `<base>/<run folder>/report.html`.
    pub report_url: Option<Url>,
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub retries: u32,
    /// First backoff (doubling, capped at 30 s) when the server gives no `Retry-After`.
    pub backoff: Duration,
    /// Extra trusted root certificate (PEM): the run's `--ca-cert` (a TLS-inspecting
    /// proxy's CA, a test CA).
    pub ca_cert: Option<std::path::PathBuf>,
}

/// Findings listed in a digest.
pub const TOP_FINDINGS: usize = 5;

/// One finding in a digest.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Top {
    pub severity: Severity,
    pub rule: String,
    pub cluster: String,
    pub message: String,
}

/// What a digest says, whatever its format. It is what the delivery queue keeps
/// (rendered for the webhook's format when it is sent).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Digest {
    pub title: String,
    pub generated_at: String,
    pub clusters: usize,
    /// (severity, count) for critical, high, medium, low.
    pub counts: Vec<(Severity, usize)>,
    pub suppressed: usize,
    /// `None` on the first run (no previous run to compare with).
    pub changes: Option<(usize, usize)>,
    /// Coverage in words: "complete", or what was not read or not evaluated.
    pub coverage: String,
    pub complete: bool,
    pub top: Vec<Top>,
    /// Unsuppressed findings not listed.
    pub more: usize,
    pub link: Option<String>,
    /// Sent by a later run than its own (its webhook failed or its run was killed
    /// before sending): the card says so, with its run's time.
    #[serde(default)]
    pub delayed: bool,
}

/// The report's link under `base`: `<base>/<folder name of out_dir>/report.html`.
pub fn report_link(base: &Url, out_dir: &Path) -> Option<String> {
    let folder = out_dir.file_name()?.to_str()?;
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        let p = format!("{}/", base.path());
        base.set_path(&p);
    }
    base.join(&format!("{folder}/report.html"))
        .ok()
        .map(|u| u.to_string())
}

/// The digest of `report`. Pure.
pub fn digest(report: &Report, link: Option<String>) -> Digest {
    let s = &report.summary;
    let counts: Vec<(Severity, usize)> = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ]
    .into_iter()
    .map(|sev| (sev, s.findings.get(sev)))
    .collect();
    let mut open: Vec<&crate::rules::Finding> = report
        .findings
        .iter()
        .filter(|f| f.suppressed.is_none() && f.severity >= Severity::Low)
        .collect();
    open.sort_by(|a, b| {
        (b.severity, &a.cluster_name, a.rule_id).cmp(&(a.severity, &b.cluster_name, b.rule_id))
    });
    let top: Vec<Top> = open
        .iter()
        .take(TOP_FINDINGS)
        .map(|f| Top {
            severity: f.severity,
            rule: f.rule_id.to_string(),
            cluster: f.cluster_name.clone(),
            message: f.message.clone(),
        })
        .collect();
    let not_evaluated: usize = s.not_evaluated.values().copied().max().unwrap_or(0);
    let mut gaps = Vec::new();
    if s.gaps > 0 {
        gaps.push(format!("{} scope(s) not read", s.gaps));
    }
    if s.skipped_rows > 0 {
        gaps.push(format!("{} row(s) skipped", s.skipped_rows));
    }
    if not_evaluated > 0 {
        gaps.push(format!(
            "checks not evaluated on {not_evaluated} cluster(s)"
        ));
    }
    if !report.output_errors.is_empty() {
        gaps.push(format!(
            "{} report file(s) not written",
            report.output_errors.len()
        ));
    }
    let complete = gaps.is_empty();
    let open_total: usize = counts.iter().map(|(_, n)| n).sum();
    let title = crate::mail::compose::subject(report);
    Digest {
        title,
        generated_at: report.generated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        clusters: s.clusters,
        counts,
        suppressed: s.suppressed,
        changes: report
            .changes
            .has_previous
            .then_some((report.changes.new.len(), report.changes.resolved.len())),
        coverage: if complete {
            "complete".into()
        } else {
            format!("INCOMPLETE: {}", gaps.join(", "))
        },
        complete,
        more: open_total.saturating_sub(top.len()),
        top,
        link,
        delayed: false,
    }
}

fn changes_text(d: &Digest) -> String {
    match d.changes {
        None => "first run (nothing to compare with)".into(),
        Some((new, resolved)) => format!("{new} new, {resolved} resolved"),
    }
}

/// Text a card renders as markdown: `[`…`](…)` would make a link, so brackets become
/// parentheses; `*` and `_` are left (at worst emphasis).
fn plain_md(s: &str) -> String {
    s.replace('[', "(").replace(']', ")")
}

/// Slack's `mrkdwn` control characters, escaped as Slack documents.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// What a delayed digest says first.
fn delayed_note(d: &Digest) -> String {
    format!(
        "Delayed: the digest of the run at {}, which could not be delivered then; its counts are that run's.",
        d.generated_at
    )
}

/// The title, marked when the digest is delayed.
fn title(d: &Digest) -> String {
    if d.delayed {
        format!("(delayed) {}", d.title)
    } else {
        d.title.clone()
    }
}

fn upper(s: Severity) -> String {
    s.to_string().to_ascii_uppercase()
}

/// The Teams message: an Adaptive Card 1.5 in the webhook envelope.
pub fn teams(d: &Digest) -> Value {
    let mut facts = vec![json!({"title": "Clusters", "value": d.clusters.to_string()})];
    for (sev, n) in &d.counts {
        facts.push(json!({"title": upper(*sev), "value": n.to_string()}));
    }
    facts.push(json!({"title": "Suppressed", "value": d.suppressed.to_string()}));
    facts.push(json!({"title": "Since last run", "value": changes_text(d)}));
    facts.push(json!({"title": "Coverage", "value": plain_md(&d.coverage)}));
    let mut body = vec![
        json!({"type": "TextBlock", "text": plain_md(&title(d)), "weight": "Bolder", "size": "Medium", "wrap": true}),
        json!({"type": "TextBlock", "text": format!("Audited {}", d.generated_at), "isSubtle": true, "spacing": "None", "wrap": true}),
    ];
    if d.delayed {
        body.push(json!({"type": "TextBlock", "text": delayed_note(d), "color": "Attention", "wrap": true}));
    }
    body.push(json!({"type": "FactSet", "facts": facts}));
    if !d.complete {
        body.push(json!({"type": "TextBlock", "text": "Not everything was read or evaluated: what is missing is not clean.", "color": "Warning", "wrap": true}));
    }
    if !d.top.is_empty() {
        body.push(json!({"type": "TextBlock", "text": "Fix first", "weight": "Bolder", "wrap": true, "spacing": "Medium"}));
        for t in &d.top {
            body.push(json!({"type": "TextBlock", "wrap": true, "spacing": "Small",
                "text": plain_md(&format!("{} {} {}: {}", upper(t.severity), t.rule, t.cluster, truncate(&t.message, 300)))}));
        }
        if d.more > 0 {
            body.push(json!({"type": "TextBlock", "text": format!("and {} more in the report", d.more), "isSubtle": true, "wrap": true}));
        }
    }
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": body,
    });
    if let Some(link) = &d.link {
        card["actions"] =
            json!([{"type": "Action.OpenUrl", "title": "Open the report", "url": link}]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

/// The Slack message: Block Kit `blocks`, with `text` as the notification fallback.
pub fn slack(d: &Digest) -> Value {
    let mut fields = vec![json!({"type": "mrkdwn", "text": format!("*Clusters*\n{}", d.clusters)})];
    for (sev, n) in &d.counts {
        fields.push(json!({"type": "mrkdwn", "text": format!("*{}*\n{n}", upper(*sev))}));
    }
    fields.push(json!({"type": "mrkdwn", "text": format!("*Suppressed*\n{}", d.suppressed)}));
    fields
        .push(json!({"type": "mrkdwn", "text": format!("*Since last run*\n{}", changes_text(d))}));
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&title(d), 150)}}),
    ];
    if d.delayed {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*{}*", delayed_note(d))}}));
    }
    blocks.push(json!({"type": "section", "fields": fields}));
    blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*Coverage:* {}", slack_escape(&d.coverage))}}));
    if !d.top.is_empty() {
        let mut lines: Vec<String> = d
            .top
            .iter()
            .map(|t| {
                format!(
                    "• *{}* {} `{}`: {}",
                    upper(t.severity),
                    t.rule,
                    slack_escape(&t.cluster),
                    slack_escape(&truncate(&t.message, 300))
                )
            })
            .collect();
        if d.more > 0 {
            lines.push(format!("and {} more in the report", d.more));
        }
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": truncate(&format!("*Fix first*\n{}", lines.join("\n")), 3000)}}));
    }
    if let Some(link) = &d.link {
        blocks.push(json!({"type": "actions", "elements": [{"type": "button",
            "text": {"type": "plain_text", "text": "Open the report"}, "url": link}]}));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn",
        "text": format!("aks-identity-audit · audited {}", d.generated_at)}]}));
    let headline: Vec<String> = d.counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    json!({
        "text": format!("{}: {} ({})", truncate(&title(d), 150), headline.join(", "), d.coverage),
        "blocks": blocks,
    })
}

/// What [`deliver`] (or the delivery queue) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    pub sent: usize,
    pub failed: usize,
    /// Of those sent, digests of earlier runs (delayed).
    pub delayed: usize,
}

/// Posts the digest of `report` to every webhook, one after another. Never fails:
/// each failure is logged (host only) and counted.
pub async fn deliver(report: &Report, out_dir: &Path, s: &WebhookSettings) -> Outcome {
    let mut o = Outcome::default();
    if s.hooks.is_empty() {
        return o;
    }
    let link = s.report_url.as_ref().and_then(|b| report_link(b, out_dir));
    let d = digest(report, link);
    let http = match client(s) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %crate::exit::render_error(&e), "webhooks: could not set up the HTTP client; no digest sent");
            o.failed = s.hooks.len();
            return o;
        }
    };
    let policy = RetryPolicy {
        max_attempts: s.retries.saturating_add(1),
        base: s.backoff,
        ..Default::default()
    };
    for hook in &s.hooks {
        let body = match hook.format {
            Format::Teams => teams(&d),
            Format::Slack => slack(&d),
        };
        match post(&http, hook, &body, &policy).await {
            Ok(attempts) => {
                o.sent += 1;
                tracing::info!(webhook = %hook.host(), format = hook.format.as_str(), attempts, "webhook: digest posted");
            }
            Err((_, why)) => {
                o.failed += 1;
                tracing::error!(webhook = %hook.host(), format = hook.format.as_str(), error = %crate::redact::redact(&why), "webhook: digest not delivered");
            }
        }
    }
    o
}

pub(crate) fn client(s: &WebhookSettings) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .timeout(s.timeout)
        .connect_timeout(Duration::from_secs(10).min(s.timeout))
        // A webhook answers where it is; no redirect takes the digest elsewhere.
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = &s.ca_cert {
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("reading --ca-cert {}: {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| anyhow::anyhow!("--ca-cert {}: {e}", path.display()))?;
        b = b.tls_certs_merge(certs);
    }
    Ok(b.build()?)
}

/// One webhook post with retries; `Ok(attempts)`, or the last status and why.
pub(crate) async fn post(
    http: &reqwest::Client,
    hook: &Hook,
    body: &Value,
    policy: &RetryPolicy,
) -> Result<u32, (Option<u16>, String)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (kind, headers, reason) = match http.post(hook.url.clone()).json(body).send().await {
            Ok(r) if r.status().is_success() => return Ok(attempt),
            Ok(r) => {
                let status = r.status().as_u16();
                let headers = r.headers().clone();
                let text = r.text().await.unwrap_or_default();
                (
                    ErrorKind::Status(status),
                    headers,
                    format!("HTTP {status} {}", truncate(text.trim(), 200)),
                )
            }
            Err(e) => {
                let kind = if e.is_timeout() {
                    ErrorKind::Timeout
                } else if e.is_connect() || e.is_request() || e.is_body() {
                    ErrorKind::Connect
                } else {
                    ErrorKind::Other
                };
                // reqwest names the URL in its errors: never that.
                (kind, Default::default(), error_chain(&e.without_url()))
            }
        };
        match policy.decide(attempt, classify(kind, &headers), rand::random::<f64>()) {
            Decision::Retry { after } => {
                tracing::warn!(webhook = %hook.host(), attempt, retry_in_ms = after.as_millis() as u64, error = %crate::redact::redact(&reason), "webhook: post failed, will retry");
                tokio::time::sleep(after).await;
            }
            Decision::GiveUp(why) => {
                let status = match kind {
                    ErrorKind::Status(s) => Some(s),
                    _ => None,
                };
                return Err((status, format!("{reason} ({why})")));
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

    fn d() -> Digest {
        Digest {
            title: "AKS identity audit: 2 clusters need action (1 high)".into(),
            generated_at: "2026-12-04 06:00 UTC".into(),
            clusters: 12,
            counts: vec![
                (Severity::Critical, 0),
                (Severity::High, 1),
                (Severity::Medium, 2),
                (Severity::Low, 0),
            ],
            suppressed: 1,
            changes: Some((2, 1)),
            coverage: "complete".into(),
            complete: true,
            top: vec![Top {
                severity: Severity::High,
                rule: "AKSMI001".into(),
                cluster: "aks-prod-<1>".into(),
                message: "Control plane uses a [service principal](http://evil)".into(),
            }],
            more: 2,
            delayed: false,
            link: Some("https://reports.contoso.com/aks/2026-12-04T060000Z/report.html".into()),
        }
    }

    #[test]
    fn formats_follow_the_host_or_the_flag() {
        assert_eq!(Format::from_host("hooks.slack.com"), Some(Format::Slack));
        assert_eq!(
            Format::from_host("contoso.webhook.office.com"),
            Some(Format::Teams)
        );
        assert_eq!(
            Format::from_host("prod-12.westeurope.logic.azure.com"),
            Some(Format::Teams)
        );
        assert_eq!(Format::from_host("evilhooks.slack.com.example"), None);
        let h = Hook::parse(
            "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX",
            None,
        )
        .unwrap();
        assert_eq!(h.format, Format::Slack);
        assert_eq!(h.host(), "https://hooks.slack.com");
        assert!(!format!("{h:?}").contains("SECRET"));
        let e = Hook::parse("https://example.com/hook/abcdefSECRET", None).unwrap_err();
        assert!(
            e.contains("--webhook-format") && !e.contains("SECRET"),
            "{e}"
        );
        assert!(Hook::parse("https://example.com/hook/x", Some(Format::Teams)).is_ok());
        let e = Hook::parse("http://example.com/hook/SECRETpath", Some(Format::Teams)).unwrap_err();
        assert!(e.contains("https") && !e.contains("SECRET"), "{e}");
        assert!(Hook::parse("http://127.0.0.1:9/x", Some(Format::Slack)).is_ok());
        let e = Hook::parse("not a url SECRET", None).unwrap_err();
        assert!(!e.contains("SECRET"), "{e}");
        // The secret part is masked in anything logged.
        assert_eq!(
            crate::redact::redact(
                "POST https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX failed"
            ),
            "POST https://hooks.slack.com*** failed"
        );
    }

    #[test]
    fn teams_card_is_an_adaptive_card_in_the_envelope() {
        let v = teams(&d());
        assert_eq!(v["type"], "message");
        let a = &v["attachments"][0];
        assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
        let card = &a["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.5");
        let text = card.to_string();
        assert!(text.contains("HIGH AKSMI001 aks-prod-<1>"), "{text}");
        // No link smuggled in through a message.
        assert!(!text.contains("[service principal]"), "{text}");
        assert!(text.contains("2 new, 1 resolved"));
        assert_eq!(card["actions"][0]["type"], "Action.OpenUrl");
        assert!(text.contains("and 2 more"));
    }

    #[test]
    fn slack_blocks_escape_and_stay_in_limits() {
        let mut long = d();
        long.title = "x".repeat(400);
        let v = slack(&long);
        let blocks = v["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= 150);
        let text = v.to_string();
        assert!(text.contains("aks-prod-&lt;1&gt;"), "{text}");
        assert!(blocks.iter().any(|b| b["type"] == "actions"));
        assert!(v["text"].as_str().unwrap().contains("1 high"));
    }

    #[test]
    fn incomplete_coverage_is_never_reported_clean() {
        let mut x = d();
        x.complete = false;
        x.coverage = "INCOMPLETE: 2 scope(s) not read".into();
        let t = teams(&x).to_string();
        assert!(
            t.contains("INCOMPLETE") && t.contains("is not clean"),
            "{t}"
        );
        assert!(slack(&x).to_string().contains("INCOMPLETE"));
    }

    #[test]
    fn a_delayed_digest_says_so_with_its_runs_time_and_round_trips_through_the_queue() {
        let mut x = d();
        let back: Digest = serde_json::from_slice(&serde_json::to_vec(&x).unwrap()).unwrap();
        assert_eq!(back, x);
        assert!(!teams(&x).to_string().contains("delayed"));
        x.delayed = true;
        let t = teams(&x);
        let body = &t["attachments"][0]["content"]["body"];
        assert!(body[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("(delayed) AKS identity audit"));
        assert!(t
            .to_string()
            .contains("Delayed: the digest of the run at 2026-12-04 06:00 UTC"));
        let s = slack(&x);
        assert!(s["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with("(delayed) "));
        assert!(s["text"].as_str().unwrap().starts_with("(delayed) "));
        assert!(s
            .to_string()
            .contains("Delayed: the digest of the run at 2026-12-04 06:00 UTC"));
    }

    #[test]
    fn the_report_link_is_under_the_base() {
        let base = Url::parse("https://reports.contoso.com/aks").unwrap();
        assert_eq!(
            report_link(&base, Path::new("reports/2026-12-04T060000Z")).as_deref(),
            Some("https://reports.contoso.com/aks/2026-12-04T060000Z/report.html")
        );
    }
}
