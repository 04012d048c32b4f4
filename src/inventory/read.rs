//! Element readers: one JSON element (ARM, Resource Graph or `az` CLI shape) to one
//! typed row. Each returns a message naming the field on failure; the caller skips
//! and counts the element.
use serde_json::Value;

use super::ids;
use super::json::*;
use super::model::*;

/// ARM and Resource Graph wrap fields in `properties`; `az` flattens them. Detect per object.
fn props(o: &Obj) -> Result<(&Obj, &'static str), String> {
    match opt_obj(o, "properties", "")? {
        Some(p) => Ok((p, "properties")),
        None => Ok((o, "")),
    }
}

pub fn cluster(v: &Value) -> Result<Cluster, String> {
    let o = as_obj(v, "element")?;
    let id = req_str(o, "id", "")?;
    let (p, pp) = props(o)?;
    let name = match opt_str(o, "name", "")? {
        Some(n) => n,
        None => ids::name_of(&id).unwrap_or_default().to_string(),
    };
    let subscription_id = match opt_str(o, "subscriptionId", "")? {
        Some(s) => s,
        None => ids::subscription_of(&id).unwrap_or_default().to_string(),
    };
    let resource_group = match opt_str(o, "resourceGroup", "")? {
        Some(s) => s,
        None => ids::resource_group_of(&id).unwrap_or_default().to_string(),
    };
    if subscription_id.is_empty() || resource_group.is_empty() {
        return Err(err("id", "is not a managed cluster resource id"));
    }
    let created_at = match opt_obj(o, "systemData", "")? {
        Some(sd) => opt_time(sd, "createdAt", "systemData")?,
        None => None,
    };
    let sp_client_id = match opt_obj(p, "servicePrincipalProfile", pp)? {
        Some(sp) => opt_str(sp, "clientId", &join(pp, "servicePrincipalProfile"))?,
        None => None,
    };
    let kubelet = match opt_obj(p, "identityProfile", pp)? {
        Some(ip) => {
            let path = join(pp, "identityProfile");
            match opt_obj(ip, "kubeletidentity", &path)? {
                Some(k) => Some(identity_ref(k, &join(&path, "kubeletidentity"))?),
                None => None,
            }
        }
        None => None,
    };
    let mut addons = Vec::new();
    if let Some(ap) = opt_obj(p, "addonProfiles", pp)? {
        for (key, val) in entries(ap, &join(pp, "addonProfiles"))? {
            let path = join(&join(pp, "addonProfiles"), key);
            addons.push(addon(key, as_obj(val, &path)?, &path)?);
        }
    }
    let mut pools = Vec::new();
    let pools_path = join(pp, "agentPoolProfiles");
    for (i, pv) in opt_array(p, "agentPoolProfiles", pp)?.iter().enumerate() {
        let path = format!("{pools_path}[{i}]");
        pools.push(agent_pool(as_obj(pv, &path)?, &path)?);
    }
    let pod_identity = match opt_obj(p, "podIdentityProfile", pp)? {
        Some(pi) => Some(pod_identity(pi, &join(pp, "podIdentityProfile"))?),
        None => None,
    };
    let web_app_routing = match opt_obj(p, "ingressProfile", pp)? {
        Some(ip) => {
            let path = join(pp, "ingressProfile");
            match opt_obj(ip, "webAppRouting", &path)? {
                Some(w) => Some(web_app_routing(w, &join(&path, "webAppRouting"))?),
                None => None,
            }
        }
        None => None,
    };
    Ok(Cluster {
        conflict: None,
        scale_sets: None,
        changes: None,
        name,
        subscription_id,
        resource_group,
        location: opt_str(o, "location", "")?.unwrap_or_default(),
        tags: string_map(o, "tags", "")?,
        provisioning_state: opt_str(p, "provisioningState", pp)?,
        kubernetes_version: opt_str(p, "currentKubernetesVersion", pp)?.or(opt_str(
            p,
            "kubernetesVersion",
            pp,
        )?),
        created_at,
        // ARM spells it `resourceUID`, `az` prints `resourceUid`.
        resource_uid: opt_str(p, "resourceUID", pp)?.or(opt_str(p, "resourceUid", pp)?),
        identity: cluster_identity(o)?,
        sp_client_id,
        node_resource_group: opt_str(p, "nodeResourceGroup", pp)?,
        kubelet,
        addons,
        pools,
        pod_identity,
        features: features(p, pp)?,
        web_app_routing,
        id,
    })
}

/// The configuration that documents extra control-plane grants (issue 11 §2). Field
/// names as ARM prints them (azure-mgmt-containerservice models); `az` prints the
/// same names under the flattened object except `diskEncryptionSetId` and `subnetId`
/// casing, read both ways.
fn features(p: &Obj, pp: &str) -> Result<ClusterFeatures, String> {
    let mut f = ClusterFeatures::default();
    if let Some(api) = opt_obj(p, "apiServerAccessProfile", pp)? {
        let path = join(pp, "apiServerAccessProfile");
        let zone =
            opt_str(api, "privateDNSZone", &path)?.or(opt_str(api, "privateDnsZone", &path)?);
        // `system` and `none` are keywords; a custom zone is a resource id.
        f.private_dns_zone = zone.filter(|z| z.starts_with('/'));
        if opt_bool(api, "enableVnetIntegration", &path)? == Some(true) {
            f.api_server_subnet =
                opt_str(api, "subnetId", &path)?.or(opt_str(api, "subnetID", &path)?);
        }
    }
    if let Some(sec) = opt_obj(p, "securityProfile", pp)? {
        let path = join(pp, "securityProfile");
        if let Some(k) = opt_obj(sec, "azureKeyVaultKms", &path)? {
            let path = join(&path, "azureKeyVaultKms");
            if opt_bool(k, "enabled", &path)? == Some(true) {
                let access = opt_str(k, "keyVaultNetworkAccess", &path)?;
                f.kms = Some(Kms {
                    key_id: opt_str(k, "keyId", &path)?,
                    private: access.is_some_and(|a| a.eq_ignore_ascii_case("private")),
                    key_vault_resource_id: opt_str(k, "keyVaultResourceId", &path)?,
                });
            }
        }
    }
    f.disk_encryption_set =
        opt_str(p, "diskEncryptionSetID", pp)?.or(opt_str(p, "diskEncryptionSetId", pp)?);
    if let Some(net) = opt_obj(p, "networkProfile", pp)? {
        let path = join(pp, "networkProfile");
        if let Some(lb) = opt_obj(net, "loadBalancerProfile", &path)? {
            let path = join(&path, "loadBalancerProfile");
            for (outer, inner) in [
                ("outboundIPs", "publicIPs"),
                ("outboundIPPrefixes", "publicIPPrefixes"),
            ] {
                if let Some(o) = opt_obj(lb, outer, &path)? {
                    let path = join(&path, outer);
                    for (i, r) in opt_array(o, inner, &path)?.iter().enumerate() {
                        let rp = format!("{}[{i}]", join(&path, inner));
                        if let Some(id) = opt_str(as_obj(r, &rp)?, "id", &rp)? {
                            f.outbound_ips.push(id);
                        }
                    }
                }
            }
        }
    }
    if let Some(pi) = opt_obj(p, "podIdentityProfile", pp)? {
        let path = join(pp, "podIdentityProfile");
        if opt_bool(pi, "enabled", &path)? == Some(true) {
            let ua = join(&path, "userAssignedIdentities");
            for (i, e) in opt_array(pi, "userAssignedIdentities", &path)?
                .iter()
                .enumerate()
            {
                let ep = format!("{ua}[{i}]");
                if let Some(idn) = opt_obj(as_obj(e, &ep)?, "identity", &ep)? {
                    if let Some(rid) = opt_str(idn, "resourceId", &join(&ep, "identity"))? {
                        f.pod_identities.push(rid);
                    }
                }
            }
        }
    }
    Ok(f)
}

fn web_app_routing(o: &Obj, path: &str) -> Result<WebAppRouting, String> {
    let identity = match opt_obj(o, "identity", path)? {
        Some(i) => Some(identity_ref(i, &join(path, "identity"))?),
        None => None,
    };
    let zones_path = join(path, "dnsZoneResourceIds");
    let mut dns_zone_ids = Vec::new();
    for (i, z) in opt_array(o, "dnsZoneResourceIds", path)?.iter().enumerate() {
        let at = format!("{zones_path}[{i}]");
        let id = z.as_str().ok_or_else(|| err(&at, "is not a string"))?;
        within(id, MAX_FIELD_BYTES, &at)?;
        dns_zone_ids.push(id.to_string());
    }
    Ok(WebAppRouting {
        enabled: opt_bool(o, "enabled", path)?.unwrap_or(false),
        identity,
        dns_zone_ids,
    })
}

fn cluster_identity(o: &Obj) -> Result<Option<ClusterIdentity>, String> {
    let Some(i) = opt_obj(o, "identity", "")? else {
        return Ok(None);
    };
    let kind = match opt_str(i, "type", "identity")? {
        None => return Ok(None),
        Some(t) => match t.to_ascii_lowercase().replace(' ', "").as_str() {
            "none" => return Ok(None),
            "systemassigned" => IdentityType::SystemAssigned,
            "userassigned" => IdentityType::UserAssigned,
            other => {
                return Err(err(
                    "identity.type",
                    &format!("has unknown value `{other}`"),
                ))
            }
        },
    };
    let mut user_assigned = Vec::new();
    if let Some(ua) = opt_obj(i, "userAssignedIdentities", "identity")? {
        for (rid, v) in entries(ua, "identity.userAssignedIdentities")? {
            let path = format!("identity.userAssignedIdentities[{rid}]");
            let e = as_obj(v, &path)?;
            user_assigned.push(UserAssignedIdentity {
                resource_id: rid.clone(),
                principal_id: opt_str(e, "principalId", &path)?,
                client_id: opt_str(e, "clientId", &path)?,
            });
        }
    }
    Ok(Some(ClusterIdentity {
        kind,
        principal_id: opt_str(i, "principalId", "identity")?,
        tenant_id: opt_str(i, "tenantId", "identity")?,
        user_assigned,
    }))
}

fn identity_ref(o: &Obj, path: &str) -> Result<IdentityRef, String> {
    Ok(IdentityRef {
        resource_id: opt_str(o, "resourceId", path)?,
        client_id: opt_str(o, "clientId", path)?,
        object_id: opt_str(o, "objectId", path)?,
    })
}

fn addon(key: &str, o: &Obj, path: &str) -> Result<Addon, String> {
    let identity = match opt_obj(o, "identity", path)? {
        Some(i) => Some(identity_ref(i, &join(path, "identity"))?),
        None => None,
    };
    Ok(Addon {
        key: key.to_string(),
        enabled: opt_bool(o, "enabled", path)?.unwrap_or(false),
        config: string_map(o, "config", path)?,
        identity,
    })
}

fn agent_pool(o: &Obj, path: &str) -> Result<AgentPool, String> {
    // `GET .../agentPools/{p}` nests under `properties`; the cluster's profiles do not.
    let (p, pp) = match opt_obj(o, "properties", path)? {
        Some(p) => (p, join(path, "properties")),
        None => (o, path.to_string()),
    };
    Ok(AgentPool {
        name: req_str(o, "name", path)?,
        mode: opt_str(p, "mode", &pp)?,
        os_type: opt_str(p, "osType", &pp)?,
        node_image_version: opt_str(p, "nodeImageVersion", &pp)?,
        orchestrator_version: opt_str(p, "currentOrchestratorVersion", &pp)?.or(opt_str(
            p,
            "orchestratorVersion",
            &pp,
        )?),
        provisioning_state: opt_str(p, "provisioningState", &pp)?,
        // ARM spells it `vnetSubnetID`, `az` prints `vnetSubnetId`.
        vnet_subnet_id: opt_str(p, "vnetSubnetID", &pp)?.or(opt_str(p, "vnetSubnetId", &pp)?),
        latest_node_image_version: opt_str(p, "latestNodeImageVersion", &pp)?,
    })
}

fn pod_identity(o: &Obj, path: &str) -> Result<PodIdentity, String> {
    let mut exceptions = Vec::new();
    let ex_path = join(path, "userAssignedIdentityExceptions");
    for (i, e) in opt_array(o, "userAssignedIdentityExceptions", path)?
        .iter()
        .enumerate()
    {
        let p = format!("{ex_path}[{i}]");
        let eo = as_obj(e, &p)?;
        exceptions.push(PodIdentityException {
            name: opt_str(eo, "name", &p)?.unwrap_or_default(),
            namespace: opt_str(eo, "namespace", &p)?.unwrap_or_default(),
            pod_labels: string_map(eo, "podLabels", &p)?,
        });
    }
    Ok(PodIdentity {
        enabled: opt_bool(o, "enabled", path)?.unwrap_or(false),
        exceptions,
    })
}

pub fn role_assignment(v: &Value) -> Result<RoleAssignment, String> {
    let o = as_obj(v, "element")?;
    let id = req_str(o, "id", "")?;
    let (p, pp) = props(o)?;
    let role_definition_id = opt_str(p, "roleDefinitionId", pp)?.unwrap_or_default();
    let role_name = opt_str(p, "roleDefinitionName", pp)?;
    let role_guid = if role_definition_id.is_empty() {
        String::new()
    } else {
        ids::role_guid(&role_definition_id)
    };
    if role_guid.is_empty() && role_name.is_none() {
        return Err(err(&join(pp, "roleDefinitionId"), "is missing"));
    }
    let scope = match opt_str(p, "scope", pp)? {
        Some(s) => s,
        // Without a scope the assignment's own id tells it.
        None => id
            .split_once("/providers/Microsoft.Authorization/roleAssignments/")
            .map(|(s, _)| if s.is_empty() { "/" } else { s }.to_string())
            .ok_or_else(|| err(&join(pp, "scope"), "is missing"))?,
    };
    Ok(RoleAssignment {
        role_definition_id: role_definition_id.into(),
        role_guid: role_guid.into(),
        role_name: role_name.map(Into::into),
        principal_id: req_str(p, "principalId", pp)?.into(),
        principal_name: opt_str(p, "principalName", pp)?,
        principal_type: opt_str(p, "principalType", pp)?.map(Into::into),
        scope: scope.into(),
        created_on: opt_time(p, "createdOn", pp)?,
        condition: opt_str(p, "condition", pp)?.filter(|c| !c.trim().is_empty()),
        via_group: None,
        id,
    })
}

/// Whether a role assignment in the flat shape (fields at the top, no `properties`,
/// no `principalName`) would be read by [`role_assignment`]: the same checks, without
/// building it. The collector drops other principals' rows unbuilt, yet a malformed
/// one is still skipped and counted.
pub fn flat_role_assignment_is_valid(
    id: &str,
    principal_id: &str,
    role_definition_id: Option<&str>,
    role_name: Option<&str>,
    scope: Option<&str>,
    created_on: Option<&str>,
) -> bool {
    let bounded = [id, principal_id]
        .into_iter()
        .chain(
            [role_definition_id, role_name, scope, created_on]
                .into_iter()
                .flatten(),
        )
        .all(|s| s.len() <= MAX_FIELD_BYTES);
    if !bounded {
        return false; // read in full, and skipped naming the field
    }
    let rdid = role_definition_id.unwrap_or_default();
    let has_role = (!rdid.is_empty() && !ids::role_guid(rdid).is_empty()) || role_name.is_some();
    let has_scope =
        scope.is_some() || id.contains("/providers/Microsoft.Authorization/roleAssignments/");
    !id.is_empty()
        && !principal_id.is_empty()
        && has_role
        && has_scope
        && created_on.is_none_or(|t| parse_time(t).is_some())
}

/// A service principal's credential row (`sp-credentials.json`) within the input
/// limits of [`super::json`]; `Err` names the field.
pub fn sp_credential_within_limits(c: &SpCredential) -> Result<(), String> {
    within(&c.client_id, MAX_FIELD_BYTES, "client_id")?;
    within(&c.app_display_name, MAX_FIELD_BYTES, "app_display_name")
}

/// The Resource Graph `type` of a row, lower-cased, if it has one.
pub fn row_type(v: &Value) -> Option<String> {
    v.get("type")?.as_str().map(|s| s.to_ascii_lowercase())
}

/// A role definition: Resource Graph's row (`properties.roleName`, `.permissions`) or
/// `az role definition list`'s (flattened). Permission keys are read ignoring case
/// (Microsoft's samples print `Actions` and `actions`).
pub fn role_definition(v: &Value) -> Result<RoleDefinition, String> {
    let o = as_obj(v, "element")?;
    let id = req_str(o, "id", "")?;
    let guid = ids::role_guid(&id);
    if !ids::is_guid(&guid) {
        return Err(err("id", "does not end in a role definition GUID"));
    }
    let (p, pp) = props(o)?;
    let mut permissions = Vec::new();
    let here = join(pp, "permissions");
    for (i, b) in opt_array(p, "permissions", pp)?.iter().enumerate() {
        let bp = format!("{here}[{i}]");
        let bo = as_obj(b, &bp)?;
        let list = |key: &str| -> Result<Vec<String>, String> {
            let Some((k, _)) = bo.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)) else {
                return Ok(vec![]);
            };
            opt_array(bo, k, &bp)?
                .iter()
                .enumerate()
                .map(|(j, a)| {
                    let ap = format!("{}[{j}]", join(&bp, k));
                    let s = a.as_str().ok_or_else(|| err(&ap, "is not a string"))?;
                    within(s, MAX_FIELD_BYTES, &ap)?;
                    Ok(s.to_string())
                })
                .collect()
        };
        permissions.push(Permission {
            actions: list("actions")?,
            not_actions: list("notActions")?,
        });
    }
    Ok(RoleDefinition {
        guid,
        role_name: opt_str(p, "roleName", pp)?,
        permissions,
        id,
    })
}

pub fn subscription(v: &Value) -> Result<Subscription, String> {
    let o = as_obj(v, "element")?;
    let raw_id = match opt_str(o, "subscriptionId", "")? {
        Some(s) => s,
        None => req_str(o, "id", "")?,
    };
    let id = ids::subscription_of(&raw_id)
        .unwrap_or(raw_id.as_str())
        .to_string();
    if !ids::is_guid(&id) {
        return Err(err("id", &format!("`{id}` is not a subscription id")));
    }
    let name = match opt_str(o, "displayName", "")? {
        Some(n) => n,
        None => opt_str(o, "name", "")?.unwrap_or_else(|| id.clone()),
    };
    let state = match opt_str(o, "state", "")? {
        Some(s) => Some(s),
        None => match opt_obj(o, "properties", "")? {
            Some(p) => opt_str(p, "state", "properties")?,
            None => None,
        },
    };
    Ok(Subscription {
        id,
        name,
        tenant_id: opt_str(o, "tenantId", "")?,
        home_tenant_id: opt_str(o, "homeTenantId", "")?,
        state,
        tags: string_map(o, "tags", "")?,
        management_groups: management_groups(o)?,
    })
}

/// `managementGroupAncestorsChain` (projected by subscriptions.kql, or under
/// `properties` in a whole Resource Graph row): the names, nearest first. Absent is
/// unknown (`None`), not "under no group".
fn management_groups(o: &Obj) -> Result<Option<Vec<String>>, String> {
    const KEY: &str = "managementGroupAncestorsChain";
    let (holder, path) = match (o.get(KEY), opt_obj(o, "properties", "")?) {
        (Some(v), _) if !v.is_null() => (o, ""),
        (_, Some(p)) if p.get(KEY).is_some_and(|v| !v.is_null()) => (p, "properties"),
        _ => return Ok(None),
    };
    let here = join(path, KEY);
    let mut names = Vec::new();
    for (i, m) in opt_array(holder, KEY, path)?.iter().enumerate() {
        let p = format!("{here}[{i}]");
        names.push(req_str(as_obj(m, &p)?, "name", &p)?);
    }
    Ok(Some(names))
}

pub fn resource_group(v: &Value) -> Result<ResourceGroup, String> {
    let o = as_obj(v, "element")?;
    let id = req_str(o, "id", "")?;
    let subscription_id = ids::subscription_of(&id)
        .ok_or_else(|| err("id", "is not a resource group id"))?
        .to_string();
    let name = match opt_str(o, "name", "")? {
        Some(n) => n,
        None => ids::resource_group_of(&id)
            .ok_or_else(|| err("id", "is not a resource group id"))?
            .to_string(),
    };
    Ok(ResourceGroup {
        subscription_id,
        name,
        tags: string_map(o, "tags", "")?,
        id,
    })
}

pub fn registry(v: &Value) -> Result<Registry, String> {
    let o = as_obj(v, "element")?;
    let id = req_str(o, "id", "")?;
    let (Some(sub), Some(rg)) = (ids::subscription_of(&id), ids::resource_group_of(&id)) else {
        return Err(err("id", "is not a registry resource id"));
    };
    // Resource Graph (the audit's query) and `az acr show` put it at the top,
    // ARM and a whole `resources` row under `properties`.
    let (p, pp) = props(o)?;
    let role_assignment_mode = match opt_str(o, "roleAssignmentMode", "")? {
        Some(m) => Some(m),
        None if pp.is_empty() => None,
        None => opt_str(p, "roleAssignmentMode", pp)?,
    };
    Ok(Registry {
        role_assignment_mode,
        name: opt_str(o, "name", "")?
            .unwrap_or_else(|| ids::name_of(&id).unwrap_or_default().to_string()),
        subscription_id: sub.to_string(),
        resource_group: rg.to_string(),
        id,
    })
}

#[cfg(test)]
mod tests;
