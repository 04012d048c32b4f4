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
        pending_candidates(&History::default().advance(vec![h2], BTreeSet::new(), t(48), 400))[0]
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
    let h = History::default().advance(vec![obs(None, &c, t(0), &[])], BTreeSet::new(), t(0), 400);
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
    let h = History::default().advance(vec![obs(None, &c, t(0), &[])], BTreeSet::new(), t(0), 400);
    let later = h.clone().advance(vec![], BTreeSet::new(), t(24 * 401), 400);
    assert!(later.clusters.is_empty());
    let sooner = h.advance(vec![], BTreeSet::new(), t(24 * 10), 400);
    assert_eq!(sooner.clusters.len(), 1);
}
