//! Scenarios of the conditional control-plane rows (AKSMI023, issue 11 §2) and of a
//! service principal shared by several clusters. Resource ids shaped like the
//! `az aks show` payloads of the cited docs (private-clusters.md, use-kms-etcd-
//! encryption.md, azure-disk-customer-managed-keys.md, static-ip.md).
use super::builder::*;
use super::rules::{case, fire, Case};
use crate::rules::situational;
use crate::rules::{Baseline, RuleId, Severity};

use RuleId::*;

const NC: &str = "4d97b98b-1d4f-4787-a291-c67834d212e7";
const PDZC: &str = "b12aa53e-6015-4669-85d0-8515ebb3ae7f";
const KV_CRYPTO_USER: &str = "12338af0-0e69-4776-bea7-57ae8d297424";
const KV_CONTRIBUTOR: &str = "f25e0fa2-a7c8-4377-a976-54943a77a395";
const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
const MIO: &str = "f1a07417-d97a-45cb-824c-7a7467783830";

pub(super) fn zone() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg-dns/providers/Microsoft.Network/privateDnsZones/privatelink.eastus.azmk8s.io")
}

pub(super) fn vault() -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-keys/providers/Microsoft.KeyVault/vaults/kv-etcd"
    )
}

const KEY_ID: &str = "https://kv-etcd.vault.azure.net/keys/etcd/0a1b2c3d4e5f60718293a4b5c6d7e8f9";

pub(super) fn des() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg-keys/providers/Microsoft.Compute/diskEncryptionSets/des-aks")
}

pub(super) fn pip() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg-ips/providers/Microsoft.Network/publicIPAddresses/pip-egress-1")
}

fn about(guid: &str, target: &str) -> String {
    format!("{guid}|{target}")
}

/// AKSMI023: roles a cluster feature needs.
pub(super) fn feature_role_cases() -> Vec<Case> {
    vec![
        case(
            "AKSMI023 custom private DNS zone without its two roles",
            || {
                Inv::new()
                    .cluster(
                        ClusterB::user_assigned("a")
                            .subnet_pool("np", &subnet_id("net", "v", "s1"))
                            .private_dns_zone(&zone()),
                    )
                    .documented("a")
                    .grant("a-cp", "Network Contributor", &subnet_id("net", "v", "s1"))
                    .report()
            },
            vec![
                fire(FeatureRole, "control_plane").about(&about(PDZC, &zone())),
                // NC on the subnet is not NC on the VNet.
                fire(FeatureRole, "control_plane").about(&about(NC, &vnet_id("net", "v"))),
            ],
            &[SubnetPermission],
        ),
        case(
            "AKSMI023 not with Private DNS Zone Contributor on the zone and Network Contributor on the VNet: both expected",
            || {
                Inv::new()
                    .cluster(
                        ClusterB::user_assigned("a")
                            .subnet_pool("np", &subnet_id("net", "v", "s1"))
                            .private_dns_zone(&zone()),
                    )
                    .documented("a")
                    .grant("a-cp", "Private DNS Zone Contributor", &zone())
                    .grant("a-cp", "Network Contributor", &vnet_id("net", "v"))
                    .report()
            },
            vec![],
            &[FeatureRole, ExcessRole, WideScope, SubnetPermission],
        ),
        case(
            "AKSMI011 the same zone role on a cluster without a custom zone is excess",
            || {
                Inv::new()
                    .cluster(ClusterB::user_assigned("a"))
                    .documented("a")
                    .grant("a-cp", "Private DNS Zone Contributor", &zone())
                    .report()
            },
            vec![fire(ExcessRole, "control_plane")],
            &[FeatureRole],
        ),
        case(
            "AKSMI004 medium: a custom private DNS zone and KMS with a system-assigned control plane",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").private_dns_zone(&zone()).kms(KEY_ID, None))
                    .documented("a")
                    .grant("a-cp", "Private DNS Zone Contributor", &zone())
                    .grant("a-cp", "Key Vault Crypto User", &vault())
                    .report()
            },
            vec![
                fire(InconsistentIdentity, "control_plane")
                    .about("system-assigned-with-custom-private-dns-zone")
                    .severity(Severity::Medium),
                fire(InconsistentIdentity, "control_plane")
                    .about("system-assigned-with-kms")
                    .severity(Severity::Medium),
            ],
            &[ExcessRole],
        ),
        case(
            "AKSMI004 not for the same features with a user-assigned control plane",
            || {
                Inv::new()
                    .cluster(ClusterB::user_assigned("a").private_dns_zone(&zone()).kms(KEY_ID, None))
                    .documented("a")
                    .grant("a-cp", "Private DNS Zone Contributor", &zone())
                    .grant("a-cp", "Key Vault Crypto User", &vault())
                    .report()
            },
            vec![],
            &[InconsistentIdentity, ExcessRole, FeatureRole],
        ),
        case(
            "AKSMI023 API server subnet without Network Contributor",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").api_server_subnet(&subnet_id("net", "v", "apiserver")))
                    .documented("a")
                    .report()
            },
            vec![fire(FeatureRole, "control_plane")
                .about(&about(NC, &subnet_id("net", "v", "apiserver")))],
            &[],
        ),
        case(
            "AKSMI023 not with Network Contributor on the API server subnet's VNet",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").api_server_subnet(&subnet_id("net", "v", "apiserver")))
                    .documented("a")
                    .grant("a-cp", "Network Contributor", &vnet_id("net", "v"))
                    .report()
            },
            vec![],
            &[FeatureRole, ExcessRole, WideScope],
        ),
        case(
            "AKSMI023 KMS on a public vault without Key Vault Crypto User: medium, verify",
            || {
                Inv::new()
                    .cluster(ClusterB::user_assigned("a").kms(KEY_ID, None))
                    .documented("a")
                    .report()
            },
            vec![fire(FeatureRole, "control_plane")
                .about(&about(KV_CRYPTO_USER, "vault:kv-etcd"))
                .severity(Severity::Medium)],
            &[],
        ),
        case(
            "AKSMI023 not with Key Vault Crypto User on the vault keyId names",
            || {
                Inv::new()
                    .cluster(ClusterB::user_assigned("a").kms(KEY_ID, None))
                    .documented("a")
                    .grant("a-cp", "Key Vault Crypto User", &vault())
                    .report()
            },
            vec![],
            &[FeatureRole, ExcessRole],
        ),
        case(
            "AKSMI023 KMS on a private vault without Key Vault Contributor: high",
            || {
                Inv::new()
                    .cluster(ClusterB::user_assigned("a").kms(KEY_ID, Some(&vault())))
                    .documented("a")
                    .grant("a-cp", "Key Vault Crypto User", &vault())
                    .report()
            },
            vec![fire(FeatureRole, "control_plane").about(&about(KV_CONTRIBUTOR, &vault()))],
            &[ExcessRole],
        ),
        case(
            "AKSMI023 disk encryption set without Reader",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").disk_encryption_set(&des()))
                    .documented("a")
                    .report()
            },
            vec![fire(FeatureRole, "control_plane").about(&about(READER, &des()))],
            &[],
        ),
        case(
            "AKSMI023 not with Reader on the disk encryption set",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").disk_encryption_set(&des()))
                    .documented("a")
                    .grant("a-cp", "Reader", &des())
                    .report()
            },
            vec![],
            &[FeatureRole, ExcessRole],
        ),
        case(
            "AKSMI023 outbound IP in another resource group without Network Contributor: medium",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").outbound_ip(&pip()))
                    .documented("a")
                    .report()
            },
            vec![fire(FeatureRole, "control_plane")
                .about(&about(NC, &format!("/subscriptions/{SUB}/resourceGroups/rg-ips")))
                .severity(Severity::Medium)],
            &[],
        ),
        case(
            "AKSMI023 not for an outbound IP in the node resource group",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").outbound_ip(&format!(
                        "{}/providers/Microsoft.Network/publicIPAddresses/pip-1",
                        node_rg("a")
                    )))
                    .documented("a")
                    .report()
            },
            vec![],
            &[FeatureRole],
        ),
        case(
            "AKSMI023 pod identity without Managed Identity Operator over it: medium",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").pod_identity(true).pod_identity_id(&identity_id("orders-api")))
                    .documented("a")
                    .report()
            },
            vec![fire(FeatureRole, "control_plane")
                .about(&about(MIO, &identity_id("orders-api")))
                .severity(Severity::Medium)],
            &[],
        ),
        case(
            "AKSMI023 not with Managed Identity Operator over the pod identity",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").pod_identity(true).pod_identity_id(&identity_id("orders-api")))
                    .documented("a")
                    .grant("a-cp", "Managed Identity Operator", &identity_id("orders-api"))
                    .report()
            },
            vec![],
            &[FeatureRole, ExcessRole],
        ),
        case(
            "AKSMI023 not when Contributor on the resource group grants it (AKSMI011 narrows it instead)",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").disk_encryption_set(&des()))
                    .documented("a")
                    .grant("a-cp", "Contributor", &format!("/subscriptions/{SUB}/resourceGroups/rg-keys"))
                    .report()
            },
            vec![fire(ExcessRole, "control_plane")],
            &[FeatureRole],
        ),
        case(
            "AKSMI023 not within the propagation grace of a new cluster",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").disk_encryption_set(&des()).created(now() - chrono::Duration::minutes(5)))
                    .report()
            },
            vec![],
            &[FeatureRole],
        ),
    ]
}

/// Three clusters on one service principal (`shared-app`, object id `shared-sp`),
/// each with the documented Contributor on its own node resource group.
fn shared_sp(extra: fn(Inv) -> Inv) -> crate::rules::Report {
    let mut inv = Inv::new();
    for n in ["a", "b", "c"] {
        inv = inv
            .cluster(ClusterB::sp(n).sp_client_id("shared-app").pool("np", "v1"))
            .grant_sp("shared-app", "shared-sp", "Contributor", &node_rg(n));
    }
    extra(inv).report()
}

/// One service principal for several clusters.
pub(super) fn shared_sp_cases() -> Vec<Case> {
    vec![
        case(
            "AKSMI011 not for a shared service principal's grants for its other clusters (3 clusters, was 6 findings)",
            || shared_sp(|i| i),
            vec![],
            &[ExcessRole, WideScope, MissingRole],
        ),
        case(
            "AKSMI011 a shared service principal's grant no cluster documents is still excess",
            || {
                shared_sp(|i| {
                    i.grant_sp(
                        "shared-app",
                        "shared-sp",
                        "Contributor",
                        &format!("/subscriptions/{SUB}/resourceGroups/unrelated"),
                    )
                })
            },
            vec![fire(ExcessRole, "control_plane")],
            &[MissingRole],
        ),
    ]
}

#[test]
fn a_shared_service_principal_gives_one_excess_per_cluster_not_n_squared() {
    let r = shared_sp(|i| {
        i.grant_sp(
            "shared-app",
            "shared-sp",
            "Contributor",
            &format!("/subscriptions/{SUB}/resourceGroups/unrelated"),
        )
    });
    let excess: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.rule_id == ExcessRole)
        .map(|f| (f.cluster_name.clone(), f.subject.clone()))
        .collect();
    assert_eq!(excess.len(), 3, "{excess:#?}");
    assert!(excess
        .iter()
        .all(|(_, s)| s.contains("/resourceGroups/unrelated/")));
}

#[test]
fn a_grant_another_cluster_needs_for_its_feature_is_not_excess() {
    // Shared user-assigned control plane: only cluster `b` has a disk encryption set.
    let r = Inv::new()
        .cluster(ClusterB::user_assigned("a"))
        .cluster(ClusterB::user_assigned("b").disk_encryption_set(&des()))
        .grant("shared-cp", "Contributor", &node_rg("a"))
        .grant("shared-cp", "Contributor", &node_rg("b"))
        .grant("shared-cp", "Reader", &des());
    let mut r = r;
    for c in &mut r.inv.clusters {
        let i = c.identity.as_mut().unwrap();
        i.user_assigned[0].principal_id = Some("shared-cp".into());
    }
    let rep = r.report();
    let bad: Vec<_> = rep
        .findings
        .iter()
        .filter(|f| matches!(f.rule_id, ExcessRole | FeatureRole | WideScope))
        .map(|f| format!("{} {} {}", f.cluster_name, f.rule_id, f.subject))
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
}

/// Every situation at once, each need granted only by one wide or superset role:
/// whatever finding removes such a grant must first create the needed role.
#[test]
fn no_fix_deletes_a_grant_a_documented_situation_needs_without_granting_it_first() {
    let sub = format!("/subscriptions/{SUB}");
    let build = |wide: &str| {
        Inv::new()
            .cluster(
                ClusterB::user_assigned("a")
                    .own_kubelet()
                    .subnet_pool("np", &subnet_id("net", "v", "s1"))
                    .private_dns_zone(&zone())
                    .api_server_subnet(&subnet_id("net", "v", "apiserver"))
                    .kms(KEY_ID, Some(&vault()))
                    .disk_encryption_set(&des())
                    .outbound_ip(&pip())
                    .pod_identity(true)
                    .pod_identity_id(&identity_id("orders-api")),
            )
            .grant("a-cp", "Contributor", wide)
            .grant(
                "a-cp",
                "Private DNS Zone Contributor",
                &format!("{sub}/resourceGroups/rg-dns"),
            )
            .grant("a-cp", "Key Vault Crypto User", &vault())
    };
    for wide in [sub.clone(), format!("{sub}/resourceGroups/rg-keys")] {
        let inv = build(&wide);
        let cluster = inv.inv.clusters[0].clone();
        let assignments = inv.inv.role_assignments.clone();
        let bl = Baseline::load(crate::rules::baseline::DEFAULT_BASELINE).unwrap();
        let needs = situational::needs(&cluster, &bl);
        assert!(needs.len() >= 9, "{}", needs.len());
        let report = inv.report();
        let mut checked = 0;
        for a in &assignments {
            let covered: Vec<_> = needs.iter().filter(|n| n.covered_by(&cluster, a)).collect();
            if covered.is_empty() {
                continue;
            }
            for f in report.findings.iter().filter(|f| f.subject == a.id) {
                let lines: Vec<&str> = f.remediation.lines().collect();
                let Some(del) = lines
                    .iter()
                    .position(|l| l.starts_with("az role assignment delete"))
                else {
                    continue;
                };
                checked += 1;
                assert!(
                    del > 0,
                    "{wide}: {} starts with a delete: {}",
                    f.rule_id,
                    f.remediation
                );
                for n in &covered {
                    let others = assignments
                        .iter()
                        .any(|b| b.id != a.id && n.covered_by(&cluster, b));
                    if !others {
                        assert!(
                            lines[..del].contains(&n.create("a-cp").as_str()),
                            "{wide}: {} deletes {} without first granting {} on {}:\n{}",
                            f.rule_id,
                            a.id,
                            n.role_name,
                            n.target,
                            f.remediation
                        );
                    }
                }
            }
        }
        assert!(checked >= 2, "{wide}: {checked} fixes checked");
        // Contributor on the subscription grants every management-plane need: no AKSMI023.
        assert!(
            wide != sub || !report.findings.iter().any(|f| f.rule_id == FeatureRole),
            "{wide}: {:?}",
            report
                .findings
                .iter()
                .filter(|f| f.rule_id == FeatureRole)
                .map(|f| &f.subject)
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn exact_situational_grants_have_no_finding_at_all() {
    let r = Inv::new()
        .cluster(
            ClusterB::user_assigned("a")
                .private_dns_zone(&zone())
                .api_server_subnet(&subnet_id("net", "v", "apiserver"))
                .kms(KEY_ID, Some(&vault()))
                .disk_encryption_set(&des())
                .outbound_ip(&pip()),
        )
        .documented("a")
        .grant("a-cp", "Private DNS Zone Contributor", &zone())
        .grant(
            "a-cp",
            "Network Contributor",
            &subnet_id("net", "v", "apiserver"),
        )
        .grant("a-cp", "Key Vault Crypto User", &vault())
        .grant("a-cp", "Key Vault Contributor", &vault())
        .grant("a-cp", "Reader", &des())
        .grant(
            "a-cp",
            "Network Contributor",
            &format!("/subscriptions/{SUB}/resourceGroups/rg-ips"),
        )
        .report();
    let seen: Vec<_> = r
        .findings
        .iter()
        .map(|f| format!("{} {}", f.rule_id, f.subject))
        .collect();
    assert!(
        !r.findings
            .iter()
            .any(|f| f.remediation.contains("az role assignment delete")),
        "{seen:#?}"
    );
    assert!(
        !r.findings.iter().any(|f| f.rule_id == FeatureRole),
        "{seen:#?}"
    );
}

/// Contributor at the subscription is the control plane's only grant, and the cluster
/// has a custom subnet: the AKSMI012 fix must re-create Contributor on the node
/// resource group (it matched the allowed subnet row last, and once created only
/// that) and Network Contributor on the subnet before deleting it.
#[test]
fn narrowing_a_subscription_contributor_keeps_the_node_group_and_the_subnet() {
    let r = Inv::new()
        .cluster(ClusterB::mi("a").subnet_pool("np", &subnet_id("net", "v", "s1")))
        .grant("a-cp", "Contributor", &format!("/subscriptions/{SUB}"))
        .report();
    let f = r
        .findings
        .iter()
        .find(|f| f.rule_id == WideScope)
        .expect("AKSMI012");
    let lines: Vec<&str> = f.remediation.lines().collect();
    let create = |role: &str, scope: &str| crate::rules::remedy::create_role("a-cp", role, scope);
    let del = lines.len() - 1;
    assert!(
        lines[del].starts_with("az role assignment delete"),
        "{}",
        f.remediation
    );
    for want in [
        create("Contributor", &node_rg("a")),
        create("Network Contributor", &subnet_id("net", "v", "s1")),
    ] {
        assert!(
            lines[..del].contains(&want.as_str()),
            "{want} not in\n{}",
            f.remediation
        );
    }
}

fn hub_subnet(sub: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/rg-hub-net/providers/Microsoft.Network/virtualNetworks/vnet-hub/subnets/aks")
}

/// A custom subnet (or private DNS zone) in a subscription the audit did not read is a
/// coverage gap naming it, not a high: its grants there were never seen.
#[test]
fn a_subnet_in_a_subscription_outside_the_scope_is_a_coverage_gap_not_a_high() {
    let hub = "9a8b7c6d-0000-4000-8000-00000000a0b0";
    let r = Inv::new()
        .cluster(
            ClusterB::mi("a")
                .subnet_pool("np", &hub_subnet(hub))
                .private_dns_zone(&format!("/subscriptions/{hub}/resourceGroups/rg-dns/providers/Microsoft.Network/privateDnsZones/privatelink.eastus.azmk8s.io")),
        )
        .documented("a")
        .report();
    let seen: Vec<_> = r
        .findings
        .iter()
        .map(|f| format!("{} {}", f.rule_id, f.subject))
        .collect();
    assert!(
        !r.findings
            .iter()
            .any(|f| matches!(f.rule_id, SubnetPermission | FeatureRole)),
        "{seen:#?}"
    );
    let gaps: Vec<_> = r
        .coverage
        .gaps
        .iter()
        .filter(|g| g.scope == format!("/subscriptions/{hub}"))
        .collect();
    assert_eq!(gaps.len(), 1, "{:#?}", r.coverage.gaps);
    assert!(
        gaps[0].reason.contains("cluster `a`") && gaps[0].tables == ["role-assignments"],
        "{:?}",
        gaps[0]
    );

    // The same subnet in a subscription that was read: judged (AKSMI020, high).
    let mut inv = Inv::new()
        .cluster(ClusterB::mi("a").subnet_pool("np", &hub_subnet(hub)))
        .documented("a");
    inv.inv.subscriptions.push(crate::inventory::Subscription {
        id: hub.into(),
        name: "hub".into(),
        ..Default::default()
    });
    let r = inv.report();
    assert!(r
        .findings
        .iter()
        .any(|f| f.rule_id == SubnetPermission && f.subject == hub_subnet(hub)));
    assert!(r.coverage.gaps.is_empty(), "{:#?}", r.coverage.gaps);
}

const SUBNET_JOINER: &str = "3c1e5a7b-9d0f-4a2b-8c4d-6e8f0a2b4c6d";

/// Cluster `a` on a custom subnet whose control plane holds only custom role
/// `SUBNET_JOINER` on the VNet (role shaped like the Resource Graph
/// `authorizationresources` role-definition rows of the azure-docs samples).
fn custom_joiner(actions: &[&str], not_actions: &[&str], defined: bool) -> crate::rules::Report {
    let mut i = Inv::new()
        .cluster(ClusterB::mi("a").subnet_pool("np", &subnet_id("net", "v", "s1")))
        .documented("a")
        .grant_custom("a-cp", SUBNET_JOINER, &vnet_id("net", "v"));
    if defined {
        i = i.custom_role(SUBNET_JOINER, "subnet-joiner", actions, not_actions);
    }
    i.report()
}

#[test]
fn aksmi020_accepts_a_custom_role_with_join_and_read() {
    let r = custom_joiner(
        &["Microsoft.Network/virtualNetworks/subnets/*"],
        &["Microsoft.Network/virtualNetworks/subnets/delete"],
        true,
    );
    // Accepted, and not excess either: no fix deletes it.
    assert!(
        !r.findings
            .iter()
            .any(|f| matches!(f.rule_id, SubnetPermission | ExcessRole)),
        "{:?}",
        r.findings.iter().map(|f| &f.message).collect::<Vec<_>>()
    );
}

#[test]
fn aksmi020_names_what_a_custom_role_lacks() {
    let r = custom_joiner(
        &["Microsoft.Network/virtualNetworks/subnets/read"],
        &[],
        true,
    );
    let f = r
        .findings
        .iter()
        .find(|f| f.rule_id == SubnetPermission)
        .expect("AKSMI020");
    assert_eq!(f.severity, Severity::High);
    assert!(
        f.message.contains(
            "`subnet-joiner` lacks Microsoft.Network/virtualNetworks/subnets/join/action"
        ),
        "{}",
        f.message
    );
}

#[test]
fn aksmi020_with_an_unread_custom_role_is_info_verify_not_high() {
    let r = custom_joiner(&[], &[], false);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule_id == SubnetPermission)
        .expect("AKSMI020");
    assert_eq!(f.severity, Severity::Info);
    assert!(
        f.message.contains(SUBNET_JOINER) && f.message.contains("verify"),
        "{}",
        f.message
    );
}

/// A subscriptions file that omits the cluster's own subscription adds no gap for it
/// here: the cluster's own role assignments are judged as before.
#[test]
fn the_clusters_own_subscription_is_never_an_out_of_scope_gap() {
    let mut inv = Inv::new()
        .cluster(ClusterB::mi("a").subnet_pool("np", &subnet_id("net", "v", "s1")))
        .documented("a");
    inv.inv.subscriptions[0].id = "5e6f7a8b-0000-4000-8000-00000000c0d0".into();
    let r = inv.report();
    assert!(r.coverage.gaps.is_empty(), "{:#?}", r.coverage.gaps);
    assert!(r.findings.iter().any(|f| f.rule_id == SubnetPermission));
}
