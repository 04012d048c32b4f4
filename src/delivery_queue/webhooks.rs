//! Webhook digests through the queue: one item per run and webhook,
//! `webhook-<key of the URL>`, holding the digest (rendered for the webhook's format when
//! it is sent) and the format it was queued for.
use std::path::Path;

use crate::azure::retry::RetryPolicy;
use crate::rules::Report;
use crate::webhook::{
    client, digest, post, report_link, slack, teams, Digest, Format, Hook, Outcome, WebhookSettings,
};

use super::{Item, Queue, WEBHOOK};

/// The name of a webhook's items.
fn item(hook: &Hook) -> String {
    format!("{WEBHOOK}{}", hook.key())
}

/// One queued digest: the digest and the format of the webhook it was queued for.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Queued {
    format: Format,
    digest: Digest,
}

/// Queues the digest of `report` for every webhook (see [`crate::delivery_queue`]):
/// item `webhook-<key of the URL>`; one already queued or confirmed for `run_id` (a
/// retry of the run id) is not queued again.
pub(super) fn enqueue(
    q: &mut Queue,
    run_id: &str,
    run_at: chrono::DateTime<chrono::Utc>,
    report: &Report,
    out_dir: &Path,
    s: &WebhookSettings,
) -> anyhow::Result<()> {
    if s.hooks.is_empty() {
        return Ok(());
    }
    let link = s.report_url.as_ref().and_then(|b| report_link(b, out_dir));
    let d = digest(report, link);
    for hook in &s.hooks {
        let item = item(hook);
        if q.known(run_id, &item) {
            continue;
        }
        let bytes = serde_json::to_vec(&Queued {
            format: hook.format,
            digest: d.clone(),
        })?;
        q.put(run_id, run_at, &item, &bytes)?;
    }
    Ok(())
}

/// Sends every queued digest, earlier runs' first (marked delayed), each confirmed in
/// the ledger before its file is removed. A webhook that fails is not tried again in
/// this run: its later digests stay queued too (and count as failed). A digest the
/// webhook refuses for its content (400) is dropped, since posting it again cannot
/// help. A digest queued for a webhook no longer configured goes to its replacement:
/// the one configured webhook of the same format that has nothing of that run;
/// otherwise it is dropped with a warning. Never fails.
pub(super) async fn send_queued(
    q: &mut Queue,
    current: &str,
    s: &WebhookSettings,
    confirmed: &dyn Fn(),
) -> Outcome {
    let mut o = Outcome::default();
    let items = q.pending(WEBHOOK);
    if items.is_empty() {
        return o;
    }
    let http = match client(s) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %crate::exit::render_error(&e), "webhooks: could not set up the HTTP client; the digests stay queued");
            o.failed = items.len();
            return o;
        }
    };
    let policy = RetryPolicy {
        max_attempts: s.retries.saturating_add(1),
        base: s.backoff,
        ..Default::default()
    };
    let mut down: Vec<String> = Vec::new();
    for it in items {
        let queued: Queued = match std::fs::read(&it.path)
            .map_err(anyhow::Error::from)
            .and_then(|b| Ok(serde_json::from_slice(&b)?))
        {
            Ok(x) => x,
            Err(e) => {
                o.failed += 1;
                tracing::error!(run_id = %it.run_id, file = %it.path.display(), error = %e, "webhook: a queued digest cannot be read; dropped");
                let _ = q.drop_item(&it, "unreadable");
                continue;
            }
        };
        let Some(hook) = route(q, &it, queued.format, s) else {
            tracing::warn!(run_id = %it.run_id, format = queued.format.as_str(), "webhook: a queued digest's webhook is no longer configured (and no single replacement is); dropped");
            let _ = q.drop_item(&it, "its webhook is no longer configured");
            continue;
        };
        let key = item(hook);
        if down.contains(&key) {
            o.failed += 1;
            continue;
        }
        let mut d = queued.digest;
        d.delayed = it.run_id != current;
        let body = match hook.format {
            Format::Teams => teams(&d),
            Format::Slack => slack(&d),
        };
        match post(&http, hook, &body, &policy).await {
            Ok(attempts) => {
                o.sent += 1;
                o.delayed += usize::from(d.delayed);
                // A replacement is recorded too: no other digest of that run goes to it.
                let recorded = q.confirm(&it).and_then(|()| {
                    if key == it.name {
                        Ok(())
                    } else {
                        q.record_confirmed(&it.run_id, &key)
                    }
                });
                if let Err(e) = recorded {
                    tracing::error!(error = %crate::exit::render_error(&e), "delivery ledger: could not record a posted digest (a later run may post it again)");
                }
                tracing::info!(webhook = %hook.host(), format = hook.format.as_str(), run_id = %it.run_id, delayed = d.delayed, attempts, "webhook: digest posted");
                confirmed();
            }
            Err((status, why)) => {
                o.failed += 1;
                let why = crate::redact::redact(&why);
                if status == Some(400) {
                    tracing::error!(webhook = %hook.host(), run_id = %it.run_id, error = %why, "webhook: the digest was refused for its content; dropped (posting it again cannot help)");
                    let _ = q.drop_item(&it, "refused for its content (HTTP 400)");
                    continue;
                }
                let hint = match status {
                    Some(401 | 403 | 404 | 410) => "; the webhook URL may have expired or been revoked: replace it (the digest waits in the queue)",
                    _ => "; it stays queued for the next run",
                };
                tracing::error!(webhook = %hook.host(), format = hook.format.as_str(), run_id = %it.run_id, error = %why, "webhook: digest not delivered{hint}");
                down.push(key);
            }
        }
    }
    o
}

/// The configured webhook a queued digest goes to: the one it was queued for, or its
/// replacement (see [`send_queued`]).
fn route<'a>(q: &Queue, it: &Item, format: Format, s: &'a WebhookSettings) -> Option<&'a Hook> {
    if let Some(h) = s.hooks.iter().find(|h| item(h) == it.name) {
        return Some(h);
    }
    let mut candidates = s
        .hooks
        .iter()
        .filter(|h| h.format == format && !q.known(&it.run_id, &item(h)));
    match (candidates.next(), candidates.next()) {
        (Some(h), None) => Some(h),
        _ => None,
    }
}
