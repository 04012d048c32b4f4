//! `emulator generate`: a reproducible synthetic tenant as an inventory folder (ARG
//! rows), written as a stream, plus `ground-truth.json`. Same arguments → the same bytes.
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

pub const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
pub const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
pub const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
pub const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
/// Container Registry Repository Reader: the pull role of a registry in ABAC mode.
pub const ACR_REPOSITORY_READER: &str = "b93aa761-3e63-49ed-ac28-beffa264f7ac";
pub const NETWORK_CONTRIBUTOR: &str = "4d97b98b-1d4f-4787-a291-c67834d212e7";
pub const MI_OPERATOR: &str = "f1a07417-d97a-45cb-824c-7a7467783830";
pub const MONITORING_METRICS_PUBLISHER: &str = "3913510d-42f4-4e42-8a64-420c390055eb";
pub const DNS_ZONE_CONTRIBUTOR: &str = "befefa01-2a29-4197-83a8-272ff33ce314";

const LOCATIONS: [&str; 6] = [
    "westeurope",
    "northeurope",
    "eastus",
    "eastus2",
    "japaneast",
    "uksouth",
];

#[derive(Debug, Clone, clap::Args)]
pub struct GenerateArgs {
    #[arg(long, default_value_t = 3)]
    pub subscriptions: usize,
    #[arg(long, default_value_t = 12)]
    pub clusters: usize,
    /// Total role assignments (cluster identities' grants first, the rest noise).
    #[arg(long, default_value_t = 100)]
    pub role_assignments: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

/// Counts of what was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerateSummary {
    pub subscriptions: usize,
    pub resource_groups: usize,
    pub clusters: usize,
    pub registries: usize,
    pub identities: usize,
    pub role_assignments: usize,
    pub applications: usize,
    /// Cluster identities whose groups `graph-group-memberships.json` lists.
    pub group_memberships: usize,
}

/// Streams a JSON array, one element per line.
struct ArrayWriter {
    w: BufWriter<File>,
    count: usize,
}

impl ArrayWriter {
    fn create(dir: &Path, name: &str) -> anyhow::Result<ArrayWriter> {
        let path = dir.join(name);
        let f = File::create(&path)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
        Ok(ArrayWriter {
            w: BufWriter::with_capacity(1 << 20, f),
            count: 0,
        })
    }
    fn push(&mut self, v: &Value) -> anyhow::Result<()> {
        self.w
            .write_all(if self.count == 0 { b"[\n" } else { b",\n" })?;
        serde_json::to_writer(&mut self.w, v)?;
        self.count += 1;
        Ok(())
    }
    fn finish(mut self) -> anyhow::Result<usize> {
        self.w
            .write_all(if self.count == 0 { b"[]\n" } else { b"\n]\n" })?;
        self.w.flush()?;
        Ok(self.count)
    }
}

fn guid(rng: &mut StdRng) -> String {
    uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string()
}

struct Sub {
    id: String,
    tenant: String,
}

struct Writers {
    rgs: ArrayWriter,
    clusters: ArrayWriter,
    registries: ArrayWriter,
    identities: ArrayWriter,
    ras: ArrayWriter,
    apps: ArrayWriter,
    /// The migration follow-ups' rows: node resource groups' scale sets, their
    /// instances, and clusters' change history (see [`migration_rows`]).
    sets: ArrayWriter,
    vms: ArrayWriter,
    changes: ArrayWriter,
    /// `graph-group-memberships.json`: the groups cluster identities are in (Graph).
    members: ArrayWriter,
    truth: BufWriter<File>,
    budget: usize,
}

impl Writers {
    /// A group's role assignment with a name and date from `key` (no RNG draw, so
    /// every other row stays as it was), if the budget allows.
    fn group_grant(
        &mut self,
        sub: &Sub,
        scope: &str,
        role: &str,
        group: &str,
        key: &str,
    ) -> anyhow::Result<bool> {
        if self.ras.count >= self.budget {
            return Ok(false);
        }
        let name = super::tenant::det_guid(&format!("ra:{key}"));
        let (scope_sub, rg) = super::tenant::parse_id(scope);
        self.ras.push(&json!({
            "id": format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
            "name": name,
            "type": "microsoft.authorization/roleassignments",
            "tenantId": sub.tenant,
            "subscriptionId": scope_sub.unwrap_or(""),
            "resourceGroup": rg.unwrap_or("").to_ascii_lowercase(),
            "properties": {
                "roleDefinitionId": format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{role}", sub.id),
                "principalId": group,
                "principalType": "Group",
                "scope": scope,
                "createdOn": "2024-03-01T08:00:00.000000Z",
            }
        }))?;
        Ok(true)
    }

    /// Emits a role assignment if the budget allows; returns whether it did.
    #[allow(clippy::too_many_arguments)]
    fn grant(
        &mut self,
        rng: &mut StdRng,
        sub: &Sub,
        scope: &str,
        role: &str,
        principal: &str,
        principal_type: &str,
    ) -> anyhow::Result<bool> {
        if self.ras.count >= self.budget {
            return Ok(false);
        }
        let name = guid(rng);
        let (scope_sub, rg) = super::tenant::parse_id(scope);
        let day = rng.random_range(0..700u32);
        let created = chrono::NaiveDate::from_ymd_opt(2023, 6, 1)
            .unwrap_or_default()
            .and_hms_opt(8, 0, 0)
            .unwrap_or_default()
            + chrono::Duration::days(day as i64);
        self.ras.push(&json!({
            "id": format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
            "name": name,
            "type": "microsoft.authorization/roleassignments",
            "tenantId": sub.tenant,
            "subscriptionId": scope_sub.unwrap_or(""),
            "resourceGroup": rg.unwrap_or("").to_ascii_lowercase(),
            "properties": {
                "roleDefinitionId": format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{role}", sub.id),
                "principalId": principal,
                "principalType": principal_type,
                "scope": scope,
                "createdOn": created.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            }
        }))?;
        Ok(true)
    }
}

/// Writes the tenant. See the module docs.
pub fn generate(args: &GenerateArgs) -> anyhow::Result<GenerateSummary> {
    anyhow::ensure!(args.subscriptions > 0, "--subscriptions must be at least 1");
    std::fs::create_dir_all(&args.out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", args.out.display()))?;
    let dir = args.out.as_path();
    let mut rng = StdRng::seed_from_u64(args.seed);
    let tenant = guid(&mut rng);

    let mut subs_w = ArrayWriter::create(dir, "subscriptions.json")?;
    let mut subs = Vec::with_capacity(args.subscriptions);
    for i in 0..args.subscriptions {
        let id = guid(&mut rng);
        subs_w.push(&json!({
            "id": format!("/subscriptions/{id}"),
            "name": format!("sub-{i:05}"),
            "type": "microsoft.resources/subscriptions",
            "tenantId": tenant,
            "subscriptionId": id,
            "resourceGroup": "",
            "location": "",
            "tags": {"owner": format!("team{:03}@contoso.example", i % 97)},
            "properties": {
                "state": "Enabled",
                // Resource Graph's ancestry, nearest first; the tenant root group is
                // named by the tenant id. No RNG drawn: the rest of the data is as before.
                "managementGroupAncestorsChain": [
                    {"name": format!("mg-{}", if i % 2 == 0 { "prod" } else { "nonprod" }), "displayName": if i % 2 == 0 { "Production" } else { "Non-production" }},
                    {"name": tenant, "displayName": "Tenant Root Group"},
                ],
            },
        }))?;
        subs.push(Sub {
            id,
            tenant: tenant.clone(),
        });
    }
    let n_subs = subs_w.finish()?;

    let truth_path = dir.join("ground-truth.json");
    let mut w = Writers {
        rgs: ArrayWriter::create(dir, "resource-groups.json")?,
        clusters: ArrayWriter::create(dir, "clusters.json")?,
        registries: ArrayWriter::create(dir, "registries.json")?,
        identities: ArrayWriter::create(dir, "identities.json")?,
        ras: ArrayWriter::create(dir, "role-assignments.json")?,
        apps: ArrayWriter::create(dir, "graph-applications.json")?,
        sets: ArrayWriter::create(dir, "scale-sets.json")?,
        vms: ArrayWriter::create(dir, "scale-set-vms.json")?,
        changes: ArrayWriter::create(dir, "resource-changes.json")?,
        members: ArrayWriter::create(dir, "graph-group-memberships.json")?,
        truth: BufWriter::new(File::create(&truth_path)?),
        budget: args.role_assignments,
    };
    w.truth.write_all(b"{")?;
    for i in 0..args.clusters {
        let sub = &subs[i % subs.len()];
        cluster(&mut rng, &mut w, sub, i)?;
    }
    w.truth
        .write_all(if args.clusters == 0 { b"}\n" } else { b"\n}\n" })?;
    w.truth.flush()?;

    // Noise: people and groups with roles on subscriptions and resource groups.
    let mut k = 0usize;
    while w.ras.count < w.budget {
        let sub = &subs[k % subs.len()];
        let (role, ptype) = match rng.random_range(0..10u8) {
            0..=5 => (READER, "User"),
            6..=8 => (CONTRIBUTOR, "Group"),
            _ => (OWNER, "User"),
        };
        let principal = guid(&mut rng);
        let scope = format!("/subscriptions/{}", sub.id);
        w.grant(&mut rng, sub, &scope, role, &principal, ptype)?;
        k += 1;
    }

    std::fs::write(
        dir.join("latest-node-images.json"),
        "{\n  \"AKSUbuntu-2204gen2containerd\": \"AKSUbuntu-2204gen2containerd-202409.23.0\"\n}\n",
    )?;
    w.sets.finish()?;
    w.vms.finish()?;
    w.changes.finish()?;
    Ok(GenerateSummary {
        subscriptions: n_subs,
        resource_groups: w.rgs.finish()?,
        clusters: w.clusters.finish()?,
        registries: w.registries.finish()?,
        identities: w.identities.finish()?,
        role_assignments: w.ras.finish()?,
        applications: w.apps.finish()?,
        group_memberships: w.members.finish()?,
    })
}

fn rg_row(sub: &Sub, name: &str, location: &str, managed_by: Option<&str>) -> Value {
    let mut props = json!({"provisioningState": "Succeeded"});
    let mut row = json!({
        "id": format!("/subscriptions/{}/resourceGroups/{name}", sub.id),
        "name": name,
        "type": "microsoft.resources/subscriptions/resourcegroups",
        "tenantId": sub.tenant,
        "subscriptionId": sub.id,
        "resourceGroup": name.to_ascii_lowercase(),
        "location": location,
        "tags": {},
        "properties": {},
    });
    if let Some(m) = managed_by {
        row["managedBy"] = json!(m);
        props["provisioningState"] = json!("Succeeded");
    }
    row["properties"] = props;
    row
}

fn mi_ref(rng: &mut StdRng, resource_id: &str) -> Value {
    json!({"resourceId": resource_id, "clientId": guid(rng), "objectId": guid(rng)})
}

fn cluster(rng: &mut StdRng, w: &mut Writers, sub: &Sub, i: usize) -> anyhow::Result<()> {
    let loc = LOCATIONS[rng.random_range(0..LOCATIONS.len())];
    let name = format!("aks-{i:06}");
    let rg = format!("rg-{name}");
    let node_rg = if rng.random_bool(0.1) {
        format!("nrg-{name}")
    } else {
        format!("MC_{rg}_{name}_{loc}")
    };
    let s = &sub.id;
    let id = format!("/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}");
    let node_rg_id = format!("/subscriptions/{s}/resourceGroups/{node_rg}");
    let node_rg_lc = format!("/subscriptions/{s}/resourcegroups/{node_rg}");
    w.rgs.push(&rg_row(sub, &rg, loc, None))?;
    w.rgs.push(&rg_row(sub, &node_rg, loc, Some(&id)))?;

    let cp = match rng.random_range(0..100u8) {
        0..=19 => "service_principal",
        20..=74 => "system_assigned",
        _ => "user_assigned",
    };
    let sp = cp == "service_principal";
    let kubelet = if sp {
        "service_principal"
    } else if rng.random_bool(0.04) {
        "missing"
    } else if cp == "user_assigned" && rng.random_bool(0.4) {
        "user_assigned"
    } else {
        "aks_managed"
    };

    let mut ras = 0usize;
    let mut props = json!({
        "provisioningState": "Succeeded",
        "powerState": {"code": "Running"},
        "kubernetesVersion": "1.29.7",
        "currentKubernetesVersion": "1.29.7",
        "dnsPrefix": name,
        "fqdn": format!("{name}-dns-{}.hcp.{loc}.azmk8s.io", &guid(rng)[..8]),
        "nodeResourceGroup": node_rg,
        "enableRBAC": true,
        "networkProfile": {"networkPlugin": "azure", "loadBalancerSku": "standard"},
    });

    // Control plane identity.
    let (identity, cp_principal, client_id) = match cp {
        "service_principal" => {
            let app_id = guid(rng);
            let legacy = rng.random_bool(0.1);
            let client_id = if legacy {
                format!("http://{name}-sp")
            } else {
                app_id.clone()
            };
            let day = rng.random_range(0..2400i64);
            let end = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default()
                + chrono::Duration::days(day);
            let mut app = json!({
                "id": guid(rng),
                "appId": app_id,
                "displayName": format!("{name}-sp"),
                "identifierUris": if legacy { json!([client_id]) } else { json!([]) },
                "passwordCredentials": [{
                    "keyId": guid(rng),
                    "displayName": "rbac",
                    "endDateTime": format!("{end}T00:00:00Z"),
                }],
                "keyCredentials": [],
            });
            if rng.random_bool(0.1) {
                app["keyCredentials"] = json!([{
                    "keyId": guid(rng), "displayName": "CN=aks", "type": "AsymmetricX509Cert",
                    "usage": "Verify", "endDateTime": "2027-03-01T00:00:00Z",
                }]);
            }
            w.apps.push(&app)?;
            (Value::Null, guid(rng), client_id)
        }
        "system_assigned" => {
            let p = guid(rng);
            (
                json!({"type": "SystemAssigned", "principalId": p, "tenantId": sub.tenant}),
                p,
                "msi".to_string(),
            )
        }
        _ => {
            let uai = format!("/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}-cp");
            let (p, c) = (guid(rng), guid(rng));
            w.identities
                .push(&identity_row(sub, &uai, &rg, loc, &p, &c))?;
            (
                json!({"type": "UserAssigned", "principalId": null, "tenantId": null,
                       "userAssignedIdentities": {uai: {"principalId": p, "clientId": c}}}),
                p,
                "msi".to_string(),
            )
        }
    };
    props["servicePrincipalProfile"] = json!({"clientId": client_id});

    // Kubelet identity.
    let mut kubelet_principal = if sp { Some(cp_principal.clone()) } else { None };
    let mut kubelet_uai = None;
    match kubelet {
        "aks_managed" => {
            let rid = format!("{node_rg_lc}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}-agentpool");
            let r = mi_ref(rng, &rid);
            kubelet_principal = r["objectId"].as_str().map(str::to_string);
            props["identityProfile"] = json!({"kubeletidentity": r});
        }
        "user_assigned" => {
            let rid = format!("/subscriptions/{s}/resourcegroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}-kubelet");
            let r = mi_ref(rng, &rid);
            let (p, c) = (
                r["objectId"].as_str().unwrap_or_default().to_string(),
                r["clientId"].as_str().unwrap_or_default().to_string(),
            );
            w.identities
                .push(&identity_row(sub, &rid, &rg, loc, &p, &c))?;
            kubelet_principal = Some(p);
            kubelet_uai = Some(rid);
            props["identityProfile"] = json!({"kubeletidentity": r});
        }
        _ => {}
    }

    // Agent pools, optionally in an own subnet.
    let subnet = rng.random_bool(0.3).then(|| {
        format!("/subscriptions/{s}/resourceGroups/rg-net-{loc}/providers/Microsoft.Network/virtualNetworks/vnet-{name}/subnets/aks")
    });
    let pools: Vec<Value> = (0..rng.random_range(1..=3u8))
        .map(|p| {
            let month = rng.random_range(1..=9u8);
            let mut pool = json!({
                "name": if p == 0 { "nodepool1".to_string() } else { format!("pool{p}") },
                "mode": if p == 0 { "System" } else { "User" },
                "count": rng.random_range(1..=5u8),
                "vmSize": "Standard_D4s_v5",
                "osType": "Linux",
                "osSKU": "Ubuntu",
                "type": "VirtualMachineScaleSets",
                "orchestratorVersion": "1.29.7",
                "currentOrchestratorVersion": "1.29.7",
                "nodeImageVersion": format!("AKSUbuntu-2204gen2containerd-2024{month:02}.{:02}.0", rng.random_range(1..=28u8)),
                "provisioningState": "Succeeded",
                "powerState": {"code": "Running"},
            });
            if let Some(sn) = &subnet {
                pool["vnetSubnetID"] = json!(sn);
            }
            pool
        })
        .collect();
    props["agentPoolProfiles"] = json!(pools);

    // Control-plane grants.
    let cp_ptype = "ServicePrincipal";
    let r = rng.random_range(0..100u8);
    if r < 90 {
        ras += w.grant(rng, sub, &node_rg_id, CONTRIBUTOR, &cp_principal, cp_ptype)? as usize;
    } else if r < 95 {
        ras += w.grant(
            rng,
            sub,
            &format!("/subscriptions/{s}"),
            CONTRIBUTOR,
            &cp_principal,
            cp_ptype,
        )? as usize;
    }
    if rng.random_bool(0.05) {
        ras += w.grant(rng, sub, &node_rg_id, OWNER, &cp_principal, cp_ptype)? as usize;
    }
    if let Some(sn) = &subnet {
        if rng.random_bool(0.85) {
            ras += w.grant(rng, sub, sn, NETWORK_CONTRIBUTOR, &cp_principal, cp_ptype)? as usize;
        } else {
            // Without its own grant, chosen by index: a third hold Network Contributor
            // on the VNet through a group the control plane is in (explained), a
            // third see a group hold it on the subnet without being in it (still
            // missing), a third have nothing.
            let group = super::tenant::det_guid(&format!("group:net:{i}"));
            let vnet = sn.rsplit_once("/subnets/").map_or(sn.as_str(), |(v, _)| v);
            let key = format!("net:{i}");
            if i.is_multiple_of(3) && w.group_grant(sub, vnet, NETWORK_CONTRIBUTOR, &group, &key)? {
                w.members
                    .push(&json!({"principalId": cp_principal, "groups": [group]}))?;
            } else if i % 3 == 1 {
                w.group_grant(sub, sn, NETWORK_CONTRIBUTOR, &group, &key)?;
            }
        }
    }
    if let Some(uai) = &kubelet_uai {
        if rng.random_bool(0.9) {
            ras += w.grant(rng, sub, uai, MI_OPERATOR, &cp_principal, cp_ptype)? as usize;
        }
    }

    // Attached registry → AcrPull for the kubelet identity. One registry in ten is in
    // ABAC mode (`roleAssignmentMode: AbacRepositoryPermissions`, API 2025-04-01 and
    // later): half of those give the kubelet Container Registry Repository Reader (the
    // documented pull role there), half AcrPull (what `az aks update --attach-acr`
    // still assigns, and which ABAC mode does not honour). Chosen by index, so the
    // random sequence, and every other row, stays as it was.
    if rng.random_bool(0.3) {
        let acr = format!("/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/acr{i:06}");
        let abac = i % 10 == 3;
        let mode = if abac {
            "AbacRepositoryPermissions"
        } else {
            "LegacyRegistryPermissions"
        };
        w.registries.push(&json!({
            "id": acr, "name": format!("acr{i:06}"), "type": "microsoft.containerregistry/registries",
            "tenantId": sub.tenant, "subscriptionId": s, "resourceGroup": rg.to_ascii_lowercase(),
            "location": loc, "sku": {"name": "Standard", "tier": "Standard"}, "tags": {},
            "properties": {"loginServer": format!("acr{i:06}.azurecr.io"), "adminUserEnabled": false,
                           "provisioningState": "Succeeded", "roleAssignmentMode": mode},
        }))?;
        if let Some(kp) = &kubelet_principal {
            if rng.random_bool(0.85) {
                let role = if abac && i % 20 == 3 {
                    ACR_REPOSITORY_READER
                } else {
                    ACR_PULL
                };
                ras += w.grant(rng, sub, &acr, role, kp, cp_ptype)? as usize;
            }
        }
    }

    // Add-ons.
    let mut addons = serde_json::Map::new();
    let addon_specs: [(&str, f64, &[&str]); 6] = [
        ("omsagent", 0.5, &[MONITORING_METRICS_PUBLISHER]),
        ("ingressApplicationGateway", 0.1, &[CONTRIBUTOR]),
        (
            "httpApplicationRouting",
            0.05,
            &[READER, DNS_ZONE_CONTRIBUTOR],
        ),
        ("aciConnectorLinux", 0.05, &[CONTRIBUTOR]),
        ("azurepolicy", 0.3, &[]),
        ("azureKeyvaultSecretsProvider", 0.2, &[]),
    ];
    for (key, p, roles) in addon_specs {
        if !rng.random_bool(p) {
            continue;
        }
        let config = match key {
            "omsagent" => {
                json!({"logAnalyticsWorkspaceResourceID": format!("/subscriptions/{s}/resourceGroups/rg-logs/providers/Microsoft.OperationalInsights/workspaces/logs-{loc}"), "useAADAuth": "False"})
            }
            "ingressApplicationGateway" => {
                json!({"applicationGatewayName": format!("{name}-appgw"), "subnetCIDR": "10.225.0.0/16"})
            }
            "httpApplicationRouting" => {
                json!({"HTTPApplicationRoutingZoneName": format!("{}.{loc}.aksapp.io", &guid(rng)[..12])})
            }
            "aciConnectorLinux" => json!({"SubnetName": "virtual-node-aci"}),
            "azureKeyvaultSecretsProvider" => json!({"enableSecretRotation": "false"}),
            _ => Value::Null,
        };
        let mut addon = json!({"enabled": true, "config": config});
        if !sp {
            let rid = format!(
                "{node_rg_lc}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{}-{name}",
                key.to_ascii_lowercase()
            );
            let r = mi_ref(rng, &rid);
            let principal = r["objectId"].as_str().unwrap_or_default().to_string();
            addon["identity"] = r;
            for role in roles.iter() {
                if !rng.random_bool(0.85) {
                    continue;
                }
                let scope = match (*role, key) {
                    (MONITORING_METRICS_PUBLISHER, _) => id.clone(),
                    (DNS_ZONE_CONTRIBUTOR, _) => {
                        let zone = addon["config"]["HTTPApplicationRoutingZoneName"]
                            .as_str()
                            .unwrap_or("zone");
                        format!("{node_rg_id}/providers/Microsoft.Network/dnszones/{zone}")
                    }
                    _ => node_rg_id.clone(),
                };
                ras += w.grant(rng, sub, &scope, role, &principal, cp_ptype)? as usize;
            }
            if !roles.is_empty() && rng.random_bool(0.03) {
                ras += w.grant(
                    rng,
                    sub,
                    &format!("/subscriptions/{s}"),
                    CONTRIBUTOR,
                    &principal,
                    cp_ptype,
                )? as usize;
            }
        }
        addons.insert(key.to_string(), addon);
    }
    props["addonProfiles"] = Value::Object(addons);

    if rng.random_bool(0.05) {
        let exceptions = if rng.random_bool(0.5) {
            json!([{"name": "aks-addon-exception", "namespace": "kube-system",
                    "podLabels": {"kubernetes.azure.com/managedby": "aks"}}])
        } else {
            json!([])
        };
        props["podIdentityProfile"] = json!({"enabled": true, "userAssignedIdentities": [],
                                             "userAssignedIdentityExceptions": exceptions});
    }

    // One cluster in 50 encrypts its disks with a disk encryption set its control plane
    // holds no Reader on (AKSMI023; azure-disk-customer-managed-keys.md). Chosen by
    // index, no RNG drawn: the rest of the tenant is as before.
    if i % 50 == 25 {
        props["diskEncryptionSetID"] = json!(format!(
            "/subscriptions/{s}/resourceGroups/rg-security-{loc}/providers/Microsoft.Compute/diskEncryptionSets/des-{name}"
        ));
    }

    let mut row = json!({
        "id": id, "name": name, "type": "microsoft.containerservice/managedclusters",
        "tenantId": sub.tenant, "kind": "", "location": loc, "resourceGroup": rg.to_ascii_lowercase(),
        "subscriptionId": s, "sku": {"name": "Base", "tier": "Free"},
        "tags": {"owner": format!("owner{:03}@contoso.example", i % 211)},
        "properties": props,
    });
    if !identity.is_null() {
        row["identity"] = identity;
    }
    if !sp && i % 50 == 7 {
        migration_rows(w, &row, i)?;
    }
    w.clusters.push(&row)?;

    let sep = if i == 0 { "\n" } else { ",\n" };
    write!(w.truth, "{sep}{}: ", serde_json::to_string(&row["id"])?)?;
    serde_json::to_writer(
        &mut w.truth,
        &json!({"control_plane_identity": cp, "kubelet_identity": kubelet, "role_assignments": ras}),
    )?;
    Ok(())
}

/// For one managed-identity cluster in 50: the change that switched it from a
/// service principal (Resource Graph `resourcechanges`, before any history knew it)
/// and, per pool, a scale set in its node resource group with the kubelet identity
/// attached and two instances, in every other such cluster one of them not on the
/// latest model. Drawn from `i` alone (no RNG): the rest of the tenant is as before.
fn migration_rows(w: &mut Writers, cluster: &Value, i: usize) -> anyhow::Result<()> {
    let id = cluster["id"].as_str().unwrap_or_default();
    let s = cluster["subscriptionId"].as_str().unwrap_or_default();
    let loc = cluster["location"].as_str().unwrap_or_default();
    let props = &cluster["properties"];
    let node_rg = props["nodeResourceGroup"].as_str().unwrap_or_default();
    let kind = cluster["identity"]["type"]
        .as_str()
        .unwrap_or("SystemAssigned");
    let day = 20 + (i / 50) % 9;
    w.changes.push(&json!({
        "id": format!("{id}/providers/Microsoft.Resources/changes/08584{i:06}000000000000000000000"),
        "name": format!("08584{i:06}000000000000000000000"),
        "type": "microsoft.resources/changes",
        "tenantId": cluster["tenantId"], "subscriptionId": s,
        "resourceGroup": cluster["resourceGroup"], "location": loc,
        "properties": {
            "targetResourceId": id,
            "targetResourceType": "microsoft.containerservice/managedclusters",
            "changeType": "Update",
            "changeAttributes": {
                "timestamp": format!("2026-11-{day:02}T03:{:02}:00.000+00:00", i % 60),
                "changesCount": 2, "changedByType": "User", "changedBy": "ops@contoso.example",
                "clientType": "Azure CLI", "operation": "microsoft.containerservice/managedclusters/write",
                "correlationId": format!("7c1e2d3f-4a5b-4c6d-8e7f-{i:012}"),
            },
            "changes": {
                "properties.servicePrincipalProfile.clientId": {"previousValue": format!("5b0e0c1a-{:04x}-4bbb-8ccc-{i:012}", i % 65536), "newValue": "msi"},
                "identity.type": {"newValue": kind},
            }
        }
    }))?;
    let kubelet = props["identityProfile"]["kubeletidentity"]["resourceId"].as_str();
    for (p, pool) in props["agentPoolProfiles"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = pool["name"].as_str().unwrap_or_default();
        let set = format!("aks-{name}-{:08}-vmss", 31_000_000 + i);
        let set_id = format!("/subscriptions/{s}/resourceGroups/{node_rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{set}");
        let identities: serde_json::Map<String, Value> = kubelet
            .map(|k| (k.to_string(), json!({"principalId": "", "clientId": ""})))
            .into_iter()
            .collect();
        w.sets.push(&json!({
            "id": set_id, "name": set, "type": "microsoft.compute/virtualmachinescalesets",
            "tenantId": cluster["tenantId"], "subscriptionId": s,
            "resourceGroup": node_rg.to_ascii_lowercase(), "location": loc,
            "tags": {"aks-managed-poolName": name},
            "identity": {"type": "UserAssigned", "userAssignedIdentities": identities},
            "properties": {"orchestrationMode": "Uniform", "upgradePolicy": {"mode": "Manual"}, "provisioningState": "Succeeded"},
        }))?;
        for n in 0..2 {
            w.vms.push(&json!({
                "id": format!("{set_id}/virtualMachines/{n}"), "name": format!("{set}_{n}"),
                "type": "microsoft.compute/virtualmachinescalesets/virtualmachines",
                "tenantId": cluster["tenantId"], "subscriptionId": s,
                "resourceGroup": node_rg.to_ascii_lowercase(), "location": loc,
                "properties": {"latestModelApplied": !(i % 100 == 57 && p == 0 && n == 1), "provisioningState": "Succeeded"},
            }))?;
        }
    }
    Ok(())
}

fn identity_row(sub: &Sub, rid: &str, rg: &str, loc: &str, principal: &str, client: &str) -> Value {
    let name = rid.rsplit('/').next().unwrap_or_default();
    json!({
        "id": rid, "name": name, "type": "microsoft.managedidentity/userassignedidentities",
        "tenantId": sub.tenant, "subscriptionId": sub.id, "resourceGroup": rg.to_ascii_lowercase(),
        "location": loc, "tags": {},
        "properties": {"tenantId": sub.tenant, "principalId": principal, "clientId": client},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gen(dir: &Path, seed: u64) -> GenerateSummary {
        generate(&GenerateArgs {
            subscriptions: 4,
            clusters: 60,
            role_assignments: 400,
            seed,
            out: dir.to_path_buf(),
        })
        .unwrap()
    }

    #[test]
    fn same_seed_same_bytes_and_valid_json() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let s = gen(a.path(), 7);
        gen(b.path(), 7);
        gen(c.path(), 8);
        assert_eq!(s.subscriptions, 4);
        assert_eq!(s.clusters, 60);
        assert_eq!(s.role_assignments, 400);
        for f in [
            "subscriptions.json",
            "clusters.json",
            "role-assignments.json",
            "ground-truth.json",
            "graph-applications.json",
        ] {
            let x = std::fs::read(a.path().join(f)).unwrap();
            assert_eq!(x, std::fs::read(b.path().join(f)).unwrap(), "{f}");
            serde_json::from_slice::<Value>(&x).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
        assert_ne!(
            std::fs::read(a.path().join("clusters.json")).unwrap(),
            std::fs::read(c.path().join("clusters.json")).unwrap()
        );
    }

    #[test]
    fn some_managed_identity_clusters_get_a_flip_and_scale_sets() {
        let d = tempfile::tempdir().unwrap();
        generate(&GenerateArgs {
            subscriptions: 4,
            clusters: 120,
            role_assignments: 400,
            seed: 5,
            out: d.path().to_path_buf(),
        })
        .unwrap();
        let read = |f: &str| -> Vec<Value> {
            serde_json::from_slice(&std::fs::read(d.path().join(f)).unwrap()).unwrap()
        };
        let clusters = read("clusters.json");
        let flipped: Vec<&Value> = [7usize, 57, 107]
            .iter()
            .map(|&i| &clusters[i])
            .filter(|c| c["identity"].is_object())
            .collect();
        let changes = read("resource-changes.json");
        assert_eq!(changes.len(), flipped.len());
        for (c, ch) in flipped.iter().zip(&changes) {
            assert_eq!(ch["properties"]["targetResourceId"], c["id"]);
            assert_eq!(
                ch["properties"]["changes"]["identity.type"]["newValue"],
                c["identity"]["type"]
            );
        }
        let pools: usize = flipped
            .iter()
            .map(|c| {
                c["properties"]["agentPoolProfiles"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .sum();
        assert_eq!(read("scale-sets.json").len(), pools);
        let vms = read("scale-set-vms.json");
        assert_eq!(vms.len(), 2 * pools);
        let stale = vms
            .iter()
            .filter(|v| v["properties"]["latestModelApplied"] == false)
            .count();
        assert_eq!(stale, usize::from(clusters[57]["identity"].is_object()));
        // The emulator serves them in their tables.
        let t = crate::Tenant::from_inventory_dir(d.path()).unwrap();
        assert_eq!(
            t.rows(crate::kql::Table::ResourceChanges).len(),
            changes.len()
        );
        assert_eq!(t.rows(crate::kql::Table::ComputeResources).len(), vms.len());
    }

    #[test]
    fn ground_truth_matches_clusters() {
        let d = tempfile::tempdir().unwrap();
        gen(d.path(), 3);
        let truth: serde_json::Map<String, Value> =
            serde_json::from_slice(&std::fs::read(d.path().join("ground-truth.json")).unwrap())
                .unwrap();
        let clusters: Vec<Value> =
            serde_json::from_slice(&std::fs::read(d.path().join("clusters.json")).unwrap())
                .unwrap();
        let ras: Vec<Value> =
            serde_json::from_slice(&std::fs::read(d.path().join("role-assignments.json")).unwrap())
                .unwrap();
        assert_eq!(truth.len(), clusters.len());
        let mut modes = std::collections::BTreeSet::new();
        for c in &clusters {
            let t = &truth[c["id"].as_str().unwrap()];
            let cp = t["control_plane_identity"].as_str().unwrap();
            let kubelet = t["kubelet_identity"].as_str().unwrap();
            modes.insert(cp.to_string());
            modes.insert(format!("k:{kubelet}"));
            let client = c["properties"]["servicePrincipalProfile"]["clientId"]
                .as_str()
                .unwrap();
            match cp {
                "service_principal" => assert!(c.get("identity").is_none() && client != "msi"),
                "system_assigned" => assert_eq!(c["identity"]["type"], "SystemAssigned"),
                _ => assert_eq!(c["identity"]["type"], "UserAssigned"),
            }
            let has_kubelet = c["properties"]["identityProfile"]["kubeletidentity"].is_object();
            assert_eq!(
                has_kubelet,
                kubelet == "aks_managed" || kubelet == "user_assigned"
            );
        }
        for m in [
            "service_principal",
            "system_assigned",
            "user_assigned",
            "k:aks_managed",
            "k:user_assigned",
            "k:service_principal",
        ] {
            assert!(modes.contains(m), "no cluster with {m}");
        }
        let per_cluster: u64 = truth
            .values()
            .map(|t| t["role_assignments"].as_u64().unwrap())
            .sum();
        assert!(per_cluster > 0 && per_cluster as usize <= ras.len());
    }
}
