//! Log Analytics batches through the queue: one item per batch, `logs-00001`, …,
//! holding exactly the bytes that are posted.
use crate::log_analytics::{for_each_row, Batcher, LogAnalyticsSettings, Outcome, Sender};
use crate::rules::Report;

use super::{Queue, LOGS};

/// Queues the rows of `report` as batches `logs-00001`, … (see
/// [`crate::delivery_queue`]): the exact bytes that are posted, so a retry, in this run
/// or a later one, sends the same rows with the same `RowId`s. Nothing is queued when
/// `run_id` already has batches (a retry of the run id sends what its first attempt
/// queued). Returns the rows that cannot be sent (each alone over the request limit).
pub(super) fn enqueue(
    q: &mut Queue,
    run_id: &str,
    run_at: chrono::DateTime<chrono::Utc>,
    report: &Report,
    s: Option<&LogAnalyticsSettings>,
) -> anyhow::Result<usize> {
    let Some(s) = s else {
        return Ok(0);
    };
    if q.known_prefix(run_id, LOGS) {
        tracing::info!(run_id, "log analytics: this run id's rows were queued by an earlier attempt; those are sent, not new ones");
        return Ok(0);
    }
    // Row by row, each batch written as soon as it is cut: one batch in memory at a
    // time (this runs while the run's history is still held).
    let mut batcher = Batcher::new(s.max_batch_bytes);
    let mut n = 0;
    let mut failed: Option<anyhow::Error> = None;
    let mut put = |q: &mut Queue, body: &[u8]| {
        if failed.is_none() {
            n += 1;
            let item = format!("{LOGS}{n:05}");
            failed = q.put(run_id, run_at, &item, body).err();
        }
    };
    for_each_row(report, run_id, |row| {
        if let Some((body, _)) = batcher.push(&row) {
            put(q, &body);
        }
    });
    let (last, too_large) = batcher.finish();
    if let Some((body, _)) = last {
        put(q, &body);
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if too_large > 0 {
        tracing::error!(
            rows = too_large,
            "log analytics: rows over the API's 1 MB request limit on their own are not sent"
        );
    }
    Ok(too_large)
}

/// Sends every queued batch, earlier runs' first, each confirmed in the ledger before
/// its file is removed. As [`deliver`]: after a failure that is not about the batch
/// itself the rest are not tried (they stay queued and count as failed); a batch the
/// service refuses for its content (400, 413) is dropped, since sending it again cannot
/// help. `too_large`: rows [`enqueue`] could not queue, counted as failed. Never fails.
pub(super) async fn send_queued(
    q: &mut Queue,
    s: Option<&LogAnalyticsSettings>,
    too_large: usize,
    confirmed: &dyn Fn(),
) -> Outcome {
    let mut o = Outcome {
        rows_failed: too_large,
        ..Default::default()
    };
    let items = q.pending(LOGS);
    if items.is_empty() {
        return o;
    }
    let count = |body: &[u8]| {
        serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(body).map_or(0, |v| v.len())
    };
    let Some(s) = s else {
        tracing::warn!(
            batches = items.len(),
            "log analytics: batches of earlier runs wait in the delivery queue and this run has no --log-analytics"
        );
        return o;
    };
    let sender = match Sender::connect(s).await {
        Ok(x) => Some(x),
        Err(e) => {
            tracing::error!(error = %crate::redact::redact(&crate::exit::render_error(&e)), "log analytics: no token for https://monitor.azure.com or no client; the rows stay queued");
            None
        }
    };
    let total = items.len();
    let mut give_up = sender.is_none();
    for (i, it) in items.iter().enumerate() {
        let body = match std::fs::read(&it.path) {
            Ok(b) => b,
            Err(e) => {
                o.batches_failed += 1;
                o.rows_failed += 1;
                tracing::error!(file = %it.path.display(), error = %e, "log analytics: a queued batch cannot be read; dropped");
                let _ = q.drop_item(it, "unreadable");
                continue;
            }
        };
        let n = count(&body);
        let Some(sender) = sender.as_ref().filter(|_| !give_up) else {
            o.batches_failed += 1;
            o.rows_failed += n;
            continue;
        };
        match sender.send(&body).await {
            Ok(()) => {
                o.batches_sent += 1;
                o.rows_sent += n;
                if let Err(e) = q.confirm(it) {
                    tracing::error!(error = %crate::exit::render_error(&e), "delivery ledger: could not record a sent batch (a later run may send it again; RowId tells the copies apart)");
                }
                confirmed();
            }
            Err((status, why)) => {
                o.batches_failed += 1;
                o.rows_failed += n;
                let why = crate::redact::redact(&why);
                if matches!(status, Some(400 | 413)) {
                    tracing::error!(run_id = %it.run_id, batch = i + 1, batches = total, rows = n, error = %why, "log analytics: batch refused for its content; dropped (sending it again cannot help)");
                    let _ = q.drop_item(it, "refused for its content");
                } else {
                    give_up = true;
                    tracing::error!(run_id = %it.run_id, batch = i + 1, batches = total, rows = n, error = %why, "log analytics: batch not accepted; it and the rest stay queued for the next run");
                }
            }
        }
    }
    let (requests, retries, throttled) = sender.as_ref().map_or((0, 0, 0), Sender::counts);
    tracing::info!(
        rows_sent = o.rows_sent,
        rows_failed = o.rows_failed,
        batches_sent = o.batches_sent,
        batches_failed = o.batches_failed,
        requests,
        retries,
        throttled_429 = throttled,
        stream = %s.stream,
        "log analytics: rows sent"
    );
    o
}
