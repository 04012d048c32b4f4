//! The kubelet identity across runs: replaced (`az aks update
//! --assign-kubelet-identity`: `identityProfile.kubeletidentity` changes between two
//! runs) and the old service principal a pending migration still signs in with.
use chrono::Duration;

use super::builder::*;
use super::rules::{case, fire, Case};
use crate::rules::{Report, RuleId::*, Severity};

/// `a` with its own kubelet identity whose principal is `principal`.
fn with_kubelet(principal: &str) -> ClusterB {
    let mut b = ClusterB::user_assigned("a").own_kubelet().pool("np", "v1");
    b.0.kubelet.as_mut().unwrap().object_id = Some(principal.into());
    b
}

/// Night one: kubelet `a-kubelet` pulls from `acr1` (AcrPull) and `payacr` (ABAC,
/// Repository Reader). Night two: the kubelet identity is `second`, with `grants`.
fn replaced(second: &'static str, grants: fn(Inv) -> Inv) -> Report {
    let regs = |i: Inv| i.registry("acr1").abac_registry("payacr");
    let first = regs(Inv::new())
        .cluster(with_kubelet("a-kubelet"))
        .documented("a")
        .grant(
            "a-cp",
            "Managed Identity Operator",
            &identity_id("a-kubelet"),
        )
        .grant("a-kubelet", "AcrPull", &registry_id("acr1"))
        .grant(
            "a-kubelet",
            "Container Registry Repository Reader",
            &registry_id("payacr"),
        )
        .run();
    grants(
        regs(Inv::new())
            .cluster(with_kubelet(second))
            .documented("a")
            .grant(
                "a-cp",
                "Managed Identity Operator",
                &identity_id("a-kubelet"),
            ),
    )
    .after(first.history)
    .report()
}

pub(super) fn kubelet_cases() -> Vec<Case> {
    vec![
        case(
            "AKSMI022 kubelet identity replaced: the new one lacks the old one's registry access",
            || replaced("a-kubelet-2", |i| i),
            vec![
                fire(AcrPullAfterMigration, "kubelet").about(&registry_id("acr1")),
                fire(AcrPullAfterMigration, "kubelet").about(&registry_id("payacr")),
            ],
            &[],
        ),
        case(
            "AKSMI022 not when the new kubelet identity pulls from the old one's registries",
            || {
                replaced("a-kubelet-2", |i| {
                    i.grant("a-kubelet-2", "AcrPull", &registry_id("acr1"))
                        .grant(
                            "a-kubelet-2",
                            "Container Registry Repository Reader",
                            &registry_id("payacr"),
                        )
                })
            },
            vec![],
            &[AcrPullAfterMigration],
        ),
        case(
            "AKSMI022 not when the kubelet identity stays (same principal, other case)",
            || replaced("A-KUBELET", |i| i),
            vec![],
            &[AcrPullAfterMigration],
        ),
        case(
            "AKSMI005 the old service principal's secret while a migrated pool is pending",
            || {
                let expiry = now() - Duration::days(2);
                let first = Inv::new()
                    .cluster(ClusterB::sp("a").pool("np", "v1"))
                    .grant_sp("a-app", "a-sp", "Contributor", &node_rg("a"))
                    .credential("a-app", expiry)
                    .graph()
                    .run();
                Inv::new()
                    .cluster(ClusterB::user_assigned("a").pool("np", "v1"))
                    .documented("a")
                    .credential("a-app", expiry)
                    .graph()
                    .after(first.history)
                    .report()
            },
            vec![
                fire(KubeletPending, "kubelet").about("np"),
                fire(SecretExpiry, "kubelet").severity(Severity::Critical),
            ],
            &[],
        ),
        case(
            "AKSMI005 not once the pool was re-imaged (kubelet on the managed identity)",
            || {
                let expiry = now() - Duration::days(2);
                let first = Inv::new()
                    .cluster(ClusterB::sp("a").pool("np", "v1"))
                    .grant_sp("a-app", "a-sp", "Contributor", &node_rg("a"))
                    .credential("a-app", expiry)
                    .graph()
                    .run();
                Inv::new()
                    .cluster(ClusterB::user_assigned("a").pool("np", "v2"))
                    .documented("a")
                    .credential("a-app", expiry)
                    .graph()
                    .after(first.history)
                    .report()
            },
            vec![],
            &[SecretExpiry, KubeletPending],
        ),
    ]
}

#[test]
fn a_replaced_kubelet_gets_the_role_of_each_registry_mode_and_the_history_says_when() {
    let r = replaced("a-kubelet-2", |i| i);
    let fix = |reg: &str| {
        r.findings
            .iter()
            .find(|f| f.rule_id == AcrPullAfterMigration && f.subject == registry_id(reg))
            .map(|f| (f.remediation.clone(), f.message.clone()))
            .unwrap()
    };
    let (legacy, msg) = fix("acr1");
    assert_eq!(
        legacy,
        format!(
            "az aks update --resource-group rg --name a --attach-acr {}",
            registry_id("acr1")
        )
    );
    assert!(
        msg.contains("was `a-kubelet`") && msg.contains("replaced between"),
        "{msg}"
    );
    let (abac, _) = fix("payacr");
    assert!(
        abac.starts_with("az role assignment create --assignee-object-id a-kubelet-2 ")
            && abac.contains("'Container Registry Repository Reader'"),
        "{abac}"
    );
}
