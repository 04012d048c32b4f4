//! `--keep-reports`: pruning old report folders, only ever ones this tool made.
//!
//! A folder is pruned only when all of these hold: it sits beside this run's output
//! folder, its name is this tool's timestamp (`2026-12-04T020000Z`), it is a real
//! folder (not a symlink), it holds a `report.json`, and it is not this run's. Other
//! files and folders are never touched.
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};

/// What `--keep-reports` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Report folders younger than this many days.
    Days(u32),
    /// The newest this many report folders.
    Count(u32),
}

impl std::str::FromStr for Retention {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let bad = || format!("`{s}` is neither DAYS (`30d`) nor COUNT (`20`), at least 1");
        let (digits, days) = match t.strip_suffix(['d', 'D']) {
            Some(d) => (d, true),
            None => (t, false),
        };
        let n: u32 = digits.parse().map_err(|_| bad())?;
        if n == 0 || n > 100_000 {
            return Err(bad());
        }
        Ok(if days {
            Retention::Days(n)
        } else {
            Retention::Count(n)
        })
    }
}

/// The time in a report folder's name, when the name is this tool's pattern.
pub fn folder_time(name: &str) -> Option<DateTime<Utc>> {
    if name.len() != 18 || !name.ends_with('Z') {
        return None;
    }
    NaiveDateTime::parse_from_str(&name[..17], "%Y-%m-%dT%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

/// The report folders beside `current` that `keep` lets go, oldest first.
pub fn candidates(current: &Path, keep: Retention, now: DateTime<Utc>) -> Vec<PathBuf> {
    let Some(root) = current
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .or(Some(Path::new(".")))
    else {
        return vec![];
    };
    let current_name = current.file_name().map(|n| n.to_os_string());
    let Ok(rd) = std::fs::read_dir(root) else {
        return vec![];
    };
    let mut ours: Vec<(DateTime<Utc>, PathBuf)> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            if Some(&name) == current_name.as_ref() {
                return None;
            }
            let t = folder_time(&name.to_string_lossy())?;
            let meta = std::fs::symlink_metadata(e.path()).ok()?;
            let report = std::fs::symlink_metadata(e.path().join("report.json")).ok()?;
            (meta.is_dir() && report.is_file()).then(|| (t, e.path()))
        })
        .collect();
    ours.sort();
    match keep {
        Retention::Days(d) => ours
            .into_iter()
            .filter(|(t, _)| now - *t > chrono::Duration::days(i64::from(d)))
            .map(|(_, p)| p)
            .collect(),
        Retention::Count(n) => {
            // This run's folder counts as one of the kept.
            let keep_others = (n as usize).saturating_sub(1);
            let drop = ours.len().saturating_sub(keep_others);
            ours.into_iter().take(drop).map(|(_, p)| p).collect()
        }
    }
}

/// Prunes; logs what it removed and what it could not. Never fails the run.
pub fn prune(current: &Path, keep: Retention, now: DateTime<Utc>) -> usize {
    let mut removed = 0;
    for p in candidates(current, keep, now) {
        match std::fs::remove_dir_all(&p) {
            Ok(()) => {
                tracing::info!(folder = %p.display(), "retention: removed an old report folder");
                removed += 1;
            }
            Err(e) => {
                tracing::warn!(folder = %p.display(), error = %e, "retention: could not remove an old report folder")
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn report_folder(root: &Path, name: &str) -> PathBuf {
        let p = root.join(name);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("report.json"), "{}").unwrap();
        p
    }

    #[test]
    fn prunes_only_our_old_folders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let old = report_folder(root, "2026-10-01T020000Z");
        let recent = report_folder(root, "2026-11-30T020000Z");
        let current = report_folder(root, "2026-12-04T020000Z");
        // Not ours: wrong name, no report.json, a plain file, a symlink to an old-looking folder.
        let other = report_folder(root, "2026-01-01-manual");
        std::fs::create_dir_all(root.join("2026-01-02T020000Z")).unwrap();
        std::fs::write(root.join("2026-01-03T020000Z"), "x").unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = report_folder(outside.path(), "2025-01-01T000000Z");
        std::os::unix::fs::symlink(&target, root.join("2025-01-01T000000Z")).unwrap();

        let now = t("2026-12-04T02:00:00Z");
        assert_eq!(
            candidates(&current, Retention::Days(30), now),
            vec![old.clone()]
        );
        assert_eq!(prune(&current, Retention::Days(30), now), 1);
        assert!(!old.exists() && recent.exists() && current.exists() && other.exists());
        assert!(
            root.join("2026-01-02T020000Z").exists() && root.join("2026-01-03T020000Z").exists()
        );
        assert!(
            target.join("report.json").exists(),
            "never through a symlink"
        );

        // Count: this run and the newest other one.
        let _older = report_folder(root, "2026-11-01T020000Z");
        assert_eq!(
            candidates(&current, Retention::Count(2), now),
            vec![root.join("2026-11-01T020000Z")]
        );
        assert!(candidates(&current, Retention::Count(1), now).contains(&recent));
    }

    #[test]
    fn folder_names() {
        assert_eq!(
            folder_time("2026-12-04T020000Z"),
            Some(t("2026-12-04T02:00:00Z"))
        );
        for bad in [
            "2026-12-04T020000",
            "x026-12-04T020000Z",
            "2026-12-04T020000Z1",
            "report",
        ] {
            assert_eq!(folder_time(bad), None, "{bad}");
        }
    }
}
