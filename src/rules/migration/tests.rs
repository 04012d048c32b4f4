//! Tests of the parent module.
use super::*;
use crate::inventory::{ClusterIdentity, IdentityType, UserAssignedIdentity};
use chrono::{DateTime, Duration, Utc};

/// [`crate::history::observe`] with the flip kind the rules give.
fn observe(
    prev: Option<&ClusterHistory>,
    c: &Cluster,
    now: DateTime<Utc>,
    sp: &[String],
) -> ClusterHistory {
    crate::history::observe(prev, c, now, sp, flip_kind(c))
}

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
