//! The roles a cluster needs only in some situations: Network Contributor on a
//! custom subnet (AKSMI020), Managed Identity Operator over its own kubelet identity
//! (AKSMI021), pull rights for the new kubelet identity after a migration (AKSMI022).
use std::collections::BTreeSet;

use super::actions;
use super::baseline::{self, Baseline, Condition, ScopeKind};
use super::checks::new_finding;
use super::classify::{self, KubeletIdentity};
use super::index::Index;
use super::{registry_pull, remedy, scope, ClusterCtx, Finding, IdentityKey, RuleId, Severity};
use crate::history::MigrationStatus;
use crate::inventory::ids::{self, relate, ScopeRelation};
use crate::inventory::{AgentPool, Cluster, RoleAssignment, SmallMap};

/// Whether one of `held` grants one of the roles `guids` at `target` or above it.
fn holds(held: &[&RoleAssignment], guids: &[&str], target: &str) -> bool {
    held.iter()
        .any(|a| guids.contains(&&*a.role_guid) && relate(&a.scope, target) != ScopeRelation::None)
}

/// AKSMI020 and AKSMI021, for the control-plane identity `principal` holding `held`;
/// nothing while its grants may still propagate.
pub fn control_plane(
    ctx: &ClusterCtx,
    idx: &Index,
    principal: &str,
    held: &[&RoleAssignment],
    grace: bool,
) -> Vec<Finding> {
    if grace {
        return vec![];
    }
    let mut out = subnet_permission(ctx, idx, principal, held);
    out.extend(kubelet_operator(ctx, idx, principal, held));
    out
}

/// Pools' custom subnets outside the node resource group, each once (any case).
fn outside_subnets<'c>(ctx: &ClusterCtx<'c>) -> Vec<(&'c AgentPool, &'c str)> {
    let c = ctx.cluster;
    let node_rg = c.node_resource_group.as_deref().unwrap_or_default();
    let mut seen = BTreeSet::new();
    c.pools
        .iter()
        .filter_map(|p| Some((p, p.vnet_subnet_id.as_deref()?)))
        .filter(|(_, subnet)| {
            ids::resource_group_of(subnet).is_some_and(|rg| !rg.eq_ignore_ascii_case(node_rg))
        })
        .filter(|(_, subnet)| seen.insert(subnet.to_ascii_lowercase()))
        .collect()
}

/// AKSMI020: a custom subnet outside the node resource group without Network
/// Contributor (or Contributor, Owner), or a custom role granting the subnet join and
/// read actions, on it, its VNet or their resource group. A custom role whose
/// definition was not read gives an info "verify", never a high.
fn subnet_permission(
    ctx: &ClusterCtx,
    idx: &Index,
    principal: &str,
    held: &[&RoleAssignment],
) -> Vec<Finding> {
    let mut out = Vec::new();
    // A subnet whose subscription's grants were not read is a coverage gap, not a verdict.
    for (p, subnet) in outside_subnets(ctx)
        .into_iter()
        .filter(|(_, subnet)| !idx.grants_unread(subnet))
    {
        let (msg, severity) = match subnet_grant(idx, held, subnet) {
            SubnetGrant::Granted => continue,
            SubnetGrant::Lacking(why) if why.is_empty() => (
                "has no Network Contributor on it, its VNet or their resource group".to_string(),
                None,
            ),
            SubnetGrant::Lacking(why) => (
                format!("has no Network Contributor on it, its VNet or their resource group, and {}", why.join("; ")),
                None,
            ),
            SubnetGrant::Unknown(guid) => (
                format!("holds custom role {guid} there, whose definition was not read: verify it grants {} and {}", actions::SUBNET_ACTIONS[0], actions::SUBNET_ACTIONS[1]),
                Some(Severity::Info),
            ),
        };
        let mut f = new_finding(ctx, RuleId::SubnetPermission, IdentityKey::ControlPlane, subnet,
            format!("pool `{}` uses subnet {subnet} outside the node resource group, and the control-plane identity {msg}", p.name),
            remedy::create_role(principal, "Network Contributor", subnet));
        if let Some(s) = severity {
            f.severity = s;
        }
        out.push(f);
    }
    out
}

/// What the held assignments grant at a subnet.
enum SubnetGrant {
    Granted,
    /// Not granted; the custom roles held there and what each lacks.
    Lacking(Vec<String>),
    /// Not granted by anything known, but a custom role (this GUID) whose definition
    /// is unknown is held there.
    Unknown(String),
}

fn subnet_grant(idx: &Index, held: &[&RoleAssignment], subnet: &str) -> SubnetGrant {
    let allowed = [
        baseline::NETWORK_CONTRIBUTOR,
        baseline::CONTRIBUTOR,
        baseline::OWNER,
    ];
    if holds(held, &allowed, subnet) {
        return SubnetGrant::Granted;
    }
    let mut lacking = Vec::new();
    let mut unknown = None;
    for a in held
        .iter()
        .filter(|a| relate(&a.scope, subnet) != ScopeRelation::None)
    {
        match idx.role_definition(&a.role_guid) {
            Some(def) => {
                let missing = actions::lacking(def, &actions::SUBNET_ACTIONS);
                if missing.is_empty() {
                    return SubnetGrant::Granted;
                }
                let name = def.role_name.as_deref().unwrap_or(&a.role_guid);
                lacking.push(format!(
                    "its custom role `{name}` lacks {}",
                    missing.join(" and ")
                ));
            }
            // Built-in roles other than the allowed ones do not join subnets.
            None if baseline::role_display(&a.role_guid, None) == *a.role_guid => {
                unknown.get_or_insert_with(|| a.role_guid.to_string());
            }
            None => {}
        }
    }
    match unknown {
        Some(g) if lacking.is_empty() => SubnetGrant::Unknown(g),
        _ => SubnetGrant::Lacking(lacking),
    }
}

/// AKSMI021: its own kubelet identity, without Managed Identity Operator (or
/// Contributor, Owner) over it.
fn kubelet_operator(
    ctx: &ClusterCtx,
    idx: &Index,
    principal: &str,
    held: &[&RoleAssignment],
) -> Option<Finding> {
    let c = ctx.cluster;
    if classify::kubelet_identity(c) != KubeletIdentity::UserAssigned {
        return None;
    }
    let kid = c.kubelet.as_ref()?.resource_id.as_deref()?;
    if idx.grants_unread(kid) {
        return None;
    }
    let allowed = [
        baseline::MANAGED_IDENTITY_OPERATOR,
        baseline::CONTRIBUTOR,
        baseline::OWNER,
    ];
    if holds(held, &allowed, kid) {
        return None;
    }
    Some(new_finding(ctx, RuleId::KubeletOperator, IdentityKey::ControlPlane, kid,
        format!("cluster brings its own kubelet identity {kid}, but the control-plane identity lacks Managed Identity Operator over it"),
        remedy::create_role(principal, "Managed Identity Operator", kid)))
}

/// AKSMI022: after a migration the new kubelet identity needs pull rights again on
/// each registry the service principal pulled from (a subscription- or group-scope
/// AcrPull stands for the known registries under it, each named in its own valid
/// command). Pull is judged by the registry's mode ([`registry_pull`]): AcrPull,
/// AcrPush, Owner, Contributor or Reader on a legacy registry, Container Registry
/// Repository Reader on an ABAC one. When the service principal's grants were read
/// and it held no AcrPull, the cluster used no registry that way: nothing. When
/// they could not be read (Resource Graph does not name a service principal by
/// client id), a low prompt lists the subscription's registries none of which the
/// kubelet can pull from.
pub fn acr_after_migration(ctx: &ClusterCtx, idx: &Index) -> Vec<Finding> {
    let c = ctx.cluster;
    if !matches!(
        ctx.status,
        MigrationStatus::Pending | MigrationStatus::Complete | MigrationStatus::Unknown
    ) {
        return vec![];
    }
    let Some(kubelet) = c.kubelet.as_ref().and_then(|k| k.object_id.as_deref()) else {
        return vec![];
    };
    let held = idx.assignments(kubelet);
    let all = idx.all_registries();
    let before = &ctx.observed.sp_acr_registries;
    if !before.is_empty() {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for scope in before {
            let regs = registry_pull::registries_under(scope, &c.subscription_id, all);
            if regs.is_empty() && registry_pull::is_registry_id(scope) {
                // A registry the inventory does not list (another subscription, or
                // deleted): named by the id the service principal held it at.
                if seen.insert(scope.to_ascii_lowercase())
                    && !holds(held, &[baseline::ACR_PULL], scope)
                {
                    out.push(new_finding(ctx, RuleId::AcrPullAfterMigration, IdentityKey::Kubelet, scope,
                        format!("the service principal could pull from {scope} before the migration; the new kubelet identity has no AcrPull there"),
                        remedy::attach_acr(c, scope)));
                }
                continue;
            }
            for reg in regs {
                if !seen.insert(reg.id.to_ascii_lowercase()) || registry_pull::pulls(held, reg) {
                    continue;
                }
                let via = if ids::norm(scope) == ids::norm(&reg.id) {
                    String::new()
                } else {
                    format!(" (through AcrPull at {scope})")
                };
                let role = if reg.is_abac() {
                    "Container Registry Repository Reader (the registry is in ABAC mode, where AcrPull is not honoured)"
                } else {
                    "AcrPull"
                };
                out.push(new_finding(ctx, RuleId::AcrPullAfterMigration, IdentityKey::Kubelet, &reg.id,
                    format!("the service principal could pull from registry {}{via} before the migration; the new kubelet identity has no {role} there", reg.name),
                    registry_pull::grant_pull(c, Some(kubelet), reg)));
            }
        }
        return out;
    }
    if ctx.observed.sp_acr_known {
        // The service principal's grants were read: it pulled from no registry.
        return vec![];
    }
    let in_sub = idx.registries_in(&c.subscription_id);
    if in_sub.is_empty() || in_sub.iter().any(|r| registry_pull::pulls(held, r)) {
        return vec![];
    }
    let names: Vec<&str> = in_sub.iter().map(|r| r.name.as_str()).collect();
    let mut f = new_finding(ctx, RuleId::AcrPullAfterMigration, IdentityKey::Kubelet, "subscription-registries",
        format!("the service principal's registry grants before the migration are not known, and the kubelet identity can pull from none of the subscription's registries ({}): if the cluster used --attach-acr, grant it again for the registries it pulls from", names.join(", ")),
        in_sub.iter().map(|r| format!("# if the cluster pulls from {}:\n{}", r.name, registry_pull::grant_pull(c, Some(kubelet), r))).collect::<Vec<_>>().join("\n"));
    f.severity = super::Severity::Low;
    vec![f]
}

/// A role the control plane needs at one target because of how the cluster is
/// configured: a conditional baseline row (`when = ...`, AKSMI023) or the custom
/// subnet and own kubelet identity of AKSMI020/021.
pub struct Need {
    pub role_name: String,
    pub role_guid: String,
    pub kind: ScopeKind,
    pub target: String,
    /// The situation, for messages.
    pub why: String,
    /// Set for baseline rows (AKSMI023); `None` for AKSMI020/021's own needs.
    pub severity: Option<Severity>,
    /// Whether missing it is a finding (the row is `required`).
    pub required: bool,
}

impl Need {
    /// Roles that grant what this one does: itself, and for a management-plane role
    /// Contributor and Owner. Key Vault Crypto User is a data-plane role, which
    /// Contributor and Owner do not hold (built-in role definitions: `dataActions`).
    fn covering(&self) -> Vec<&str> {
        let mut v = vec![self.role_guid.as_str()];
        if self.role_guid != baseline::KEY_VAULT_CRYPTO_USER {
            v.extend([baseline::CONTRIBUTOR, baseline::OWNER]);
        }
        v
    }

    /// Whether assignment `a` grants this need (at the target or above it).
    pub fn covered_by(&self, c: &Cluster, a: &RoleAssignment) -> bool {
        self.covering().contains(&&*a.role_guid)
            && scope::relate_target(self.kind, c, &self.target, &a.scope) != ScopeRelation::None
    }

    /// The command that grants it; a KMS vault known only by name is looked up by name.
    pub fn create(&self, principal: &str) -> String {
        match self.target.strip_prefix("vault:") {
            Some(name) => format!(
                "az role assignment create --assignee-object-id {} --assignee-principal-type ServicePrincipal --role {} --scope \"$(az keyvault show --name {} --query id -o tsv)\"",
                remedy::q(principal),
                remedy::q(&self.role_name),
                remedy::q(name)
            ),
            None => remedy::create_role(principal, &self.role_name, &self.target),
        }
    }

    /// The target as a person reads it.
    fn shown(&self) -> String {
        match self.target.strip_prefix("vault:") {
            Some(name) => format!("key vault `{name}` (named by keyId)"),
            None => self.target.clone(),
        }
    }
}

fn situation(w: Condition) -> &'static str {
    match w {
        Condition::CustomPrivateDnsZone => "a custom private DNS zone (apiServerAccessProfile.privateDNSZone)",
        Condition::ApiServerVnetIntegration => "API server VNet integration (apiServerAccessProfile.subnetId)",
        Condition::Kms => "KMS etcd encryption (securityProfile.azureKeyVaultKms)",
        Condition::KmsPrivateVault => "KMS etcd encryption with a private key vault (keyVaultNetworkAccess: Private)",
        Condition::DiskEncryptionSet => "a disk encryption set (diskEncryptionSetID)",
        Condition::OutboundIpsElsewhere => "outbound public IPs or prefixes outside the node resource group (networkProfile.loadBalancerProfile)",
        Condition::PodIdentity => "pod identity (podIdentityProfile.userAssignedIdentities)",
    }
}

/// Everything the control plane of `c` needs because of its configuration.
pub fn needs(c: &Cluster, bl: &Baseline) -> Vec<Need> {
    let mut out = Vec::new();
    for r in bl.roles_of(&IdentityKey::ControlPlane) {
        let Some(w) = r.when.filter(|w| w.holds(c)) else {
            continue;
        };
        for target in scope::targets(r.scope, c, &SmallMap::new(), &[]) {
            out.push(Need {
                role_name: r.role_name.clone(),
                role_guid: r.role_guid.clone(),
                kind: r.scope,
                target,
                why: situation(w).to_string(),
                severity: Some(r.severity.unwrap_or(Severity::High)),
                required: r.required,
            });
        }
    }
    let node_rg = c.node_resource_group.as_deref().unwrap_or_default();
    let mut seen = BTreeSet::new();
    for p in &c.pools {
        let Some(subnet) = p.vnet_subnet_id.as_deref() else {
            continue;
        };
        let outside =
            ids::resource_group_of(subnet).is_some_and(|rg| !rg.eq_ignore_ascii_case(node_rg));
        if outside && seen.insert(subnet.to_ascii_lowercase()) {
            out.push(Need {
                role_name: "Network Contributor".into(),
                role_guid: baseline::NETWORK_CONTRIBUTOR.into(),
                kind: ScopeKind::Subnet,
                target: subnet.to_string(),
                why: format!("pool `{}` uses a custom subnet", p.name),
                severity: None,
                required: false,
            });
        }
    }
    if classify::kubelet_identity(c) == KubeletIdentity::UserAssigned {
        if let Some(kid) = c.kubelet.as_ref().and_then(|k| k.resource_id.clone()) {
            out.push(Need {
                role_name: "Managed Identity Operator".into(),
                role_guid: baseline::MANAGED_IDENTITY_OPERATOR.into(),
                kind: ScopeKind::KubeletIdentity,
                target: kid,
                why: "the cluster brings its own kubelet identity".into(),
                severity: None,
                required: false,
            });
        }
    }
    out
}

/// AKSMI023: each required conditional role whose situation holds and that no
/// assignment of the control plane grants (directly, above the target, or through
/// Contributor / Owner for management-plane roles). Nothing within the propagation
/// grace.
pub fn feature_roles(
    ctx: &ClusterCtx,
    idx: &Index,
    bl: &Baseline,
    principal: &str,
    held: &[&RoleAssignment],
    grace: bool,
) -> Vec<Finding> {
    if grace {
        return vec![];
    }
    let c = ctx.cluster;
    needs(c, bl)
        .into_iter()
        .filter(|n| n.required && n.severity.is_some())
        .filter(|n| !idx.grants_unread(&n.target))
        .filter(|n| !held.iter().any(|a| n.covered_by(c, a)))
        .map(|n| {
            let mut msg = format!(
                "the cluster uses {}, and the control-plane identity has no {} on {}",
                n.why,
                n.role_name,
                n.shown()
            );
            if n.role_guid == baseline::KEY_VAULT_CRYPTO_USER {
                msg.push_str(" (a key vault on access policies needs an access policy with encrypt and decrypt instead; vault settings are not read: verify)");
            }
            let mut f = new_finding(
                ctx,
                RuleId::FeatureRole,
                IdentityKey::ControlPlane,
                &format!("{}|{}", n.role_guid, n.target),
                msg,
                n.create(principal),
            );
            f.severity = n.severity.unwrap_or(f.severity);
            f
        })
        .collect()
}

/// The commands that grant, first, what only assignment `a` grants among `held`:
/// a fix that removes or narrows `a` must never take away a role the cluster's
/// configuration needs (a documented situation), so it re-creates those at their
/// documented scope before the delete.
pub fn regrant_before_delete(
    c: &Cluster,
    bl: &Baseline,
    principal: &str,
    held: &[&RoleAssignment],
    a: &RoleAssignment,
) -> Vec<String> {
    needs(c, bl)
        .into_iter()
        .filter(|n| n.covered_by(c, a))
        .filter(|n| !held.iter().any(|b| b.id != a.id && n.covered_by(c, b)))
        .map(|n| n.create(principal))
        .collect()
}

/// Coverage gaps for the targets of the control plane's situational roles (custom
/// subnets, private DNS zones, key vaults ...) in subscriptions outside the audited
/// scope: their grants were not read, so AKSMI020/021/023 do not judge them (a hub
/// subscription holding the VNet is common). One gap per subscription, naming the
/// first cluster and target that needed it. Only when the inventory lists its
/// subscriptions at all (a folder without `subscriptions.json` places nothing).
pub fn out_of_scope_gaps(
    inv: &crate::inventory::Inventory,
    clusters: &[Cluster],
    bl: &Baseline,
) -> Vec<crate::inventory::Gap> {
    if inv.subscriptions.is_empty() {
        return vec![];
    }
    let known: BTreeSet<String> = inv
        .subscriptions
        .iter()
        .map(|s| s.id.to_ascii_lowercase())
        .collect();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for c in clusters {
        for n in needs(c, bl) {
            let Some(sub) = ids::subscription_of(&n.target) else {
                continue;
            };
            // The cluster's own subscription is judged by the existing gap rules
            // (role assignments read at or below it, or not).
            let lower = sub.to_ascii_lowercase();
            if sub.eq_ignore_ascii_case(&c.subscription_id)
                || known.contains(&lower)
                || !seen.insert(lower)
            {
                continue;
            }
            out.push(crate::inventory::Gap {
                scope: format!("/subscriptions/{sub}"),
                reason: format!(
                    "outside the audited scope: cluster `{}` needs {} on {} there; its grants were not read, so that check is not evaluated",
                    c.name, n.role_name, n.target
                ),
                tables: vec!["role-assignments".into()],
            });
        }
    }
    out
}

/// AKSMI004, medium: a system-assigned control plane with a feature the docs say it
/// cannot serve: a custom private DNS zone (`system-assigned-managed-identity.md`,
/// `private-clusters.md`: "a user-assigned identity ... with the Private DNS Zone
/// Contributor and Network Contributor roles") or KMS etcd encryption
/// (`use-kms-etcd-encryption.md`: "KMS etcd encryption doesn't work with
/// system-assigned managed identity").
pub fn system_assigned_with_feature(ctx: &ClusterCtx) -> Vec<Finding> {
    let c = ctx.cluster;
    if c.identity.as_ref().map(|i| i.kind) != Some(crate::inventory::IdentityType::SystemAssigned) {
        return vec![];
    }
    let mut out = Vec::new();
    let mut push = |subject: &str, what: &str| {
        let mut f = new_finding(ctx, RuleId::InconsistentIdentity, IdentityKey::ControlPlane, subject,
            format!("{what} with a system-assigned control plane: the docs require a user-assigned identity (created and granted before the feature is turned on); verify the configuration"),
            remedy::show_identity(c));
        f.severity = Severity::Medium;
        out.push(f);
    };
    if c.features.private_dns_zone.is_some() {
        push(
            "system-assigned-with-custom-private-dns-zone",
            "custom private DNS zone (apiServerAccessProfile.privateDNSZone)",
        );
    }
    if c.features.kms.is_some() {
        push(
            "system-assigned-with-kms",
            "KMS etcd encryption (securityProfile.azureKeyVaultKms)",
        );
    }
    out
}
