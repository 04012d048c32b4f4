//! What a run keeps in its `--state` folder besides the history (`state.json`) and the
//! trend (`runs.csv`): the lock that keeps two runs apart, and the mail ledger that
//! makes delivery exactly-once across crashes and Job retries.
//!
//! The order of a run with state is a transaction:
//! 1. reports are written;
//! 2. every message is written to the run's `outbox/` (fsync), then the ledger gets an
//!    `outbox` line naming the run (its id, its time, its folder);
//! 3. history (`state.json`, `runs.csv`) is committed, then a `committed` line;
//! 4. messages are sent; each accepted one gets an `accepted` line, and when none is
//!    left a `done` line.
//!
//! The next run (under the lock) finishes what an earlier one left: a run whose
//! history was committed (a `committed` line, or `state.json`'s `last_run` equal to
//! its time) but not `done` has its outbox sent first. A run killed before its
//! history was committed is superseded: the next run computes the same changes again
//! and mails them itself, so nothing is lost and nothing is sent twice.
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub mod demo_seed;

/// The lock file inside the state folder (and inside an output folder for `resend`).
pub const LOCK_FILE: &str = ".lock";
/// The mail ledger inside the state folder, one JSON object per line.
pub const LEDGER_FILE: &str = "mail-ledger.jsonl";

/// An exclusive lock on a folder, released when dropped (or when the process dies:
/// it is an OS file lock, never a stale marker).
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
    path: PathBuf,
}

impl FolderLock {
    /// Takes `DIR/.lock`, waiting up to `wait` for another holder; `what` names the
    /// folder's role in the error.
    pub fn acquire(dir: &Path, wait: Duration, what: &str) -> anyhow::Result<FolderLock> {
        crate::secure_fs::create_private_dir(dir)?;
        let path = dir.join(LOCK_FILE);
        let mut opts = OpenOptions::new();
        opts.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let file = opts
            .open(&path)
            .with_context(|| format!("opening the lock {}", path.display()))?;
        let started = Instant::now();
        let mut logged = false;
        loop {
            match file.try_lock() {
                Ok(()) => {
                    return Ok(FolderLock { _file: file, path });
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    if started.elapsed() >= wait {
                        bail!(
                            "{what} {} is in use by another run (lock {} held for more than {} s); \
                             wait for it to finish or raise --lock-wait",
                            dir.display(),
                            path.display(),
                            wait.as_secs()
                        );
                    }
                    if !logged {
                        tracing::info!(lock = %path.display(), wait_s = wait.as_secs(), "waiting for another run to release the lock");
                        logged = true;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("locking {}", path.display()));
                }
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Removes temporaries a killed writer left in `dir` (`.NAME.tmp…`); only call it
/// while holding the folder's lock, so no live writer's file is taken.
pub fn clean_stale_temporaries(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let is_ours = name.starts_with('.') && name.contains(".tmp");
        let is_file = e.file_type().map(|t| t.is_file()).unwrap_or(false);
        if is_ours && is_file && std::fs::remove_file(e.path()).is_ok() {
            tracing::info!(file = %e.path().display(), "removed a temporary file left by an interrupted run");
            removed += 1;
        }
    }
    removed
}

/// A run id: printable ASCII without spaces or path separators, at most 128 bytes
/// (a Kubernetes Job name fits; it ends up in file names and logs).
pub fn check_run_id(id: &str) -> anyhow::Result<String> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if !ok {
        bail!(
            "--run-id `{}`: use 1 to 128 characters of A-Z a-z 0-9 - _ . :",
            id.escape_default()
        );
    }
    Ok(id.to_string())
}

/// The default run id: the run's UTC time.
pub fn default_run_id(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%dT%H%M%SZ").to_string()
}

/// One line of the mail ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Entry {
    /// Every message of the run is in `out_dir/outbox/`.
    Outbox {
        run_id: String,
        run_at: DateTime<Utc>,
        out_dir: PathBuf,
        messages: usize,
    },
    /// The run's history was committed: its outbox must be delivered.
    Committed { run_id: String },
    /// The SMTP server accepted the message to `to` (file name in the outbox).
    Accepted {
        run_id: String,
        to: String,
        file: String,
    },
    /// Nothing of the run is left to send (or it was superseded).
    Done { run_id: String },
}

/// The ledger as read: what each run id has recorded.
#[derive(Debug, Default)]
pub struct Ledger {
    path: PathBuf,
    runs: BTreeMap<String, RunMail>,
}

#[derive(Debug, Default, Clone)]
pub struct RunMail {
    pub run_at: Option<DateTime<Utc>>,
    pub out_dir: Option<PathBuf>,
    pub committed: bool,
    pub done: bool,
    /// Lower-cased recipients accepted for this run id.
    pub accepted: BTreeSet<String>,
    /// Outbox file names accepted for this run id.
    pub accepted_files: BTreeSet<String>,
    /// (recipient, file) as recorded, for compaction.
    pairs: Vec<(String, String)>,
}

/// An earlier run whose mail is not finished and must be sent now.
#[derive(Debug, Clone)]
pub struct Pending {
    pub run_id: String,
    pub out_dir: PathBuf,
    pub accepted_files: BTreeSet<String>,
}

impl Ledger {
    /// Reads `DIR/mail-ledger.jsonl`; a torn last line (a crash mid-append) is ignored
    /// with a warning, any other bad line is an error naming it.
    pub fn load(dir: &Path) -> anyhow::Result<Ledger> {
        let path = dir.join(LEDGER_FILE);
        let mut l = Ledger {
            path: path.clone(),
            runs: BTreeMap::new(),
        };
        for e in crate::secure_fs::read_jsonl::<Entry>(&path, "mail ledger")? {
            l.apply(e);
        }
        Ok(l)
    }

    fn apply(&mut self, e: Entry) {
        match e {
            Entry::Outbox {
                run_id,
                run_at,
                out_dir,
                ..
            } => {
                let r = self.runs.entry(run_id).or_default();
                r.run_at = Some(run_at);
                r.out_dir = Some(out_dir);
                r.done = false;
                r.committed = false;
            }
            Entry::Committed { run_id } => self.runs.entry(run_id).or_default().committed = true,
            Entry::Accepted { run_id, to, file } => {
                let r = self.runs.entry(run_id).or_default();
                r.accepted.insert(to.to_ascii_lowercase());
                r.accepted_files.insert(file.clone());
                r.pairs.push((to, file));
            }
            Entry::Done { run_id } => self.runs.entry(run_id).or_default().done = true,
        }
    }

    /// Appends one line and fsyncs it; the in-memory view follows.
    pub fn append(&mut self, e: Entry) -> anyhow::Result<()> {
        let mut line = serde_json::to_string(&e)?;
        line.push('\n');
        let mut opts = OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts
            .open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        // One write call: a crash leaves the whole line or a torn last line.
        f.write_all(line.as_bytes())
            .and_then(|_| f.sync_data())
            .with_context(|| format!("appending to {}", self.path.display()))?;
        self.apply(e);
        Ok(())
    }

    pub fn run(&self, run_id: &str) -> Option<&RunMail> {
        self.runs.get(run_id)
    }

    /// Was `to` already accepted for `run_id` (a retry of the same run)?
    pub fn accepted(&self, run_id: &str, to: &str) -> bool {
        self.runs
            .get(run_id)
            .is_some_and(|r| r.accepted.contains(&to.to_ascii_lowercase()))
    }

    /// Records `committed` for a run `state.json` names as its last run but whose
    /// `committed` line was never written (a crash between the two writes). Without
    /// it, once a later run moves `last_run` on, that run would look superseded and
    /// its unsent mail would be marked done unsent.
    pub fn adopt_last_run(&mut self, last_run: Option<DateTime<Utc>>) -> anyhow::Result<()> {
        let Some(last) = last_run else {
            return Ok(());
        };
        let ids: Vec<String> = self
            .runs
            .iter()
            .filter(|(_, r)| !r.committed && !r.done && r.run_at == Some(last))
            .map(|(id, _)| id.clone())
            .collect();
        for run_id in ids {
            self.append(Entry::Committed { run_id })?;
        }
        Ok(())
    }

    /// Earlier runs whose history was committed but whose mail is not done
    /// (`last_run` is `state.json`'s); runs never committed are returned apart as
    /// superseded.
    pub fn unfinished(&self, last_run: Option<DateTime<Utc>>) -> (Vec<Pending>, Vec<String>) {
        let mut pending = Vec::new();
        let mut superseded = Vec::new();
        for (id, r) in &self.runs {
            if r.done {
                continue;
            }
            let (Some(at), Some(dir)) = (r.run_at, &r.out_dir) else {
                continue;
            };
            if r.committed || last_run == Some(at) {
                pending.push(Pending {
                    run_id: id.clone(),
                    out_dir: dir.clone(),
                    accepted_files: r.accepted_files.clone(),
                });
            } else {
                superseded.push(id.clone());
            }
        }
        (pending, superseded)
    }

    /// Rewrites the ledger without the runs that are done and older than `keep`
    /// (atomically); called under the state lock.
    pub fn compact(&mut self, now: DateTime<Utc>, keep: chrono::Duration) -> anyhow::Result<()> {
        let old: Vec<String> = self
            .runs
            .iter()
            .filter(|(_, r)| r.done && r.run_at.is_some_and(|t| now - t > keep))
            .map(|(id, _)| id.clone())
            .collect();
        if old.is_empty() {
            return Ok(());
        }
        for id in &old {
            self.runs.remove(id);
        }
        let mut text = String::new();
        for (id, r) in &self.runs {
            let mut lines = Vec::new();
            if let (Some(at), Some(dir)) = (r.run_at, &r.out_dir) {
                lines.push(Entry::Outbox {
                    run_id: id.clone(),
                    run_at: at,
                    out_dir: dir.clone(),
                    messages: 0,
                });
            }
            if r.committed {
                lines.push(Entry::Committed { run_id: id.clone() });
            }
            for (to, file) in &r.pairs {
                lines.push(Entry::Accepted {
                    run_id: id.clone(),
                    to: to.clone(),
                    file: file.clone(),
                });
            }
            if r.done {
                lines.push(Entry::Done { run_id: id.clone() });
            }
            for l in lines {
                text.push_str(&serde_json::to_string(&l)?);
                text.push('\n');
            }
        }
        crate::secure_fs::write_atomic(&self.path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn second_lock_waits_then_fails_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = FolderLock::acquire(dir.path(), Duration::ZERO, "state folder").unwrap();
        let e = FolderLock::acquire(dir.path(), Duration::from_millis(300), "state folder")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("in use by another run") && e.contains(".lock"),
            "{e}"
        );
        drop(a);
        FolderLock::acquire(dir.path(), Duration::ZERO, "state folder").unwrap();
    }

    #[test]
    fn run_ids_are_checked() {
        assert!(check_run_id("aks-identity-audit-29012345").is_ok());
        assert!(check_run_id("2026-12-04T020000Z").is_ok());
        for bad in ["", "a b", "../x", "a\nb", &"x".repeat(129)] {
            assert!(check_run_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ledger_tells_pending_from_superseded_and_survives_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::load(dir.path()).unwrap();
        let at1 = t("2026-01-01T00:00:00Z");
        let at2 = t("2026-01-02T00:00:00Z");
        for (id, at) in [("r1", at1), ("r2", at2)] {
            l.append(Entry::Outbox {
                run_id: id.into(),
                run_at: at,
                out_dir: dir.path().join(id),
                messages: 2,
            })
            .unwrap();
        }
        l.append(Entry::Committed {
            run_id: "r1".into(),
        })
        .unwrap();
        l.append(Entry::Accepted {
            run_id: "r1".into(),
            to: "A@contoso.com".into(),
            file: "0001-a@contoso.com.eml".into(),
        })
        .unwrap();
        // A torn last line.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(LEDGER_FILE))
            .unwrap();
        f.write_all(b"{\"event\":\"done\",\"run_").unwrap();
        let l = Ledger::load(dir.path()).unwrap();
        assert!(l.accepted("r1", "a@contoso.com"));
        assert!(!l.accepted("r2", "a@contoso.com"));
        // r1 committed, r2 never: r2 superseded unless state.json says it ran.
        let (p, s) = l.unfinished(Some(at1));
        assert_eq!(
            p.iter().map(|p| p.run_id.as_str()).collect::<Vec<_>>(),
            ["r1"]
        );
        assert_eq!(s, ["r2"]);
        let (p, s) = l.unfinished(Some(at2));
        assert_eq!(p.len(), 2);
        assert!(s.is_empty());
        // The next line appended after the torn one still reads.
        let mut l = l;
        l.append(Entry::Done {
            run_id: "r1".into(),
        })
        .unwrap();
        let l = Ledger::load(dir.path()).unwrap();
        assert!(l.run("r1").unwrap().done && l.accepted("r1", "a@contoso.com"));
    }

    #[test]
    fn a_run_known_only_through_state_json_is_recorded_committed_and_stays_pending() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::load(dir.path()).unwrap();
        let at1 = t("2026-01-01T00:00:00Z");
        let at2 = t("2026-01-02T00:00:00Z");
        l.append(Entry::Outbox {
            run_id: "r1".into(),
            run_at: at1,
            out_dir: dir.path().join("r1"),
            messages: 1,
        })
        .unwrap();
        // Crash after state.json named r1 but before its `committed` line.
        l.adopt_last_run(Some(at1)).unwrap();
        let l = Ledger::load(dir.path()).unwrap();
        assert!(l.run("r1").unwrap().committed);
        // A later run moved last_run on: r1's mail is still owed, not superseded.
        let (p, s) = l.unfinished(Some(at2));
        assert_eq!(
            p.iter().map(|p| p.run_id.as_str()).collect::<Vec<_>>(),
            ["r1"]
        );
        assert!(s.is_empty());
        // A run state.json never named is not adopted.
        let mut l = l;
        l.append(Entry::Outbox {
            run_id: "r2".into(),
            run_at: at2,
            out_dir: dir.path().join("r2"),
            messages: 1,
        })
        .unwrap();
        l.adopt_last_run(Some(at1)).unwrap();
        assert!(!l.run("r2").unwrap().committed);
    }

    #[test]
    fn stale_temporaries_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".state.json.tmp-123"), "x").unwrap();
        std::fs::write(dir.path().join(".state.json.tmpAbC12"), "x").unwrap();
        std::fs::write(dir.path().join("state.json"), "{}").unwrap();
        std::fs::write(dir.path().join("notes.tmp"), "mine").unwrap();
        assert_eq!(clean_stale_temporaries(dir.path()), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        left.sort();
        assert_eq!(left, ["notes.tmp", "state.json"]);
    }
}
