//! The documented table as data: which roles each identity should hold, where.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::inventory::{ids, SmallMap};

/// Built-in roles the baselines and rules name, GUIDs verified against Microsoft's table.
pub const BUILTIN_ROLES: &[(&str, &str)] = &[
    ("Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"),
    ("Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c"),
    ("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7"),
    (
        "User Access Administrator",
        "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    ),
    (
        "DNS Zone Contributor",
        "befefa01-2a29-4197-83a8-272ff33ce314",
    ),
    (
        "Private DNS Zone Contributor",
        "b12aa53e-6015-4669-85d0-8515ebb3ae7f",
    ),
    (
        "Monitoring Metrics Publisher",
        "3913510d-42f4-4e42-8a64-420c390055eb",
    ),
    ("AcrPull", "7f951dda-4ed3-4680-a7ca-43fe172d538d"),
    // ACR in ABAC mode (roleAssignmentMode AbacRepositoryPermissions): AcrPull is not
    // honoured; this is the pull role (azure-docs built-in roles, containers).
    (
        "Container Registry Repository Reader",
        "b93aa761-3e63-49ed-ac28-beffa264f7ac",
    ),
    (
        "Network Contributor",
        "4d97b98b-1d4f-4787-a291-c67834d212e7",
    ),
    (
        "Managed Identity Operator",
        "f1a07417-d97a-45cb-824c-7a7467783830",
    ),
    (
        "Virtual Machine Contributor",
        "9980e02c-c2be-4d73-94e8-173b1dc7cf3c",
    ),
    // KMS etcd encryption (use-kms-etcd-encryption.md): the control plane's roles on
    // the key vault. GUIDs as in the azure-docs built-in roles tables (Key Vault
    // Contributor, Key Vault Crypto User rows).
    (
        "Key Vault Crypto User",
        "12338af0-0e69-4776-bea7-57ae8d297424",
    ),
    (
        "Key Vault Contributor",
        "f25e0fa2-a7c8-4377-a976-54943a77a395",
    ),
];

pub const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
pub const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
pub const USER_ACCESS_ADMIN: &str = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9";
pub const NETWORK_CONTRIBUTOR: &str = "4d97b98b-1d4f-4787-a291-c67834d212e7";
pub const MANAGED_IDENTITY_OPERATOR: &str = "f1a07417-d97a-45cb-824c-7a7467783830";
pub const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
pub const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
pub const KEY_VAULT_CRYPTO_USER: &str = "12338af0-0e69-4776-bea7-57ae8d297424";

pub fn role_guid_by_name(name: &str) -> Option<&'static str> {
    BUILTIN_ROLES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, g)| *g)
}

/// A display name for a role GUID: the built-in name, else the given name, else the GUID.
pub fn role_display(guid: &str, given: Option<&str>) -> String {
    BUILTIN_ROLES
        .iter()
        .find(|(_, g)| g.eq_ignore_ascii_case(guid))
        .map(|(n, _)| n.to_string())
        .or_else(|| given.map(str::to_string))
        .unwrap_or_else(|| guid.to_string())
}

/// Where a documented role applies, relative to the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeKind {
    NodeResourceGroup,
    Cluster,
    /// The add-on's DNS zone (`HTTPApplicationRoutingZoneName`) in the node resource group.
    DnsZone,
    /// A custom subnet of one of the cluster's pools, its VNet or their resource group.
    Subnet,
    /// The cluster's own kubelet identity.
    KubeletIdentity,
    /// Any container registry.
    Registry,
    /// Each public DNS zone of the application routing add-on
    /// (`ingressProfile.webAppRouting.dnsZoneResourceIds`, `Microsoft.Network/dnszones`).
    AppRoutingDnsZone,
    /// Each private DNS zone of the application routing add-on (`privateDnsZones`).
    AppRoutingPrivateDnsZone,
    /// A key vault (which one is not in the cluster's ARM data): at a vault, documented;
    /// at its resource group or wider, too wide.
    AnyKeyVault,
    /// Anywhere (topology-dependent roles).
    Any,
    // The scopes of conditional rows (`when = ...`): each exists only while its
    // cluster field is set (issue 11 §2).
    /// `apiServerAccessProfile.privateDNSZone` (a custom private DNS zone).
    PrivateDnsZone,
    /// The VNet of each pool's custom subnet, or the VNet's resource group.
    ClusterVnet,
    /// `apiServerAccessProfile.subnetId`, its VNet or their resource group.
    ApiServerSubnet,
    /// The KMS key vault: `keyVaultResourceId`, else the vault named by `keyId`.
    KmsKeyVault,
    /// `diskEncryptionSetID`.
    DiskEncryptionSet,
    /// The resource group of each outbound public IP or prefix outside the node
    /// resource group (or the IP itself).
    OutboundIpResourceGroup,
    /// Each pod identity's user-assigned identity.
    PodIdentity,
    // Where `az aks enable-addons` grants an add-on's roles, from its config
    // (azure-cli acs `addonconfiguration.py` add_ingress_appgw_addon_role_assignment,
    // add_virtual_node_role_assignment).
    /// The resource group of AGIC's `applicationGatewayId`.
    AppGwResourceGroup,
    /// AGIC's `subnetId`.
    AppGwSubnet,
    /// With AGIC's `subnetCIDR`: the VNet of the first pool's subnet.
    AppGwVnet,
    /// With virtual node's `SubnetName`: the VNet of the cluster's subnet.
    VirtualNodeVnet,
    /// That VNet's subnet `SubnetName`.
    VirtualNodeSubnet,
}

impl ScopeKind {
    /// The conditional scopes: a row with one of them needs `when`.
    pub fn is_conditional(self) -> bool {
        use ScopeKind::*;
        matches!(
            self,
            PrivateDnsZone
                | ClusterVnet
                | ApiServerSubnet
                | KmsKeyVault
                | DiskEncryptionSet
                | OutboundIpResourceGroup
                | PodIdentity
        )
    }
}

/// A cluster configuration under which the control plane needs (and may hold) a
/// role: the `when` of a conditional baseline row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// `apiServerAccessProfile.privateDNSZone` is a resource id.
    CustomPrivateDnsZone,
    /// `apiServerAccessProfile.enableVnetIntegration` with a `subnetId`.
    ApiServerVnetIntegration,
    /// `securityProfile.azureKeyVaultKms.enabled`.
    Kms,
    /// KMS with `keyVaultNetworkAccess: Private` and a `keyVaultResourceId`.
    KmsPrivateVault,
    /// `diskEncryptionSetID` is set.
    DiskEncryptionSet,
    /// An outbound public IP or prefix outside the node resource group.
    OutboundIpsElsewhere,
    /// `podIdentityProfile.enabled` with pod identities.
    PodIdentity,
}

impl Condition {
    /// The scopes a row with this condition may name.
    pub fn scopes(self) -> &'static [ScopeKind] {
        use ScopeKind as S;
        match self {
            Condition::CustomPrivateDnsZone => &[S::PrivateDnsZone, S::ClusterVnet],
            Condition::ApiServerVnetIntegration => &[S::ApiServerSubnet],
            Condition::Kms | Condition::KmsPrivateVault => &[S::KmsKeyVault],
            Condition::DiskEncryptionSet => &[S::DiskEncryptionSet],
            Condition::OutboundIpsElsewhere => &[S::OutboundIpResourceGroup],
            Condition::PodIdentity => &[S::PodIdentity],
        }
    }

    /// As the baseline TOML spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::CustomPrivateDnsZone => "custom_private_dns_zone",
            Condition::ApiServerVnetIntegration => "api_server_vnet_integration",
            Condition::Kms => "kms",
            Condition::KmsPrivateVault => "kms_private_vault",
            Condition::DiskEncryptionSet => "disk_encryption_set",
            Condition::OutboundIpsElsewhere => "outbound_ips_elsewhere",
            Condition::PodIdentity => "pod_identity",
        }
    }

    /// Whether the cluster is in this situation.
    pub fn holds(self, c: &crate::inventory::Cluster) -> bool {
        let f = &c.features;
        match self {
            Condition::CustomPrivateDnsZone => f.private_dns_zone.is_some(),
            Condition::ApiServerVnetIntegration => f.api_server_subnet.is_some(),
            Condition::Kms => f.kms.is_some(),
            Condition::KmsPrivateVault => f
                .kms
                .as_ref()
                .is_some_and(|k| k.private && k.key_vault_resource_id.is_some()),
            Condition::DiskEncryptionSet => f.disk_encryption_set.is_some(),
            Condition::OutboundIpsElsewhere => !super::scope::outbound_ip_groups(c).is_empty(),
            Condition::PodIdentity => !f.pod_identities.is_empty(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    role: Option<String>,
    role_id: Option<String>,
    scope: ScopeKind,
    #[serde(default = "yes")]
    required: bool,
    #[serde(default)]
    unless_config: BTreeMap<String, String>,
    /// A conditional row: the role applies (allowed, and when `required` missing is
    /// AKSMI023) only while the cluster is in this situation.
    #[serde(default)]
    when: Option<Condition>,
    /// AKSMI023's severity for this row (default: the rule's, high).
    #[serde(default)]
    severity: Option<super::Severity>,
    /// A grant older tools made, allowed but wider than needed: held, it is a low
    /// AKSMI011 "narrow to <role>".
    #[serde(default)]
    narrow_to: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    identity: String,
    #[serde(default)]
    roles: Vec<RawRole>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBaseline {
    name: String,
    title: String,
    date: String,
    source: String,
    #[serde(default)]
    no_identity_addons: Vec<String>,
    #[serde(default)]
    identity: Vec<RawIdentity>,
}

/// One expected role of one identity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExpectedRole {
    pub role_guid: String,
    pub role_name: String,
    pub scope: ScopeKind,
    /// Required roles fire AKSMI010 when missing; optional ones are only allowed.
    pub required: bool,
    /// The role does not apply when the add-on's config has all these values (case-insensitive).
    pub unless_config: BTreeMap<String, String>,
    /// A conditional row: applies only while the cluster is in this situation.
    pub when: Option<Condition>,
    /// The severity of AKSMI023 when this conditional role is missing.
    pub severity: Option<super::Severity>,
    /// `(GUID, name)` of the narrower role a held grant of this row should become.
    pub narrow_to: Option<(String, String)>,
}

impl ExpectedRole {
    /// Whether a conditional row's situation holds for the cluster (always for the others).
    pub fn holds_for(&self, c: &crate::inventory::Cluster) -> bool {
        self.when.is_none_or(|w| w.holds(c))
    }

    pub fn applies(&self, config: &SmallMap<String>) -> bool {
        self.unless_config.is_empty()
            || !self.unless_config.iter().all(|(k, v)| {
                config
                    .iter()
                    .any(|(ck, cv)| ck.eq_ignore_ascii_case(k) && cv.eq_ignore_ascii_case(v))
            })
    }
}

/// A named, dated version of Microsoft's table.
#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    pub name: String,
    pub title: String,
    pub date: String,
    pub source: String,
    pub no_identity_addons: Vec<String>,
    /// Keyed by `control_plane`, `kubelet` or `addon:<key>` (add-on keys lower-cased).
    pub identities: BTreeMap<String, Vec<ExpectedRole>>,
}

const EMBEDDED: &[(&str, &str)] = &[
    (
        "aks-docs-2021",
        include_str!("baselines/aks-docs-2021.toml"),
    ),
    (
        "aks-docs-current",
        include_str!("baselines/aks-docs-current.toml"),
    ),
];

/// The current "Managed identities in AKS" table (issue 11); `aks-docs-2021`, the
/// seed's table, stays selectable (`--baseline aks-docs-2021`).
pub const DEFAULT_BASELINE: &str = "aks-docs-current";

impl Baseline {
    /// Names of the embedded baselines.
    pub fn embedded_names() -> Vec<&'static str> {
        EMBEDDED.iter().map(|(n, _)| *n).collect()
    }

    /// Loads an embedded baseline by name, or a TOML file by path.
    pub fn load(name_or_file: &str) -> anyhow::Result<Baseline> {
        if let Some((_, text)) = EMBEDDED.iter().find(|(n, _)| *n == name_or_file) {
            return Baseline::parse(text, name_or_file);
        }
        let path = Path::new(name_or_file);
        if !path.exists() {
            bail!(
                "baseline `{name_or_file}` is neither an embedded baseline ({}) nor a file",
                Baseline::embedded_names().join(", ")
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading baseline {}", path.display()))?;
        Baseline::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Baseline> {
        let raw: RawBaseline =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("baseline {origin}: {e}"))?;
        let mut identities = BTreeMap::new();
        for (i, ident) in raw.identity.iter().enumerate() {
            let key = normalise_identity_key(&ident.identity).map_err(|e| {
                anyhow::anyhow!("baseline {origin}: identity[{i}] `{}`: {e}", ident.identity)
            })?;
            let mut roles = Vec::new();
            for (j, r) in ident.roles.iter().enumerate() {
                let at = format!(
                    "baseline {origin}: identity[{i}] `{}` roles[{j}]",
                    ident.identity
                );
                roles.push(expected_role(r).map_err(|e| anyhow::anyhow!("{at}: {e}"))?);
            }
            if identities.insert(key.clone(), roles).is_some() {
                bail!("baseline {origin}: identity `{key}` is listed twice");
            }
        }
        // The report links to it: only an https URL (never `javascript:` and the like).
        if https_link(&raw.source).is_none() {
            bail!(
                "baseline {origin}: key `source`: {:?} is not an https:// URL",
                raw.source
            );
        }
        Ok(Baseline {
            name: raw.name,
            title: raw.title,
            date: raw.date,
            source: raw.source,
            no_identity_addons: raw.no_identity_addons,
            identities,
        })
    }

    /// The documented roles of an identity key, if the baseline knows it.
    pub fn roles_for(&self, key: &str) -> Option<&[ExpectedRole]> {
        self.identities.get(key).map(Vec::as_slice)
    }

    /// The documented roles of an identity (none when the baseline does not know it).
    pub fn roles_of(&self, key: &super::IdentityKey) -> &[ExpectedRole] {
        let found = match key {
            super::IdentityKey::Addon(a) => self.roles_for(&addon_identity_key(a)),
            k => self.roles_for(&k.as_str()),
        };
        found.unwrap_or(&[])
    }

    /// Whether the baseline documents an identity for this add-on key.
    pub fn addon_needs_identity(&self, addon_key: &str) -> bool {
        self.roles_for(&addon_identity_key(addon_key)).is_some()
    }

    /// Whether the baseline says nothing of this add-on: it documents neither roles
    /// for its identity nor that it needs none. Such an identity's roles are listed,
    /// not judged (AKSMI090).
    pub fn addon_undocumented(&self, addon_key: &str) -> bool {
        !self.addon_needs_identity(addon_key)
            && !self
                .no_identity_addons
                .iter()
                .any(|k| k.eq_ignore_ascii_case(addon_key))
    }
}

/// `addon:<key>`, lower-cased, with the known aliases folded (`omsAgent` → `omsagent`).
pub fn addon_identity_key(addon_key: &str) -> String {
    format!("addon:{}", addon_key.to_ascii_lowercase())
}

fn normalise_identity_key(k: &str) -> Result<String, String> {
    match k.parse::<super::IdentityKey>() {
        Ok(super::IdentityKey::Addon(a)) if !a.is_empty() => Ok(addon_identity_key(&a)),
        Ok(k @ (super::IdentityKey::ControlPlane | super::IdentityKey::Kubelet)) => {
            Ok(k.to_string())
        }
        _ => Err("expected `control_plane`, `kubelet` or `addon:<key>`".into()),
    }
}

fn expected_role(r: &RawRole) -> Result<ExpectedRole, String> {
    let (guid, name) = match (&r.role, &r.role_id) {
        (_, Some(id)) => {
            let g = ids::role_guid(id);
            if !ids::is_guid(&g) {
                return Err(format!(
                    "role_id `{id}` is not a GUID or role definition id"
                ));
            }
            let name = r.role.clone().unwrap_or_else(|| role_display(&g, None));
            (g, name)
        }
        (Some(name), None) => {
            let g = role_guid_by_name(name).ok_or_else(|| {
                format!(
                    "unknown role name `{name}` (known: {}; or give `role_id`)",
                    BUILTIN_ROLES
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            (g.to_string(), name.clone())
        }
        (None, None) => return Err("needs `role` or `role_id`".into()),
    };
    match r.when {
        None if r.scope.is_conditional() => {
            return Err(format!(
                "scope `{}` exists only in a situation: the row needs `when`",
                scope_name(r.scope)
            ))
        }
        None if r.severity.is_some() => {
            return Err("`severity` is for conditional rows (with `when`) only".into())
        }
        Some(w) if !w.scopes().contains(&r.scope) => {
            return Err(format!(
                "scope `{}` does not go with when `{}` (expected {})",
                scope_name(r.scope),
                w.as_str(),
                w.scopes()
                    .iter()
                    .map(|k| format!("`{}`", scope_name(*k)))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ))
        }
        _ => {}
    }
    let narrow_to = match &r.narrow_to {
        None => None,
        Some(n) => {
            let g = role_guid_by_name(n)
                .ok_or_else(|| format!("narrow_to: unknown role name `{n}`"))?;
            if r.required {
                return Err("`narrow_to` is for allowed rows (required = false)".into());
            }
            Some((g.to_string(), n.clone()))
        }
    };
    Ok(ExpectedRole {
        role_guid: guid,
        role_name: name,
        scope: r.scope,
        required: r.required,
        unless_config: r.unless_config.clone(),
        when: r.when,
        severity: r.severity,
        narrow_to,
    })
}

/// A scope kind as the baseline TOML spells it.
pub fn scope_name(k: ScopeKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `s` as a link target if it is an `https:` URL with a host and nothing a browser would
/// strip or reinterpret (no whitespace or control characters); `None` otherwise, and the
/// page shows it as plain text. A custom baseline's `source` is not trusted to be a link
/// (`javascript:`, `data:` ...).
pub fn https_link(s: &str) -> Option<&str> {
    if s.len() < "https://".len()
        || !s[.."https://".len()].eq_ignore_ascii_case("https://")
        || s.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return None;
    }
    let u = url::Url::parse(s).ok()?;
    (u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty())).then_some(s)
}

/// What changed from baseline `a` to `b`, one line per difference: roles added (`+`),
/// removed (`-`) or changed (`~`, required or scope or condition), identities and
/// no-identity add-ons added or removed. Empty when they document the same table.
pub fn diff(a: &Baseline, b: &Baseline) -> Vec<String> {
    let mut out = Vec::new();
    let key = |r: &ExpectedRole| (r.role_guid.clone(), format!("{:?}", r.scope));
    let show = |r: &ExpectedRole| {
        let mut s = format!("{} @ {:?}", r.role_name, r.scope);
        if !r.required {
            s.push_str(" (allowed)");
        }
        if !r.unless_config.is_empty() {
            let c: Vec<String> = r
                .unless_config
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            s.push_str(&format!(" unless {}", c.join(",")));
        }
        if let Some(w) = r.when {
            s.push_str(&format!(" when {}", w.as_str()));
        }
        if let Some((_, n)) = &r.narrow_to {
            s.push_str(&format!(" (narrow to {n})"));
        }
        s
    };
    let idents: std::collections::BTreeSet<&String> =
        a.identities.keys().chain(b.identities.keys()).collect();
    for ident in idents {
        let (ra, rb) = (
            a.identities.get(ident).map(Vec::as_slice).unwrap_or(&[]),
            b.identities.get(ident).map(Vec::as_slice).unwrap_or(&[]),
        );
        for r in ra {
            match rb.iter().find(|x| key(x) == key(r)) {
                None => out.push(format!("- {ident}: {}", show(r))),
                Some(x) if show(x) != show(r) => {
                    out.push(format!("~ {ident}: {} -> {}", show(r), show(x)))
                }
                Some(_) => {}
            }
        }
        for r in rb.iter().filter(|r| !ra.iter().any(|x| key(x) == key(r))) {
            out.push(format!("+ {ident}: {}", show(r)));
        }
    }
    let lower = |v: &[String]| -> std::collections::BTreeSet<String> {
        v.iter().map(|s| s.to_ascii_lowercase()).collect()
    };
    let (na, nb) = (lower(&a.no_identity_addons), lower(&b.no_identity_addons));
    for x in na.difference(&nb) {
        out.push(format!("- no identity needed: {x}"));
    }
    for x in nb.difference(&na) {
        out.push(format!("+ no identity needed: {x}"));
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn diff_names_what_changed_and_nothing_else() {
        let a = Baseline::load("aks-docs-2021").unwrap();
        let b = Baseline::load("aks-docs-current").unwrap();
        assert!(diff(&a, &a).is_empty());
        let d = diff(&a, &b);
        for want in [
            "- addon:httpapplicationrouting: Reader @ NodeResourceGroup",
            "+ kubelet: Container Registry Repository Reader @ Registry (allowed)",
            "~ addon:ingressapplicationgateway: Contributor @ NodeResourceGroup -> Contributor @ NodeResourceGroup (allowed)",
        ] {
            assert!(d.iter().any(|l| l == want), "{want} not in {d:#?}");
        }
        let back = diff(&b, &a);
        assert!(back
            .iter()
            .any(|l| l == "+ addon:httpapplicationrouting: Reader @ NodeResourceGroup"));
    }

    use super::*;

    #[test]
    fn embedded_baselines_parse() {
        for name in Baseline::embedded_names() {
            let b = Baseline::load(name).unwrap();
            assert_eq!(b.name, name);
            let cp = b.roles_for("control_plane").unwrap();
            assert_eq!(cp[0].role_guid, CONTRIBUTOR);
            assert_eq!(cp[0].scope, ScopeKind::NodeResourceGroup);
        }
        let old = Baseline::load("aks-docs-2021").unwrap();
        let new = Baseline::load("aks-docs-current").unwrap();
        assert!(old.addon_needs_identity("httpApplicationRouting"));
        assert!(!new.addon_needs_identity("httpApplicationRouting"));
        assert!(old.addon_needs_identity("omsAgent"));
    }

    #[test]
    fn unknown_role_name_is_a_clear_error() {
        let text = r#"name="x"
title="x"
date="2024"
source="s"
[[identity]]
identity="control_plane"
roles=[{role="Contributer", scope="node_resource_group"}]"#;
        let e = Baseline::parse(text, "my.toml").unwrap_err().to_string();
        assert!(
            e.contains("my.toml") && e.contains("Contributer") && e.contains("roles[0]"),
            "{e}"
        );
    }

    #[test]
    fn condition_names_are_the_toml_spelling() {
        for c in [
            Condition::CustomPrivateDnsZone,
            Condition::ApiServerVnetIntegration,
            Condition::Kms,
            Condition::KmsPrivateVault,
            Condition::DiskEncryptionSet,
            Condition::OutboundIpsElsewhere,
            Condition::PodIdentity,
        ] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }

    #[test]
    fn conditional_rows_need_a_matching_when() {
        let text = |row: &str| {
            format!("name=\"x\"\ntitle=\"x\"\ndate=\"2024\"\nsource=\"https://example.com\"\n[[identity]]\nidentity=\"control_plane\"\nroles=[{row}]\n")
        };
        let e = Baseline::parse(
            &text(r#"{role="Reader", scope="disk_encryption_set"}"#),
            "my.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("roles[0]") && e.contains("needs `when`"), "{e}");
        let e = Baseline::parse(
            &text(r#"{role="Reader", scope="disk_encryption_set", when="kms"}"#),
            "my.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`kms_key_vault`"), "{e}");
        let e = Baseline::parse(
            &text(r#"{role="Reader", scope="cluster", severity="low"}"#),
            "my.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`severity`"), "{e}");
        let b = Baseline::parse(
            &text(r#"{role="Reader", scope="disk_encryption_set", when="disk_encryption_set", severity="medium"}"#),
            "my.toml",
        )
        .unwrap();
        let r = &b.roles_for("control_plane").unwrap()[0];
        assert_eq!(r.when, Some(Condition::DiskEncryptionSet));
        assert_eq!(r.severity, Some(crate::rules::Severity::Medium));
        let mut c = crate::inventory::Cluster::default();
        assert!(!r.holds_for(&c));
        c.features.disk_encryption_set = Some(
            "/subscriptions/s/resourceGroups/k/providers/Microsoft.Compute/diskEncryptionSets/d"
                .into(),
        );
        assert!(r.holds_for(&c));
    }

    #[test]
    fn bad_guid_is_a_clear_error() {
        let text = r#"name="x"
title="x"
date="2024"
source="s"
[[identity]]
identity="kubelet"
roles=[{role_id="not-a-guid", scope="registry"}]"#;
        let e = Baseline::parse(text, "my.toml").unwrap_err().to_string();
        assert!(e.contains("not-a-guid"), "{e}");
    }

    #[test]
    fn a_source_that_is_not_https_is_a_clear_error() {
        let text = |source: &str| {
            format!(
                "name=\"x\"\ntitle=\"x\"\ndate=\"2024\"\nsource={source:?}\n[[identity]]\nidentity=\"kubelet\"\n"
            )
        };
        for bad in ["javascript:alert(1)", "http://example.com/aks", "s"] {
            let e = Baseline::parse(&text(bad), "my.toml")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("my.toml") && e.contains("`source`") && e.contains(bad),
                "{e}"
            );
        }
        let b = Baseline::parse(&text("https://example.com/aks"), "my.toml").unwrap();
        assert_eq!(b.source, "https://example.com/aks");
    }

    #[test]
    fn unless_config_switches_roles_off() {
        let b = Baseline::load("aks-docs-current").unwrap();
        let oms = &b.roles_for("addon:omsagent").unwrap()[0];
        let aad: SmallMap<_> = [("useAADAuth".to_string(), "True".to_string())]
            .into_iter()
            .collect();
        let legacy: SmallMap<_> = [("useAADAuth".to_string(), "false".to_string())]
            .into_iter()
            .collect();
        assert!(!oms.applies(&aad));
        assert!(oms.applies(&legacy));
        assert!(oms.applies(&SmallMap::new()));
    }
}
