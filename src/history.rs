//! State across runs: what each run saw, so a flip from service principal to managed
//! identity (and the pools that have not been re-imaged since) can be recognised.
//!
//! [`observe`] is the single place that decides what a cluster's history becomes after
//! this run; the rules use it to classify and the writer stores its result.
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::inventory::{Cluster, SmallMap};
use crate::rules::classify;
use crate::rules::model::ControlPlaneIdentity;

pub const STATE_FILE: &str = "state.json";
const STATE_VERSION: u32 = 1;

/// Everything remembered between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub version: u32,
    pub last_run: Option<DateTime<Utc>>,
    /// Keyed by the lower-cased cluster id.
    pub clusters: BTreeMap<String, ClusterHistory>,
    /// Fingerprints of the last run's findings, for new/resolved.
    #[serde(default)]
    pub findings: BTreeSet<String>,
    /// Top-level keys this version does not know (a newer version's data): kept as
    /// they are when the file is rewritten, so a rollback loses nothing.
    #[serde(flatten)]
    pub unknown: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterHistory {
    pub id: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// `service_principal`, `system_assigned` or `user_assigned`, as last seen.
    pub mode: ControlPlaneIdentity,
    /// The service principal's client id while the cluster used one.
    pub sp_client_id: Option<String>,
    /// Pool name (lower-cased) → node image version, as last seen.
    pub pools: SmallMap<Option<String>>,
    /// Set once a flip from service principal to managed identity was observed.
    pub migration: Option<Migration>,
    /// Registries the service principal could pull from (AcrPull) before the flip.
    #[serde(default)]
    pub sp_acr_registries: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Migration {
    /// When the flip was first seen (an upper bound of when it happened).
    pub observed_at: DateTime<Utc>,
    /// The last run that still saw the service principal (the lower bound).
    pub last_seen_as_sp: DateTime<Utc>,
    pub sp_client_id: Option<String>,
    /// Pool name (lower-cased) → node image version at the first run after the flip.
    pub pools_at_flip: SmallMap<Option<String>>,
}

fn pools_of(c: &Cluster) -> SmallMap<Option<String>> {
    c.pools
        .iter()
        .map(|p| (p.name.to_ascii_lowercase(), p.node_image_version.clone()))
        .collect()
}

/// What a cluster's history becomes after this run saw `c`. Pure.
pub fn observe(
    prev: Option<&ClusterHistory>,
    c: &Cluster,
    now: DateTime<Utc>,
    sp_acr_registries: &[String],
) -> ClusterHistory {
    let mode = classify::control_plane_identity(c);
    let on_sp = mode == ControlPlaneIdentity::ServicePrincipal;
    let mut migration = prev.and_then(|p| p.migration.clone());
    if let Some(p) = prev {
        if p.mode == ControlPlaneIdentity::ServicePrincipal && !on_sp {
            // The flip happened between the previous run and this one. A newer flip
            // (SP again, then MI again) replaces an older record.
            migration = Some(Migration {
                observed_at: now,
                last_seen_as_sp: p.last_seen,
                sp_client_id: p.sp_client_id.clone(),
                pools_at_flip: pools_of(c),
            });
        }
    }
    if on_sp {
        migration = None;
    }
    let sp_client_id = if on_sp {
        c.sp_client_id.clone()
    } else {
        prev.and_then(|p| p.sp_client_id.clone())
    };
    let sp_acr_registries = if on_sp {
        sp_acr_registries.to_vec()
    } else {
        prev.map(|p| p.sp_acr_registries.clone())
            .unwrap_or_default()
    };
    ClusterHistory {
        id: c.id.clone(),
        first_seen: prev.map(|p| p.first_seen).unwrap_or(now),
        last_seen: now,
        mode,
        sp_client_id,
        pools: pools_of(c),
        migration,
        sp_acr_registries,
    }
}

crate::rules::model::named_enum! {
    /// Kubelet migration state of one cluster.
    pub enum MigrationStatus {
        NotMigrated = "not_migrated",
        NoneObserved = "none_observed",
        Pending = "pending",
        Complete = "complete",
        Unknown = "unknown",
    }
}

/// The migration status and, for `pending`, the pools still on the service principal;
/// for `unknown`, the pools whose state cannot be established.
pub fn migration_status(c: &Cluster, observed: &ClusterHistory) -> (MigrationStatus, Vec<String>) {
    if observed.mode == ControlPlaneIdentity::ServicePrincipal {
        return (MigrationStatus::NotMigrated, vec![]);
    }
    let Some(m) = &observed.migration else {
        return (MigrationStatus::NoneObserved, vec![]);
    };
    let mut pending = Vec::new();
    let mut unknown = Vec::new();
    for pool in &c.pools {
        let Some(at_flip) = m.pools_at_flip.get(&pool.name.to_ascii_lowercase()) else {
            continue; // created after the flip: its nodes joined with the managed identity
        };
        match (at_flip, &pool.node_image_version) {
            (Some(then), Some(now)) if then == now => pending.push(pool.name.clone()),
            (Some(_), Some(_)) => {} // re-imaged since the flip
            _ => unknown.push(pool.name.clone()),
        }
    }
    if !pending.is_empty() {
        (MigrationStatus::Pending, pending)
    } else if !unknown.is_empty() {
        (MigrationStatus::Unknown, unknown)
    } else {
        (MigrationStatus::Complete, vec![])
    }
}

impl History {
    /// The history after this run: every seen cluster observed, unseen ones kept until
    /// they are older than `keep_days`.
    pub fn advance(
        self,
        observed: Vec<ClusterHistory>,
        findings: BTreeSet<String>,
        now: DateTime<Utc>,
        keep_days: i64,
    ) -> History {
        let mut clusters = self.clusters;
        clusters.retain(|_, h| now - h.last_seen <= Duration::days(keep_days));
        for h in observed {
            clusters.insert(h.id.to_ascii_lowercase(), h);
        }
        History {
            version: STATE_VERSION,
            last_run: Some(now),
            clusters,
            findings,
            unknown: self.unknown,
        }
    }

    pub fn get(&self, cluster_id: &str) -> Option<&ClusterHistory> {
        self.clusters.get(&cluster_id.to_ascii_lowercase())
    }

    /// Removes and returns a cluster's history: the audit moves each one into the
    /// next history instead of holding two copies of a large estate's.
    pub fn take(&mut self, cluster_id: &str) -> Option<ClusterHistory> {
        self.clusters.remove(&cluster_id.to_ascii_lowercase())
    }

    /// Loads `DIR/state.json`; a missing file is an empty history, a corrupt one an error.
    pub fn load(dir: &Path) -> anyhow::Result<History> {
        let path = dir.join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(History::default()),
            Err(e) => return Err(e).with_context(|| format!("reading history {}", path.display())),
        };
        let h: History = serde_json::from_str(&text).with_context(|| {
            format!(
                "history {} is corrupt (fix or move it away; it is never reset silently)",
                path.display()
            )
        })?;
        if h.version > STATE_VERSION {
            bail!(
                "history {} has version {} but this tool reads up to {STATE_VERSION}",
                path.display(),
                h.version
            );
        }
        Ok(h)
    }

    /// Writes `DIR/state.json` atomically.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        // Streamed, compact: a large estate's history is ~100 MB of JSON.
        write_atomic_with(&dir.join(STATE_FILE), |w| {
            Ok(serde_json::to_writer(w, self)?)
        })
    }
}

/// Creates `dir` (and its parents) readable by the owner only where it creates them.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    crate::secure_fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Writes a file so that a crash at any moment leaves either the old or the new
/// content: temp file in the same folder, fsync, rename, fsync the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomic_with(path, |w| Ok(w.write_all(bytes)?))
}

/// [`write_atomic`] for content produced by `render` into a buffered writer, so a
/// large file is never held in memory as a whole.
pub fn write_atomic_with(
    path: &Path,
    render: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    // Mode 0600 (folders 0700), temporaries `.NAME.tmp…` created with O_EXCL (a planted
    // link is never followed), rename over the target (a link there is replaced).
    crate::secure_fs::write_atomic_with(path, render)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{AgentPool, ClusterIdentity, IdentityType};

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + Duration::hours(h)
    }

    fn cluster(mi: bool, pools: &[(&str, &str)]) -> Cluster {
        Cluster {
            id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c".into(),
            identity: mi.then(|| ClusterIdentity {
                kind: IdentityType::SystemAssigned,
                principal_id: Some("p".into()),
                tenant_id: None,
                user_assigned: vec![],
            }),
            sp_client_id: Some(if mi { "msi".into() } else { "app-id".into() }),
            pools: pools
                .iter()
                .map(|(n, v)| AgentPool { name: n.to_string(), node_image_version: Some(v.to_string()), ..Default::default() })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn first_run_never_guesses() {
        let c = cluster(true, &[("np", "v1")]);
        let h = observe(None, &c, t(0), &[]);
        assert_eq!(migration_status(&c, &h).0, MigrationStatus::NoneObserved);
    }

    #[test]
    fn flip_then_reimage() {
        let sp = cluster(false, &[("np1", "v1"), ("np2", "v1")]);
        let h1 = observe(None, &sp, t(0), &[]);
        assert_eq!(migration_status(&sp, &h1).0, MigrationStatus::NotMigrated);

        let mi = cluster(true, &[("np1", "v1"), ("np2", "v1")]);
        let h2 = observe(Some(&h1), &mi, t(24), &[]);
        let (s, pools) = migration_status(&mi, &h2);
        assert_eq!(s, MigrationStatus::Pending);
        assert_eq!(pools, vec!["np1", "np2"]);
        assert_eq!(
            h2.migration.as_ref().unwrap().sp_client_id.as_deref(),
            Some("app-id")
        );

        // np1 re-imaged, np3 created after the flip: only np2 pending.
        let mi2 = cluster(true, &[("np1", "v2"), ("np2", "v1"), ("np3", "v1")]);
        let h3 = observe(Some(&h2), &mi2, t(48), &[]);
        assert_eq!(
            migration_status(&mi2, &h3),
            (MigrationStatus::Pending, vec!["np2".to_string()])
        );

        let mi3 = cluster(true, &[("np1", "v2"), ("np2", "v2"), ("np3", "v1")]);
        let h4 = observe(Some(&h3), &mi3, t(72), &[]);
        assert_eq!(migration_status(&mi3, &h4).0, MigrationStatus::Complete);
        assert_eq!(
            h4.migration.unwrap().observed_at,
            t(24),
            "flip time is kept"
        );
    }

    #[test]
    fn missing_image_version_is_unknown() {
        let sp = cluster(false, &[("np", "v1")]);
        let h1 = observe(None, &sp, t(0), &[]);
        let mut mi = cluster(true, &[("np", "v1")]);
        mi.pools[0].node_image_version = None;
        let h2 = observe(Some(&h1), &mi, t(1), &[]);
        assert_eq!(migration_status(&mi, &h2).0, MigrationStatus::Unknown);
    }

    #[test]
    fn save_load_round_trip_and_corrupt_is_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(History::load(dir.path()).unwrap(), History::default());
        let c = cluster(false, &[("np", "v1")]);
        let h = History::default().advance(
            vec![observe(None, &c, t(0), &[])],
            BTreeSet::new(),
            t(0),
            400,
        );
        h.save(dir.path()).unwrap();
        assert_eq!(History::load(dir.path()).unwrap(), h);
        std::fs::write(dir.path().join(STATE_FILE), "{\"version\":1,").unwrap();
        let e = format!("{:#}", History::load(dir.path()).unwrap_err());
        assert!(e.contains("corrupt") && e.contains("state.json"), "{e}");
    }

    #[test]
    fn unknown_top_level_keys_survive_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(STATE_FILE),
            r#"{"version":1,"last_run":null,"clusters":{},"findings":[],"future_key":{"a":[1,2]}}"#,
        )
        .unwrap();
        let h = History::load(dir.path()).unwrap();
        h.advance(vec![], BTreeSet::new(), t(0), 400)
            .save(dir.path())
            .unwrap();
        let text = std::fs::read_to_string(dir.path().join(STATE_FILE)).unwrap();
        assert!(text.contains(r#""future_key":{"a":[1,2]}"#), "{text}");
    }

    #[test]
    fn advance_forgets_old_clusters() {
        let c = cluster(false, &[]);
        let h = History::default().advance(
            vec![observe(None, &c, t(0), &[])],
            BTreeSet::new(),
            t(0),
            400,
        );
        let later = h.clone().advance(vec![], BTreeSet::new(), t(24 * 401), 400);
        assert!(later.clusters.is_empty());
        let sooner = h.advance(vec![], BTreeSet::new(), t(24 * 10), 400);
        assert_eq!(sooner.clusters.len(), 1);
    }
}
