//! State across runs: what each run saw, so a flip from service principal to managed
//! identity (and the pools that have not been re-imaged since) can be recognised.
//!
//! [`observe`] is the single place that decides what a cluster's history becomes after
//! this run; the rules use it to classify and the writer stores its result.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::inventory::{Cluster, SmallMap};

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
    ///
    /// Shared strings: each is a key of [`Self::finding_first_seen`] too (a large
    /// estate has hundreds of thousands).
    #[serde(default)]
    pub findings: BTreeSet<Arc<str>>,
    /// Fingerprint → the first run that found it (suppressed or not), for `first_seen`
    /// in the reports. A fingerprint of an older state file without an entry counts
    /// from that file's `last_run`: the first sighting this state can vouch for.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub finding_first_seen: BTreeMap<Arc<str>, DateTime<Utc>>,
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
    pub migration: Option<Box<Migration>>,
    /// Registries the service principal could pull from (AcrPull) before the flip.
    #[serde(default)]
    pub sp_acr_registries: Vec<String>,
    /// Whether [`Self::sp_acr_registries`] is known: the last service-principal run
    /// knew the principal's object id and read its role assignments. Empty and known
    /// means the principal pulled from no registry (AKSMI022 stays quiet); unknown
    /// (Resource Graph names no service principal by client id) leaves AKSMI022 a
    /// low-severity prompt.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sp_acr_known: bool,
    /// Each pool as the last run that saw the cluster on a service principal saw it;
    /// `None` once on a managed identity (the flip moves it into [`Migration::sp_pools`])
    /// and in files written before this field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sp_pools: Option<SmallMap<PoolRecord>>,
    /// `properties.resourceUID` as last seen: another value means the cluster was
    /// deleted and created again under the same id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_uid: Option<String>,
    /// `systemData.createdAt` as last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    /// The kubelet identity's object id (lower-cased) as last seen on a managed
    /// identity, and the registry scopes it held a pull grant at (AcrPull or
    /// Container Registry Repository Reader); see [`observe_kubelet`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet: Option<KubeletRecord>,
    /// Set once the kubelet identity was seen replaced (`az aks update
    /// --assign-kubelet-identity`): the new identity needs the registry access the
    /// old one had (AKSMI022).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_change: Option<Box<KubeletChange>>,
    /// When Resource Graph's change history (`resourcechanges`, 14 days) was read for
    /// this managed-identity cluster's flip (see [`bootstrap`]): once read, found or
    /// not, it is not asked again (a flip after that shows in the history itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes_read: Option<DateTime<Utc>>,
}

/// A kubelet identity and the registries it could pull from, as one run saw them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeletRecord {
    pub object_id: String,
    /// `None` when that run could not read the identity's role assignments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registries: Option<Vec<String>>,
}

/// The kubelet identity replaced on a managed-identity cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeletChange {
    /// The first run that saw the new identity.
    pub observed_at: DateTime<Utc>,
    /// The last run that saw the old one.
    pub last_seen_old: DateTime<Utc>,
    pub old_object_id: String,
    /// Registry scopes the old identity held a pull grant at (`None`: not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_registries: Option<Vec<String>>,
}

/// Adds to `h` (this run's entry for `c`, from [`observe`]) the kubelet identity and
/// `registries` (its pull grant scopes, `None` if its role assignments were not
/// read); records a [`KubeletChange`] when `prev` saw another kubelet identity on a
/// managed identity (not the flip from a service principal, which had none). Pure.
pub fn observe_kubelet(
    h: &mut ClusterHistory,
    prev: Option<&ClusterHistory>,
    c: &Cluster,
    now: DateTime<Utc>,
    registries: Option<Vec<String>>,
) {
    let prev = prev.filter(|p| !recreated(p, c));
    let now_id = c
        .kubelet
        .as_ref()
        .and_then(|k| k.object_id.as_deref())
        .filter(|_| h.mode != ControlPlaneIdentity::ServicePrincipal)
        .map(str::to_ascii_lowercase);
    h.kubelet_change = prev.and_then(|p| p.kubelet_change.clone());
    if let (Some(p), Some(new)) = (prev, &now_id) {
        if let Some(old) = p.kubelet.as_ref().filter(|k| k.object_id != *new) {
            h.kubelet_change = Some(Box::new(KubeletChange {
                observed_at: now,
                last_seen_old: p.last_seen,
                old_object_id: old.object_id.clone(),
                old_registries: old.registries.clone(),
            }));
        }
    }
    h.kubelet = now_id.map(|object_id| KubeletRecord {
        object_id,
        registries,
    });
}

pub use crate::inventory::PoolRecord;

/// How the control plane left the service principal, as the first run after the
/// flip saw it: Microsoft documents different kubelet behaviour for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlipKind {
    /// `az aks update --enable-managed-identity`.
    SystemAssigned,
    /// `... --enable-managed-identity --assign-identity <id>`, kubelet identity made by AKS.
    UserAssigned,
    /// A kubelet identity of the user's own came with the flip (`--assign-kubelet-identity`).
    OwnKubelet,
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
    /// The flip's kind; `None` in records written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<FlipKind>,
    /// The pools on the last run that saw the service principal (what the migration
    /// verdict compares with); `None` in records written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sp_pools: Option<SmallMap<PoolRecord>>,
    /// The pools at the first run after the flip, with their Kubernetes versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flip_pools: Option<SmallMap<PoolRecord>>,
    /// The flip was read from Resource Graph's change history, not seen between two
    /// runs: [`Self::observed_at`] and [`Self::last_seen_as_sp`] are then both the
    /// change's own time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_changes: bool,
}

fn pools_of(c: &Cluster) -> SmallMap<Option<String>> {
    c.pools
        .iter()
        .map(|p| (p.name.to_ascii_lowercase(), p.node_image_version.clone()))
        .collect()
}

/// Each pool of `c` by lower-cased name.
pub fn pool_records(c: &Cluster) -> SmallMap<PoolRecord> {
    c.pools
        .iter()
        .map(|p| {
            (
                p.name.to_ascii_lowercase(),
                PoolRecord {
                    node_image_version: p.node_image_version.clone(),
                    orchestrator_version: p.orchestrator_version.clone(),
                },
            )
        })
        .collect()
}

/// Whether `c` is another cluster than the one `prev` remembers under the same id:
/// deleted and created again (`resourceUID` changed, or `systemData.createdAt`
/// changed or later than the last run that saw the old one). A migration is never
/// inferred across that; the history starts again.
pub fn recreated(prev: &ClusterHistory, c: &Cluster) -> bool {
    if let (Some(a), Some(b)) = (&prev.resource_uid, &c.resource_uid) {
        if !a.eq_ignore_ascii_case(b) {
            return true;
        }
    }
    let Some(created) = c.created_at else {
        return false;
    };
    // Sources print the time with different precision: a second apart is the same.
    match prev.created_at {
        Some(before) => (created - before).num_seconds().abs() > 1,
        None => created > prev.last_seen,
    }
}

/// The records of a history written before [`PoolRecord`]s were kept: image versions only.
fn records_from_images(pools: &SmallMap<Option<String>>) -> SmallMap<PoolRecord> {
    pools
        .iter()
        .map(|(name, image)| {
            (
                name.clone(),
                PoolRecord {
                    node_image_version: image.clone(),
                    orchestrator_version: None,
                },
            )
        })
        .collect()
}

/// The service-principal client ids that migrated clusters left behind: their
/// kubelet may still use one, so its credential expiry still matters.
pub fn migrated_sp_client_ids(h: &History) -> Vec<String> {
    let mut ids: Vec<String> = h
        .clusters
        .values()
        .filter_map(|c| c.migration.as_ref()?.sp_client_id.clone())
        .filter(|id| !id.is_empty() && !id.eq_ignore_ascii_case("msi"))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// A pool this run may find still on the service principal: as the last
/// service-principal run saw it. Only if it still runs that image is its latest node
/// image worth reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCandidate {
    /// Lower-cased.
    pub cluster_id: String,
    /// Lower-cased.
    pub pool: String,
    pub node_image_version: String,
}

/// The pools whose kubelet this run may find pending: of clusters last seen on a
/// service principal (the flip may show tonight), or with a recorded flip that can
/// leave kubelet pending (user-assigned, or a record without its kind), each pool as
/// the last service-principal run saw it. The collector reads a pool's latest node
/// image only if its cluster is now on a user-assigned identity and the pool still
/// runs that image: the one case AKSMI002 fires for.
pub fn pending_candidates(h: &History) -> Vec<PendingCandidate> {
    let mut out = Vec::new();
    for c in h.clusters.values() {
        let pools = if c.mode == ControlPlaneIdentity::ServicePrincipal {
            Some(
                c.sp_pools
                    .clone()
                    .unwrap_or_else(|| records_from_images(&c.pools)),
            )
        } else {
            c.migration
                .as_ref()
                .filter(|m| matches!(m.kind, None | Some(FlipKind::UserAssigned)))
                .map(|m| {
                    m.sp_pools
                        .clone()
                        .unwrap_or_else(|| records_from_images(&m.pools_at_flip))
                })
        };
        for (pool, r) in pools.iter().flat_map(|p| p.iter()) {
            if let Some(image) = &r.node_image_version {
                out.push(PendingCandidate {
                    cluster_id: c.id.to_ascii_lowercase(),
                    pool: pool.to_ascii_lowercase(),
                    node_image_version: image.clone(),
                });
            }
        }
    }
    out
}

/// What a cluster's history becomes after this run saw `c`; `flip` is the kind of
/// switch `c` shows if this run sees it leave its service principal (the rules tell:
/// `rules::migration::flip_kind`). Pure.
pub fn observe(
    prev: Option<&ClusterHistory>,
    c: &Cluster,
    now: DateTime<Utc>,
    sp_acr_registries: &[String],
    flip: FlipKind,
) -> ClusterHistory {
    // A cluster deleted and created again under the same id: a new history.
    let prev = prev.filter(|p| !recreated(p, c));
    let mode = ControlPlaneIdentity::of(c);
    let on_sp = mode == ControlPlaneIdentity::ServicePrincipal;
    let mut migration = prev.and_then(|p| p.migration.clone());
    if let Some(p) = prev {
        if p.mode == ControlPlaneIdentity::ServicePrincipal && !on_sp {
            // The flip happened between the previous run and this one. A newer flip
            // (SP again, then MI again) replaces an older record.
            migration = Some(Box::new(Migration {
                observed_at: now,
                last_seen_as_sp: p.last_seen,
                sp_client_id: p.sp_client_id.clone(),
                pools_at_flip: pools_of(c),
                kind: Some(flip),
                sp_pools: Some(
                    p.sp_pools
                        .clone()
                        .unwrap_or_else(|| records_from_images(&p.pools)),
                ),
                flip_pools: Some(pool_records(c)),
                from_changes: false,
            }));
        }
    }
    if on_sp {
        migration = None;
    }
    let mut changes_read = prev.and_then(|p| p.changes_read);
    if let (false, Some(changes)) = (on_sp, c.changes.as_ref().filter(|c| c.unread.is_none())) {
        changes_read = changes_read.or(Some(now));
        if migration.is_none() {
            migration = changes
                .flip
                .as_ref()
                .and_then(|f| bootstrap(c, f, flip))
                .map(Box::new);
        }
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
    // On a service-principal run the caller sets it (`note_sp_acr_known`); a grant
    // seen is proof enough.
    let sp_acr_known = if on_sp {
        !sp_acr_registries.is_empty()
    } else {
        prev.is_some_and(|p| p.sp_acr_known)
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
        sp_acr_known,
        sp_pools: on_sp.then(|| pool_records(c)),
        resource_uid: c
            .resource_uid
            .clone()
            .or_else(|| prev.and_then(|p| p.resource_uid.clone())),
        created_at: c.created_at.or(prev.and_then(|p| p.created_at)),
        // The caller adds them (`observe_kubelet`); carried over meanwhile.
        kubelet: prev.and_then(|p| p.kubelet.clone()),
        kubelet_change: prev.and_then(|p| p.kubelet_change.clone()),
        changes_read,
    }
}

/// The migration record of a flip Resource Graph's change history shows for `c`, a
/// cluster on a managed identity with none recorded (the first run came after the
/// flip). Recorded once, it is judged by the same rows as a flip seen between two
/// runs (`rules::migration`). A flip older than the cluster's creation belongs to
/// another cluster under the same id: none.
pub fn bootstrap(
    c: &Cluster,
    f: &crate::inventory::ChangedFlip,
    kind: FlipKind,
) -> Option<Migration> {
    if c.created_at.is_some_and(|created| created > f.at) {
        return None;
    }
    let images = |p: &SmallMap<PoolRecord>| -> SmallMap<Option<String>> {
        p.iter()
            .map(|(k, r)| (k.clone(), r.node_image_version.clone()))
            .collect()
    };
    Some(Migration {
        observed_at: f.at,
        last_seen_as_sp: f.at,
        sp_client_id: f.sp_client_id.clone(),
        pools_at_flip: images(&f.pools_after),
        kind: Some(kind),
        sp_pools: Some(f.pools_before.clone()),
        flip_pools: Some(f.pools_after.clone()),
        from_changes: true,
    })
}

crate::named::named_enum! {
    /// Kubelet migration state of one cluster.
    pub enum MigrationStatus {
        NotMigrated = "not_migrated",
        NoneObserved = "none_observed",
        Pending = "pending",
        Complete = "complete",
        Unknown = "unknown",
    }
}

impl History {
    /// The history after this run: every seen cluster observed, unseen ones kept until
    /// they are older than `keep_days`.
    pub fn advance(
        self,
        observed: Vec<ClusterHistory>,
        findings: BTreeSet<Arc<str>>,
        now: DateTime<Utc>,
        keep_days: i64,
    ) -> History {
        // Built in one pass (sorted, full nodes; a later entry for the same id wins, as
        // an insert would): inserting a large estate's clusters one by one left the
        // map's nodes a third empty.
        let clusters: BTreeMap<String, ClusterHistory> = self
            .clusters
            .into_iter()
            .filter(|(_, h)| now - h.last_seen <= Duration::days(keep_days))
            .chain(observed.into_iter().map(|h| (h.id.to_ascii_lowercase(), h)))
            .collect();
        let mut finding_first_seen = self.finding_first_seen;
        finding_first_seen.retain(|fp, _| findings.contains(fp));
        History {
            version: STATE_VERSION,
            last_run: Some(now),
            clusters,
            findings,
            finding_first_seen,
            unknown: self.unknown,
        }
    }

    /// When the finding with this fingerprint was first seen, as this history knows
    /// it: its recorded date, else the last run for a fingerprint recorded without one.
    pub fn finding_seen(&self, fingerprint: &str) -> Option<DateTime<Utc>> {
        self.finding_first_seen
            .get(fingerprint)
            .copied()
            .or_else(|| {
                self.findings
                    .contains(fingerprint)
                    .then_some(self.last_run?)
            })
    }

    pub fn get(&self, cluster_id: &str) -> Option<&ClusterHistory> {
        self.clusters.get(&cluster_id.to_ascii_lowercase())
    }

    /// Removes and returns a cluster's history: the audit moves each one into the
    /// next history instead of holding two copies of a large estate's.
    pub fn take(&mut self, cluster_id: &str) -> Option<ClusterHistory> {
        self.clusters.remove(&cluster_id.to_ascii_lowercase())
    }

    /// Makes each first-seen date's fingerprint the finding set's string where both
    /// hold it (read from a file, they are two copies: ~50 MB at the largest benchmark).
    fn share_fingerprints(&mut self) {
        let dates = std::mem::take(&mut self.finding_first_seen);
        self.finding_first_seen = dates
            .into_iter()
            .map(|(fp, seen)| (self.findings.get(&fp).cloned().unwrap_or(fp), seen))
            .collect();
    }

    /// Loads `DIR/state.json`; a missing file is an empty history, a corrupt one an error.
    pub fn load(dir: &Path) -> anyhow::Result<History> {
        let path = dir.join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(History::default()),
            Err(e) => return Err(e).with_context(|| format!("reading history {}", path.display())),
        };
        let mut h: History = serde_json::from_str(&text).with_context(|| {
            format!(
                "history {} is corrupt (fix or move it away; it is never reset silently)",
                path.display()
            )
        })?;
        drop(text);
        h.share_fingerprints();
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
        self.stage(dir)?.commit()
    }

    /// Writes `DIR/state.json` under a temporary name, to be put in place by
    /// [`crate::secure_fs::Staged::commit`]: the run writes its next history before the
    /// reports and frees it (a large estate's is ~200 MB in memory), but commits it
    /// only after the outbox, as [`Self::save`] would.
    pub fn stage(&self, dir: &Path) -> anyhow::Result<crate::secure_fs::Staged> {
        // Streamed, compact: a large estate's history is ~100 MB of JSON.
        crate::secure_fs::stage_atomic_with(&dir.join(STATE_FILE), |w| {
            Ok(serde_json::to_writer(w, self)?)
        })
    }
}

// The atomic, private writes every state file uses live in `crate::secure_fs`; the
// names stay here for callers that reach them through the history.
pub use crate::secure_fs::{create_private_dir, write_atomic, write_atomic_with};

crate::named::named_enum! {
    /// How the control plane authenticates to Azure (`control_plane_identity` in
    /// clusters.csv and report.json, `mode` in state.json).
    pub enum ControlPlaneIdentity {
        ServicePrincipal = "service_principal",
        SystemAssigned = "system_assigned",
        UserAssigned = "user_assigned",
    }
}

impl ControlPlaneIdentity {
    /// How `c`'s control plane authenticates, as ARM shows it.
    pub fn of(c: &Cluster) -> ControlPlaneIdentity {
        match c.identity.as_ref().map(|i| i.kind) {
            None => ControlPlaneIdentity::ServicePrincipal,
            Some(crate::inventory::IdentityType::SystemAssigned) => {
                ControlPlaneIdentity::SystemAssigned
            }
            Some(crate::inventory::IdentityType::UserAssigned) => {
                ControlPlaneIdentity::UserAssigned
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// [`observe`] with the flip kind the rules give.
    fn obs(
        prev: Option<&ClusterHistory>,
        c: &Cluster,
        now: DateTime<Utc>,
        sp: &[String],
    ) -> ClusterHistory {
        observe(prev, c, now, sp, crate::rules::migration::flip_kind(c))
    }
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
    fn the_flip_keeps_the_pools_of_the_last_service_principal_run() {
        let mut sp = cluster(false, &[("np1", "v1"), ("np2", "v1")]);
        sp.pools[0].orchestrator_version = Some("1.30.6".into());
        let h1 = obs(None, &sp, t(0), &[]);
        assert!(h1.migration.is_none());
        assert_eq!(h1.sp_pools, Some(pool_records(&sp)));

        // Migration and a node image upgrade of np1 between two runs.
        let mi = cluster(true, &[("np1", "v2"), ("np2", "v1"), ("np3", "v2")]);
        let h2 = obs(Some(&h1), &mi, t(24), &[]);
        let m = h2.migration.as_ref().unwrap();
        assert_eq!(m.observed_at, t(24));
        assert_eq!(m.last_seen_as_sp, t(0));
        assert_eq!(m.sp_client_id.as_deref(), Some("app-id"));
        assert_eq!(m.kind, Some(FlipKind::SystemAssigned));
        assert_eq!(
            m.sp_pools,
            Some(pool_records(&sp)),
            "the last SP run's pools"
        );
        assert_eq!(m.flip_pools, Some(pool_records(&mi)));
        assert_eq!(h2.sp_pools, None, "moved into the migration record");
        assert_eq!(h2.sp_client_id.as_deref(), Some("app-id"));

        // Later runs keep the record as it was.
        let mi2 = cluster(true, &[("np1", "v3"), ("np2", "v3")]);
        let h3 = obs(Some(&h2), &mi2, t(48), &[]);
        assert_eq!(h3.migration, h2.migration);
    }

    #[test]
    fn a_flip_after_an_old_history_uses_its_image_versions() {
        // A record an older version wrote while the cluster was on its SP: image
        // versions only, no `sp_pools`.
        let old: ClusterHistory = serde_json::from_str(
            r#"{"id":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c",
                "first_seen":"2026-01-01T00:00:00Z","last_seen":"2026-01-01T00:00:00Z",
                "mode":"service_principal","sp_client_id":"app-id","pools":{"np1":"v1"},"migration":null}"#,
        )
        .unwrap();
        assert_eq!(
            (old.sp_pools.as_ref(), old.resource_uid.as_ref()),
            (None, None)
        );
        let mi = cluster(true, &[("np1", "v2")]);
        let h = obs(Some(&old), &mi, t(24), &[]);
        let want: SmallMap<PoolRecord> = [(
            "np1".to_string(),
            PoolRecord {
                node_image_version: Some("v1".into()),
                orchestrator_version: None,
            },
        )]
        .into_iter()
        .collect();
        assert_eq!(h.migration.unwrap().sp_pools, Some(want));
    }

    #[test]
    fn an_old_migration_record_still_reads() {
        let old: ClusterHistory = serde_json::from_str(
            r#"{"id":"c","first_seen":"2026-01-01T00:00:00Z","last_seen":"2026-01-02T00:00:00Z",
                "mode":"system_assigned","sp_client_id":"app-id","pools":{"np1":"v1"},
                "migration":{"observed_at":"2026-01-02T00:00:00Z","last_seen_as_sp":"2026-01-01T00:00:00Z",
                             "sp_client_id":"app-id","pools_at_flip":{"np1":"v1"}},
                "sp_acr_registries":[]}"#,
        )
        .unwrap();
        let m = old.migration.unwrap();
        assert_eq!((m.kind, m.sp_pools, m.flip_pools), (None, None, None));
        assert_eq!(m.pools_at_flip.get("np1"), Some(&Some("v1".to_string())));
    }

    #[test]
    fn a_recreated_cluster_starts_a_new_history() {
        let mut sp = cluster(false, &[("np", "v1")]);
        sp.resource_uid = Some("uid-1".into());
        sp.created_at = Some(t(-1000));
        let h1 = obs(None, &sp, t(0), &[]);
        assert_eq!(h1.resource_uid.as_deref(), Some("uid-1"));

        // Same id, new resourceUID, born on a managed identity: no migration.
        let mut mi = cluster(true, &[("np", "v1")]);
        mi.resource_uid = Some("uid-2".into());
        mi.created_at = Some(t(-1000));
        let h2 = obs(Some(&h1), &mi, t(24), &[]);
        assert!(h2.migration.is_none(), "{h2:?}");
        assert_eq!(h2.first_seen, t(24));
        assert_eq!(
            h2.sp_client_id, None,
            "the old cluster's SP is not this one's"
        );

        // No resourceUID in the source: a creation time after the last sighting.
        let mut mi = cluster(true, &[("np", "v1")]);
        mi.created_at = Some(t(12));
        let old = ClusterHistory {
            resource_uid: None,
            created_at: None,
            ..h1.clone()
        };
        assert!(recreated(&old, &mi));
        assert!(obs(Some(&old), &mi, t(24), &[]).migration.is_none());
        // A creation time that differs by more than a second from the remembered one.
        assert!(recreated(
            &ClusterHistory {
                resource_uid: None,
                ..h1.clone()
            },
            &mi
        ));

        // The same cluster, its times printed with another precision: a migration.
        let mut mi = cluster(true, &[("np", "v1")]);
        mi.resource_uid = Some("UID-1".into());
        mi.created_at = Some(t(-1000) + Duration::milliseconds(400));
        assert!(!recreated(&h1, &mi));
        assert!(obs(Some(&h1), &mi, t(24), &[]).migration.is_some());
        // A source without either field: nothing to tell, the same cluster.
        let bare = cluster(true, &[("np", "v1")]);
        assert!(!recreated(&h1, &bare));
        let h = obs(Some(&h1), &bare, t(24), &[]);
        assert_eq!(h.resource_uid.as_deref(), Some("uid-1"), "kept when unseen");
    }

    #[test]
    fn flip_kinds() {
        let mut c = cluster(true, &[]);
        assert_eq!(
            crate::rules::migration::flip_kind(&c),
            FlipKind::SystemAssigned
        );
        c.identity.as_mut().unwrap().kind = IdentityType::UserAssigned;
        assert_eq!(
            crate::rules::migration::flip_kind(&c),
            FlipKind::UserAssigned
        );
        c.name = "c".into();
        c.node_resource_group = Some("MC_rg_c_westeurope".into());
        c.kubelet = Some(crate::inventory::IdentityRef {
            resource_id: Some("/subscriptions/s/resourceGroups/ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/my-kubelet".into()),
            ..Default::default()
        });
        assert_eq!(crate::rules::migration::flip_kind(&c), FlipKind::OwnKubelet);
        c.kubelet.as_mut().unwrap().resource_id = Some("/subscriptions/s/resourcegroups/mc_rg_c_westeurope/providers/Microsoft.ManagedIdentity/userAssignedIdentities/c-agentpool".into());
        assert_eq!(
            crate::rules::migration::flip_kind(&c),
            FlipKind::UserAssigned
        );
    }

    #[test]
    fn pending_candidates_are_the_pools_of_the_last_service_principal_run() {
        let sp = cluster(false, &[("NP1", "v1"), ("np2", "v1")]);
        let h1 = obs(None, &sp, t(0), &[]);
        let key = |h: &ClusterHistory| -> Vec<(String, String)> {
            let hist = History::default().advance(vec![h.clone()], BTreeSet::new(), t(48), 400);
            pending_candidates(&hist)
                .into_iter()
                .map(|k| (k.pool, k.node_image_version))
                .collect()
        };
        // Still on the service principal: the flip may show tonight.
        assert_eq!(
            key(&h1),
            [("np1".into(), "v1".into()), ("np2".into(), "v1".into())]
        );
        // A system-assigned flip (documented to re-image): nothing to read.
        let sa = obs(
            Some(&h1),
            &cluster(true, &[("np1", "v2"), ("np2", "v1")]),
            t(24),
            &[],
        );
        assert!(key(&sa).is_empty());
        // A user-assigned flip: the pools as the last service-principal run saw them.
        let mut ua = cluster(true, &[("np1", "v2"), ("np2", "v1")]);
        ua.identity.as_mut().unwrap().kind = IdentityType::UserAssigned;
        let h2 = obs(Some(&h1), &ua, t(24), &[]);
        assert_eq!(
            key(&h2),
            [("np1".into(), "v1".into()), ("np2".into(), "v1".into())]
        );
        assert_eq!(
            pending_candidates(&History::default().advance(vec![h2], BTreeSet::new(), t(48), 400))
                [0]
            .cluster_id,
            sp.id.to_ascii_lowercase()
        );
    }

    #[test]
    fn migrated_service_principals_are_listed_once() {
        let sp = cluster(false, &[("np", "v1")]);
        let h1 = obs(None, &sp, t(0), &[]);
        let h2 = obs(Some(&h1), &cluster(true, &[("np", "v1")]), t(24), &[]);
        let mut other = h2.clone();
        other.id = "other".into();
        let h = History::default().advance(vec![h1, h2, other], BTreeSet::new(), t(24), 400);
        assert_eq!(migrated_sp_client_ids(&h), ["app-id"]);
    }

    #[test]
    fn save_load_round_trip_and_corrupt_is_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(History::load(dir.path()).unwrap(), History::default());
        let c = cluster(false, &[("np", "v1")]);
        let h =
            History::default().advance(vec![obs(None, &c, t(0), &[])], BTreeSet::new(), t(0), 400);
        h.save(dir.path()).unwrap();
        assert_eq!(History::load(dir.path()).unwrap(), h);
        std::fs::write(dir.path().join(STATE_FILE), "{\"version\":1,").unwrap();
        let e = format!("{:#}", History::load(dir.path()).unwrap_err());
        assert!(e.contains("corrupt") && e.contains("state.json"), "{e}");
    }

    #[test]
    fn a_loaded_history_holds_each_fingerprint_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(STATE_FILE),
            r#"{"version":1,"last_run":"2026-01-01T00:00:00Z","clusters":{},"findings":["a|x","b|y"],
               "finding_first_seen":{"a|x":"2025-12-01T00:00:00Z","c|z":"2025-11-01T00:00:00Z"}}"#,
        )
        .unwrap();
        let h = History::load(dir.path()).unwrap();
        let (a, _) = h.finding_first_seen.get_key_value("a|x").unwrap();
        assert!(Arc::ptr_eq(a, h.findings.get("a|x").unwrap()), "one string");
        assert_eq!(
            h.finding_first_seen
                .keys()
                .map(|k| &**k)
                .collect::<Vec<_>>(),
            ["a|x", "c|z"]
        );
        assert_eq!(h.finding_seen("a|x"), Some(t(-31 * 24)));
        assert_eq!(h.finding_seen("b|y"), Some(t(0)));
        assert_eq!(h.finding_seen("c|z"), Some(t(-61 * 24)));
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
        let h =
            History::default().advance(vec![obs(None, &c, t(0), &[])], BTreeSet::new(), t(0), 400);
        let later = h.clone().advance(vec![], BTreeSet::new(), t(24 * 401), 400);
        assert!(later.clusters.is_empty());
        let sooner = h.advance(vec![], BTreeSet::new(), t(24 * 10), 400);
        assert_eq!(sooner.clusters.len(), 1);
    }
}
