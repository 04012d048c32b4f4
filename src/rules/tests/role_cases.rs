//! Scenarios of the role rules: AKSMI010–013, AKSMI020–022 and AKSMI090.
use chrono::Duration;

use super::builder::*;
use super::rules::{case, fire, migrated, Case};
use crate::rules::{RuleId, Severity};

use RuleId::*;

/// AKSMI010: documented roles missing.
pub(super) fn missing_role_cases() -> Vec<Case> {
    vec![
        case(
            "AKSMI010 control plane without Contributor on the node resource group",
            || Inv::new().cluster(ClusterB::mi("a")).report(),
            vec![fire(MissingRole, "control_plane").about(&format!(
                "b24988ac-6180-42a0-ab88-20f7382dd24c|{}",
                node_rg("a")
            ))],
            &[],
        ),
        case(
            "AKSMI010 add-on without its documented role",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").addon("omsagent", Some("a-oms")))
                    .documented("a")
                    .report()
            },
            vec![fire(MissingRole, "addon:omsagent")],
            &[AddonWithoutIdentity],
        ),
        case(
            "AKSMI010 not within the propagation grace of a new cluster",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").created(now() - Duration::minutes(10)))
                    .report()
            },
            vec![],
            &[MissingRole],
        ),
        case(
            "AKSMI010 not while a fresh grant propagates",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a"))
                    .grant_at(
                        "a-cp",
                        "Reader",
                        &node_rg("a"),
                        now() - Duration::minutes(5),
                    )
                    .report()
            },
            vec![fire(ExcessRole, "control_plane")],
            &[MissingRole],
        ),
        case(
            "AKSMI010 when a fresh grant sits beside an old one (no set-up in progress)",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a"))
                    .grant_at("a-cp", "Reader", &node_rg("a"), now() - Duration::days(30))
                    .grant_at(
                        "a-cp",
                        "Monitoring Metrics Publisher",
                        &node_rg("a"),
                        now() - Duration::minutes(5),
                    )
                    .report()
            },
            vec![
                fire(MissingRole, "control_plane").about(&format!(
                    "b24988ac-6180-42a0-ab88-20f7382dd24c|{}",
                    node_rg("a")
                )),
                fire(ExcessRole, "control_plane"),
            ],
            &[],
        ),
        case(
            "AKSMI010 not when the role is held",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a"))
                    .documented("a")
                    .report()
            },
            vec![],
            &[MissingRole],
        ),
    ]
}

/// AKSMI011 / AKSMI012: roles beyond or above the documented ones.
pub(super) fn excess_and_wide_role_cases() -> Vec<Case> {
    vec![
        case(
            "AKSMI011 kubelet holds Contributor on the subscription (high)",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a"))
                    .documented("a")
                    .grant("a-kubelet", "Contributor", &sub_scope())
                    .report()
            },
            vec![fire(ExcessRole, "kubelet").severity(Severity::High)],
            &[WideScope],
        ),
        case(
            "AKSMI011 kubelet holds Reader on a resource group (medium)",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a"))
                    .documented("a")
                    .grant(
                        "a-kubelet",
                        "Reader",
                        &format!("{}/resourceGroups/other", sub_scope()),
                    )
                    .report()
            },
            vec![fire(ExcessRole, "kubelet").severity(Severity::Medium)],
            &[WideScope],
        ),
        case(
            "AKSMI011 not for documented roles (kubelet AcrPull on a registry)",
            || {
                Inv::new()
                    .registry("acr1")
                    .cluster(ClusterB::mi("a"))
                    .documented("a")
                    .grant("a-kubelet", "AcrPull", &registry_id("acr1"))
                    .report()
            },
            vec![],
            &[ExcessRole, WideScope],
        ),
        case(
            "AKSMI012 control plane's Contributor at the subscription (high, as AKSMI011's)",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a"))
                    .grant("a-cp", "Contributor", &sub_scope())
                    .report()
            },
            vec![fire(WideScope, "control_plane").severity(Severity::High)],
            &[ExcessRole, MissingRole],
        ),
        case(
            "AKSMI012 control plane's Contributor on a resource group above the node group (medium)",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a"))
                    .grant("a-cp", "Contributor", &format!("{}/resourceGroups/MC_rg_a", sub_scope()))
                    .grant("a-cp", "Network Contributor", &sub_scope())
                    .report()
            },
            vec![fire(ExcessRole, "control_plane").severity(Severity::Medium)],
            &[MissingRole],
        ),
    ]
}

/// AKSMI013: add-ons without identity.
pub(super) fn addon_without_identity_cases() -> Vec<Case> {
    vec![
        case(
            "AKSMI013 enabled add-on without identity",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").addon("omsagent", None))
                    .documented("a")
                    .report()
            },
            vec![fire(AddonWithoutIdentity, "addon:omsagent").about("")],
            &[UnknownAddon],
        ),
        case(
            "AKSMI013 not with an identity, nor on a service-principal cluster",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").addon("omsagent", Some("a-oms")))
                    .cluster(ClusterB::sp("b").addon("omsagent", None))
                    .documented("a")
                    .grant("a-oms", "Monitoring Metrics Publisher", &cluster_id("a"))
                    .report()
            },
            vec![],
            &[AddonWithoutIdentity, MissingRole],
        ),
    ]
}

/// AKSMI020: custom subnets.
pub(super) fn subnet_permission_cases() -> Vec<Case> {
    vec![
        case(
            "AKSMI020 custom subnet outside the node resource group",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").subnet_pool("np", &subnet_id("net", "v", "s1")))
                    .documented("a")
                    .report()
            },
            vec![fire(SubnetPermission, "control_plane").about(&subnet_id("net", "v", "s1"))],
            &[],
        ),
        case(
            "AKSMI020 not with Network Contributor on the VNet",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").subnet_pool("np", &subnet_id("net", "v", "s1")))
                    .documented("a")
                    .grant("a-cp", "Network Contributor", &vnet_id("net", "v"))
                    .report()
            },
            vec![],
            &[SubnetPermission, ExcessRole, WideScope],
        ),
    ]
}

/// AKSMI021: own kubelet identities.
pub(super) fn kubelet_operator_cases() -> Vec<Case> {
    vec![
        case(
            "AKSMI021 own kubelet identity without Managed Identity Operator",
            || {
                Inv::new()
                    .cluster(ClusterB::user_assigned("a").own_kubelet())
                    .documented("a")
                    .report()
            },
            vec![fire(KubeletOperator, "control_plane").about(&identity_id("a-kubelet"))],
            &[InconsistentIdentity],
        ),
        case(
            "AKSMI021 not with Managed Identity Operator over it",
            || {
                Inv::new()
                    .cluster(ClusterB::user_assigned("a").own_kubelet())
                    .documented("a")
                    .grant(
                        "a-cp",
                        "Managed Identity Operator",
                        &identity_id("a-kubelet"),
                    )
                    .report()
            },
            vec![],
            &[KubeletOperator, ExcessRole],
        ),
    ]
}

/// AKSMI022: AcrPull after a migration.
pub(super) fn acr_pull_cases() -> Vec<Case> {
    vec![
        case(
            "AKSMI022 registry the service principal pulled from",
            || migrated(ClusterB::mi("a").pool("np", "v2"), |i| i),
            vec![fire(AcrPullAfterMigration, "kubelet").about(&registry_id("acr1"))],
            &[],
        ),
        case(
            "AKSMI022 not once the kubelet identity has AcrPull there",
            || {
                migrated(ClusterB::mi("a").pool("np", "v2"), |i| {
                    i.grant("a-kubelet", "AcrPull", &registry_id("acr1"))
                })
            },
            vec![],
            &[AcrPullAfterMigration],
        ),
        case(
            "AKSMI022 not without a migration",
            || {
                Inv::new()
                    .registry("acr1")
                    .cluster(ClusterB::mi("a"))
                    .documented("a")
                    .report()
            },
            vec![],
            &[AcrPullAfterMigration],
        ),
    ]
}

/// AKSMI090: add-ons the baseline does not know.
pub(super) fn unknown_addon_cases() -> Vec<Case> {
    vec![
        case(
            "AKSMI090 add-on identity the baseline does not document",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").addon("fancyAddon", Some("a-fancy")))
                    .documented("a")
                    .grant("a-fancy", "Reader", &node_rg("a"))
                    .report()
            },
            vec![fire(UnknownAddon, "addon:fancyAddon")],
            &[ExcessRole],
        ),
        case(
            "AKSMI090 not for add-ons documented to need no identity",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").addon("azurepolicy", Some("a-pol")))
                    .documented("a")
                    .report()
            },
            vec![],
            &[UnknownAddon],
        ),
    ]
}
