//! Where a documented role applies for one cluster, and how an assignment's scope
//! relates to it.
use crate::inventory::SmallMap;

use super::baseline::ScopeKind;
use crate::inventory::ids::{self, relate, ScopeRelation};
use crate::inventory::{Cluster, Registry};

/// The resource ids a scope kind stands for on this cluster. Empty when unknown.
pub fn targets(
    kind: ScopeKind,
    c: &Cluster,
    config: &SmallMap<String>,
    registries: &[&Registry],
) -> Vec<String> {
    let node_rg = c
        .node_resource_group
        .as_deref()
        .map(|rg| ids::resource_group_id(&c.subscription_id, rg));
    match kind {
        ScopeKind::NodeResourceGroup => node_rg.into_iter().collect(),
        ScopeKind::Cluster => vec![c.id.clone()],
        ScopeKind::DnsZone => {
            let zone = config
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("HTTPApplicationRoutingZoneName"))
                .map(|(_, v)| v.clone());
            match (node_rg, zone) {
                (Some(rg), Some(z)) if !z.is_empty() => {
                    vec![format!("{rg}/providers/Microsoft.Network/dnszones/{z}")]
                }
                _ => vec![],
            }
        }
        ScopeKind::Subnet => c
            .pools
            .iter()
            .filter_map(|p| p.vnet_subnet_id.clone())
            .collect(),
        ScopeKind::KubeletIdentity => c
            .kubelet
            .as_ref()
            .and_then(|k| k.resource_id.clone())
            .into_iter()
            .collect(),
        ScopeKind::Registry => registries.iter().map(|r| r.id.clone()).collect(),
        ScopeKind::PrivateDnsZone => c.features.private_dns_zone.clone().into_iter().collect(),
        ScopeKind::ClusterVnet => {
            let mut seen = std::collections::BTreeSet::new();
            c.pools
                .iter()
                .filter_map(|p| vnet_of(p.vnet_subnet_id.as_deref()?))
                .filter(|v| seen.insert(ids::norm(v)))
                .collect()
        }
        ScopeKind::ApiServerSubnet => c.features.api_server_subnet.clone().into_iter().collect(),
        ScopeKind::KmsKeyVault => kms_vault(c).into_iter().collect(),
        ScopeKind::DiskEncryptionSet => {
            c.features.disk_encryption_set.clone().into_iter().collect()
        }
        ScopeKind::OutboundIpResourceGroup => outbound_ip_groups(c),
        ScopeKind::PodIdentity => c.features.pod_identities.clone(),
        ScopeKind::AppGwResourceGroup => config_value(config, "applicationGatewayId")
            .and_then(|gw| {
                Some(ids::resource_group_id(
                    ids::subscription_of(gw)?,
                    ids::resource_group_of(gw)?,
                ))
            })
            .into_iter()
            .collect(),
        ScopeKind::AppGwSubnet => config_value(config, "subnetId")
            .map(str::to_string)
            .into_iter()
            .collect(),
        // The CLI reads `agentPoolProfiles[0].vnetSubnetID`.
        ScopeKind::AppGwVnet => config_value(config, "subnetCIDR")
            .or(config_value(config, "subnetPrefix"))
            .and_then(|_| vnet_of(c.pools.first()?.vnet_subnet_id.as_deref()?))
            .into_iter()
            .collect(),
        ScopeKind::VirtualNodeVnet => config_value(config, "SubnetName")
            .and_then(|_| cluster_vnet(c))
            .into_iter()
            .collect(),
        ScopeKind::VirtualNodeSubnet => config_value(config, "SubnetName")
            .and_then(|name| Some(format!("{}/subnets/{name}", cluster_vnet(c)?)))
            .into_iter()
            .collect(),
        ScopeKind::AppRoutingDnsZone => app_routing_zones(c, false),
        ScopeKind::AppRoutingPrivateDnsZone => app_routing_zones(c, true),
        ScopeKind::Any | ScopeKind::AnyKeyVault => vec![],
    }
}

/// A non-empty add-on config value, its key compared ignoring case.
fn config_value<'c>(config: &'c SmallMap<String>, key: &str) -> Option<&'c str> {
    config
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case(key) && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// The VNet of the first pool with a custom subnet.
fn cluster_vnet(c: &Cluster) -> Option<String> {
    c.pools
        .iter()
        .find_map(|p| vnet_of(p.vnet_subnet_id.as_deref()?))
}

/// A subnet id's VNet id.
pub fn vnet_of(subnet_id: &str) -> Option<String> {
    let pos = subnet_id.to_ascii_lowercase().find("/subnets/")?;
    Some(subnet_id[..pos].to_string())
}

/// The KMS key vault as a target: its resource id when the payload has one (private
/// vaults), else `vault:<name>` from `keyId` (a public vault's payload names it only
/// there; vault names are unique within a cloud, so the name identifies it).
pub fn kms_vault(c: &Cluster) -> Option<String> {
    let k = c.features.kms.as_ref()?;
    k.key_vault_resource_id
        .clone()
        .or_else(|| k.vault_name().map(|n| format!("vault:{n}")))
}

/// The resource groups of outbound public IPs and prefixes outside the node resource
/// group, each once, as resource-group ids.
pub fn outbound_ip_groups(c: &Cluster) -> Vec<String> {
    let node_rg = c.node_resource_group.as_deref().unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    c.features
        .outbound_ips
        .iter()
        .filter_map(|ip| {
            let sub = ids::subscription_of(ip)?;
            let rg = ids::resource_group_of(ip)?;
            let elsewhere =
                !rg.eq_ignore_ascii_case(node_rg) || !sub.eq_ignore_ascii_case(&c.subscription_id);
            elsewhere.then(|| ids::resource_group_id(sub, rg))
        })
        .filter(|g| seen.insert(ids::norm(g)))
        .collect()
}

/// The scopes that count as "at" one target of a conditional scope kind: the subnet,
/// its VNet and their resource group for subnets (documented, `system-assigned-managed-identity.md`
/// "Network Contributor role on the custom resource group"); the VNet and its resource
/// group for VNets; the resource group or each IP in it for outbound IPs; else the target.
pub fn documented_at(kind: ScopeKind, c: &Cluster, target: &str) -> Vec<String> {
    match kind {
        ScopeKind::Subnet | ScopeKind::ApiServerSubnet => subnet_documented_scopes(target),
        ScopeKind::ClusterVnet => {
            let mut v = vec![target.to_string()];
            if let (Some(sub), Some(rg)) =
                (ids::subscription_of(target), ids::resource_group_of(target))
            {
                v.push(ids::resource_group_id(sub, rg));
            }
            v
        }
        ScopeKind::OutboundIpResourceGroup => {
            let t = ids::norm(target);
            let mut v = vec![target.to_string()];
            v.extend(
                c.features
                    .outbound_ips
                    .iter()
                    .filter(|ip| ids::norm(ip).starts_with(&format!("{t}/")))
                    .cloned(),
            );
            v
        }
        _ => vec![target.to_string()],
    }
}

/// How an assignment scope relates to one target of `kind` (see [`documented_at`]):
/// exact at a documented scope, an ancestor above one. A KMS vault known only by
/// name (`vault:<name>`) is matched by the name of a vault scope; nothing above it
/// can be placed (its group is unknown), so only the vault itself counts.
pub fn relate_target(kind: ScopeKind, c: &Cluster, target: &str, scope: &str) -> ScopeRelation {
    if let Some(name) = target.strip_prefix("vault:") {
        let s = ids::norm(scope);
        let suffix = format!(
            "/providers/microsoft.keyvault/vaults/{}",
            name.to_ascii_lowercase()
        );
        return if s.ends_with(&suffix) {
            ScopeRelation::Exact
        } else {
            ScopeRelation::None
        };
    }
    let mut best = ScopeRelation::None;
    for d in documented_at(kind, c, target) {
        match relate(scope, &d) {
            ScopeRelation::Exact => return ScopeRelation::Exact,
            ScopeRelation::Ancestor => best = ScopeRelation::Ancestor,
            ScopeRelation::None => {}
        }
    }
    // A subnet's or VNet's resource group is documented; only the subscription or
    // wider is wide.
    if best == ScopeRelation::Ancestor
        && matches!(kind, ScopeKind::ApiServerSubnet | ScopeKind::ClusterVnet)
        && !ids::is_subscription_or_wider(scope)
    {
        return ScopeRelation::Exact;
    }
    best
}

/// The application routing add-on's public or private DNS zones.
fn app_routing_zones(c: &Cluster, private: bool) -> Vec<String> {
    let Some(w) = c.web_app_routing.as_ref() else {
        return vec![];
    };
    w.dns_zone_ids
        .iter()
        .filter(|z| {
            let n = ids::norm(z);
            if private {
                n.contains("/providers/microsoft.network/privatednszones/")
            } else {
                n.contains("/providers/microsoft.network/dnszones/")
            }
        })
        .cloned()
        .collect()
}

/// The first of [`targets`], without collecting every registry id for `Registry`.
pub fn first_target(
    kind: ScopeKind,
    c: &Cluster,
    config: &SmallMap<String>,
    registries: &[&Registry],
) -> Option<String> {
    match kind {
        ScopeKind::Registry => registries.first().map(|r| r.id.clone()),
        _ => targets(kind, c, config, registries).into_iter().next(),
    }
}

/// The length of [`targets`], without collecting every registry id for `Registry`.
pub fn target_count(
    kind: ScopeKind,
    c: &Cluster,
    config: &SmallMap<String>,
    registries: &[&Registry],
) -> usize {
    match kind {
        ScopeKind::Registry => registries.len(),
        _ => targets(kind, c, config, registries).len(),
    }
}

/// The relation of an assignment scope to a documented scope kind on this cluster.
/// For subnets, the VNet and the subnet's resource group count as exact (documented).
pub fn relation(
    kind: ScopeKind,
    c: &Cluster,
    config: &SmallMap<String>,
    registries: &[&Registry],
    scope: &str,
) -> ScopeRelation {
    match kind {
        ScopeKind::Any => return ScopeRelation::Exact,
        ScopeKind::AnyKeyVault => {
            let s = ids::norm(scope);
            return match s.find("/providers/microsoft.keyvault/vaults/") {
                Some(_) => ScopeRelation::Exact,
                None if s == "/"
                    || s.starts_with("/subscriptions/")
                    || s.starts_with("/providers/microsoft.management/") =>
                {
                    // A resource group, subscription or management group holds vaults.
                    if s.contains("/providers/")
                        && !s.starts_with("/providers/microsoft.management/")
                    {
                        ScopeRelation::None // some other resource
                    } else {
                        ScopeRelation::Ancestor
                    }
                }
                None => ScopeRelation::None,
            };
        }
        ScopeKind::Registry if is_registry_scope(scope) => return ScopeRelation::Exact,
        ScopeKind::Registry => return above_a_registry(scope, registries),
        ScopeKind::DnsZone if targets(kind, c, config, registries).is_empty() => {
            // Zone name unknown: any DNS zone in the node resource group is the documented one.
            let rg = targets(ScopeKind::NodeResourceGroup, c, config, registries);
            let s = ids::norm(scope);
            if let Some(rg) = rg.first() {
                let rg = ids::norm(rg);
                if s.starts_with(&format!("{rg}/providers/microsoft.network/dnszones/")) {
                    return ScopeRelation::Exact;
                }
                return relate(scope, &rg);
            }
            return ScopeRelation::None;
        }
        k if k.is_conditional() => {
            let mut best = ScopeRelation::None;
            for t in targets(kind, c, config, registries) {
                match relate_target(kind, c, &t, scope) {
                    ScopeRelation::Exact => return ScopeRelation::Exact,
                    ScopeRelation::Ancestor => best = ScopeRelation::Ancestor,
                    ScopeRelation::None => {}
                }
            }
            return best;
        }
        _ => {}
    }
    let mut best = ScopeRelation::None;
    for t in targets(kind, c, config, registries) {
        let candidates: Vec<String> = if kind == ScopeKind::Subnet {
            subnet_documented_scopes(&t)
        } else {
            vec![t]
        };
        for target in candidates {
            match relate(scope, &target) {
                ScopeRelation::Exact => return ScopeRelation::Exact,
                ScopeRelation::Ancestor => best = ScopeRelation::Ancestor,
                ScopeRelation::None => {}
            }
        }
    }
    if kind == ScopeKind::Subnet && best == ScopeRelation::Ancestor {
        // The subnet's resource group is documented; only the subscription or wider is wide.
        if !ids::is_subscription_or_wider(scope) {
            return ScopeRelation::Exact;
        }
    }
    best
}

/// A scope that is not a registry is at best an ancestor of one. One pass over the
/// registries, the scope normalised once (this runs per assignment, registries are many).
fn above_a_registry(scope: &str, registries: &[&Registry]) -> ScopeRelation {
    let a = ids::norm(scope);
    let wide = a == "/" || a.starts_with("/providers/microsoft.management/managementgroups/");
    let under = |id: &str| {
        let t = id.trim().trim_end_matches('/');
        t.len() > a.len()
            && t.as_bytes()[a.len()] == b'/'
            && t.as_bytes()[..a.len()].eq_ignore_ascii_case(a.as_bytes())
    };
    let any = registries.iter().any(|r| {
        let t = r.id.trim();
        if wide {
            let starts = |p: &str| {
                t.len() >= p.len() && t.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
            };
            starts("/subscriptions/") || starts("/providers/")
        } else {
            under(t)
        }
    });
    if any {
        ScopeRelation::Ancestor
    } else {
        ScopeRelation::None
    }
}

/// Subnet id → [subnet, its VNet, the VNet's resource group].
pub fn subnet_documented_scopes(subnet_id: &str) -> Vec<String> {
    let mut out = vec![subnet_id.to_string()];
    let lower = subnet_id.to_ascii_lowercase();
    if let Some(pos) = lower.find("/subnets/") {
        out.push(subnet_id[..pos].to_string());
    }
    if let (Some(sub), Some(rg)) = (
        ids::subscription_of(subnet_id),
        ids::resource_group_of(subnet_id),
    ) {
        out.push(ids::resource_group_id(sub, rg));
    }
    out
}

fn is_registry_scope(scope: &str) -> bool {
    ids::norm(scope).contains("/providers/microsoft.containerregistry/registries/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::AgentPool;

    #[test]
    fn registry_relation_without_collecting_every_registry() {
        let c = cluster();
        let reg = Registry {
            id: "/subscriptions/S/resourceGroups/Shared/providers/Microsoft.ContainerRegistry/registries/acr1".into(),
            ..Default::default()
        };
        let regs = [&reg];
        let cfg = SmallMap::new();
        let rel = |scope: &str| relation(ScopeKind::Registry, &c, &cfg, &regs, scope);
        assert_eq!(rel(&reg.id), ScopeRelation::Exact);
        assert_eq!(
            rel("/subscriptions/s/resourcegroups/shared"),
            ScopeRelation::Ancestor
        );
        assert_eq!(rel("/subscriptions/s/"), ScopeRelation::Ancestor);
        assert_eq!(rel("/"), ScopeRelation::Ancestor);
        assert_eq!(
            rel("/providers/Microsoft.Management/managementGroups/root"),
            ScopeRelation::Ancestor
        );
        assert_eq!(
            rel("/subscriptions/s/resourceGroups/sha"),
            ScopeRelation::None
        );
        assert_eq!(rel("/subscriptions/other"), ScopeRelation::None);
        assert_eq!(
            relation(ScopeKind::Registry, &c, &cfg, &[], "/"),
            ScopeRelation::None
        );
        assert_eq!(
            first_target(ScopeKind::Registry, &c, &cfg, &regs),
            Some(reg.id.clone())
        );
        assert_eq!(target_count(ScopeKind::Registry, &c, &cfg, &regs), 1);
        assert_eq!(target_count(ScopeKind::Cluster, &c, &cfg, &regs), 1);
    }

    fn cluster() -> Cluster {
        Cluster {
            id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c".into(),
            subscription_id: "s".into(),
            node_resource_group: Some("MC_rg_c".into()),
            pools: vec![AgentPool {
                name: "np".into(),
                vnet_subnet_id: Some("/subscriptions/s/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v/subnets/a".into()),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn node_rg_exact_and_wider() {
        let c = cluster();
        let cfg = SmallMap::new();
        let r = |s: &str| relation(ScopeKind::NodeResourceGroup, &c, &cfg, &[], s);
        assert_eq!(
            r("/subscriptions/s/resourcegroups/mc_rg_c"),
            ScopeRelation::Exact
        );
        assert_eq!(r("/subscriptions/s"), ScopeRelation::Ancestor);
        assert_eq!(
            r("/subscriptions/s/resourceGroups/other"),
            ScopeRelation::None
        );
    }

    #[test]
    fn subnet_vnet_and_rg_are_documented() {
        let c = cluster();
        let cfg = SmallMap::new();
        let r = |s: &str| relation(ScopeKind::Subnet, &c, &cfg, &[], s);
        assert_eq!(
            r("/subscriptions/s/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v"),
            ScopeRelation::Exact
        );
        assert_eq!(
            r("/subscriptions/s/resourceGroups/net"),
            ScopeRelation::Exact
        );
        assert_eq!(r("/subscriptions/s"), ScopeRelation::Ancestor);
        assert_eq!(
            r("/subscriptions/s/resourceGroups/other"),
            ScopeRelation::None
        );
    }

    #[test]
    fn dns_zone_with_and_without_name() {
        let c = cluster();
        let named: SmallMap<_> = [(
            "HTTPApplicationRoutingZoneName".to_string(),
            "abc.eastus.aksapp.io".to_string(),
        )]
        .into_iter()
        .collect();
        let zone = "/subscriptions/s/resourceGroups/MC_rg_c/providers/Microsoft.Network/dnszones/abc.eastus.aksapp.io";
        assert_eq!(
            relation(ScopeKind::DnsZone, &c, &named, &[], zone),
            ScopeRelation::Exact
        );
        assert_eq!(
            relation(ScopeKind::DnsZone, &c, &SmallMap::new(), &[], zone),
            ScopeRelation::Exact
        );
        assert_eq!(
            relation(
                ScopeKind::DnsZone,
                &c,
                &named,
                &[],
                "/subscriptions/s/resourceGroups/MC_rg_c"
            ),
            ScopeRelation::Ancestor
        );
    }
}
