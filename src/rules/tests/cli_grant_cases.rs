//! Grants `az aks enable-addons` and `--attach-acr` make themselves (issue 11 §3,
//! azure-cli acs `addonconfiguration.py` and `managed_cluster_decorator.py`, 2.91.0):
//! documented, not excess. Add-on config keys as the CLI writes them
//! (`applicationGatewayId`, `subnetId`, `subnetCIDR`, `SubnetName`).
use super::builder::*;
use super::rules::{case, fire, sp_with_acr, Case};
use crate::rules::{RuleId, Severity};

use RuleId::*;

fn appgw() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg-appgw/providers/Microsoft.Network/applicationGateways/agw-prod")
}

fn appgw_rg() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg-appgw")
}

/// Cluster `a` with AGIC (identity `a-agic`) on an existing gateway, AGIC's documented
/// Contributor on the node resource group, and `grant` on the gateway's group.
fn agic_with(role: &str, gateway: bool) -> crate::rules::Report {
    let mut c = ClusterB::mi("a").addon("ingressApplicationGateway", Some("a-agic"));
    if gateway {
        c = c.addon_config("applicationGatewayId", &appgw());
    }
    Inv::new()
        .cluster(c)
        .documented("a")
        .grant("a-agic", "Contributor", &node_rg("a"))
        .grant("a-agic", role, &appgw_rg())
        .report()
}

pub(super) fn cli_grant_cases() -> Vec<Case> {
    vec![
        case(
            "AKSMI011 not for AGIC's Network Contributor on its existing gateway's resource group",
            || agic_with("Network Contributor", true),
            vec![],
            &[ExcessRole, WideScope],
        ),
        case(
            "AKSMI011 low for AGIC's Contributor on the gateway's group (older CLIs): narrow it",
            || agic_with("Contributor", true),
            vec![fire(ExcessRole, "addon:ingressApplicationGateway").severity(Severity::Low)],
            &[WideScope],
        ),
        case(
            "AKSMI011 medium for the same Contributor when AGIC names no gateway there",
            || agic_with("Contributor", false),
            vec![fire(ExcessRole, "addon:ingressApplicationGateway")],
            &[],
        ),
        case(
            "AKSMI011 not for AGIC's Network Contributor on its subnetId",
            || {
                Inv::new()
                    .cluster(
                        ClusterB::mi("a")
                            .addon("ingressApplicationGateway", Some("a-agic"))
                            .addon_config("subnetId", &subnet_id("net", "v", "appgw")),
                    )
                    .documented("a")
                    .grant("a-agic", "Contributor", &node_rg("a"))
                    .grant("a-agic", "Network Contributor", &subnet_id("net", "v", "appgw"))
                    .report()
            },
            vec![],
            &[ExcessRole, WideScope],
        ),
        case(
            "AKSMI011 not for virtual node's Contributor on the VNet and Network Contributor on its subnet",
            || {
                Inv::new()
                    .cluster(
                        ClusterB::mi("a")
                            .subnet_pool("np", &subnet_id("net", "v", "nodes"))
                            .addon("aciConnectorLinux", Some("a-aci"))
                            .addon_config("SubnetName", "virtual-node-aci"),
                    )
                    .documented("a")
                    .grant("a-cp", "Network Contributor", &subnet_id("net", "v", "nodes"))
                    .grant("a-aci", "Contributor", &node_rg("a"))
                    .grant("a-aci", "Contributor", &vnet_id("net", "v"))
                    .grant("a-aci", "Network Contributor", &subnet_id("net", "v", "virtual-node-aci"))
                    .report()
            },
            vec![],
            &[ExcessRole, WideScope],
        ),
        case(
            "AKSMI011 virtual node's Network Contributor on a subnet of another VNet is excess",
            || {
                Inv::new()
                    .cluster(
                        ClusterB::mi("a")
                            .subnet_pool("np", &subnet_id("net", "v", "nodes"))
                            .addon("aciConnectorLinux", Some("a-aci"))
                            .addon_config("SubnetName", "virtual-node-aci"),
                    )
                    .documented("a")
                    .grant("a-cp", "Network Contributor", &subnet_id("net", "v", "nodes"))
                    .grant("a-aci", "Contributor", &node_rg("a"))
                    .grant("a-aci", "Network Contributor", &subnet_id("net", "other", "virtual-node-aci"))
                    .report()
            },
            vec![fire(ExcessRole, "addon:aciConnectorLinux")],
            &[],
        ),
        case(
            "AKSMI011 not for AcrPull held by a service principal: it is the kubelet identity there",
            || sp_with_acr().report(),
            vec![],
            &[ExcessRole, WideScope],
        ),
        case(
            "AKSMI011 AcrPull held by a managed control-plane identity is excess",
            || {
                Inv::new()
                    .registry("acr1")
                    .cluster(ClusterB::mi("a"))
                    .documented("a")
                    .grant("a-cp", "AcrPull", &registry_id("acr1"))
                    .report()
            },
            vec![fire(ExcessRole, "control_plane")],
            &[],
        ),
    ]
}

#[test]
fn narrowing_agic_contributor_grants_network_contributor_first() {
    let r = agic_with("Contributor", true);
    let f = r
        .findings
        .iter()
        .find(|f| f.rule_id == ExcessRole)
        .expect("a low excess");
    let lines: Vec<&str> = f.remediation.lines().collect();
    assert_eq!(lines.len(), 2, "{}", f.remediation);
    assert!(
        lines[0].starts_with("az role assignment create")
            && lines[0].contains("--role 'Network Contributor'")
            && lines[0].ends_with(&format!("--scope {}", appgw_rg())),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("az role assignment delete"),
        "{}",
        lines[1]
    );
    let row = r
        .role_checks
        .iter()
        .find(|c| &*c.actual_scope == appgw_rg().as_str() && &*c.actual_role == "Contributor")
        .expect("a role check row");
    assert_eq!(row.status, crate::rules::RoleCheckStatus::Excess);
}
