//! Tests of the parent module. Change rows shaped like azure-docs resource-graph
//! `changes/get-resource-changes.md` (values as strings, `Update` rows keyed by path).
use super::*;
use crate::inventory::{AgentPool, ClusterIdentity, IdentityType};
use serde_json::json;

const ID: &str =
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c";
const V1: &str = "AKSUbuntu-2204gen2containerd-202601.12.0";
const V2: &str = "AKSUbuntu-2204gen2containerd-202602.09.0";

fn mi(pools: &[(&str, &str)]) -> Cluster {
    Cluster {
        id: ID.into(),
        name: "c".into(),
        subscription_id: "s".into(),
        resource_group: "rg".into(),
        node_resource_group: Some("MC_rg_c_westeurope".into()),
        sp_client_id: Some("msi".into()),
        identity: Some(ClusterIdentity {
            kind: IdentityType::UserAssigned,
            principal_id: None,
            tenant_id: None,
            user_assigned: vec![],
        }),
        pools: pools
            .iter()
            .map(|(n, v)| AgentPool {
                name: n.to_string(),
                node_image_version: Some(v.to_string()),
                orchestrator_version: Some("1.31.4".into()),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn row(at: &str, changes: Value) -> ChangeRow {
    ChangeRow::parse(&json!({
        "id": format!("{ID}/providers/Microsoft.Resources/changes/x"),
        "targetResourceId": ID, "timestamp": at, "changes": changes
    }))
    .unwrap()
}

fn flip_row(at: &str) -> ChangeRow {
    row(
        at,
        json!({"properties.servicePrincipalProfile.clientId": {"previousValue": "5b0e0c1a-aaaa-4bbb-8ccc-1234567890ab", "newValue": "msi"},
               "identity.type": {"previousValue": "null", "newValue": "UserAssigned"}}),
    )
}

fn image_row(at: &str, index: usize, from: &str, to: &str) -> ChangeRow {
    row(
        at,
        json!({format!("properties.agentPoolProfiles[{index}].nodeImageVersion"): {"previousValue": from, "newValue": to}}),
    )
}

fn images(p: &SmallMap<PoolRecord>) -> Vec<(String, Option<String>)> {
    p.iter()
        .map(|(k, r)| (k.clone(), r.node_image_version.clone()))
        .collect()
}

#[test]
fn flips_are_recognised_by_client_id_or_identity_type() {
    assert!(is_flip(&flip_row("2026-06-01T00:00:00Z").changes));
    let only_identity = row(
        "2026-06-01T00:00:00Z",
        json!({"identity.type": {"newValue": "SystemAssigned"}}),
    );
    assert!(is_flip(&only_identity.changes));
    // Not a flip: a rotation of the SP secret's client, an identity type change
    // between two managed identities, a node image upgrade.
    for changes in [
        json!({"properties.servicePrincipalProfile.clientId": {"previousValue": "a", "newValue": "b"}}),
        json!({"identity.type": {"previousValue": "SystemAssigned", "newValue": "UserAssigned"}}),
        json!({"properties.agentPoolProfiles[0].nodeImageVersion": {"previousValue": V1, "newValue": V2}}),
    ] {
        assert!(
            !is_flip(&row("2026-06-01T00:00:00Z", changes.clone()).changes),
            "{changes}"
        );
    }
}

#[test]
fn the_pools_before_and_after_the_flip_are_rebuilt_from_later_changes() {
    let c = mi(&[("np1", V2), ("np2", V1)]);
    let rows = [
        image_row("2026-05-20T00:00:00Z", 0, "v0", V1), // before the flip: ignored
        flip_row("2026-06-01T00:00:00Z"),
        image_row("2026-06-03T00:00:00Z", 0, V1, V2), // np1 re-imaged after
    ];
    let f = flip_from_changes(&c, &rows).unwrap();
    assert_eq!(
        f.at,
        "2026-06-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(
        f.sp_client_id.as_deref(),
        Some("5b0e0c1a-aaaa-4bbb-8ccc-1234567890ab")
    );
    let want = vec![
        ("np1".to_string(), Some(V1.to_string())),
        ("np2".to_string(), Some(V1.to_string())),
    ];
    assert_eq!(images(&f.pools_before), want);
    assert_eq!(images(&f.pools_after), want);
    // The verdict this gives (user-assigned): np1 on the managed identity, np2 pending.
    let mut c = c;
    c.changes = Some(ClusterChanges {
        flip: Some(f),
        unread: None,
    });
    let h = history::observe(None, &c, Utc::now(), &[], migration::flip_kind(&c));
    assert_eq!(
        migration::status(&c, &h),
        (MigrationStatus::Pending, vec!["np2".to_string()])
    );
}

#[test]
fn pool_changes_that_cannot_be_tied_to_todays_pools_leave_versions_unknown() {
    let c = mi(&[("np1", V2)]);
    for (why, later) in [
        (
            "index beyond today's pools",
            image_row("2026-06-03T00:00:00Z", 3, V1, V2),
        ),
        (
            "new value is not today's",
            image_row("2026-06-03T00:00:00Z", 0, V1, "other"),
        ),
        (
            "a pool created (no previous value)",
            row(
                "2026-06-03T00:00:00Z",
                json!({"properties.agentPoolProfiles[0].nodeImageVersion": {"newValue": V2}}),
            ),
        ),
        (
            "a pool renamed or replaced",
            row(
                "2026-06-03T00:00:00Z",
                json!({"properties.agentPoolProfiles[0].name": {"previousValue": "a", "newValue": "np1"}}),
            ),
        ),
        (
            "the array itself",
            row(
                "2026-06-03T00:00:00Z",
                json!({"properties.agentPoolProfiles": {"previousValue": "[]", "newValue": "[...]"}}),
            ),
        ),
    ] {
        let f = flip_from_changes(&c, &[flip_row("2026-06-01T00:00:00Z"), later]).unwrap();
        assert_eq!(
            images(&f.pools_before),
            [("np1".to_string(), None)],
            "{why}"
        );
        let mut c = c.clone();
        c.changes = Some(ClusterChanges {
            flip: Some(f),
            unread: None,
        });
        let h = history::observe(None, &c, Utc::now(), &[], migration::flip_kind(&c));
        assert_eq!(
            migration::status(&c, &h).0,
            MigrationStatus::Unknown,
            "{why}: never pending"
        );
    }
    // No flip among the rows: nothing.
    assert_eq!(
        flip_from_changes(&c, &[image_row("2026-06-03T00:00:00Z", 0, V1, V2)]),
        None
    );
}

#[test]
fn who_needs_which_follow_up() {
    let history = History::default();
    let prior = Prior {
        history: &history,
        now: Utc::now(),
    };
    let c = mi(&[("np1", V1)]);
    // First seen on a managed identity: the change history, once.
    assert!(needs_changes(&prior, &c));
    assert!(!needs_scale_sets(&prior, &c), "none_observed is no doubt");
    let mut read = c.clone();
    read.changes = Some(ClusterChanges::default());
    assert!(!needs_changes(&prior, &read));
    let h = History::default().advance(
        vec![history::observe(
            None,
            &read,
            prior.now,
            &[],
            migration::flip_kind(&read),
        )],
        Default::default(),
        prior.now,
        400,
    );
    assert!(
        !needs_changes(
            &Prior {
                history: &h,
                now: prior.now
            },
            &c
        ),
        "remembered"
    );
    // On a service principal: neither.
    let mut sp = c.clone();
    sp.identity = None;
    sp.sp_client_id = Some("app".into());
    assert!(!needs_changes(&prior, &sp) && !needs_scale_sets(&prior, &sp));
    // A recorded user-assigned flip with an unchanged pool: pending, so the scale sets.
    let mut flipped = c.clone();
    flipped.changes = Some(ClusterChanges {
        flip: flip_from_changes(&c, &[flip_row("2026-06-01T00:00:00Z")]),
        unread: None,
    });
    assert!(needs_scale_sets(&prior, &flipped));
    flipped.node_resource_group = None;
    assert!(
        !needs_scale_sets(&prior, &flipped),
        "no node resource group to read"
    );
}

#[test]
fn instances_belong_to_their_scale_set_and_pools_to_scale_sets() {
    assert_eq!(
        scale_set_of("/subscriptions/s/resourceGroups/MC_rg/providers/Microsoft.Compute/virtualMachineScaleSets/aks-np1-1234-vmss/virtualMachines/3").as_deref(),
        Some("/subscriptions/s/resourcegroups/mc_rg/providers/microsoft.compute/virtualmachinescalesets/aks-np1-1234-vmss")
    );
    assert_eq!(
        scale_set_of(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
        ),
        None
    );
    let set = |name: &str, tag: Option<&str>| ScaleSet {
        name: name.into(),
        pool_tag: tag.map(str::to_string),
        ..Default::default()
    };
    assert!(set("aks-np1-12345678-vmss", None).runs_pool("NP1"));
    assert!(!set("aks-np10-12345678-vmss", None).runs_pool("np1"));
    assert!(!set("aks-np1-extra-vmss", None).runs_pool("np1"));
    assert!(set("anything", Some("np1")).runs_pool("np1"));
    assert!(
        !set("aks-np1-12345678-vmss", Some("np2")).runs_pool("np1"),
        "the tag wins"
    );
}

#[test]
fn the_queries_are_filled_in_once_and_name_their_tables() {
    let q = FLIPS.replacen(
        "{clusters}",
        "and tostring(properties.targetResourceId) in~ ('x')",
        1,
    );
    assert!(
        !q.contains("{clusters}") && q.contains("resourcechanges\n"),
        "{q}"
    );
    for (text, hole) in [
        (POOL_CHANGES, "{ids}"),
        (SCALE_SETS, "{groups}"),
        (SCALE_SET_VMS, "{groups}"),
    ] {
        assert_eq!(text.matches(hole).count(), 1, "{text}");
    }
    assert!(SCALE_SET_VMS.contains("\ncomputeresources\n"));
}
