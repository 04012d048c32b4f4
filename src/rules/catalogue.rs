//! The rule catalogue: stable ids users suppress by, with title, severity and source.
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown severity `{s}` (expected critical, high, medium, low or info)")
            })
    }
}

/// Rule ids: an API. Never renumber; add new ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RuleId {
    #[serde(rename = "AKSMI001")]
    ServicePrincipal,
    #[serde(rename = "AKSMI002")]
    KubeletPending,
    #[serde(rename = "AKSMI003")]
    KubeletUnknown,
    #[serde(rename = "AKSMI004")]
    InconsistentIdentity,
    #[serde(rename = "AKSMI005")]
    SecretExpiry,
    #[serde(rename = "AKSMI010")]
    MissingRole,
    #[serde(rename = "AKSMI011")]
    ExcessRole,
    #[serde(rename = "AKSMI012")]
    WideScope,
    #[serde(rename = "AKSMI013")]
    AddonWithoutIdentity,
    #[serde(rename = "AKSMI020")]
    SubnetPermission,
    #[serde(rename = "AKSMI021")]
    KubeletOperator,
    #[serde(rename = "AKSMI022")]
    AcrPullAfterMigration,
    #[serde(rename = "AKSMI023")]
    FeatureRole,
    #[serde(rename = "AKSMI025")]
    AbacPullNotHonoured,
    #[serde(rename = "AKSMI026")]
    AbacPullScoped,
    #[serde(rename = "AKSMI030")]
    TenantMismatch,
    #[serde(rename = "AKSMI031")]
    UnsupportedRegion,
    #[serde(rename = "AKSMI040")]
    PodIdentity,
    #[serde(rename = "AKSMI041")]
    PodIdentityException,
    #[serde(rename = "AKSMI050")]
    RetiredFeature,
    #[serde(rename = "AKSMI090")]
    UnknownAddon,
}

pub struct RuleInfo {
    pub id: RuleId,
    pub title: &'static str,
    pub severity: Severity,
    pub rationale: &'static str,
    pub source: &'static str,
}

const DOC_MI: &str = "https://learn.microsoft.com/azure/aks/use-managed-identity";
const DOC_UA: &str = "https://learn.microsoft.com/azure/aks/user-assigned-managed-identity";
const DOC_SA: &str = "https://learn.microsoft.com/azure/aks/system-assigned-managed-identity";
const DOC_OVERVIEW: &str = "https://learn.microsoft.com/azure/aks/managed-identity-overview";
const DOC_KUBELET: &str = "https://learn.microsoft.com/azure/aks/use-managed-identity#use-a-pre-created-kubelet-managed-identity";
const DOC_POD: &str = "https://learn.microsoft.com/azure/aks/use-azure-ad-pod-identity";
const DOC_NET: &str = "https://learn.microsoft.com/azure/aks/configure-kubenet#add-role-assignment-for-managed-identity";
const DOC_RETIRED: &str = "https://learn.microsoft.com/azure/aks/managed-identity-overview";
const DOC_ACR_ABAC: &str = "https://learn.microsoft.com/azure/container-registry/container-registry-rbac-abac-repository-permissions";
const DOC_RBAC: &str = "https://learn.microsoft.com/azure/role-based-access-control/best-practices";

pub const CATALOGUE: &[RuleInfo] = &[
    RuleInfo { id: RuleId::ServicePrincipal, title: "Control plane uses a service principal", severity: Severity::High,
        rationale: "A service principal's secret expires and must be rotated by hand; when it lapses the cluster can no longer manage load balancers, disks or IPs. Managed identities are rotated by Azure.", source: DOC_MI },
    RuleInfo { id: RuleId::KubeletPending, title: "Migrated to managed identity, but kubelet still on the service principal", severity: Severity::High,
        rationale: "After a switch to a user-assigned control-plane identity, kubelet keeps using the service principal until each node pool is re-imaged (`az aks nodepool upgrade --node-image-only`, which only acts when a newer node image exists). No ARM field shows it; history does: a pool with the same node image and Kubernetes version as on the last run that saw the service principal. A switch to a system-assigned identity is documented (since 2026-07-31) to re-image every node and never gives this rule.", source: DOC_UA },
    RuleInfo { id: RuleId::KubeletUnknown, title: "Migration seen, whether kubelet moved cannot be established: verify", severity: Severity::Medium,
        rationale: "The signals disagree or are missing: a system-assigned switch with unchanged node images (the docs now say that switch re-images every node, keeping the image version; older text said kubelet stays on the service principal), a pool changed or added in the same interval as a user-assigned switch (before the switch it stays on the service principal), or no node image version. Never high; the fix lists the command that shows which credential kubelet uses on a node.", source: DOC_SA },
    RuleInfo { id: RuleId::InconsistentIdentity, title: "Identity state is inconsistent", severity: Severity::High,
        rationale: "A managed-identity cluster reports `servicePrincipalProfile.clientId = msi` and a kubelet identity; anything else is a half-finished update (high). A custom private DNS zone or KMS etcd encryption with a system-assigned control plane is medium: the docs require a user-assigned identity for both. An own kubelet identity with a system-assigned control plane is low: the current overview (2026-07-31) allows it with Managed Identity Operator, older docs and the az CLI do not.", source: DOC_OVERVIEW },
    RuleInfo { id: RuleId::SecretExpiry, title: "Service principal credential expired or expiring within 30 days", severity: Severity::Critical,
        rationale: "A cluster on a service principal stops reaching Azure when the secret or certificate expires: critical once expired, high within 30 days. Also the old service principal of a migrated cluster whose kubelet is still pending (AKSMI002). Needs `--graph` (Application.Read.All).", source: DOC_MI },
    RuleInfo { id: RuleId::MissingRole, title: "A documented default role is missing", severity: Severity::High,
        rationale: "Without its documented role, the identity's feature breaks (load balancers, add-on metrics, ingress). Role grants can take up to 60 minutes to propagate, so fresh clusters get a grace period.", source: DOC_OVERVIEW },
    RuleInfo { id: RuleId::ExcessRole, title: "An identity holds a role beyond its documented defaults", severity: Severity::Medium,
        rationale: "Least privilege: extra roles widen what a compromised node or add-on can do. Owner, Contributor or User Access Administrator at subscription scope or wider is high severity.", source: DOC_RBAC },
    RuleInfo { id: RuleId::WideScope, title: "A documented role is granted at a wider scope than documented", severity: Severity::Medium,
        rationale: "The role is right but the scope (subscription, management group) covers far more than the node resource group or resource it is documented for. Owner, Contributor or User Access Administrator at subscription scope or wider is high, as for AKSMI011.", source: DOC_OVERVIEW },
    RuleInfo { id: RuleId::AddonWithoutIdentity, title: "An enabled add-on has no identity", severity: Severity::High,
        rationale: "On a managed-identity cluster AKS creates an identity for each add-on that needs one; an enabled add-on without it cannot reach Azure.", source: DOC_OVERVIEW },
    RuleInfo { id: RuleId::SubnetPermission, title: "Control plane lacks Network Contributor on a custom subnet", severity: Severity::High,
        rationale: "A node pool in a subnet outside the node resource group needs the control-plane identity to hold Network Contributor (or Contributor) on the subnet, its VNet or their resource group, or load balancers and IPs fail.", source: DOC_NET },
    RuleInfo { id: RuleId::KubeletOperator, title: "Control plane lacks Managed Identity Operator over its own kubelet identity", severity: Severity::High,
        rationale: "A pre-created kubelet identity must be assignable by the control-plane identity: Managed Identity Operator scoped to the kubelet identity.", source: DOC_KUBELET },
    RuleInfo { id: RuleId::AcrPullAfterMigration, title: "Kubelet identity lacks AcrPull after migration", severity: Severity::Medium,
        rationale: "A cluster that used `--attach-acr` with a service principal must run `az aks update --attach-acr` again after migrating: the new kubelet identity has no AcrPull, and image pulls fail. Checked on each registry the service principal pulled from (a subscription- or group-scope grant stands for the registries under it, each in its own command); pull means AcrPull, AcrPush, Owner, Contributor or Reader on a legacy registry, Container Registry Repository Reader on one in ABAC mode (the fix assigns that role there: --attach-acr would assign AcrPull). When the service principal's grants were not readable, a low prompt.", source: DOC_MI },
    RuleInfo { id: RuleId::FeatureRole, title: "Control plane lacks a role a cluster feature needs", severity: Severity::High,
        rationale: "Some configurations need the control-plane identity to hold a role outside the node resource group: Private DNS Zone Contributor on a custom private DNS zone and Network Contributor on the VNet (private-clusters.md), Network Contributor on the API server subnet (api-server-vnet-integration.md), Key Vault Crypto User on the KMS key vault and Key Vault Contributor on a private one (use-kms-etcd-encryption.md), Reader on the disk encryption set (azure-disk-customer-managed-keys.md): high, the cluster's operations fail. Network Contributor on the resource group of outbound IPs elsewhere (static-ip.md) and Managed Identity Operator on each pod identity (use-azure-ad-pod-identity.md): medium. Held while the situation holds, these grants are expected, never excess, and no fix deletes them. The rows are the baseline's `when = ...` rows.", source: DOC_OVERVIEW },
    RuleInfo { id: RuleId::AbacPullNotHonoured, title: "Kubelet's registry grant is not honoured: the registry is in ABAC mode", severity: Severity::High,
        rationale: "A registry in \"RBAC Registry + ABAC Repository Permissions\" mode (`roleAssignmentMode: AbacRepositoryPermissions`) ignores AcrPull, AcrPush and the data-plane rights of Owner, Contributor and Reader; the pull role there is Container Registry Repository Reader. `az aks update --attach-acr` still assigns AcrPull, so a kubelet attached that way cannot pull: high; low when it also holds Repository Reader there (the AcrPull grant is a leftover). Only grants on the registry itself are read as meant for it.", source: DOC_ACR_ABAC },
    RuleInfo { id: RuleId::AbacPullScoped, title: "Kubelet pulls from an ABAC registry only through a conditioned grant", severity: Severity::Info,
        rationale: "Container Registry Repository Reader with an ABAC condition reads only the repositories the condition names: images outside them fail to pull. Listed so the limit is a choice, not a surprise.", source: DOC_ACR_ABAC },
    RuleInfo { id: RuleId::TenantMismatch, title: "Managed identity tenant differs from the subscription's home tenant", severity: Severity::Critical,
        rationale: "Managed-identity clusters cannot move tenants; a cluster whose identity tenant is not its subscription's home tenant is broken. The home tenant is `homeTenantId` in `az account list` (whose `tenantId` is the managing tenant for a subscription delegated through Azure Lighthouse), `tenantId` in Resource Graph and ARM.", source: DOC_MI },
    RuleInfo { id: RuleId::UnsupportedRegion, title: "Own managed identity in a region where it is not supported", severity: Severity::Medium,
        rationale: "A user-assigned control-plane identity is not supported in US DoD Central, US DoD East and US Gov Iowa; a pre-created kubelet identity is not supported in China East and China North.", source: DOC_MI },
    RuleInfo { id: RuleId::PodIdentity, title: "Pod identity is in use", severity: Severity::Medium,
        rationale: "AAD pod identity is deprecated in favour of Microsoft Entra Workload ID; the managed add-on's support ended on 2025-09-30: high after that day, medium before.", source: DOC_POD },
    RuleInfo { id: RuleId::PodIdentityException, title: "Pod identity without a kube-system exception in ARM: verify", severity: Severity::Info,
        rationale: "Pod identity's NMI intercepts the metadata endpoint; AKS system pods (`kubernetes.azure.com/managedby: aks` in kube-system) need an exception, or add-ons fail. The managed add-on adds `aks-addon-exception` itself, which ARM may not list, so this is a prompt to verify (the fix starts with the read-only check).", source: DOC_POD },
    RuleInfo { id: RuleId::RetiredFeature, title: "A retired (or retiring) feature is in use", severity: Severity::Medium,
        rationale: "HTTP application routing was retired on 2025-03-03 (move ingresses to the application routing add-on first); Container Insights' legacy authentication, which needs Monitoring Metrics Publisher, retires on 2026-09-30 (switch to managed identity authentication); the pod identity managed add-on's support ended on 2025-09-30 (use-azure-ad-pod-identity.md; move to Workload ID). Medium from the date on, low before it. The dates are Microsoft's (http-application-routing.md, managed-identity-overview.md).", source: DOC_RETIRED },
    RuleInfo { id: RuleId::UnknownAddon, title: "Add-on identity not covered by the baseline", severity: Severity::Info,
        rationale: "The add-on has an identity, but the chosen baseline documents no roles for it; its assignments are listed, not judged.", source: DOC_OVERVIEW },
];

impl RuleId {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::ServicePrincipal => "AKSMI001",
            RuleId::KubeletPending => "AKSMI002",
            RuleId::KubeletUnknown => "AKSMI003",
            RuleId::InconsistentIdentity => "AKSMI004",
            RuleId::SecretExpiry => "AKSMI005",
            RuleId::MissingRole => "AKSMI010",
            RuleId::ExcessRole => "AKSMI011",
            RuleId::WideScope => "AKSMI012",
            RuleId::AddonWithoutIdentity => "AKSMI013",
            RuleId::SubnetPermission => "AKSMI020",
            RuleId::KubeletOperator => "AKSMI021",
            RuleId::AcrPullAfterMigration => "AKSMI022",
            RuleId::FeatureRole => "AKSMI023",
            RuleId::AbacPullNotHonoured => "AKSMI025",
            RuleId::AbacPullScoped => "AKSMI026",
            RuleId::TenantMismatch => "AKSMI030",
            RuleId::UnsupportedRegion => "AKSMI031",
            RuleId::PodIdentity => "AKSMI040",
            RuleId::PodIdentityException => "AKSMI041",
            RuleId::RetiredFeature => "AKSMI050",
            RuleId::UnknownAddon => "AKSMI090",
        }
    }

    pub fn info(self) -> &'static RuleInfo {
        CATALOGUE
            .iter()
            .find(|r| r.id == self)
            .expect("every rule id has a catalogue entry")
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RuleId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        CATALOGUE
            .iter()
            .map(|r| r.id)
            .find(|id| id.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown rule id `{s}`"))
    }
}

/// The catalogue as text for `aks-identity-audit rules`.
pub fn render_text() -> String {
    let mut out = String::new();
    for r in CATALOGUE {
        out.push_str(&format!(
            "{}  {:<8}  {}\n    {}\n    source: {}\n\n",
            r.id, r.severity, r.title, r.rationale, r.source
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for r in CATALOGUE {
            assert_eq!(r.id.as_str().parse::<RuleId>().unwrap(), r.id);
            let json = serde_json::to_string(&r.id).unwrap();
            assert_eq!(json, format!("\"{}\"", r.id.as_str()));
            assert_eq!(r.id.info().id, r.id);
        }
        assert!("AKSMI999".parse::<RuleId>().is_err());
    }

    #[test]
    fn severity_parses_and_orders() {
        assert_eq!("HIGH".parse::<Severity>().unwrap(), Severity::High);
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
        assert!("severe".parse::<Severity>().is_err());
    }
}
