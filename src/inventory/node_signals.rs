//! Direct evidence of where kubelet runs after a cluster left its service principal,
//! read from Resource Graph only for the clusters whose history leaves the migration
//! in doubt (`crate::azure::signals`), and the flip as Resource Graph's change
//! history shows it, for clusters first seen after their flip.
//!
//! # DOMAIN: what Resource Graph exposes (read, not all of it a documented contract)
//!
//! - Tables (MicrosoftDocs/azure-docs `articles/governance/resource-graph/reference/
//!   supported-tables-resources.md`, sections `computeresources` and `resources`):
//!   `resources` holds `microsoft.compute/virtualmachinescalesets`;
//!   `computeresources` holds `microsoft.compute/virtualmachinescalesets/virtualmachines`.
//!   `concepts/query-language.md` lists ComputeResources among the tables.
//! - A scale set's top-level `identity.userAssignedIdentities` is a map keyed by the
//!   identities' resource ids (the ARM `VirtualMachineScaleSet` shape). AKS attaches
//!   add-on identities there ("`userAssignedIdentities` ... is assigned to the Virtual
//!   Machine Scale Set", azure-aks-docs `csi-secrets-store-driver.md` L278-292 @
//!   197d848e6164a5d5fb0542477599f8843340230e); that the kubelet identity is there too
//!   follows from kubelet fetching its token on the node, but no AKS page says it.
//!   UNVERIFIED as a contract: used only to confirm, never alone for a high.
//! - A scale-set VM's `properties.latestModelApplied` (bool: "whether the latest model
//!   has been applied to the virtual machine", ARM `VirtualMachineScaleSetVMProperties`;
//!   public code reads it from Resource Graph `computeresources` rows). Whether every
//!   row carries it is not documented (Resource Graph scrubs some fields): a missing
//!   value is no signal.
//! - The pool a scale set belongs to: its tag `aks-managed-poolName` (seen in public
//!   code, e.g. cluster-autoscaler and Azure Service Operator tests; not in AKS docs),
//!   else AKS's scale-set name `aks-<pool>-<digits>-vmss` (node names such as
//!   `aks-nodepool1-41508760-vmss000000` in `az` outputs).
//! - `resourcechanges` rows (`changes/get-resource-changes.md` @
//!   14be4db8fe44fff88c5f9dcfb4d3b0ccc996ed66, `changes-resource-spec.md` @
//!   967a3bfaee1791f6a0089072c8327d7f72159cd3): `properties{targetResourceId,
//!   changeType, changeAttributes{timestamp, ...}, changes{"<path>": {previousValue,
//!   newValue}}}`; "Changes are queryable for fourteen days"; `changes` only on
//!   `Update` rows. Array elements are keyed `properties.agentPoolProfiles[0].
//!   nodeImageVersion` in public queries (UNVERIFIED in Microsoft's docs): a change
//!   that cannot be tied to a pool leaves that pool's versions unknown.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::SmallMap;

/// What one run saw of a pool that tells whether its nodes were re-imaged since: a
/// node image or Kubernetes version change re-creates every node. The pool profiles
/// carry no per-pool timestamp (no `systemData`, no creation time), so nothing else.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_image_version: Option<String>,
    /// `currentOrchestratorVersion`, else `orchestratorVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestrator_version: Option<String>,
}

/// The scale sets of a cluster's node resource group as Resource Graph showed them
/// (`Some` on the cluster only when they were read).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeScaleSets {
    pub scale_sets: Vec<ScaleSet>,
    /// `computeresources` answered: an empty `instances` list is then "none visible",
    /// not "not read".
    pub instances_read: bool,
    /// The query failed (after its retries): no signal, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unread: Option<String>,
}

/// One virtual machine scale set of a node resource group.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScaleSet {
    pub id: String,
    pub name: String,
    /// The `aks-managed-poolName` tag.
    #[serde(default)]
    pub pool_tag: Option<String>,
    /// The keys of `identity.userAssignedIdentities` (resource ids as Azure printed
    /// them); `None` when the row has no such map.
    #[serde(default)]
    pub identities: Option<Vec<String>>,
    /// Its instances' `latestModelApplied` (`None`: the field was not in the row).
    #[serde(default)]
    pub instances: Vec<Option<bool>>,
}

impl ScaleSet {
    /// Whether this scale set runs pool `pool`: its tag, else AKS's name pattern.
    pub fn runs_pool(&self, pool: &str) -> bool {
        if let Some(tag) = &self.pool_tag {
            return tag.eq_ignore_ascii_case(pool);
        }
        let name = self.name.to_ascii_lowercase();
        let prefix = format!("aks-{}-", pool.to_ascii_lowercase());
        name.strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix("-vmss"))
            .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
    }
}

/// Resource Graph's change history of a cluster (`Some` on the cluster once read).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterChanges {
    /// The last flip from a service principal to a managed identity in the 14 days
    /// kept, if any.
    pub flip: Option<ChangedFlip>,
    /// The query failed (after its retries): the cluster's migration verdict is not
    /// evaluated this run (it may have had a flip), and the read is tried again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unread: Option<String>,
}

/// A flip read from `resourcechanges`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangedFlip {
    /// `changeAttributes.timestamp` of the change that made the switch.
    pub at: DateTime<Utc>,
    /// The previous `servicePrincipalProfile.clientId`, when the change gave it.
    pub sp_client_id: Option<String>,
    /// Each pool (lower-cased name) as it was just before the flip, and just after
    /// it, as far as the later changes tell (versions `None` where they do not).
    pub pools_before: SmallMap<PoolRecord>,
    pub pools_after: SmallMap<PoolRecord>,
}
