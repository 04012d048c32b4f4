//! A test-only inventory builder, so a rule test reads as its scenario:
//!
//! ```ignore
//! Inv::new()
//!     .cluster(ClusterB::mi("a").pool("np", "v1"))
//!     .grant("a-cp", "Contributor", &node_rg("a"))
//!     .report()
//! ```
//!
//! Every cluster lives in subscription [`SUB`] (tenant [`TENANT`]), resource group
//! `rg`; a cluster `a` has node resource group `MC_rg_a`, control-plane principal
//! `a-cp`, kubelet principal `a-kubelet` and, on a service principal, client id
//! `a-app`. [`Inv::report`] runs [`Report::generate`] in process with the default
//! baseline.
use chrono::{DateTime, Duration, Utc};

use crate::history::History;
use crate::inventory::{
    Addon, AgentPool, Cluster, ClusterIdentity, Gap, IdentityRef, IdentityType, Inventory,
    PodIdentity, PodIdentityException, Registry, ResourceGroup, RoleAssignment, SpCredential,
    Subscription, UserAssignedIdentity,
};
use crate::rules::{baseline, Baseline, Options, Outcome, Report};

pub(super) const SUB: &str = "sub1";
pub(super) const TENANT: &str = "tenant1";

/// The clock of a first run; [`Inv::after`] moves it a day past the previous run.
pub(super) fn now() -> DateTime<Utc> {
    "2026-06-01T06:00:00Z".parse().unwrap()
}

pub(super) fn sub_scope() -> String {
    format!("/subscriptions/{SUB}")
}

pub(super) fn cluster_id(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/{name}")
}

pub(super) fn node_rg(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/MC_rg_{name}")
}

pub(super) fn registry_id(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/acr/providers/Microsoft.ContainerRegistry/registries/{name}")
}

pub(super) fn vnet_id(rg: &str, vnet: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks/{vnet}")
}

pub(super) fn subnet_id(rg: &str, vnet: &str, subnet: &str) -> String {
    format!("{}/subnets/{subnet}", vnet_id(rg, vnet))
}

/// A user-assigned identity's resource id in the `ids` resource group.
pub(super) fn dns_zone_id(zone: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/rg-dns/providers/Microsoft.Network/dnszones/{zone}"
    )
}

pub(super) fn private_dns_zone_id(zone: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/rg-dns/providers/Microsoft.Network/privateDnsZones/{zone}")
}

pub(super) fn identity_id(name: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}")
}

/// One cluster.
#[derive(Clone)]
pub(super) struct ClusterB(pub Cluster);

impl ClusterB {
    fn base(name: &str) -> ClusterB {
        ClusterB(Cluster {
            id: cluster_id(name),
            name: name.into(),
            subscription_id: SUB.into(),
            resource_group: "rg".into(),
            location: "eastus".into(),
            provisioning_state: Some("Succeeded".into()),
            kubernetes_version: Some("1.30.0".into()),
            node_resource_group: Some(format!("MC_rg_{name}")),
            ..Default::default()
        })
    }

    /// On a service principal (client id `<name>-app`), no kubelet identity.
    pub(super) fn sp(name: &str) -> ClusterB {
        let mut b = Self::base(name);
        b.0.sp_client_id = Some(format!("{name}-app"));
        b
    }

    /// System-assigned control plane (`<name>-cp`) and the kubelet identity AKS
    /// creates (`<name>-agentpool` in the node resource group, principal `<name>-kubelet`).
    pub(super) fn mi(name: &str) -> ClusterB {
        let mut b = Self::base(name);
        b.0.sp_client_id = Some("msi".into());
        b.0.identity = Some(ClusterIdentity {
            kind: IdentityType::SystemAssigned,
            principal_id: Some(format!("{name}-cp")),
            tenant_id: None,
            user_assigned: vec![],
        });
        b.0.kubelet = Some(IdentityRef {
            resource_id: Some(format!(
                "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}-agentpool",
                node_rg(name)
            )),
            client_id: Some(format!("{name}-kubelet-client")),
            object_id: Some(format!("{name}-kubelet")),
        });
        b
    }

    /// [`ClusterB::mi`] with its own user-assigned control-plane identity `<name>-cp`.
    pub(super) fn user_assigned(name: &str) -> ClusterB {
        let mut b = Self::mi(name);
        let i = b.0.identity.as_mut().unwrap();
        i.kind = IdentityType::UserAssigned;
        i.principal_id = None;
        i.user_assigned = vec![UserAssignedIdentity {
            resource_id: identity_id(&format!("{name}-cp")),
            principal_id: Some(format!("{name}-cp")),
            client_id: None,
        }];
        b
    }

    /// Brings its own kubelet identity (`ids/<name>-kubelet`).
    pub(super) fn own_kubelet(mut self) -> Self {
        let name = self.0.name.clone();
        let k = self.0.kubelet.as_mut().expect("a managed-identity cluster");
        k.resource_id = Some(identity_id(&format!("{name}-kubelet")));
        self
    }

    pub(super) fn no_kubelet(mut self) -> Self {
        self.0.kubelet = None;
        self
    }

    pub(super) fn pool(mut self, name: &str, image: &str) -> Self {
        self.0.pools.push(AgentPool {
            name: name.into(),
            node_image_version: Some(image.into()),
            ..Default::default()
        });
        self
    }

    /// A pool whose node image version is not known.
    pub(super) fn pool_unknown_image(mut self, name: &str) -> Self {
        self.0.pools.push(AgentPool {
            name: name.into(),
            ..Default::default()
        });
        self
    }

    pub(super) fn subnet_pool(mut self, name: &str, subnet: &str) -> Self {
        self.0.pools.push(AgentPool {
            name: name.into(),
            node_image_version: Some("v1".into()),
            vnet_subnet_id: Some(subnet.into()),
            ..Default::default()
        });
        self
    }

    /// An enabled add-on; `identity` is its principal (object) id.
    pub(super) fn addon(mut self, key: &str, identity: Option<&str>) -> Self {
        self.0.addons.push(Addon {
            key: key.into(),
            enabled: true,
            config: Default::default(),
            identity: identity.map(|p| IdentityRef {
                object_id: Some(p.into()),
                ..Default::default()
            }),
        });
        self
    }

    /// Sets `key = value` in the config of the add-on added last.
    pub(super) fn addon_config(mut self, key: &str, value: &str) -> Self {
        let a = self.0.addons.last_mut().expect("an add-on");
        a.config.insert(key.to_string(), value.to_string());
        self
    }

    pub(super) fn location(mut self, l: &str) -> Self {
        self.0.location = l.into();
        self
    }

    /// The managed identity's tenant.
    pub(super) fn tenant(mut self, t: &str) -> Self {
        self.0
            .identity
            .as_mut()
            .expect("a managed identity")
            .tenant_id = Some(t.into());
        self
    }

    pub(super) fn sp_client_id(mut self, id: &str) -> Self {
        self.0.sp_client_id = Some(id.into());
        self
    }

    pub(super) fn state(mut self, s: &str) -> Self {
        self.0.provisioning_state = Some(s.into());
        self
    }

    pub(super) fn created(mut self, at: DateTime<Utc>) -> Self {
        self.0.created_at = Some(at);
        self
    }

    /// Pod identity enabled, with or without the kube-system exception AKS needs.
    pub(super) fn pod_identity(mut self, kube_system_exception: bool) -> Self {
        let exceptions = if kube_system_exception {
            vec![PodIdentityException {
                name: "aks-addons".into(),
                namespace: "kube-system".into(),
                pod_labels: [(
                    "kubernetes.azure.com/managedby".to_string(),
                    "aks".to_string(),
                )]
                .into_iter()
                .collect(),
            }]
        } else {
            vec![]
        };
        self.0.pod_identity = Some(PodIdentity {
            enabled: true,
            exceptions,
        });
        self
    }

    pub(super) fn tag(mut self, k: &str, v: &str) -> Self {
        self.0.tags.insert(k.into(), v.into());
        self
    }

    /// A custom private DNS zone (`apiServerAccessProfile.privateDNSZone`).
    pub(super) fn private_dns_zone(mut self, zone: &str) -> Self {
        self.0.features.private_dns_zone = Some(zone.into());
        self
    }

    /// API server VNet integration on `subnet`.
    pub(super) fn api_server_subnet(mut self, subnet: &str) -> Self {
        self.0.features.api_server_subnet = Some(subnet.into());
        self
    }

    /// KMS with key `key_id`; a private vault names its resource id.
    pub(super) fn kms(mut self, key_id: &str, private_vault: Option<&str>) -> Self {
        self.0.features.kms = Some(crate::inventory::Kms {
            key_id: Some(key_id.into()),
            private: private_vault.is_some(),
            key_vault_resource_id: private_vault.map(str::to_string),
        });
        self
    }

    /// The application routing add-on (`ingressProfile.webAppRouting`) with identity
    /// principal `<name>-approuting` and these DNS zones.
    pub(super) fn app_routing(mut self, zones: &[String]) -> Self {
        let name = self.0.name.clone();
        self.0.web_app_routing = Some(crate::inventory::WebAppRouting {
            enabled: true,
            identity: Some(IdentityRef {
                resource_id: Some(format!(
                    "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/webapprouting-{name}",
                    node_rg(&name)
                )),
                client_id: Some(format!("{name}-approuting-client")),
                object_id: Some(format!("{name}-approuting")),
            }),
            dns_zone_ids: zones.to_vec(),
        });
        self
    }

    pub(super) fn disk_encryption_set(mut self, id: &str) -> Self {
        self.0.features.disk_encryption_set = Some(id.into());
        self
    }

    pub(super) fn outbound_ip(mut self, id: &str) -> Self {
        self.0.features.outbound_ips.push(id.into());
        self
    }

    /// A pod identity (its user-assigned identity's resource id).
    pub(super) fn pod_identity_id(mut self, id: &str) -> Self {
        self.0.features.pod_identities.push(id.into());
        self
    }

    /// Read twice with different data.
    pub(super) fn conflict(mut self, why: &str) -> Self {
        self.0.conflict = Some(why.into());
        self
    }
}

/// An inventory, the previous history and the options of one in-process run.
pub(super) struct Inv {
    pub inv: Inventory,
    pub prev: History,
    pub opts: Options,
    pub now: DateTime<Utc>,
    pub baseline: Baseline,
}

impl Inv {
    pub(super) fn new() -> Inv {
        Inv {
            inv: Inventory {
                subscriptions: vec![Subscription {
                    id: SUB.into(),
                    name: "one".into(),
                    tenant_id: Some(TENANT.into()),
                    ..Default::default()
                }],
                ..Default::default()
            },
            prev: History::default(),
            opts: Options::default(),
            now: now(),
            baseline: Baseline::load(baseline::DEFAULT_BASELINE).unwrap(),
        }
    }

    pub(super) fn cluster(mut self, c: ClusterB) -> Self {
        self.inv.clusters.push(c.0);
        self
    }

    /// `principal` holds the built-in `role` (by name) at `scope`.
    pub(super) fn grant(self, principal: &str, role: &str, scope: &str) -> Self {
        self.assign(principal, None, role, scope, None)
    }

    /// A service principal's assignment, named by its client id (`principalName`, as
    /// `az role assignment list` prints it): how a service-principal cluster's
    /// control-plane principal is found.
    pub(super) fn grant_sp(
        self,
        client_id: &str,
        principal: &str,
        role: &str,
        scope: &str,
    ) -> Self {
        self.assign(principal, Some(client_id), role, scope, None)
    }

    /// [`Inv::grant`], created at `at`.
    pub(super) fn grant_at(
        self,
        principal: &str,
        role: &str,
        scope: &str,
        at: DateTime<Utc>,
    ) -> Self {
        self.assign(principal, None, role, scope, Some(at))
    }

    fn assign(
        mut self,
        principal: &str,
        name: Option<&str>,
        role: &str,
        scope: &str,
        created_on: Option<DateTime<Utc>>,
    ) -> Self {
        // Roles the baselines name by `role_id` only.
        const BY_ID: &[(&str, &str)] = &[
            (
                "Key Vault Certificate User",
                "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba",
            ),
            (
                "Key Vault Secrets User",
                "4633458b-17de-408a-b874-0445c86b69e6",
            ),
        ];
        let guid = baseline::role_guid_by_name(role)
            .or_else(|| BY_ID.iter().find(|(n, _)| *n == role).map(|(_, g)| *g))
            .unwrap_or_else(|| panic!("role {role}"));
        let n = self.inv.role_assignments.len() + 1;
        self.inv.role_assignments.push(RoleAssignment {
            id: format!("{scope}/providers/Microsoft.Authorization/roleAssignments/ra-{n}"),
            role_definition_id: format!(
                "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
            )
            .into(),
            role_guid: guid.into(),
            role_name: Some(role.into()),
            principal_id: principal.into(),
            principal_name: name.map(str::to_string),
            principal_type: Some("ServicePrincipal".into()),
            scope: scope.into(),
            created_on,
            condition: None,
            via_group: None,
        });
        self
    }

    /// `principal` holds the custom role `guid` at `scope`.
    pub(super) fn grant_custom(mut self, principal: &str, guid: &str, scope: &str) -> Self {
        let n = self.inv.role_assignments.len() + 1;
        self.inv.role_assignments.push(RoleAssignment {
            id: format!("{scope}/providers/Microsoft.Authorization/roleAssignments/ra-{n}"),
            role_definition_id: format!(
                "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
            )
            .into(),
            role_guid: guid.into(),
            role_name: None,
            principal_id: principal.into(),
            principal_name: None,
            principal_type: Some("ServicePrincipal".into()),
            scope: scope.into(),
            created_on: None,
            condition: None,
            via_group: None,
        });
        self
    }

    /// Turns the role assignment added last into group `group`'s (`principalType`
    /// Group, as `az role assignment list` prints a group's grant).
    pub(super) fn held_by_group(mut self, group: &str) -> Self {
        let a = self.inv.role_assignments.last_mut().expect("an assignment");
        a.principal_id = group.into();
        a.principal_type = Some("Group".into());
        self
    }

    /// `principal`'s group membership was read: it is in `groups` (transitively).
    pub(super) fn member_of(mut self, principal: &str, groups: &[&str]) -> Self {
        self.inv
            .group_memberships
            .push(crate::inventory::GroupMembership {
                principal_id: principal.into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
            });
        self
    }

    /// A custom role definition (one permission block).
    pub(super) fn custom_role(
        mut self,
        guid: &str,
        name: &str,
        actions: &[&str],
        not_actions: &[&str],
    ) -> Self {
        self.inv
            .role_definitions
            .push(crate::inventory::RoleDefinition {
                id: format!(
                    "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
                ),
                guid: guid.into(),
                role_name: Some(name.into()),
                permissions: vec![crate::inventory::Permission {
                    actions: actions.iter().map(|a| a.to_string()).collect(),
                    not_actions: not_actions.iter().map(|a| a.to_string()).collect(),
                }],
            });
        self
    }

    /// The control plane's documented role: Contributor on the node resource group.
    pub(super) fn documented(self, cluster: &str) -> Self {
        self.grant(&format!("{cluster}-cp"), "Contributor", &node_rg(cluster))
    }

    pub(super) fn registry(mut self, name: &str) -> Self {
        self.inv.registries.push(Registry {
            id: registry_id(name),
            name: name.into(),
            subscription_id: SUB.into(),
            resource_group: "acr".into(),
            role_assignment_mode: None,
        });
        self
    }

    /// A registry in "RBAC Registry + ABAC Repository Permissions" mode.
    pub(super) fn abac_registry(mut self, name: &str) -> Self {
        self = self.registry(name);
        let r = self.inv.registries.last_mut().expect("just added");
        r.role_assignment_mode = Some("AbacRepositoryPermissions".into());
        self
    }

    /// Sets an ABAC condition on the role assignment added last.
    pub(super) fn condition(mut self, c: &str) -> Self {
        let a = self.inv.role_assignments.last_mut().expect("an assignment");
        a.condition = Some(c.into());
        self
    }

    /// Microsoft Graph's view of a service principal's credential.
    pub(super) fn credential(mut self, client_id: &str, expiry: DateTime<Utc>) -> Self {
        self.inv.sp_credentials.push(SpCredential {
            client_id: client_id.into(),
            app_display_name: format!("{client_id}-display"),
            nearest_expiry: Some(expiry),
        });
        self
    }

    /// The management groups above the subscription, nearest first (Resource Graph's
    /// `managementGroupAncestorsChain` names).
    pub(super) fn management_groups(mut self, chain: &[&str]) -> Self {
        self.inv.subscriptions[0].management_groups =
            Some(chain.iter().map(|m| m.to_string()).collect());
        self
    }

    /// A tag on the subscription.
    pub(super) fn subscription_tag(mut self, k: &str, v: &str) -> Self {
        self.inv.subscriptions[0].tags.insert(k.into(), v.into());
        self
    }

    /// A tag on the clusters' resource group `rg`.
    pub(super) fn resource_group_tag(mut self, k: &str, v: &str) -> Self {
        if self.inv.resource_groups.is_empty() {
            self.inv.resource_groups.push(ResourceGroup {
                id: format!("{}/resourceGroups/rg", sub_scope()),
                subscription_id: SUB.into(),
                name: "rg".into(),
                ..Default::default()
            });
        }
        self.inv.resource_groups[0].tags.insert(k.into(), v.into());
        self
    }

    /// Owners by subscription id or name, and the fallback.
    pub(super) fn owners(
        mut self,
        by_subscription: &[(&str, &str)],
        fallback: Option<&str>,
    ) -> Self {
        self.opts.owners.subscription_owners = by_subscription
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.opts.owners.fallback = fallback.map(str::to_string);
        self
    }

    /// `--graph` was given.
    pub(super) fn graph(mut self) -> Self {
        self.opts.graph = true;
        self
    }

    /// A scope whose `tables` could not be read.
    pub(super) fn gap(mut self, scope: &str, tables: &[&str]) -> Self {
        self.inv.coverage.gaps.push(Gap {
            scope: scope.into(),
            reason: "403".into(),
            tables: tables.iter().map(|t| t.to_string()).collect(),
        });
        self
    }

    /// Runs after `prev` (the history a previous run left), a day later.
    pub(super) fn after(mut self, prev: History) -> Self {
        if let Some(last) = prev.last_run {
            self.now = last + Duration::days(1);
        }
        self.prev = prev;
        self
    }

    /// Audits against the embedded baseline `name` instead of the default.
    pub(super) fn baseline(mut self, name: &str) -> Self {
        self.baseline = Baseline::load(name).unwrap();
        self
    }

    pub(super) fn run(self) -> Outcome {
        Report::generate(self.inv, &self.baseline, self.prev, self.now, &self.opts)
    }

    pub(super) fn report(self) -> Report {
        self.run().report
    }
}
