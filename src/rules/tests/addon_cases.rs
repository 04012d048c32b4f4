//! Add-ons as current docs describe them: Container Insights with managed-identity
//! authentication, add-ons that need no roles, application routing, the pod
//! identity add-on's end of support.
//!
//! Shapes: `addonProfiles.omsagent {enabled, config{logAnalyticsWorkspaceResourceID,
//! useAADAuth: "true"}, identity: null}` and `ingressProfile.webAppRouting {enabled,
//! dnsZoneResourceIds[], identity{resourceId, clientId, objectId}}` as the
//! azure-mgmt-containerservice models and `az aks show` print them.
use super::builder::*;
use super::rules::{case, fire, Case};
use crate::rules::{Report, RuleId::*, Severity};

fn ci_with_msi_auth(baseline: &str, mmp: bool) -> Report {
    let mut i = Inv::new()
        .baseline(baseline)
        .cluster(
            ClusterB::mi("a")
                .addon("omsagent", if mmp { Some("a-oms") } else { None })
                .addon_config("logAnalyticsWorkspaceResourceID", "/subscriptions/sub1/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/law-core")
                .addon_config("useAADAuth", "true"),
        )
        .documented("a");
    if mmp {
        i = i.grant("a-oms", "Monitoring Metrics Publisher", &cluster_id("a"));
    }
    i.report()
}

fn zones() -> Vec<String> {
    vec![
        dns_zone_id("contoso.example"),
        private_dns_zone_id("internal.contoso.example"),
    ]
}

pub(super) fn addon_cases() -> Vec<Case> {
    vec![
        case(
            "AKSMI013/AKSMI010 not for Container Insights with managed-identity auth (identity null), current baseline",
            || ci_with_msi_auth("aks-docs-current", false),
            vec![],
            &[AddonWithoutIdentity, MissingRole, RetiredFeature],
        ),
        case(
            "AKSMI013/AKSMI010 not for Container Insights with managed-identity auth (identity null), 2021 baseline",
            || ci_with_msi_auth("aks-docs-2021", false),
            vec![],
            &[AddonWithoutIdentity, MissingRole, RetiredFeature],
        ),
        case(
            "AKSMI011 low: Monitoring Metrics Publisher left over after managed-identity auth (current)",
            || ci_with_msi_auth("aks-docs-current", true),
            vec![fire(ExcessRole, "addon:omsagent").severity(Severity::Low)],
            &[MissingRole],
        ),
        case(
            "AKSMI011 low: Monitoring Metrics Publisher left over after managed-identity auth (2021)",
            || ci_with_msi_auth("aks-docs-2021", true),
            vec![fire(ExcessRole, "addon:omsagent").severity(Severity::Low)],
            &[MissingRole],
        ),
        case(
            "AKSMI011 for a grant held by an add-on documented to need no roles",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").addon("azurepolicy", Some("a-pol")))
                    .documented("a")
                    .grant("a-pol", "Reader", &node_rg("a"))
                    .report()
            },
            vec![fire(ExcessRole, "addon:azurepolicy").severity(Severity::Medium)],
            &[UnknownAddon, AddonWithoutIdentity],
        ),
        case(
            "AKSMI011 not for a no-roles add-on that holds none",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").addon("openServiceMesh", Some("a-osm")))
                    .documented("a")
                    .report()
            },
            vec![],
            &[ExcessRole, UnknownAddon, AddonWithoutIdentity],
        ),
        case(
            "AKSMI010 application routing lacks its zone role on each zone (public and private)",
            || {
                Inv::new()
                    .baseline("aks-docs-current")
                    .cluster(ClusterB::mi("a").app_routing(&zones()))
                    .documented("a")
                    .report()
            },
            vec![
                fire(MissingRole, "addon:webAppRouting").about(&format!(
                    "befefa01-2a29-4197-83a8-272ff33ce314|{}",
                    dns_zone_id("contoso.example")
                )),
                fire(MissingRole, "addon:webAppRouting").about(&format!(
                    "b12aa53e-6015-4669-85d0-8515ebb3ae7f|{}",
                    private_dns_zone_id("internal.contoso.example")
                )),
            ],
            &[],
        ),
        case(
            "AKSMI010/011 not for application routing with its zone roles and Key Vault Certificate User on a vault",
            || {
                Inv::new()
                    .baseline("aks-docs-current")
                    .cluster(ClusterB::mi("a").app_routing(&zones()))
                    .documented("a")
                    .grant("a-approuting", "DNS Zone Contributor", &dns_zone_id("contoso.example"))
                    .grant(
                        "a-approuting",
                        "Private DNS Zone Contributor",
                        &private_dns_zone_id("internal.contoso.example"),
                    )
                    .grant(
                        "a-approuting",
                        "Key Vault Certificate User",
                        &format!("{}/resourceGroups/rg-kv/providers/Microsoft.KeyVault/vaults/kv-ingress", sub_scope()),
                    )
                    .report()
            },
            vec![],
            &[MissingRole, ExcessRole, WideScope],
        ),
        case(
            "AKSMI011 application routing: a zone role on another zone, Contributor anywhere",
            || {
                Inv::new()
                    .baseline("aks-docs-current")
                    .cluster(ClusterB::mi("a").app_routing(&[dns_zone_id("contoso.example")]))
                    .documented("a")
                    .grant("a-approuting", "DNS Zone Contributor", &dns_zone_id("contoso.example"))
                    .grant("a-approuting", "DNS Zone Contributor", &dns_zone_id("other.example"))
                    .grant("a-approuting", "Contributor", &node_rg("a"))
                    .report()
            },
            vec![fire(ExcessRole, "addon:webAppRouting")],
            &[MissingRole],
        ),
        case(
            "AKSMI050 pod identity add-on: support ended 2025-09-30",
            || {
                Inv::new()
                    .cluster(ClusterB::mi("a").pod_identity(true))
                    .documented("a")
                    .report()
            },
            vec![fire(RetiredFeature, "control_plane")
                .about("podIdentityProfile")
                .severity(Severity::Medium)],
            &[],
        ),
    ]
}

#[test]
fn app_routing_grants_are_read_with_the_cluster_and_judged_per_zone() {
    // Loaded: the identity's principal is one of the cluster's.
    let c = ClusterB::mi("a").app_routing(&zones()).0;
    assert!(c.principal_ids().any(|p| p == "a-approuting"));
    let r = Inv::new()
        .baseline("aks-docs-current")
        .cluster(ClusterB::mi("a").app_routing(&zones()))
        .documented("a")
        .grant(
            "a-approuting",
            "DNS Zone Contributor",
            &dns_zone_id("contoso.example"),
        )
        .report();
    let missing: Vec<&str> = r
        .findings
        .iter()
        .filter(|f| f.rule_id == MissingRole)
        .map(|f| f.remediation.as_str())
        .collect();
    assert_eq!(
        missing,
        [format!("az role assignment create --assignee-object-id a-approuting --assignee-principal-type ServicePrincipal --role 'Private DNS Zone Contributor' --scope {}", private_dns_zone_id("internal.contoso.example")).as_str()]
    );
    // On the 2021 table (before the add-on) its grants are not judged.
    let old = Inv::new()
        .baseline("aks-docs-2021")
        .cluster(ClusterB::mi("a").app_routing(&zones()))
        .documented("a")
        .grant("a-approuting", "Contributor", &node_rg("a"))
        .report();
    assert!(
        !old.findings
            .iter()
            .any(|f| f.identity == "addon:webAppRouting"),
        "{:#?}",
        old.findings
    );
}

#[test]
fn pod_identity_retirement_is_low_before_the_date() {
    let mut i = Inv::new()
        .cluster(ClusterB::mi("a").pod_identity(true))
        .documented("a");
    i.now = "2025-09-01T06:00:00Z".parse().unwrap();
    let r = i.report();
    let f = r
        .findings
        .iter()
        .find(|f| f.rule_id == RetiredFeature && f.subject == "podIdentityProfile")
        .expect("AKSMI050");
    assert_eq!(f.severity, Severity::Low);
    assert!(f.message.contains("ends on 2025-09-30"), "{}", f.message);
}
