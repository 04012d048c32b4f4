//! Whether an identity can pull from a container registry, by the registry's
//! role-assignment mode; the kubelet's pull grants on registries in ABAC mode
//! (AKSMI025, AKSMI026); the registries a scope stands for (AKSMI022's fix).
//!
//! # What Microsoft documents
//!
//! - A registry's `properties.roleAssignmentMode` is `LegacyRegistryPermissions` or
//!   `AbacRepositoryPermissions` (Azure SDK enum `RoleAssignmentMode`; `az acr show
//!   --query roleAssignmentMode`). Absent means legacy.
//! - `container-registry-rbac-abac-repository-permissions.md` (MicrosoftDocs/
//!   azure-management-docs 57b95f2e437e4e001096fddfc2435d5d2e0128fe) L23: "Legacy ACR
//!   roles such as `AcrPull`, `AcrPush`, and `AcrDelete` are not honored in
//!   ABAC-enabled registries"; L491 maps AcrPull to Container Registry Repository
//!   Reader (+ Catalog Lister for listing).
//! - `container-registry-rbac-built-in-roles-directory-reference.md` (77ed42b0…),
//!   "Privileged roles": in ABAC mode Owner, Contributor and Reader have no data-plane
//!   permissions; in legacy mode Owner and Contributor push and pull, Reader pulls.
//! - `managed-identity-overview.md` (azure-aks-docs 6fc34f7a, 2026-07-31) L100: "For
//!   registries in RBAC Registry + ABAC Repository Permissions mode, use the
//!   `Container Registry Repository Reader` role."
//! - az CLI 2.91.0 `--attach-acr` assigns `acrpull` whatever the mode
//!   (`_roleassignments.py` `ensure_aks_acr_role_assignment`): on an ABAC registry the
//!   documented fix is a role assignment, not `--attach-acr`.
//!
//! Container Registry Repository Writer and Contributor also read; their GUIDs were
//! not checked against a primary source here, so they count only when the
//! assignment carries their name (`az role assignment list` prints it).
use super::baseline;
use super::checks::new_finding;
use super::classify;
use super::index::Index;
use super::{remedy, ClusterCtx, Finding, IdentityKey, RuleId};
use crate::inventory::ids::{self, relate, ScopeRelation};
use crate::inventory::{Cluster, Registry, RoleAssignment};

/// AcrPush (built-in roles, containers): pushes and pulls on a legacy registry.
pub const ACR_PUSH: &str = "8311e382-0749-4cb8-b61a-304f252e45ec";
/// Container Registry Repository Reader (built-in roles, containers @ 0088bfa7).
pub const REPOSITORY_READER: &str = "b93aa761-3e63-49ed-ac28-beffa264f7ac";
pub const REPOSITORY_READER_NAME: &str = "Container Registry Repository Reader";

/// Reader (built-in roles): pulls on a legacy registry.
const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";

/// Legacy mode: the roles with pull rights.
const LEGACY_PULL: &[&str] = &[
    baseline::ACR_PULL,
    ACR_PUSH,
    baseline::OWNER,
    baseline::CONTRIBUTOR,
    READER,
];

/// ABAC mode: the repository roles that read, by name (see the module documentation).
const ABAC_PULL_NAMES: &[&str] = &[
    REPOSITORY_READER_NAME,
    "Container Registry Repository Writer",
    "Container Registry Repository Contributor",
];

/// Container Registry Repository Catalog Lister (built-in roles, containers @
/// 0088bfa7): lists repositories, reads no content.
pub const CATALOG_LISTER: &str = "bfdb9389-c9a5-478a-bb2f-ba9ca092c3c7";

/// Roles that pull on a legacy registry but not on an ABAC one, and the catalog
/// lister, which never pulls: what a kubelet holding them on an ABAC registry was
/// meant to pull with.
const NOT_HONOURED: &[&str] = &[
    baseline::ACR_PULL,
    ACR_PUSH,
    baseline::OWNER,
    baseline::CONTRIBUTOR,
    READER,
    CATALOG_LISTER,
];

/// Whether assignment `a` gives pull rights on a registry in mode `abac` (wherever
/// it is granted).
pub fn gives_pull(a: &RoleAssignment, abac: bool) -> bool {
    if abac {
        &*a.role_guid == REPOSITORY_READER
            || a.role_name
                .as_deref()
                .is_some_and(|n| ABAC_PULL_NAMES.iter().any(|r| r.eq_ignore_ascii_case(n)))
    } else {
        LEGACY_PULL.contains(&&*a.role_guid)
            || a.role_name.as_deref().is_some_and(|n| {
                ["AcrPull", "AcrPush", "Owner", "Contributor", "Reader"]
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(n))
            })
    }
}

/// The assignments of `held` that give pull on `reg` (at it or above it).
pub fn pull_grants<'h>(held: &[&'h RoleAssignment], reg: &Registry) -> Vec<&'h RoleAssignment> {
    let abac = reg.is_abac();
    held.iter()
        .copied()
        .filter(|a| gives_pull(a, abac) && relate(&a.scope, &reg.id) != ScopeRelation::None)
        .collect()
}

pub fn pulls(held: &[&RoleAssignment], reg: &Registry) -> bool {
    !pull_grants(held, reg).is_empty()
}

/// The registries `scope` stands for: the registry itself, or the known registries
/// under a subscription or resource group (`--attach-acr` takes a registry name or
/// id, never a wider scope). A management group (or `/`): the registries of the
/// cluster's own subscription, the only ones known to be under it.
pub fn registries_under<'r>(
    scope: &str,
    cluster_subscription: &str,
    registries: &[&'r Registry],
) -> Vec<&'r Registry> {
    let s = ids::norm(scope);
    let above_subscriptions = s == "/" || s.starts_with("/providers/microsoft.management/");
    registries
        .iter()
        .copied()
        .filter(|r| {
            if above_subscriptions {
                r.subscription_id.eq_ignore_ascii_case(cluster_subscription)
            } else {
                relate(scope, &r.id) != ScopeRelation::None
            }
        })
        .collect()
}

/// Whether `scope` is a registry's resource id (not a repository or other child).
pub fn is_registry_id(scope: &str) -> bool {
    let s = ids::norm(scope);
    const MARK: &str = "/providers/microsoft.containerregistry/registries/";
    s.find(MARK)
        .is_some_and(|i| !s[i + MARK.len()..].is_empty() && !s[i + MARK.len()..].contains('/'))
}

/// The command that gives `principal` (the kubelet identity) pull on `reg`: `az aks
/// update --attach-acr` on a legacy registry (it assigns AcrPull), a Container
/// Registry Repository Reader assignment on an ABAC one (`--attach-acr` would assign
/// AcrPull, which ABAC mode ignores).
pub fn grant_pull(c: &Cluster, principal: Option<&str>, reg: &Registry) -> String {
    match (reg.is_abac(), principal) {
        (false, _) => remedy::attach_acr(c, &reg.id),
        (true, Some(p)) => remedy::create_role(p, REPOSITORY_READER_NAME, &reg.id),
        (true, None) => format!(
            "# {} is in ABAC mode: assign Container Registry Repository Reader to the kubelet identity (--attach-acr assigns AcrPull, which it ignores)\n{}",
            reg.name,
            remedy::create_role("KUBELET_OBJECT_ID", REPOSITORY_READER_NAME, &reg.id)
        ),
    }
}

/// Whether `a` is the kubelet's documented pull role for a registry in ABAC mode:
/// Container Registry Repository Reader on such a registry. Any baseline: the tables
/// before ABAC mode name AcrPull, whose place it takes there.
pub fn documented_abac_pull(a: &RoleAssignment, registries: &[&Registry]) -> bool {
    &*a.role_guid == REPOSITORY_READER
        && registries
            .iter()
            .any(|r| r.is_abac() && relate(&a.scope, &r.id) == ScopeRelation::Exact)
}

/// The scopes at which `held` grants a registry pull role (AcrPull, or Container
/// Registry Repository Reader): what a kubelet identity pulls from, for history.
pub fn pull_grant_scopes(held: &[&RoleAssignment]) -> Vec<String> {
    let mut out: Vec<String> = held
        .iter()
        .filter(|a| {
            &*a.role_guid == baseline::ACR_PULL
                || &*a.role_guid == REPOSITORY_READER
                || a.role_name.as_deref().is_some_and(|n| {
                    n.eq_ignore_ascii_case("AcrPull")
                        || n.eq_ignore_ascii_case(REPOSITORY_READER_NAME)
                })
        })
        .map(|a| a.scope.to_string())
        .collect();
    out.sort_by_key(|s| s.to_ascii_lowercase());
    out.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    out
}

/// AKSMI022 for a replaced kubelet identity (`az aks update --assign-kubelet-identity`,
/// seen in history): each registry the old identity had a pull grant on (a wider
/// scope stands for the registries under it) where the new one cannot pull. Not for
/// registries already in `skip` (reported by the migration check).
pub fn kubelet_replaced_findings(ctx: &ClusterCtx, idx: &Index, skip: &[&str]) -> Vec<Finding> {
    let c = ctx.cluster;
    let Some(change) = ctx.observed.kubelet_change.as_ref() else {
        return vec![];
    };
    let Some(scopes) = change.old_registries.as_ref() else {
        return vec![];
    };
    let Some(kubelet) = c.kubelet.as_ref().and_then(|k| k.object_id.as_deref()) else {
        return vec![];
    };
    let held = idx.assignments(kubelet);
    let mut seen: std::collections::BTreeSet<String> =
        skip.iter().map(|s| s.to_ascii_lowercase()).collect();
    let mut out = Vec::new();
    let day = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d").to_string();
    for scope in scopes {
        let regs = registries_under(scope, &c.subscription_id, idx.all_registries());
        for reg in regs {
            if !seen.insert(reg.id.to_ascii_lowercase()) || pulls(held, reg) {
                continue;
            }
            let role = if reg.is_abac() {
                REPOSITORY_READER_NAME
            } else {
                "AcrPull"
            };
            out.push(new_finding(ctx, RuleId::AcrPullAfterMigration, IdentityKey::Kubelet, &reg.id,
                format!("the kubelet identity was replaced between {} and {} (was `{}`): the old identity could pull from registry {}, the new one has no {role} there, so image pulls from it fail", day(change.last_seen_old), day(change.observed_at), change.old_object_id, reg.name),
                grant_pull(c, Some(kubelet), reg)));
        }
    }
    out
}

/// The principal that pulls images for `c`: the kubelet identity, or on a
/// service-principal cluster the service principal.
pub fn kubelet_principal(ctx: &ClusterCtx) -> Option<String> {
    let c = ctx.cluster;
    if classify::is_managed(c) {
        c.kubelet.as_ref()?.object_id.clone()
    } else {
        ctx.control_plane_principal.clone()
    }
}

/// AKSMI025: the kubelet holds, on a registry in ABAC mode, a role ABAC mode does not
/// honour (AcrPull, AcrPush, Owner, Contributor, Reader) granted on that registry
/// itself — a pull grant that does nothing: high without a repository role there,
/// low (a leftover) with one. AKSMI026: on a registry a grant names, its only pull
/// grants carry an ABAC condition (some repositories only): info. Grants above the
/// registry (subscription, resource group) are not read as meant for it.
pub fn abac_findings(ctx: &ClusterCtx, idx: &Index) -> Vec<Finding> {
    let Some(principal) = kubelet_principal(ctx) else {
        return vec![];
    };
    let held = idx.assignments(&principal);
    let key = if classify::is_managed(ctx.cluster) {
        IdentityKey::Kubelet
    } else {
        IdentityKey::ControlPlane
    };
    // Only the ABAC registries a grant names, looked up among the registries of the
    // grant's own subscription (a few), never a scan of every registry per cluster
    // (at 100,000 clusters and 31,000 registries that scan was 10 s of the run).
    let mut named: Vec<&Registry> = Vec::new();
    for a in held.iter().filter(|a| is_registry_id(&a.scope)) {
        let scope = a.scope.trim().trim_end_matches('/');
        let Some(sub) = ids::subscription_of(scope) else {
            continue;
        };
        if let Some(r) = idx
            .registries_in(sub)
            .iter()
            .find(|r| r.is_abac() && r.id.trim().eq_ignore_ascii_case(scope))
        {
            if !named.iter().any(|n| std::ptr::eq(*n, *r)) {
                named.push(r);
            }
        }
    }
    let mut out = Vec::new();
    for reg in named {
        let on_it: Vec<&RoleAssignment> = held
            .iter()
            .copied()
            .filter(|a| relate(&a.scope, &reg.id) == ScopeRelation::Exact)
            .collect();
        let ignored: Vec<&RoleAssignment> = on_it
            .iter()
            .copied()
            .filter(|a| NOT_HONOURED.contains(&&*a.role_guid))
            .collect();
        let grants = pull_grants(held, reg);
        if let Some(a) = ignored.first() {
            let role = match &*a.role_guid {
                CATALOG_LISTER => "Container Registry Repository Catalog Lister (which lists repositories, never pulls)".to_string(),
                g => baseline::role_display(g, a.role_name.as_deref()),
            };
            let mut f = if grants.is_empty() {
                new_finding(ctx, RuleId::AbacPullNotHonoured, key.clone(), &reg.id,
                    format!("{} identity holds {role} on registry {}, which is in ABAC mode (roleAssignmentMode AbacRepositoryPermissions): {role} is not honoured there and the identity has no Container Registry Repository Reader, so image pulls from it fail", key.label(), reg.name),
                    format!("{}\n# once pulls work, the ignored grant can go: {}", grant_pull(ctx.cluster, Some(&principal), reg), remedy::delete_role(&a.id)))
            } else {
                new_finding(ctx, RuleId::AbacPullNotHonoured, key.clone(), &reg.id,
                    format!("{} identity holds {role} on registry {}, which ABAC mode does not honour; it pulls through Container Registry Repository Reader, so the {role} grant is a leftover", key.label(), reg.name),
                    remedy::delete_role(&a.id))
            };
            if !grants.is_empty() {
                f.severity = super::Severity::Low;
            }
            out.push(f);
            continue;
        }
        if !grants.is_empty() && grants.iter().all(|a| a.condition.is_some()) {
            out.push(new_finding(ctx, RuleId::AbacPullScoped, key.clone(), &reg.id,
                format!("{} identity's Container Registry Repository Reader on registry {} carries an ABAC condition: it pulls only from the repositories the condition names; images elsewhere in the registry fail to pull", key.label(), reg.name),
                format!("# inspect only: az role assignment list --assignee {} --scope {} --query \"[].{{role:roleDefinitionName, condition:condition}}\" -o json", remedy::q(&principal), remedy::q(&reg.id))));
        }
    }
    out
}
