//! The delivery queue of webhook digests and Log Analytics batches: with `--state DIR`,
//! what a run will post is written to `DIR/delivery-queue/run-<run id>/` (one file per
//! item, atomically) before history is committed, and the ledger
//! `DIR/delivery-ledger.jsonl` records, one fsynced line each, that an item was queued,
//! that its run's history was committed, and that the service confirmed it (then the
//! file is removed) or that it was dropped (and why).
//!
//! Items: `webhook-<hook key>` (the digest of one run for one webhook; the key is a
//! hash of the URL, so no webhook secret is written) and `logs-<nnnn>` (one batch of
//! rows, exactly the bytes that are posted, so a retry sends the same rows with the same
//! `RowId`s).
//!
//! What the next run does with what an earlier one left (see [`Queue::settle`]):
//! - a run whose history was committed (a `committed` line, or `state.json`'s last run
//!   at its time): its items are pending and are sent before this run's, oldest first;
//! - a run killed before its history was committed is superseded, as for mail: the
//!   next run reports the same changes; its items are dropped;
//! - an item confirmed for a run id is never queued again for that id (a Job retried
//!   with the same `--run-id`).
use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod logs;
mod webhooks;

/// The queue folder inside the state folder.
pub const QUEUE_DIR: &str = "delivery-queue";
/// The ledger inside the state folder, one JSON object per line.
pub const LEDGER_FILE: &str = "delivery-ledger.jsonl";
/// Item names of webhook digests start with this.
pub const WEBHOOK: &str = "webhook-";
/// Item names of Log Analytics batches start with this.
pub const LOGS: &str = "logs-";

/// One line of the delivery ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Entry {
    /// The item's file is in the queue.
    Queued {
        run_id: String,
        run_at: DateTime<Utc>,
        item: String,
    },
    /// The run's history was committed: its items must be delivered.
    Committed { run_id: String },
    /// The service confirmed the item (2xx); its file is removed.
    Confirmed { run_id: String, item: String },
    /// The item will not be sent (superseded, refused for its content, its webhook gone).
    Dropped {
        run_id: String,
        item: String,
        reason: String,
    },
}

#[derive(Debug, Default, Clone)]
struct Run {
    run_at: Option<DateTime<Utc>>,
    committed: bool,
    queued: BTreeSet<String>,
    confirmed: BTreeSet<String>,
    dropped: BTreeSet<String>,
}

/// An item waiting to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub run_id: String,
    pub run_at: DateTime<Utc>,
    /// `webhook-…` or `logs-…`.
    pub name: String,
    pub path: PathBuf,
}

/// The queue and its ledger, as read under the state folder's lock.
#[derive(Debug)]
pub struct Queue {
    dir: PathBuf,
    ledger: PathBuf,
    runs: BTreeMap<String, Run>,
}

impl Queue {
    /// Reads `STATE/delivery-ledger.jsonl` (a torn last line is ignored with a warning,
    /// any other bad line is an error naming it).
    pub fn open(state: &Path) -> anyhow::Result<Queue> {
        let ledger = state.join(LEDGER_FILE);
        let mut q = Queue {
            dir: state.join(QUEUE_DIR),
            ledger: ledger.clone(),
            runs: BTreeMap::new(),
        };
        for e in crate::secure_fs::read_jsonl::<Entry>(&ledger, "delivery ledger")? {
            q.apply(e);
        }
        Ok(q)
    }

    fn apply(&mut self, e: Entry) {
        match e {
            Entry::Queued {
                run_id,
                run_at,
                item,
            } => {
                let r = self.runs.entry(run_id).or_default();
                r.run_at = Some(run_at);
                r.dropped.remove(&item);
                r.queued.insert(item);
            }
            Entry::Committed { run_id } => self.runs.entry(run_id).or_default().committed = true,
            Entry::Confirmed { run_id, item } => {
                self.runs.entry(run_id).or_default().confirmed.insert(item);
            }
            Entry::Dropped { run_id, item, .. } => {
                self.runs.entry(run_id).or_default().dropped.insert(item);
            }
        }
    }

    /// Appends one line and fsyncs it; the in-memory view follows.
    fn append(&mut self, e: Entry) -> anyhow::Result<()> {
        let mut line = serde_json::to_string(&e)?;
        line.push('\n');
        let mut opts = OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, crate::secure_fs::FILE_MODE);
        let mut f = opts
            .open(&self.ledger)
            .with_context(|| format!("opening {}", self.ledger.display()))?;
        // One write call: a crash leaves the whole line or a torn last line.
        f.write_all(line.as_bytes())
            .and_then(|_| f.sync_data())
            .with_context(|| format!("appending to {}", self.ledger.display()))?;
        self.apply(e);
        Ok(())
    }

    /// `DIR/delivery-queue/run-<id>` (the prefix keeps `.` and `..` ids inside).
    fn run_dir(&self, run_id: &str) -> PathBuf {
        self.dir.join(format!("run-{run_id}"))
    }

    /// Where an item's file is.
    pub fn path(&self, run_id: &str, item: &str) -> PathBuf {
        self.run_dir(run_id).join(format!("{item}.json"))
    }

    /// Is `item` queued (and not dropped) or confirmed for `run_id`? Then it is not
    /// queued again: a retry of the run id sends what the first attempt queued.
    pub fn known(&self, run_id: &str, item: &str) -> bool {
        self.runs.get(run_id).is_some_and(|r| {
            r.confirmed.contains(item) || (r.queued.contains(item) && !r.dropped.contains(item))
        })
    }

    /// Does `run_id` have any item starting with `prefix` that is queued or confirmed?
    pub fn known_prefix(&self, run_id: &str, prefix: &str) -> bool {
        self.runs.get(run_id).is_some_and(|r| {
            r.confirmed.iter().any(|i| i.starts_with(prefix))
                || r.queued
                    .iter()
                    .any(|i| i.starts_with(prefix) && !r.dropped.contains(i))
        })
    }

    /// Writes `bytes` as `item` of `run_id` (atomically), then records it queued.
    pub fn put(
        &mut self,
        run_id: &str,
        run_at: DateTime<Utc>,
        item: &str,
        bytes: &[u8],
    ) -> anyhow::Result<()> {
        crate::secure_fs::create_private_dir(&self.dir)?;
        crate::secure_fs::write_atomic(&self.path(run_id, item), bytes)?;
        self.append(Entry::Queued {
            run_id: run_id.to_string(),
            run_at,
            item: item.to_string(),
        })
    }

    /// Records that `run_id`'s history was committed.
    pub fn commit(&mut self, run_id: &str) -> anyhow::Result<()> {
        if !self.runs.contains_key(run_id) {
            return Ok(());
        }
        self.append(Entry::Committed {
            run_id: run_id.to_string(),
        })
    }

    /// Records the service's confirmation of `item`, then removes its file.
    pub fn confirm(&mut self, it: &Item) -> anyhow::Result<()> {
        self.append(Entry::Confirmed {
            run_id: it.run_id.clone(),
            item: it.name.clone(),
        })?;
        remove(&it.path);
        Ok(())
    }

    /// Records `item` of `run_id` as confirmed without a file of its own (a webhook that
    /// took the digest queued for the one it replaced).
    pub fn record_confirmed(&mut self, run_id: &str, item: &str) -> anyhow::Result<()> {
        self.append(Entry::Confirmed {
            run_id: run_id.to_string(),
            item: item.to_string(),
        })
    }

    /// Records that `item` will not be sent and why, then removes its file.
    pub fn drop_item(&mut self, it: &Item, reason: &str) -> anyhow::Result<()> {
        self.append(Entry::Dropped {
            run_id: it.run_id.clone(),
            item: it.name.clone(),
            reason: reason.to_string(),
        })?;
        remove(&it.path);
        Ok(())
    }

    /// Before this run queues anything: drops the items of earlier runs killed before
    /// their history was committed (superseded: this run reports their changes), and
    /// of this run id's own uncommitted attempt. `last_run` is `state.json`'s.
    /// Returns how many items were dropped.
    pub fn settle(&mut self, last_run: Option<DateTime<Utc>>) -> usize {
        let mut superseded = Vec::new();
        let mut committed_now = Vec::new();
        for (id, r) in &self.runs {
            if r.committed {
                continue;
            }
            if r.run_at.is_some() && r.run_at == last_run {
                // Killed between its history commit and the ledger's line: written now,
                // since the next commit moves state.json's last run on.
                committed_now.push(id.clone());
                continue;
            }
            for item in r.queued.difference(&r.confirmed) {
                if !r.dropped.contains(item) {
                    superseded.push(Item {
                        run_id: id.clone(),
                        run_at: r.run_at.unwrap_or_default(),
                        name: item.clone(),
                        path: self.path(id, item),
                    });
                }
            }
        }
        for id in committed_now {
            if let Err(e) = self.commit(&id) {
                tracing::error!(error = %crate::exit::render_error(&e), "delivery ledger: could not record an earlier run's commit");
            }
        }
        let n = superseded.len();
        for it in superseded {
            tracing::warn!(run_id = %it.run_id, item = %it.name, "delivery queue: an earlier run was interrupted before its history was committed; this run reports its changes instead");
            if let Err(e) = self.drop_item(
                &it,
                "superseded: its run was interrupted before its history was committed",
            ) {
                tracing::error!(error = %crate::exit::render_error(&e), "delivery ledger: could not record a superseded item");
            }
        }
        n
    }

    /// Items starting with `prefix` waiting to be sent: by run time, then name. Items
    /// whose file is gone are dropped (with a warning): nothing else could send them.
    pub fn pending(&mut self, prefix: &str) -> Vec<Item> {
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (id, r) in &self.runs {
            for name in &r.queued {
                if !name.starts_with(prefix)
                    || r.confirmed.contains(name)
                    || r.dropped.contains(name)
                {
                    continue;
                }
                let it = Item {
                    run_id: id.clone(),
                    run_at: r.run_at.unwrap_or_default(),
                    name: name.clone(),
                    path: self.path(id, name),
                };
                if it.path.is_file() {
                    out.push(it);
                } else {
                    gone.push(it);
                }
            }
        }
        for it in gone {
            tracing::error!(run_id = %it.run_id, item = %it.name, file = %it.path.display(), "delivery queue: a queued item's file is missing; it cannot be sent");
            let _ = self.drop_item(&it, "its file is missing");
        }
        out.sort_by(|a, b| (a.run_at, &a.run_id, &a.name).cmp(&(b.run_at, &b.run_id, &b.name)));
        out
    }

    /// Rewrites the ledger without runs older than `keep` that have nothing left to
    /// send, and removes their empty folders (atomically; under the state lock).
    pub fn compact(&mut self, now: DateTime<Utc>, keep: chrono::Duration) -> anyhow::Result<()> {
        let old: Vec<String> = self
            .runs
            .iter()
            .filter(|(_, r)| {
                r.run_at.is_some_and(|t| now - t > keep)
                    && r.queued
                        .iter()
                        .all(|i| r.confirmed.contains(i) || r.dropped.contains(i))
            })
            .map(|(id, _)| id.clone())
            .collect();
        if old.is_empty() {
            return Ok(());
        }
        for id in &old {
            self.runs.remove(id);
            let _ = std::fs::remove_dir_all(self.run_dir(id));
        }
        let mut text = String::new();
        for (id, r) in &self.runs {
            let mut lines = Vec::new();
            if let Some(at) = r.run_at {
                for item in &r.queued {
                    lines.push(Entry::Queued {
                        run_id: id.clone(),
                        run_at: at,
                        item: item.clone(),
                    });
                }
            }
            if r.committed {
                lines.push(Entry::Committed { run_id: id.clone() });
            }
            for item in &r.confirmed {
                lines.push(Entry::Confirmed {
                    run_id: id.clone(),
                    item: item.clone(),
                });
            }
            for item in &r.dropped {
                lines.push(Entry::Dropped {
                    run_id: id.clone(),
                    item: item.clone(),
                    reason: String::new(),
                });
            }
            for l in lines {
                text.push_str(&serde_json::to_string(&l)?);
                text.push('\n');
            }
        }
        crate::secure_fs::write_atomic(&self.ledger, text.as_bytes())
    }
}

/// The run's webhook and Log Analytics deliveries: through the queue with `--state`,
/// in memory without (nothing to come back to), or in memory when the queue cannot be
/// written (the error is logged; this run still delivers).
pub struct Deliveries {
    queue: Option<Queue>,
    /// Rows that cannot be sent (each alone over the request limit).
    too_large: usize,
    /// This run's digests / rows are not in the queue: sent from memory.
    webhooks_in_memory: bool,
    logs_in_memory: bool,
}

impl Deliveries {
    /// Stage 5 of a run: settles what earlier runs left, then queues this run's
    /// digests and rows, before history is committed.
    pub fn prepare(
        settings: &crate::config::Settings,
        run_id: &str,
        now: DateTime<Utc>,
        last_run: Option<DateTime<Utc>>,
        report: &crate::rules::Report,
        out_dir: &Path,
    ) -> Deliveries {
        let mut d = Deliveries {
            queue: None,
            too_large: 0,
            webhooks_in_memory: true,
            logs_in_memory: true,
        };
        let Some(state) = &settings.state else {
            return d;
        };
        let mut q = match Queue::open(state) {
            Ok(q) => q,
            Err(e) => {
                tracing::error!(error = %crate::exit::render_error(&e), "delivery queue: the ledger cannot be read; this run's digests and rows are sent from memory, earlier ones wait");
                return d;
            }
        };
        let started = std::time::Instant::now();
        q.settle(last_run);
        match webhooks::enqueue(&mut q, run_id, now, report, out_dir, &settings.webhooks) {
            Ok(()) => d.webhooks_in_memory = false,
            Err(e) => {
                tracing::error!(error = %crate::exit::render_error(&e), "delivery queue: the digests could not be queued; they are sent from memory (a failure will not be retried)")
            }
        }
        match logs::enqueue(&mut q, run_id, now, report, settings.log_analytics.as_ref()) {
            Ok(n) => {
                d.too_large = n;
                d.logs_in_memory = false;
            }
            Err(e) => {
                tracing::error!(error = %crate::exit::render_error(&e), "delivery queue: the Log Analytics rows could not be queued; they are sent from memory (a failure will not be retried)")
            }
        }
        let queued = q.runs.get(run_id).map_or(0, |r| r.queued.len());
        tracing::info!(
            run_id,
            items = queued,
            ms = started.elapsed().as_millis() as u64,
            "delivery queue: this run's digests and Log Analytics batches are on disk"
        );
        d.queue = Some(q);
        d
    }

    /// After history was committed: this run's items must be delivered.
    pub fn committed(&mut self, run_id: &str) {
        if let Some(q) = &mut self.queue {
            if let Err(e) = q.commit(run_id) {
                tracing::error!(error = %crate::exit::render_error(&e), "delivery ledger: could not record the commit (state.json's last run still marks it)");
            }
        }
    }

    /// Posts the digests: queued ones (earlier runs' first), and this run's from memory
    /// when they are not queued. `confirmed` is called after each confirmed item.
    pub async fn webhooks(
        &mut self,
        run_id: &str,
        report: &crate::rules::Report,
        out_dir: &Path,
        s: &crate::webhook::WebhookSettings,
        confirmed: &dyn Fn(),
    ) -> crate::webhook::Outcome {
        let mut o = match &mut self.queue {
            Some(q) => webhooks::send_queued(q, run_id, s, confirmed).await,
            None => Default::default(),
        };
        if self.webhooks_in_memory {
            let m = crate::webhook::deliver(report, out_dir, s).await;
            o.sent += m.sent;
            o.failed += m.failed;
        }
        o
    }

    /// Sends the Log Analytics rows: queued ones (earlier runs' first), and this run's
    /// from memory when they are not queued. `confirmed` is called after each batch
    /// confirmed from the queue.
    pub async fn log_analytics(
        &mut self,
        run_id: &str,
        report: &crate::rules::Report,
        s: Option<&crate::log_analytics::LogAnalyticsSettings>,
        confirmed: &dyn Fn(),
    ) -> crate::log_analytics::Outcome {
        let mut o = match &mut self.queue {
            Some(q) => logs::send_queued(q, s, self.too_large, confirmed).await,
            None => Default::default(),
        };
        if self.logs_in_memory {
            let m = crate::log_analytics::deliver(report, run_id, s).await;
            o.rows_sent += m.rows_sent;
            o.rows_failed += m.rows_failed;
            o.batches_sent += m.batches_sent;
            o.batches_failed += m.batches_failed;
        }
        o
    }

    /// Drops from the ledger what is long delivered.
    pub fn compact(&mut self, now: DateTime<Utc>) {
        if let Some(q) = &mut self.queue {
            if let Err(e) = q.compact(now, chrono::Duration::days(35)) {
                tracing::warn!(error = %crate::exit::render_error(&e), "delivery ledger: could not compact");
            }
        }
    }
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(file = %path.display(), error = %e, "delivery queue: could not remove a delivered item (the ledger says it was delivered: it is not sent again)");
        }
    }
    if let Some(dir) = path.parent() {
        // Only when empty.
        let _ = std::fs::remove_dir(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn committed_runs_are_pending_uncommitted_ones_superseded_confirmed_never_again() {
        let dir = tempfile::tempdir().unwrap();
        let (at1, at2, at3) = (
            t("2026-01-01T00:00:00Z"),
            t("2026-01-02T00:00:00Z"),
            t("2026-01-03T00:00:00Z"),
        );
        let mut q = Queue::open(dir.path()).unwrap();
        q.put("r1", at1, "webhook-aa", b"{\"d\":1}").unwrap();
        q.put("r1", at1, "logs-0001", b"[{}]").unwrap();
        q.commit("r1").unwrap();
        q.put("r2", at2, "webhook-aa", b"{\"d\":2}").unwrap();
        // r3 committed per state.json (killed between the commit and its ledger line).
        q.put("r3", at3, "logs-0001", b"[{}]").unwrap();
        // A torn last line is ignored.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(LEDGER_FILE))
            .unwrap();
        f.write_all(b"{\"event\":\"confirmed\",\"run_").unwrap();
        let mut q = Queue::open(dir.path()).unwrap();
        assert_eq!(q.settle(Some(at3)), 1, "r2 never committed");
        // r3's commit is now in the ledger: a later run (state.json moved on) keeps it.
        let mut q = Queue::open(dir.path()).unwrap();
        assert_eq!(q.settle(Some(t("2026-01-04T00:00:00Z"))), 0);
        assert!(!q.path("r2", "webhook-aa").exists());
        assert!(!q.known("r2", "webhook-aa"), "r2 may queue it again");
        let hooks = q.pending(WEBHOOK);
        assert_eq!(
            hooks.iter().map(|i| i.run_id.as_str()).collect::<Vec<_>>(),
            ["r1"]
        );
        let logs = q.pending(LOGS);
        assert_eq!(
            logs.iter().map(|i| i.run_id.as_str()).collect::<Vec<_>>(),
            ["r1", "r3"],
            "oldest first"
        );
        q.confirm(&logs[0]).unwrap();
        assert!(!logs[0].path.exists());
        let mut q = Queue::open(dir.path()).unwrap();
        assert_eq!(q.pending(LOGS).len(), 1);
        assert!(q.known("r1", "logs-0001") && q.known_prefix("r1", LOGS));
        assert!(!q.known_prefix("r2", WEBHOOK));
        // A file lost some other way is dropped, not sent and not kept forever.
        std::fs::remove_file(q.path("r3", "logs-0001")).unwrap();
        assert!(q.pending(LOGS).is_empty());
        // Compaction keeps what is still pending.
        q.compact(t("2026-06-01T00:00:00Z"), chrono::Duration::days(35))
            .unwrap();
        let mut q = Queue::open(dir.path()).unwrap();
        assert_eq!(q.pending(WEBHOOK).len(), 1);
        assert!(!q.runs.contains_key("r3") && q.runs.contains_key("r1"));
    }

    #[test]
    fn run_ids_cannot_leave_the_queue_folder_and_webhook_keys_hide_the_url() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path()).unwrap();
        assert!(q
            .path("..", "logs-0001")
            .starts_with(dir.path().join(QUEUE_DIR)));
        let key = |u: &str| crate::webhook::Hook::parse(u, None).unwrap().key();
        let k = key("https://hooks.slack.com/services/T/B/SECRET");
        assert_eq!(k.len(), 16);
        assert!(!k.contains("SECRET"));
        assert_eq!(k, key("https://hooks.slack.com/services/T/B/SECRET"));
        assert_ne!(k, key("https://hooks.slack.com/services/T/B/SECRET2"));
    }
}
