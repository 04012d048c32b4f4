//! The migration verdict with its direct signal (the node resource group's scale sets)
//! and with a flip read from Resource Graph's change history, through
//! [`Report::generate`] in process (`rules::migration`, rows 11-14 and "A flip read
//! from Resource Graph's change history"). Shapes: `inventory::node_signals`.
use chrono::Duration;

use super::builder::*;
use crate::history::MigrationStatus;
use crate::history::PoolRecord;
use crate::inventory::{ChangedFlip, ClusterChanges, NodeScaleSets, ScaleSet};
use crate::rules::{Report, RuleId, Severity};

const V1: &str = "AKSUbuntu-2204gen2containerd-202601.12.0";

/// The kubelet identity's resource id of [`ClusterB::mi`] `a` (AKS prints
/// `resourcegroups` lower-cased; a scale set's identity map may not).
fn kubelet_id() -> String {
    format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/a-agentpool",
        node_rg("a")
    )
}

/// Pool `np`'s scale set: with or without the kubelet identity, its instances'
/// `latestModelApplied`.
fn scale_set(kubelet: bool, instances: &[Option<bool>]) -> NodeScaleSets {
    let mut ids = vec![format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/azurekeyvaultsecretsprovider-a",
        node_rg("a")
    )];
    if kubelet {
        ids.push(
            kubelet_id()
                .replace("/resourceGroups/", "/resourcegroups/")
                .to_uppercase(),
        );
    }
    NodeScaleSets {
        scale_sets: vec![ScaleSet {
            id: format!(
                "{}/providers/Microsoft.Compute/virtualMachineScaleSets/aks-np-12345678-vmss",
                node_rg("a")
            ),
            name: "aks-np-12345678-vmss".into(),
            pool_tag: Some("np".into()),
            identities: Some(ids),
            instances: instances.to_vec(),
        }],
        instances_read: true,
        unread: None,
    }
}

/// Night one on the service principal; night two `mi` (pool `np`, same image) with
/// `signal` read for it.
fn flip(mi: ClusterB, signal: Option<NodeScaleSets>) -> Report {
    let first = Inv::new().cluster(ClusterB::sp("a").pool("np", V1)).run();
    let mut c = mi.pool("np", V1);
    c.0.scale_sets = signal;
    Inv::new()
        .cluster(c)
        .documented("a")
        .after(first.history)
        .report()
}

fn kubelet_findings(r: &Report) -> Vec<(RuleId, Severity, String)> {
    r.findings
        .iter()
        .filter(|f| matches!(f.rule_id, RuleId::KubeletPending | RuleId::KubeletUnknown))
        .map(|f| (f.rule_id, f.severity, f.message.clone()))
        .collect()
}

fn status(r: &Report) -> MigrationStatus {
    r.clusters[0].migration_status
}

#[test]
fn a_positive_scale_set_confirms_a_system_assigned_flip_with_an_unchanged_image() {
    // History alone: unknown (AKSMI003 medium).
    let r = flip(ClusterB::mi("a"), None);
    assert_eq!(status(&r), MigrationStatus::Unknown);
    // The pool's scale set carries the kubelet identity (id compared case-insensitively),
    // every instance on the latest model: on the managed identity.
    let r = flip(
        ClusterB::mi("a"),
        Some(scale_set(true, &[Some(true), Some(true)])),
    );
    assert_eq!(status(&r), MigrationStatus::Complete);
    assert!(
        kubelet_findings(&r).is_empty(),
        "{:?}",
        kubelet_findings(&r)
    );
}

#[test]
fn a_negative_scale_set_keeps_a_user_assigned_flip_pending_high() {
    for (why, signal) in [
        (
            "an instance not on the latest model",
            scale_set(true, &[Some(true), Some(false)]),
        ),
        (
            "the kubelet identity not attached",
            scale_set(false, &[Some(true)]),
        ),
    ] {
        let r = flip(ClusterB::user_assigned("a"), Some(signal));
        assert_eq!(status(&r), MigrationStatus::Pending, "{why}");
        let f = kubelet_findings(&r);
        assert_eq!(f.len(), 1, "{why}: {f:?}");
        assert_eq!(
            (f[0].0, f[0].1),
            (RuleId::KubeletPending, Severity::High),
            "{why}"
        );
        assert!(f[0].2.contains("Resource Graph shows"), "{why}: {}", f[0].2);
    }
}

#[test]
fn a_positive_scale_set_against_pending_history_is_verify_medium_never_high() {
    let r = flip(
        ClusterB::user_assigned("a"),
        Some(scale_set(true, &[Some(true), Some(true)])),
    );
    assert_eq!(status(&r), MigrationStatus::Unknown);
    let f = kubelet_findings(&r);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!((f[0].0, f[0].1), (RuleId::KubeletUnknown, Severity::Medium));
    assert!(
        f[0].2.starts_with("verify:") && f[0].2.contains("its scale set says otherwise"),
        "{}",
        f[0].2
    );
    let fix = &r
        .findings
        .iter()
        .find(|f| f.rule_id == RuleId::KubeletUnknown)
        .unwrap()
        .remediation;
    assert!(
        fix.contains("az vmss list-instances --resource-group MC_rg_a"),
        "{fix}"
    );
}

#[test]
fn absent_or_incomplete_scale_set_rows_change_no_verdict_and_say_so() {
    let no_rows = NodeScaleSets {
        scale_sets: vec![],
        instances_read: true,
        unread: None,
    };
    let mut no_field = scale_set(true, &[Some(true), None]);
    let mut not_read = scale_set(true, &[]);
    not_read.instances_read = false;
    let mut no_map = scale_set(true, &[Some(true)]);
    no_map.scale_sets[0].identities = None;
    for (why, signal, says) in [
        (
            "no rows (no Reader on the node resource group)",
            Some(no_rows.clone()),
            Some("needs Reader there"),
        ),
        (
            "latestModelApplied missing",
            Some(no_field.clone()),
            Some("do not report `latestModelApplied`"),
        ),
        (
            "instances not read",
            Some(not_read.clone()),
            Some("were not read"),
        ),
        (
            "no identity map",
            Some(no_map.clone()),
            Some("lists no user-assigned identities"),
        ),
        ("not read at all", None, None),
    ] {
        let ua = flip(ClusterB::user_assigned("a"), signal.clone());
        assert_eq!(status(&ua), MigrationStatus::Pending, "{why}");
        let f = kubelet_findings(&ua);
        assert_eq!(
            (f[0].0, f[0].1),
            (RuleId::KubeletPending, Severity::High),
            "{why}"
        );
        match says {
            Some(s) => assert!(
                f[0].2.contains("direct signal not available") && f[0].2.contains(s),
                "{why}: {}",
                f[0].2
            ),
            None => assert!(!f[0].2.contains("direct signal"), "{why}: {}", f[0].2),
        }
        let sa = flip(ClusterB::mi("a"), signal);
        assert_eq!(status(&sa), MigrationStatus::Unknown, "{why}");
    }
    // A pool found by AKS's scale-set name when the tag is absent.
    no_field.scale_sets[0].pool_tag = None;
    no_field.scale_sets[0].instances = vec![Some(true)];
    let r = flip(ClusterB::mi("a"), Some(no_field));
    assert_eq!(status(&r), MigrationStatus::Complete);
}

/// A cluster first seen on a managed identity, with its change history read.
fn first_seen(mi: ClusterB, flip: Option<ChangedFlip>) -> Report {
    let mut c = mi.pool("np", V1);
    c.0.changes = Some(ClusterChanges { flip, unread: None });
    Inv::new().cluster(c).documented("a").report()
}

fn changed_flip(before: &str, after: &str) -> ChangedFlip {
    let pools = |v: &str| {
        [(
            "np".to_string(),
            PoolRecord {
                node_image_version: Some(v.into()),
                orchestrator_version: Some("1.30.0".into()),
            },
        )]
        .into_iter()
        .collect()
    };
    ChangedFlip {
        at: now() - Duration::days(5),
        sp_client_id: Some("a-app".into()),
        pools_before: pools(before),
        pools_after: pools(after),
    }
}

#[test]
fn a_flip_from_the_change_history_gives_pending_without_history_and_is_recorded() {
    let out = Inv::new()
        .cluster({
            let mut c = ClusterB::user_assigned("a").pool("np", V1);
            c.0.changes = Some(ClusterChanges {
                flip: Some(changed_flip(V1, V1)),
                unread: None,
            });
            c
        })
        .documented("a")
        .run();
    assert_eq!(status(&out.report), MigrationStatus::Pending);
    let f = kubelet_findings(&out.report);
    assert_eq!((f[0].0, f[0].1), (RuleId::KubeletPending, Severity::High));
    assert!(
        f[0].2.contains("from Resource Graph's change history") && f[0].2.contains("`a-app`"),
        "{}",
        f[0].2
    );
    // Recorded: the next night needs no change history to say the same.
    let h = out.history.get(&cluster_id("a")).unwrap();
    let m = h.migration.as_ref().unwrap();
    assert!(m.from_changes);
    assert_eq!(m.observed_at, now() - Duration::days(5));
    assert_eq!(h.changes_read, Some(now()));
    let next = Inv::new()
        .cluster(ClusterB::user_assigned("a").pool("np", V1))
        .documented("a")
        .after(out.history)
        .report();
    assert_eq!(status(&next), MigrationStatus::Pending);

    // A system-assigned flip: unknown (medium); re-imaged after the flip: complete.
    let sa = first_seen(ClusterB::mi("a"), Some(changed_flip(V1, V1)));
    assert_eq!(status(&sa), MigrationStatus::Unknown);
    let later = first_seen(ClusterB::user_assigned("a"), Some(changed_flip("v0", "v0")));
    assert_eq!(status(&later), MigrationStatus::Complete);
}

#[test]
fn no_flip_in_the_change_history_is_none_observed_as_before() {
    for changes in [
        None,
        Some(ClusterChanges {
            flip: None,
            unread: None,
        }),
    ] {
        let mut c = ClusterB::user_assigned("a").pool("np", V1);
        c.0.changes = changes.clone();
        let out = Inv::new().cluster(c).documented("a").run();
        assert_eq!(status(&out.report), MigrationStatus::NoneObserved);
        assert!(kubelet_findings(&out.report).is_empty());
        let h = out.history.get(&cluster_id("a")).unwrap();
        assert_eq!(
            h.changes_read.is_some(),
            changes.is_some(),
            "read once, remembered"
        );
    }
    // A flip older than the cluster's creation belongs to a deleted namesake.
    let mut c = ClusterB::user_assigned("a")
        .created(now() - Duration::days(1))
        .pool("np", V1);
    c.0.changes = Some(ClusterChanges {
        flip: Some(changed_flip(V1, V1)),
        unread: None,
    });
    let r = Inv::new().cluster(c).documented("a").report();
    assert_eq!(status(&r), MigrationStatus::NoneObserved);
}

#[test]
fn a_change_history_that_could_not_be_read_is_not_evaluated_never_none_observed() {
    let mut c = ClusterB::user_assigned("a").pool("np", V1);
    c.0.changes = Some(ClusterChanges {
        flip: None,
        unread: Some("Resource Graph's change history not read: HTTP 503".into()),
    });
    let out = Inv::new().cluster(c).documented("a").run();
    let row = &out.report.clusters[0];
    assert_eq!(
        row.checks.migration,
        crate::rules::evaluated::Status::NotEvaluated(
            "Resource Graph's change history not read: HTTP 503".into()
        )
    );
    let h = out.history.get(&cluster_id("a")).unwrap();
    assert_eq!(h.changes_read, None, "asked again next run");
    // Scale sets that could not be read: history's verdict, and the finding says why.
    let unread = NodeScaleSets {
        unread: Some("Resource Graph: HTTP 500".into()),
        ..Default::default()
    };
    let r = flip(ClusterB::user_assigned("a"), Some(unread));
    assert_eq!(status(&r), MigrationStatus::Pending);
    let f = kubelet_findings(&r);
    assert!(
        f[0].2
            .contains("scale sets were not read (Resource Graph: HTTP 500)"),
        "{}",
        f[0].2
    );
}
