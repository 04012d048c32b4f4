//! Scenarios of the identity-mode rules: AKSMI001–005, AKSMI030, AKSMI031,
//! AKSMI040 and AKSMI041 (and a clean cluster, where nothing fires).
use chrono::Duration;

use super::builder::*;
use super::rules::{case, fire, migrated, sp_with_acr, Case};
use crate::rules::catalogue::CATALOGUE;
use crate::rules::{RuleId, Severity};

use RuleId::*;

/// A clean managed-identity cluster: no rule fires.
pub(super) fn clean_cases() -> Vec<Case> {
    let all: Vec<RuleId> = CATALOGUE.iter().map(|r| r.id).collect();
    vec![case(
        "a clean managed-identity cluster has no finding",
        || {
            Inv::new()
                .cluster(ClusterB::mi("a").pool("np", "v1"))
                .documented("a")
                .report()
        },
        vec![],
        &all,
    )]
}

/// AKSMI001: the control plane on a service principal.
pub(super) fn service_principal_cases() -> Vec<Case> {
    vec![
        case(
            "AKSMI001 a service-principal cluster",
            || sp_with_acr().report(),
            vec![fire(ServicePrincipal, "control_plane").about("")],
            &[InconsistentIdentity, KubeletPending, MissingRole],
        ),
        case(
            "AKSMI001 not on a managed identity",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a"))
                    .documented("a")
                    .report()
            },
            vec![],
            &[ServicePrincipal],
        ),
    ]
}

/// AKSMI002 / AKSMI003: the kubelet trap after a migration.
pub(super) fn kubelet_migration_cases() -> Vec<Case> {
    vec![
        case(
            "AKSMI002 pools not re-imaged since a user-assigned flip",
            || migrated(ClusterB::user_assigned("a").pool("np", "v1"), |i| i),
            vec![fire(KubeletPending, "kubelet").about("np")],
            &[ServicePrincipal, KubeletUnknown],
        ),
        case(
            "AKSMI002 not once every pool is re-imaged",
            || {
                let first = sp_with_acr().run();
                let flip = Inv::new()
                    .cluster(ClusterB::mi("a").pool("np", "v1"))
                    .after(first.history)
                    .run();
                Inv::new()
                    .cluster(ClusterB::mi("a").pool("np", "v2"))
                    .documented("a")
                    .after(flip.history)
                    .report()
            },
            vec![],
            &[KubeletPending, KubeletUnknown],
        ),
        case(
            "AKSMI002 not on a first run (no flip seen)",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").pool("np", "v1"))
                    .report()
            },
            vec![],
            &[KubeletPending, KubeletUnknown],
        ),
        case(
            "AKSMI003 migrated, node image unknown",
            || migrated(ClusterB::mi("a").pool_unknown_image("np"), |i| i),
            vec![fire(KubeletUnknown, "kubelet").about("")],
            &[KubeletPending],
        ),
        case(
            "AKSMI003 not when images are known (user-assigned flip)",
            || migrated(ClusterB::user_assigned("a").pool("np", "v1"), |i| i),
            vec![],
            &[KubeletUnknown],
        ),
        case(
            "AKSMI003 system-assigned flip, image unchanged: verify, never a high",
            || migrated(ClusterB::mi("a").pool("np", "v1"), |i| i),
            vec![fire(KubeletUnknown, "kubelet").about("")],
            &[KubeletPending],
        ),
    ]
}

/// AKSMI004: half-updated identity states.
pub(super) fn inconsistent_identity_cases() -> Vec<Case> {
    vec![
        case(
            "AKSMI004 clientId msi without an identity block",
            || Inv::new().cluster(ClusterB::sp("a").sp_client_id("MSI")).report(),
            vec![fire(InconsistentIdentity, "control_plane").about("clientId-msi-without-identity")],
            &[ServicePrincipal],
        ),
        case(
            "AKSMI004 identity with a service principal client id",
            || Inv::new().cluster(ClusterB::mi("a").sp_client_id("a-app")).documented("a").report(),
            vec![fire(InconsistentIdentity, "control_plane").about("identity-with-sp-client-id")],
            &[ServicePrincipal],
        ),
        case(
            "AKSMI004 succeeded managed-identity cluster without kubelet identity",
            || Inv::new().cluster(ClusterB::mi("a").no_kubelet()).documented("a").report(),
            vec![fire(InconsistentIdentity, "kubelet").about("mi-without-kubelet")],
            &[],
        ),
        case(
            "AKSMI004 own kubelet identity with a system-assigned control plane",
            || Inv::new().cluster(ClusterB::mi("a").own_kubelet()).documented("a").report(),
            vec![fire(InconsistentIdentity, "kubelet")
                .about("own-kubelet-with-system-assigned")
                .severity(Severity::Low)],
            &[],
        ),
        case(
            "AKSMI004 not while the cluster is still updating, nor with a user-assigned control plane",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").no_kubelet().state("Updating"))
                    .cluster(ClusterB::user_assigned("b").own_kubelet())
                    .documented("a")
                    .documented("b")
                    .grant("b-cp", "Managed Identity Operator", &identity_id("b-kubelet"))
                    .report()
            },
            vec![],
            &[InconsistentIdentity],
        ),
    ]
}

/// AKSMI005: the service principal's credential expiry.
pub(super) fn secret_expiry_cases() -> Vec<Case> {
    vec![
        case(
            "AKSMI005 expired credential is critical",
            || {
                sp_with_acr()
                    .credential("a-app", now() - Duration::days(3))
                    .report()
            },
            vec![fire(SecretExpiry, "control_plane").severity(Severity::Critical)],
            &[],
        ),
        case(
            "AKSMI005 credential expiring within 30 days is high",
            || {
                sp_with_acr()
                    .credential("a-app", now() + Duration::days(10))
                    .report()
            },
            vec![fire(SecretExpiry, "control_plane").severity(Severity::High)],
            &[],
        ),
        case(
            "AKSMI005 not for a credential valid for longer, nor without Graph data",
            || {
                sp_with_acr()
                    .credential("a-app", now() + Duration::days(90))
                    .cluster(ClusterB::sp("b"))
                    .report()
            },
            vec![],
            &[SecretExpiry],
        ),
    ]
}

/// AKSMI030: tenants.
pub(super) fn tenant_cases() -> Vec<Case> {
    vec![
        case(
            "AKSMI030 identity tenant is not the subscription's",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").tenant("other"))
                    .documented("a")
                    .report()
            },
            vec![fire(TenantMismatch, "control_plane")],
            &[],
        ),
        case(
            "AKSMI030 not for the same tenant in another case",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").tenant("TENANT1"))
                    .documented("a")
                    .report()
            },
            vec![],
            &[TenantMismatch],
        ),
    ]
}

/// AKSMI031: regions.
pub(super) fn region_cases() -> Vec<Case> {
    vec![
        case(
            "AKSMI031 own control-plane identity in US DoD Central",
            || {
                Inv::new()
                    .cluster(ClusterB::user_assigned("a").location("US DoD Central"))
                    .documented("a")
                    .report()
            },
            vec![fire(UnsupportedRegion, "control_plane")],
            &[],
        ),
        case(
            "AKSMI031 own kubelet identity in China East",
            || {
                Inv::new()
                    .cluster(
                        ClusterB::user_assigned("a")
                            .own_kubelet()
                            .location("chinaeast"),
                    )
                    .documented("a")
                    .grant(
                        "a-cp",
                        "Managed Identity Operator",
                        &identity_id("a-kubelet"),
                    )
                    .report()
            },
            vec![fire(UnsupportedRegion, "kubelet")],
            &[],
        ),
        case(
            "AKSMI031 not for system-assigned identities there, nor elsewhere",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").location("usdodcentral"))
                    .cluster(ClusterB::user_assigned("b"))
                    .documented("a")
                    .documented("b")
                    .report()
            },
            vec![],
            &[UnsupportedRegion],
        ),
    ]
}

/// AKSMI040 / AKSMI041: pod identity.
/// AKSMI050: retired features, with their dates (the clock is 2026-06-01).
pub(super) fn retired_cases() -> Vec<Case> {
    vec![
        case(
            "AKSMI050 HTTP application routing (retired 2025-03-03): medium",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").addon("httpApplicationRouting", Some("a-har")))
                    .documented("a")
                    .report()
            },
            vec![fire(RetiredFeature, "addon:httpApplicationRouting")
                .about("httpApplicationRouting")
                .severity(Severity::Medium)],
            &[],
        ),
        case(
            "AKSMI050 Container Insights legacy auth (retires 2026-09-30): low before the date",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").addon("omsagent", Some("a-oms")))
                    .documented("a")
                    .report()
            },
            vec![fire(RetiredFeature, "addon:omsagent")
                .about("omsagent")
                .severity(Severity::Low)],
            &[],
        ),
        case(
            "AKSMI050 not with managed identity authentication",
            || {
                Inv::new()
                    .cluster(
                        ClusterB::mi("a")
                            .addon("omsagent", Some("a-oms"))
                            .addon_config("useAADAuth", "True"),
                    )
                    .documented("a")
                    .report()
            },
            vec![],
            &[RetiredFeature],
        ),
    ]
}

pub(super) fn pod_identity_cases() -> Vec<Case> {
    vec![
        case(
            "AKSMI040 and AKSMI041 pod identity without the kube-system exception",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").pod_identity(false))
                    .documented("a")
                    .report()
            },
            vec![
                fire(PodIdentity, "control_plane").severity(Severity::High),
                fire(PodIdentityException, "control_plane"),
            ],
            &[],
        ),
        case(
            "AKSMI041 not with the exception (AKSMI040 still fires)",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").pod_identity(true))
                    .documented("a")
                    .report()
            },
            vec![fire(PodIdentity, "control_plane").severity(Severity::High)],
            &[PodIdentityException],
        ),
        case(
            "AKSMI040 not without pod identity",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a"))
                    .documented("a")
                    .report()
            },
            vec![],
            &[PodIdentity, PodIdentityException],
        ),
    ]
}
