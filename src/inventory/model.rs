//! The typed inventory every rule reads. Readers fill it; nothing here does I/O.
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use super::small_map::SmallMap;

/// Everything one run knows about the estate.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Inventory {
    pub clusters: Vec<Cluster>,
    pub role_assignments: Vec<RoleAssignment>,
    pub subscriptions: Vec<Subscription>,
    pub resource_groups: Vec<ResourceGroup>,
    pub registries: Vec<Registry>,
    pub coverage: Coverage,
    /// Service-principal credential expiry from Microsoft Graph (`--graph`); empty otherwise.
    #[serde(default)]
    pub sp_credentials: Vec<SpCredential>,
    /// Custom role definitions (Resource Graph `authorizationresources`,
    /// `microsoft.authorization/roledefinitions`): what a custom role grants.
    #[serde(default)]
    pub role_definitions: Vec<RoleDefinition>,
    /// Microsoft Entra groups cluster identities belong to (transitively), for the
    /// identities whose membership was read (`--graph`, or `group-memberships.json`
    /// in an inventory folder). An identity not listed: membership unknown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_memberships: Vec<GroupMembership>,
}

/// The groups one principal is a member of, directly or through nested groups
/// (Microsoft Graph `GET /servicePrincipals/{id}/transitiveMemberOf/microsoft.graph.group`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupMembership {
    /// The member's object id (a managed identity's `principalId`).
    pub principal_id: String,
    /// Group object ids; empty when it belongs to none.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// A role definition's name and permissions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleDefinition {
    pub id: String,
    /// The lower-cased GUID at the end of `id` (what assignments' `roleDefinitionId` end with).
    pub guid: String,
    pub role_name: Option<String>,
    pub permissions: Vec<Permission>,
}

/// One permission block: control-plane actions granted, minus those excluded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Permission {
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
}

/// A cluster service principal's application, as Microsoft Graph reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpCredential {
    /// The cluster's `servicePrincipalProfile.clientId` (GUID or legacy `http://` name).
    pub client_id: String,
    pub app_display_name: String,
    /// The next secret or certificate expiry; the latest one when all have expired.
    pub nearest_expiry: Option<DateTime<Utc>>,
}

/// A managed cluster, reduced to what the rules need.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Cluster {
    /// ARM id as Azure printed it.
    pub id: String,
    pub name: String,
    pub subscription_id: String,
    pub resource_group: String,
    pub location: String,
    pub tags: SmallMap<String>,
    pub provisioning_state: Option<String>,
    pub kubernetes_version: Option<String>,
    /// `systemData.createdAt`, when the source carries it.
    pub created_at: Option<DateTime<Utc>>,
    /// `properties.resourceUID`: unique per create, so a cluster deleted and created
    /// again under the same ARM id gets a new one.
    #[serde(default)]
    pub resource_uid: Option<String>,
    /// The `identity` block; `None` when absent, null or `type: None`.
    pub identity: Option<ClusterIdentity>,
    /// `servicePrincipalProfile.clientId`: a GUID, a legacy `http://` name, or `msi`.
    pub sp_client_id: Option<String>,
    pub node_resource_group: Option<String>,
    /// `identityProfile.kubeletidentity`.
    pub kubelet: Option<IdentityRef>,
    pub addons: Vec<Addon>,
    pub pools: Vec<AgentPool>,
    pub pod_identity: Option<PodIdentity>,
    /// Configuration that makes the control plane need roles beyond the node
    /// resource group (custom private DNS zone, API server subnet, KMS, ...).
    #[serde(default)]
    pub features: ClusterFeatures,
    /// `properties.ingressProfile.webAppRouting` (the application routing add-on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_app_routing: Option<WebAppRouting>,
    /// Set when the inventory held this cluster's id twice with different data: no
    /// verdict is drawn from either copy (every check is `not_evaluated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<String>,
    /// The node resource group's scale sets, read only when the migration verdict is
    /// in doubt (`azure::signals`); `None`: not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_sets: Option<super::NodeScaleSets>,
    /// Resource Graph's change history of a managed-identity cluster with no recorded
    /// flip (`azure::signals`); `None`: not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<super::ClusterChanges>,
}

impl Cluster {
    /// Every principal object id of the cluster's identities (control plane, its
    /// user-assigned identities, kubelet, add-ons): the only principals whose role
    /// assignments any rule looks at.
    pub fn principal_ids(&self) -> impl Iterator<Item = &str> {
        let cp = self.identity.iter().flat_map(|i| {
            i.principal_id.as_deref().into_iter().chain(
                i.user_assigned
                    .iter()
                    .filter_map(|u| u.principal_id.as_deref()),
            )
        });
        let kubelet = self.kubelet.iter().filter_map(|k| k.object_id.as_deref());
        let addons = self
            .addons
            .iter()
            .filter_map(|a| a.identity.as_ref()?.object_id.as_deref());
        let app_routing = self
            .web_app_routing
            .iter()
            .filter_map(|w| w.identity.as_ref()?.object_id.as_deref());
        cp.chain(kubelet).chain(addons).chain(app_routing)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityType {
    SystemAssigned,
    UserAssigned,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterIdentity {
    pub kind: IdentityType,
    pub principal_id: Option<String>,
    pub tenant_id: Option<String>,
    /// For `UserAssigned`: the identities by resource id.
    pub user_assigned: Vec<UserAssignedIdentity>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserAssignedIdentity {
    pub resource_id: String,
    pub principal_id: Option<String>,
    pub client_id: Option<String>,
}

/// A reference to a user-assigned identity used by kubelet or an add-on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdentityRef {
    pub resource_id: Option<String>,
    pub client_id: Option<String>,
    pub object_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Addon {
    /// The key as Azure printed it (`omsagent`, `omsAgent`, `azureKeyvaultSecretsProvider`...).
    pub key: String,
    pub enabled: bool,
    pub config: SmallMap<String>,
    pub identity: Option<IdentityRef>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentPool {
    pub name: String,
    pub mode: Option<String>,
    pub os_type: Option<String>,
    pub node_image_version: Option<String>,
    pub orchestrator_version: Option<String>,
    pub provisioning_state: Option<String>,
    pub vnet_subnet_id: Option<String>,
    /// `latestNodeImageVersion` of `GET .../agentPools/{p}/upgradeProfiles/default`: not
    /// in Resource Graph nor in the cluster's pool profiles; read only when an inventory
    /// file adds it to a pool.
    #[serde(default)]
    pub latest_node_image_version: Option<String>,
}

/// The fields of a cluster whose presence documents extra control-plane grants
/// (spec: issue 11 §2; the rows live in the baselines, `when = ...`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterFeatures {
    /// `apiServerAccessProfile.privateDNSZone` when it is a resource id (not
    /// `system` / `none`).
    #[serde(default)]
    pub private_dns_zone: Option<String>,
    /// `apiServerAccessProfile.subnetId` when `enableVnetIntegration` is true.
    #[serde(default)]
    pub api_server_subnet: Option<String>,
    /// `securityProfile.azureKeyVaultKms` when `enabled` is true.
    #[serde(default)]
    pub kms: Option<Kms>,
    /// `diskEncryptionSetID`.
    #[serde(default)]
    pub disk_encryption_set: Option<String>,
    /// `networkProfile.loadBalancerProfile.outboundIPs.publicIPs[].id` and
    /// `.outboundIPPrefixes.publicIPPrefixes[].id`.
    #[serde(default)]
    pub outbound_ips: Vec<String>,
    /// `podIdentityProfile.userAssignedIdentities[].identity.resourceId` when pod
    /// identity is enabled.
    #[serde(default)]
    pub pod_identities: Vec<String>,
}

/// KMS etcd encryption with Azure Key Vault.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Kms {
    /// `keyId`: `https://<vault>.vault.azure.net/keys/<key>/<version>`.
    pub key_id: Option<String>,
    /// `keyVaultNetworkAccess == "Private"` (default `Public`).
    pub private: bool,
    /// `keyVaultResourceId` (set for private vaults).
    pub key_vault_resource_id: Option<String>,
}

impl Kms {
    /// The vault's name: the first label of `keyId`'s host.
    pub fn vault_name(&self) -> Option<&str> {
        let rest = self.key_id.as_deref()?.strip_prefix("https://")?;
        let host = rest.split('/').next()?;
        let name = host.split('.').next()?;
        (!name.is_empty()).then_some(name)
    }
}

/// The application routing add-on (`ingressProfile.webAppRouting`): its identity
/// (`webapprouting-<cluster>` in the node resource group) and the DNS zones it manages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebAppRouting {
    pub enabled: bool,
    pub identity: Option<IdentityRef>,
    /// `dnsZoneResourceIds`: public (`Microsoft.Network/dnszones`) and private
    /// (`Microsoft.Network/privateDnsZones`) zones, as Azure printed them.
    #[serde(default)]
    pub dns_zone_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PodIdentity {
    pub enabled: bool,
    pub exceptions: Vec<PodIdentityException>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PodIdentityException {
    pub name: String,
    pub namespace: String,
    pub pod_labels: SmallMap<String>,
}

/// A role assignment. The strings that repeat across a million assignments (scopes,
/// role definitions, principals) are shared `Arc<str>`s, interned by the loader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleAssignment {
    pub id: String,
    /// As given (`/subscriptions/.../roleDefinitions/<guid>`), or empty when only a name was given.
    pub role_definition_id: Arc<str>,
    /// The lower-cased GUID at the end of `role_definition_id`.
    pub role_guid: Arc<str>,
    pub role_name: Option<Arc<str>>,
    pub principal_id: Arc<str>,
    /// `principalName` from `az role assignment list`: for a service principal its app id or legacy name.
    pub principal_name: Option<String>,
    pub principal_type: Option<Arc<str>>,
    pub scope: Arc<str>,
    pub created_on: Option<DateTime<Utc>>,
    /// `properties.condition`: an ABAC condition narrowing the assignment (for
    /// Container Registry Repository Reader, the repositories it may read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Set on a grant a cluster identity holds through a group: the row is the group's
    /// assignment (`id`, role, scope) with `principal_id` the member; this is the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_group: Option<Arc<str>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// The bare GUID.
    pub id: String,
    pub name: String,
    /// `tenantId` as the source printed it: the subscription's own tenant in Resource
    /// Graph and ARM, but the tenant of the caller's token in `az account list` (the
    /// managing tenant for a subscription delegated through Azure Lighthouse).
    pub tenant_id: Option<String>,
    /// `homeTenantId` (`az account list`): the subscription's own tenant.
    #[serde(default)]
    pub home_tenant_id: Option<String>,
    pub state: Option<String>,
    pub tags: SmallMap<String>,
    /// The names of the management groups above the subscription, nearest first
    /// (Resource Graph `properties.managementGroupAncestorsChain[].name`, the tenant
    /// root group's name being the tenant id). `None` when the source does not say
    /// (`az account list`, ARM): a grant at a management group is then not placed.
    #[serde(default)]
    pub management_groups: Option<Vec<String>>,
}

impl Subscription {
    /// The tenant the subscription belongs to: `homeTenantId` when the source gave
    /// one, else `tenantId` (which Resource Graph and ARM fill with the home tenant).
    pub fn home_tenant(&self) -> Option<&str> {
        self.home_tenant_id.as_deref().or(self.tenant_id.as_deref())
    }

    /// Whether management group `name` is above the subscription: `None` when the
    /// ancestry is unknown.
    pub fn under_management_group(&self, name: &str) -> Option<bool> {
        self.management_groups
            .as_ref()
            .map(|chain| chain.iter().any(|m| m.eq_ignore_ascii_case(name)))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceGroup {
    pub id: String,
    pub subscription_id: String,
    pub name: String,
    pub tags: SmallMap<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    pub id: String,
    pub name: String,
    pub subscription_id: String,
    pub resource_group: String,
    /// `properties.roleAssignmentMode`: `LegacyRegistryPermissions` or
    /// `AbacRepositoryPermissions`; absent (older API versions, older registries) means
    /// legacy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_assignment_mode: Option<String>,
}

impl Registry {
    /// Whether the registry is in "RBAC Registry + ABAC Repository Permissions" mode:
    /// AcrPull, AcrPush, AcrDelete and the Owner/Contributor/Reader data-plane rights
    /// are not honoured there (container-registry-rbac-abac-repository-permissions.md,
    /// MicrosoftDocs/azure-management-docs 57b95f2e).
    pub fn is_abac(&self) -> bool {
        self.role_assignment_mode
            .as_deref()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("AbacRepositoryPermissions"))
    }
}

/// What could not be read, and why. Non-empty coverage means exit code 3.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    pub skipped_rows: Vec<SkippedRow>,
    pub gaps: Vec<Gap>,
}

impl Coverage {
    pub fn is_complete(&self) -> bool {
        self.skipped_rows.is_empty() && self.gaps.is_empty()
    }
}

/// One input element that was skipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedRow {
    /// File name or query label.
    pub source: String,
    pub index: usize,
    pub reason: String,
}

/// A scope that could not be read (a subscription answering 403, a query that kept failing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub scope: String,
    pub reason: String,
    /// The inventory tables not read for the scope (`clusters`, `role-assignments`,
    /// `registries`, `subscriptions`, `resource-groups`): which verdicts it touches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<String>,
}
