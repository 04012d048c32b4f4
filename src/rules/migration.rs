//! The kubelet migration verdict: after a cluster's control plane left its service
//! principal (SP) for a managed identity (MI), does kubelet on each pool still use the
//! SP? No ARM field says so; the answer comes from history (`crate::history`): the
//! pools as the last SP run saw them ([`Migration::sp_pools`]), as the first run after
//! the flip saw them ([`Migration::flip_pools`]), and now.
//!
//! # What Microsoft documents (MicrosoftDocs/azure-aks-docs, `articles/aks/`)
//!
//! - `system-assigned-managed-identity.md` L94 (since 59242d249b4eb0c20aa0bcac16a27e51a8ffe0ec,
//!   2026-07-31; file at c6afddeaf4e1b26a2ec98154037207fdd6915a75): the update to a
//!   system-assigned identity re-images all nodes "so the Kubelet can immediately start
//!   using a managed identity as well". Before that commit the page said kubelet keeps
//!   the SP "until you also upgrade your agent pool". Whether Azure's behaviour or only
//!   the page changed that day is not documented.
//! - `user-assigned-managed-identity.md` L166 (ccbb339ba694585c6436541c025c50c62a308c98,
//!   2026-07-02): "Kubelet continues using a service principal until you also upgrade
//!   your node pool" (`az aks nodepool upgrade --node-image-only`).
//! - Both pages L64: "An update only works if there's a VHD update to consume. If you're
//!   running the latest VHD, you need to wait until the next VHD is available".
//! - `pre-created-kubelet-managed-identity.md` (ccbb339b…): "Updating the kubelet managed
//!   identity upgrades your AKS cluster's node pools".
//! - `upgrade-aks-faq.yml` L139-141 (4c57931ca45685fd16f80fb0edf0bf50af65af5a): "During
//!   an AKS cluster upgrade, nodes are reimaged": a Kubernetes version change re-images.
//! - `kubernetes-service-principal.md` L45 (48d22cf3361289c50e5798a6f788ad8fe2164303): on the
//!   nodes "the service principal credentials are stored in the `/etc/kubernetes/azure.json`
//!   file" — what AKSMI003's verify command reads (`kubectl debug node/…`, `node-access.md`).
//! - A re-image onto the same VHD keeps `nodeImageVersion` (the recording
//!   `test_aks_update_to_msi_cluster` shows the pool `Updating` during the flip and the
//!   same image after): an unchanged image cannot prove "pending" when the docs say the
//!   flip itself re-imaged.
//!
//! # Decision table, per pool (first matching row wins)
//!
//! S = the pool on the last SP run, F = on the first run after the flip, N = now; a
//! version "changed" only when both sides are known and differ (image or Kubernetes).
//! The cluster deleted and created again is handled before: its history restarts, no
//! migration is inferred (`history::recreated`).
//!
//! | # | condition | pool | why |
//! |---|---|---|---|
//! | 1 | pool not in F | on MI | created after the flip |
//! | 2 | N changed from F | on MI | re-imaged after the flip was seen |
//! | 3 | pool not in S, flip user-assigned | unknown | created between the last SP run and the flip was seen: before the flip it joined on the SP, after it on the MI |
//! | 4 | pool not in S, other flips | on MI | either way the docs put kubelet on the MI (the flip re-imaged, or it joined after) |
//! | 5 | N changed from S, flip user-assigned | unknown | re-imaged in the interval of the flip: before the flip, kubelet stayed on the SP |
//! | 6 | N changed from S, other flips | on MI | re-imaged by the flip (docs) or after it |
//! | 7 | image unknown in S or N | unknown | nothing to compare |
//! | 8 | unchanged, flip user-assigned | **pending** | docs: kubelet keeps the SP until the pool is upgraded |
//! | 9 | unchanged, flip system-assigned | unknown | docs (2026-07-31): the flip re-imaged every node, keeping the image; older text said pending — the signals disagree, so "verify", never high |
//! | 10 | unchanged, own kubelet identity came with the flip | unknown | docs: that update upgrades every pool — same disagreement |
//!
//! Records written before S and F were kept (no [`Migration::sp_pools`]) compare N with
//! `pools_at_flip` (F, images only) by rows 1, 2, 7-10. Records without a flip kind take
//! it from the cluster as it is now.
//!
//! Cluster: any pool pending → `pending` (AKSMI002, high, one finding per pool; the
//! other pools in doubt get one AKSMI003 too); else any unknown → `unknown` (AKSMI003,
//! medium, message "verify: …"); else `complete`.
use std::collections::HashMap;

use super::checks::new_finding;
use super::evaluated::{Checks, Status};
use super::remedy::{self, q};
use super::{ClusterCtx, Finding, IdentityKey, RuleId, Severity};
use crate::history::{self, ClusterHistory, FlipKind, Migration, MigrationStatus, PoolRecord};
use crate::inventory::{AgentPool, Cluster, SmallMap, SpCredential};

/// One pool's state after the flip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolState {
    OnManagedIdentity,
    Pending,
    Unknown,
}

/// Why a pool got its state (the decision table's row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    CreatedAfterFlip,
    ReimagedAfterFlip,
    CreatedInFlipInterval,
    ReimagedInFlipInterval,
    ImageUnknown,
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolVerdict {
    /// As Azure printed it.
    pub name: String,
    pub state: PoolState,
    pub why: Why,
}

/// The cluster's verdict with every pool's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: MigrationStatus,
    pub kind: Option<FlipKind>,
    pub pools: Vec<PoolVerdict>,
}

impl Verdict {
    fn names(&self, state: PoolState) -> Vec<String> {
        self.pools
            .iter()
            .filter(|p| p.state == state)
            .map(|p| p.name.clone())
            .collect()
    }
}

/// A version that changed: both known and different.
fn changed(a: &Option<String>, b: &Option<String>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a.trim() != b.trim())
}

fn record_changed(then: &PoolRecord, now: &AgentPool) -> bool {
    changed(&then.node_image_version, &now.node_image_version)
        || changed(&then.orchestrator_version, &now.orchestrator_version)
}

/// The decision table for one pool (see the module documentation).
fn pool_verdict(
    pool: &AgentPool,
    kind: FlipKind,
    sp_pools: Option<&SmallMap<PoolRecord>>,
    flip_pools: &SmallMap<PoolRecord>,
) -> (PoolState, Why) {
    use PoolState::*;
    let key = pool.name.to_ascii_lowercase();
    let user_assigned = kind == FlipKind::UserAssigned;
    let Some(at_flip) = flip_pools.get(&key) else {
        return (OnManagedIdentity, Why::CreatedAfterFlip); // 1
    };
    if record_changed(at_flip, pool) {
        return (OnManagedIdentity, Why::ReimagedAfterFlip); // 2
    }
    // Legacy records: F is all there is.
    let base = match sp_pools {
        Some(s) => match s.get(&key) {
            None if user_assigned => return (Unknown, Why::CreatedInFlipInterval), // 3
            None => return (OnManagedIdentity, Why::CreatedInFlipInterval),        // 4
            Some(b) => b,
        },
        None => at_flip,
    };
    if record_changed(base, pool) {
        return if user_assigned {
            (Unknown, Why::ReimagedInFlipInterval) // 5
        } else {
            (OnManagedIdentity, Why::ReimagedInFlipInterval) // 6
        };
    }
    if base.node_image_version.is_none() || pool.node_image_version.is_none() {
        return (Unknown, Why::ImageUnknown); // 7
    }
    match kind {
        FlipKind::UserAssigned => (Pending, Why::Unchanged), // 8
        FlipKind::SystemAssigned | FlipKind::OwnKubelet => (Unknown, Why::Unchanged), // 9, 10
    }
}

/// The records of a migration written before pool records were kept.
fn legacy_flip_pools(m: &Migration) -> SmallMap<PoolRecord> {
    m.pools_at_flip
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                PoolRecord {
                    node_image_version: v.clone(),
                    orchestrator_version: None,
                },
            )
        })
        .collect()
}

/// The verdict for `c` given its history after this run.
pub fn verdict(c: &Cluster, observed: &ClusterHistory) -> Verdict {
    let none = |status| Verdict {
        status,
        kind: None,
        pools: vec![],
    };
    if observed.mode == crate::rules::model::ControlPlaneIdentity::ServicePrincipal {
        return none(MigrationStatus::NotMigrated);
    }
    let Some(m) = &observed.migration else {
        return none(MigrationStatus::NoneObserved);
    };
    let kind = m.kind.unwrap_or_else(|| history::flip_kind(c));
    let legacy;
    let flip_pools = match &m.flip_pools {
        Some(f) => f,
        None => {
            legacy = legacy_flip_pools(m);
            &legacy
        }
    };
    let pools: Vec<PoolVerdict> = c
        .pools
        .iter()
        .map(|p| {
            let (state, why) = pool_verdict(p, kind, m.sp_pools.as_ref(), flip_pools);
            PoolVerdict {
                name: p.name.clone(),
                state,
                why,
            }
        })
        .collect();
    let status = if pools.iter().any(|p| p.state == PoolState::Pending) {
        MigrationStatus::Pending
    } else if pools.iter().any(|p| p.state == PoolState::Unknown) {
        MigrationStatus::Unknown
    } else {
        MigrationStatus::Complete
    };
    Verdict {
        status,
        kind: Some(kind),
        pools,
    }
}

/// The migration status and, for `pending`, the pools still on the service principal;
/// for `unknown`, the pools whose state cannot be established.
pub fn status(c: &Cluster, observed: &ClusterHistory) -> (MigrationStatus, Vec<String>) {
    let v = verdict(c, observed);
    let pools = match v.status {
        MigrationStatus::Pending => v.names(PoolState::Pending),
        MigrationStatus::Unknown => v.names(PoolState::Unknown),
        _ => vec![],
    };
    (v.status, pools)
}

/// The service principal a migrated cluster left (its kubelet may still use it).
fn old_sp(observed: &ClusterHistory) -> Option<&str> {
    observed
        .migration
        .as_ref()
        .and_then(|m| m.sp_client_id.as_deref())
        .or(observed.sp_client_id.as_deref())
        .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("msi"))
}

fn day(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// Whether `--node-image-only` has nothing to apply: the inventory says the pool
/// already runs the latest node image.
fn on_latest_image(p: &AgentPool) -> Option<&str> {
    match (&p.node_image_version, &p.latest_node_image_version) {
        (Some(now), Some(latest)) if now.trim() == latest.trim() => Some(latest),
        _ => None,
    }
}

/// The fix for a pool still on the service principal.
fn reimage(c: &Cluster, p: &AgentPool) -> String {
    let Some(latest) = on_latest_image(p) else {
        return remedy::reimage_pool(c, &p.name);
    };
    let (g, n, pool) = (q(&c.resource_group), q(&c.name), q(&p.name));
    format!(
        "# pool {name} already runs the latest node image ({latest}): `az aks nodepool upgrade --node-image-only` has nothing to apply until a newer image is released (\"An update only works if there's a VHD update to consume\").\n\
         # A Kubernetes version upgrade re-images every node of the pool (up to the control plane's version; `az aks get-upgrades` / `az aks upgrade` for the control plane); or add a new pool, move the workloads and delete this one.\n\
         az aks nodepool get-upgrades --resource-group {g} --cluster-name {n} --nodepool-name {pool}\n\
         # then, with a version listed under `upgrades`: az aks nodepool upgrade --resource-group {g} --cluster-name {n} --name {pool} --kubernetes-version VERSION",
        name = p.name,
    )
}

/// How to tell which credential kubelet uses on the pools in doubt.
fn verify(c: &Cluster, pools: &[&str], sp: Option<&str>) -> String {
    let (g, n) = (q(&c.resource_group), q(&c.name));
    let kubelet = c
        .kubelet
        .as_ref()
        .and_then(|k| k.client_id.as_deref())
        .map(|id| format!(" `{id}`"))
        .unwrap_or_default();
    let sp = sp.map(|s| format!(" `{s}`")).unwrap_or_default();
    let mut out = vec![
        format!("az aks nodepool list --resource-group {g} --cluster-name {n} --query \"[].{{name:name, nodeImageVersion:nodeImageVersion, kubernetes:currentOrchestratorVersion, state:provisioningState}}\" -o table"),
        format!("# kubelet's Azure credential on a node (it starts a privileged debug pod; delete it after): \"useManagedIdentityExtension\": true with \"userAssignedIdentityID\" = the kubelet identity{kubelet} means the managed identity; \"aadClientId\" = the service principal{sp} means the pool still needs `az aks nodepool upgrade --node-image-only`"),
    ];
    for p in pools {
        out.push(format!(
            "# kubectl debug node/\"$(kubectl get nodes -l agentpool={} -o jsonpath='{{.items[0].metadata.name}}')\" -it --image=mcr.microsoft.com/azurelinux/busybox:1.36 -- chroot /host grep -E '\"(aadClientId|useManagedIdentityExtension|userAssignedIdentityID)\"' /etc/kubernetes/azure.json",
            q(p)
        ));
    }
    out.join("\n")
}

fn doubt(v: &PoolVerdict, kind: FlipKind, m: &Migration) -> String {
    let window = format!(
        "between {} (last run on the service principal) and {} (first run after the switch)",
        day(m.last_seen_as_sp),
        day(m.observed_at)
    );
    let what = match (v.why, kind) {
        (Why::ImageUnknown, _) => "its node image version is not reported".to_string(),
        (Why::CreatedInFlipInterval, _) => format!(
            "created {window}: before the switch its nodes joined with the service principal, after it with the managed identity"
        ),
        (Why::ReimagedInFlipInterval, _) => format!(
            "its node image or Kubernetes version changed {window}: an upgrade before the switch leaves kubelet on the service principal"
        ),
        (_, FlipKind::OwnKubelet) => "node image and Kubernetes version unchanged since the service principal; the docs say the update that brings a kubelet identity upgrades every pool, which need not change the image".to_string(),
        _ => "node image and Kubernetes version unchanged since the service principal; the docs (since 2026-07-31) say the switch to a system-assigned identity re-images every node, which keeps the image version — older text said kubelet stays on the service principal until a node image upgrade".to_string(),
    };
    format!("{} ({what})", v.name)
}

/// AKSMI002 (one per pool still on the service principal) and AKSMI003 (one for the
/// pools whose state cannot be established).
pub fn findings(ctx: &ClusterCtx) -> Vec<Finding> {
    let c = ctx.cluster;
    let v = verdict(c, ctx.observed);
    let (Some(m), Some(kind)) = (ctx.observed.migration.as_ref(), v.kind) else {
        return vec![];
    };
    let sp = old_sp(ctx.observed);
    let sp_named = sp.map(|s| format!(" `{s}`")).unwrap_or_default();
    let mut out = Vec::new();
    for pv in v.pools.iter().filter(|p| p.state == PoolState::Pending) {
        let Some(pool) = c.pools.iter().find(|p| p.name == pv.name) else {
            continue;
        };
        let latest = match on_latest_image(pool) {
            Some(_) => "; it already runs the latest node image, so `--node-image-only` alone changes nothing",
            None => "",
        };
        out.push(new_finding(
            ctx,
            RuleId::KubeletPending,
            IdentityKey::Kubelet,
            &pv.name,
            format!(
                "pool `{}` has not been re-imaged since the switch to a user-assigned managed identity (seen {}; same node image and Kubernetes version as on the service principal): kubelet still uses the service principal{sp_named}{latest}",
                pv.name,
                day(m.observed_at)
            ),
            reimage(c, pool),
        ));
    }
    let unsure: Vec<&PoolVerdict> = v
        .pools
        .iter()
        .filter(|p| p.state == PoolState::Unknown)
        .collect();
    if !unsure.is_empty() {
        let names: Vec<&str> = unsure.iter().map(|p| p.name.as_str()).collect();
        let reasons: Vec<String> = unsure.iter().map(|p| doubt(p, kind, m)).collect();
        out.push(new_finding(
            ctx,
            RuleId::KubeletUnknown,
            IdentityKey::Kubelet,
            "",
            format!(
                "verify: the control plane left service principal{sp_named} (seen {}), but Azure's data cannot tell whether kubelet did on pool(s) {}",
                day(m.observed_at),
                reasons.join("; ")
            ),
            verify(c, &names, sp),
        ));
    }
    out
}

/// The pools still pending, for the AKSMI005 message.
fn pending_pools(ctx: &ClusterCtx) -> Option<String> {
    (ctx.status == MigrationStatus::Pending && !ctx.status_pools.is_empty())
        .then(|| ctx.status_pools.join(", "))
}

/// AKSMI005 for a migrated cluster whose kubelet still uses the old service principal:
/// that principal's credential still matters (critical once expired, high within 30
/// days). The fix is the re-image, which moves kubelet off it.
pub fn old_sp_secret_findings(
    ctx: &ClusterCtx,
    creds: &HashMap<String, &SpCredential>,
) -> Vec<Finding> {
    let (Some(pools), Some(sp)) = (pending_pools(ctx), old_sp(ctx.observed)) else {
        return vec![];
    };
    let Some(cred) = creds.get(&sp.to_ascii_lowercase()) else {
        return vec![];
    };
    let Some(expiry) = cred.nearest_expiry else {
        return vec![];
    };
    let days = (expiry - ctx.now).num_days();
    let on = format!(
        "kubelet on pool(s) {pools} still uses service principal `{sp}` ({}) from before the switch to managed identity",
        cred.app_display_name
    );
    let (severity, message) = if expiry <= ctx.now {
        (
            Severity::Critical,
            format!(
                "{on}; its credential expired {} days ago ({}): those nodes can no longer authenticate to Azure",
                -days,
                day(expiry)
            ),
        )
    } else if days <= 30 {
        (
            Severity::High,
            format!(
                "{on}; its credential expires in {days} days ({})",
                day(expiry)
            ),
        )
    } else {
        return vec![];
    };
    let c = ctx.cluster;
    let mut fix = vec![format!(
        "# inspect only: az ad sp credential list --id {} --query \"[].{{keyId:keyId, end:endDateTime}}\" -o table",
        q(sp)
    )];
    fix.extend(
        c.pools
            .iter()
            .filter(|p| ctx.status_pools.contains(&p.name))
            .map(|p| reimage(c, p)),
    );
    let mut f = new_finding(
        ctx,
        RuleId::SecretExpiry,
        IdentityKey::Kubelet,
        "",
        message,
        fix.join("\n"),
    );
    f.severity = severity;
    vec![f]
}

/// A managed-identity cluster whose kubelet is pending still depends on the old
/// service principal's credential: without it read, secret expiry is not evaluated.
pub fn old_sp_secret_checks(
    checks: &mut Checks,
    status: MigrationStatus,
    observed: &ClusterHistory,
    creds: &HashMap<String, &SpCredential>,
    graph: bool,
) {
    if status != MigrationStatus::Pending || !checks.secret_expiry.is_evaluated() {
        return;
    }
    let Some(sp) = old_sp(observed) else {
        return;
    };
    if creds.contains_key(&sp.to_ascii_lowercase()) {
        return;
    }
    checks.secret_expiry = Status::NotEvaluated(if graph {
        format!("kubelet still uses service principal `{sp}`, whose credentials were not found in Microsoft Graph")
    } else {
        format!("kubelet still uses service principal `{sp}`; its credential expiry needs Microsoft Graph (--graph)")
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::observe;
    use crate::inventory::{ClusterIdentity, IdentityType, UserAssignedIdentity};
    use chrono::{DateTime, Duration, Utc};

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + Duration::hours(h)
    }

    /// `mode`: "sp", "sa" or "ua"; pools: (name, image, Kubernetes version).
    fn cluster(mode: &str, pools: &[(&str, Option<&str>, &str)]) -> Cluster {
        let identity = match mode {
            "sp" => None,
            kind => Some(ClusterIdentity {
                kind: if kind == "sa" {
                    IdentityType::SystemAssigned
                } else {
                    IdentityType::UserAssigned
                },
                principal_id: None,
                tenant_id: None,
                user_assigned: if kind == "ua" {
                    vec![UserAssignedIdentity {
                        resource_id: "/subscriptions/s/resourceGroups/ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/cp".into(),
                        principal_id: Some("p".into()),
                        client_id: None,
                    }]
                } else {
                    vec![]
                },
            }),
        };
        Cluster {
            id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c".into(),
            name: "c".into(),
            resource_group: "rg".into(),
            sp_client_id: Some(if mode == "sp" { "app-id" } else { "msi" }.into()),
            identity,
            pools: pools
                .iter()
                .map(|(n, img, k8s)| AgentPool {
                    name: n.to_string(),
                    node_image_version: img.map(str::to_string),
                    orchestrator_version: Some(k8s.to_string()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// Observes the clusters night after night; the verdict of the last night.
    fn nights(cs: &[Cluster]) -> (MigrationStatus, Vec<String>, ClusterHistory) {
        let mut h: Option<ClusterHistory> = None;
        for (i, c) in cs.iter().enumerate() {
            h = Some(observe(h.as_ref(), c, t(24 * i as i64), &[]));
        }
        let h = h.unwrap();
        let (s, p) = status(cs.last().unwrap(), &h);
        (s, p, h)
    }

    const V1: Option<&str> = Some("AKSUbuntu-2204gen2containerd-202601.12.0");
    const V2: Option<&str> = Some("AKSUbuntu-2204gen2containerd-202602.09.0");

    #[test]
    fn first_run_and_sp_runs_never_guess() {
        let mi = cluster("ua", &[("np", V1, "1.31.4")]);
        assert_eq!(nights(&[mi]).0, MigrationStatus::NoneObserved);
        let sp = cluster("sp", &[("np", V1, "1.31.4")]);
        assert_eq!(nights(&[sp]).0, MigrationStatus::NotMigrated);
    }

    #[test]
    fn user_assigned_flip_pending_until_reimaged() {
        let sp = cluster("sp", &[("np1", V1, "1.31.4"), ("np2", V1, "1.31.4")]);
        let ua = cluster("ua", &[("np1", V1, "1.31.4"), ("np2", V1, "1.31.4")]);
        let (s, pools, _) = nights(&[sp.clone(), ua.clone()]);
        assert_eq!(
            (s, pools),
            (MigrationStatus::Pending, vec!["np1".into(), "np2".into()])
        );

        // np1 re-imaged, np3 added after the flip: np2 only.
        let later = cluster(
            "ua",
            &[
                ("np1", V2, "1.31.4"),
                ("np2", V1, "1.31.4"),
                ("np3", V1, "1.31.4"),
            ],
        );
        let (s, pools, _) = nights(&[sp.clone(), ua.clone(), later]);
        assert_eq!((s, pools), (MigrationStatus::Pending, vec!["np2".into()]));

        // An `az aks upgrade` after the flip, same image string: re-imaged.
        let upgraded = cluster("ua", &[("np1", V2, "1.31.4"), ("np2", V1, "1.32.2")]);
        let (s, _, h) = nights(&[sp, ua, upgraded]);
        assert_eq!(s, MigrationStatus::Complete);
        assert_eq!(h.migration.unwrap().observed_at, t(24), "flip time is kept");
    }

    #[test]
    fn system_assigned_flip_with_unchanged_images_is_unknown_never_pending() {
        let sp = cluster("sp", &[("np1", V1, "1.31.4")]);
        let sa = cluster("sa", &[("np1", V1, "1.31.4")]);
        let (s, pools, h) = nights(&[sp, sa.clone()]);
        assert_eq!((s, pools), (MigrationStatus::Unknown, vec!["np1".into()]));
        let v = verdict(&sa, &h);
        assert_eq!(v.kind, Some(FlipKind::SystemAssigned));
        assert_eq!(v.pools[0].why, Why::Unchanged);
    }

    #[test]
    fn changes_in_the_flip_interval() {
        // Migration and `--node-image-only` (np1) or `az aks upgrade` (np2) between
        // two runs, a pool added in the same interval (np3).
        let sp = cluster("sp", &[("np1", V1, "1.31.4"), ("np2", V1, "1.31.4")]);
        let after = |mode| {
            cluster(
                mode,
                &[
                    ("np1", V2, "1.31.4"),
                    ("np2", V1, "1.32.2"),
                    ("np3", V1, "1.32.2"),
                ],
            )
        };
        // System-assigned: every order of events ends on the managed identity.
        let (s, _, _) = nights(&[sp.clone(), after("sa")]);
        assert_eq!(s, MigrationStatus::Complete);
        // User-assigned: an upgrade before the flip would leave kubelet on the SP.
        let (s, pools, h) = nights(&[sp.clone(), after("ua")]);
        assert_eq!(
            (s, pools),
            (
                MigrationStatus::Unknown,
                vec!["np1".into(), "np2".into(), "np3".into()]
            )
        );
        let whys: Vec<Why> = verdict(&after("ua"), &h)
            .pools
            .iter()
            .map(|p| p.why)
            .collect();
        assert_eq!(
            whys,
            [
                Why::ReimagedInFlipInterval,
                Why::ReimagedInFlipInterval,
                Why::CreatedInFlipInterval
            ]
        );
        // ... until a later change settles it.
        let settled = cluster(
            "ua",
            &[
                ("np1", V2, "1.32.2"),
                ("np2", V2, "1.32.2"),
                ("np3", V2, "1.32.2"),
            ],
        );
        assert_eq!(
            nights(&[sp, after("ua"), settled]).0,
            MigrationStatus::Complete
        );
    }

    #[test]
    fn own_kubelet_flip_is_unknown_when_unchanged() {
        let sp = cluster("sp", &[("np1", V1, "1.31.4")]);
        let mut own = cluster("ua", &[("np1", V1, "1.31.4")]);
        own.node_resource_group = Some("MC_rg_c_westeurope".into());
        own.kubelet = Some(crate::inventory::IdentityRef {
            resource_id: Some("/subscriptions/s/resourceGroups/ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/kubelet".into()),
            ..Default::default()
        });
        let (s, _, h) = nights(&[sp, own.clone()]);
        assert_eq!(s, MigrationStatus::Unknown);
        assert_eq!(verdict(&own, &h).kind, Some(FlipKind::OwnKubelet));
    }

    #[test]
    fn missing_image_version_is_unknown() {
        let sp = cluster("sp", &[("np", V1, "1.31.4")]);
        let ua = cluster("ua", &[("np", None, "1.31.4")]);
        let (s, pools, h) = nights(&[sp, ua.clone()]);
        assert_eq!((s, pools), (MigrationStatus::Unknown, vec!["np".into()]));
        assert_eq!(verdict(&ua, &h).pools[0].why, Why::ImageUnknown);
    }

    #[test]
    fn old_records_compare_with_the_pools_at_flip() {
        // Written by an older version: no kind, no pool records.
        let old = |mode: &str| -> ClusterHistory {
            serde_json::from_str(&format!(
                r#"{{"id":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c",
                    "first_seen":"2026-01-01T00:00:00Z","last_seen":"2026-01-02T00:00:00Z",
                    "mode":"{mode}","sp_client_id":"app-id","pools":{{"np1":"{v1}","np2":"{v1}"}},
                    "migration":{{"observed_at":"2026-01-02T00:00:00Z","last_seen_as_sp":"2026-01-01T00:00:00Z",
                                 "sp_client_id":"app-id","pools_at_flip":{{"np1":"{v1}","np2":"{v1}"}}}},
                    "sp_acr_registries":[]}}"#,
                v1 = V1.unwrap()
            ))
            .unwrap()
        };
        let now = |mode| {
            cluster(
                mode,
                &[
                    ("np1", V1, "1.31.4"),
                    ("np2", V2, "1.31.4"),
                    ("np3", V1, "1.31.4"),
                ],
            )
        };
        let h = observe(Some(&old("user_assigned")), &now("ua"), t(48), &[]);
        assert_eq!(
            status(&now("ua"), &h),
            (MigrationStatus::Pending, vec!["np1".to_string()])
        );
        let h = observe(Some(&old("system_assigned")), &now("sa"), t(48), &[]);
        assert_eq!(
            status(&now("sa"), &h),
            (MigrationStatus::Unknown, vec!["np1".to_string()])
        );
    }

    #[test]
    fn a_recreated_cluster_is_no_migration() {
        let mut sp = cluster("sp", &[("np1", V1, "1.31.4")]);
        sp.resource_uid = Some("a".into());
        let mut ua = cluster("ua", &[("np1", V1, "1.31.4")]);
        ua.resource_uid = Some("b".into());
        assert_eq!(nights(&[sp, ua]).0, MigrationStatus::NoneObserved);
    }

    #[test]
    fn the_old_service_principal_secret_matters_while_kubelet_is_pending() {
        let sp = cluster("sp", &[("np1", V1, "1.31.4"), ("np2", V1, "1.31.4")]);
        let ua = cluster("ua", &[("np1", V2, "1.31.4"), ("np2", V1, "1.31.4")]);
        let h1 = observe(None, &sp, t(0), &[]);
        let h2 = observe(Some(&h1), &ua, t(24), &[]);
        let h3 = observe(Some(&h2), &ua, t(48), &[]);
        let (status, status_pools) = status(&ua, &h3);
        assert_eq!(status, MigrationStatus::Pending);
        let ctx = ClusterCtx {
            cluster: &ua,
            observed: &h3,
            status,
            status_pools,
            control_plane_principal: None,
            now: t(48),
        };
        let cred = |days: i64| SpCredential {
            client_id: "APP-ID".into(),
            app_display_name: "c-sp".into(),
            nearest_expiry: Some(t(48) + Duration::days(days)),
        };
        let run = |c: &SpCredential| {
            let creds: HashMap<String, &SpCredential> = [("app-id".to_string(), c)].into();
            old_sp_secret_findings(&ctx, &creds)
        };
        let f = run(&cred(-3));
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].rule_id, f[0].severity),
            (RuleId::SecretExpiry, Severity::Critical)
        );
        assert_eq!(f[0].identity, "kubelet");
        assert!(
            f[0].message
                .contains("pool(s) np2 still uses service principal `app-id`"),
            "{}",
            f[0].message
        );
        assert!(
            f[0].remediation.contains("--name np2 --node-image-only"),
            "{}",
            f[0].remediation
        );
        assert!(
            !f[0].remediation.contains("--name np1 "),
            "{}",
            f[0].remediation
        );
        assert_eq!(run(&cred(10))[0].severity, Severity::High);
        assert!(run(&cred(90)).is_empty());

        // Not read: secret expiry is not evaluated for this cluster.
        let mut checks = Checks::default();
        old_sp_secret_checks(&mut checks, status, &h3, &HashMap::new(), true);
        assert!(!checks.secret_expiry.is_evaluated());
        let c = cred(90);
        let creds: HashMap<String, &SpCredential> = [("app-id".to_string(), &c)].into();
        let mut checks = Checks::default();
        old_sp_secret_checks(&mut checks, status, &h3, &creds, true);
        assert!(checks.secret_expiry.is_evaluated());

        // Once complete, nothing.
        let done = cluster("ua", &[("np1", V2, "1.31.4"), ("np2", V2, "1.31.4")]);
        let h4 = observe(Some(&h3), &done, t(72), &[]);
        let (status, status_pools) = super::status(&done, &h4);
        let ctx = ClusterCtx {
            cluster: &done,
            observed: &h4,
            status,
            status_pools,
            control_plane_principal: None,
            now: t(72),
        };
        let c = cred(-3);
        let creds: HashMap<String, &SpCredential> = [("app-id".to_string(), &c)].into();
        assert!(old_sp_secret_findings(&ctx, &creds).is_empty());
        let mut checks = Checks::default();
        old_sp_secret_checks(&mut checks, status, &h4, &HashMap::new(), true);
        assert!(checks.secret_expiry.is_evaluated());
    }

    #[test]
    fn latest_image_changes_the_fix() {
        let c = cluster("ua", &[("np1", V1, "1.31.4")]);
        let mut p = c.pools[0].clone();
        assert_eq!(reimage(&c, &p), remedy::reimage_pool(&c, "np1"));
        p.latest_node_image_version = V2.map(str::to_string);
        assert_eq!(reimage(&c, &p), remedy::reimage_pool(&c, "np1"));
        p.latest_node_image_version = V1.map(str::to_string);
        let fix = reimage(&c, &p);
        assert!(fix.contains("nothing to apply"), "{fix}");
        let runnable: Vec<&str> = fix.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            runnable,
            ["az aks nodepool get-upgrades --resource-group rg --cluster-name c --nodepool-name np1"]
        );
    }
}
