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
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster_with(patch: impl FnOnce(&mut Value)) -> Result<Cluster, String> {
        let mut v = json!({
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c",
            "name": "c",
            "tags": {"owner": "a@contoso.com"},
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {"/x/id": {"principalId": "p"}}},
            "properties": {
                "agentPoolProfiles": [{"name": "np1", "mode": "System"}],
                "addonProfiles": {"omsagent": {"enabled": true, "config": {"id": "/w"}}},
                "podIdentityProfile": {"enabled": true, "userAssignedIdentityExceptions": [
                    {"name": "e", "namespace": "n", "podLabels": {"app": "x"}}
                ]}
            }
        });
        patch(&mut v);
        cluster(&v)
    }

    #[test]
    fn fields_over_their_limit_skip_the_row_naming_the_field() {
        assert!(cluster_with(|_| {}).is_ok());
        let long = "x".repeat(MAX_FIELD_BYTES + 1);
        let long_value = "x".repeat(MAX_MAP_VALUE_BYTES + 1);
        assert!(cluster_with(|v| v["tags"]["owner"] = long.clone().into()).is_ok());
        let ok = "x".repeat(MAX_FIELD_BYTES);
        assert!(cluster_with(|v| v["name"] = ok.clone().into()).is_ok());
        type Patch<'a> = Box<dyn FnOnce(&mut Value) + 'a>;
        let cases: Vec<(Patch, &str)> = vec![
            (
                Box::new(|v| v["name"] = long.clone().into()),
                "`name` is 4097 bytes long",
            ),
            (
                Box::new(|v| v["location"] = long.clone().into()),
                "`location`",
            ),
            (
                Box::new(|v| v["tags"]["owner"] = long_value.clone().into()),
                "`tags.owner`",
            ),
            (
                Box::new(|v| v["tags"][long.as_str()] = "a".into()),
                "`tags` has a key 4097 bytes long",
            ),
            (
                Box::new(|v| v["properties"]["agentPoolProfiles"][0]["name"] = long.clone().into()),
                "`properties.agentPoolProfiles[0].name`",
            ),
            (
                Box::new(|v| {
                    v["properties"]["addonProfiles"]["omsagent"]["config"]["id"] =
                        "x".repeat(MAX_MAP_VALUE_BYTES + 1).into()
                }),
                "`properties.addonProfiles.omsagent.config.id`",
            ),
            (
                Box::new(|v| v["properties"]["addonProfiles"][long.as_str()] = json!({})),
                "`properties.addonProfiles` has a key",
            ),
            (
                Box::new(|v| v["identity"]["userAssignedIdentities"][long.as_str()] = json!({})),
                "`identity.userAssignedIdentities` has a key",
            ),
            (
                Box::new(|v| {
                    v["properties"]["agentPoolProfiles"] =
                        json!(vec![json!({"name": "p"}); MAX_ENTRIES + 1])
                }),
                "`properties.agentPoolProfiles` has 1001 entries",
            ),
            (
                Box::new(|v| {
                    v["tags"] = (0..=MAX_ENTRIES)
                        .map(|i| (format!("k{i}"), json!("v")))
                        .collect::<serde_json::Map<_, _>>()
                        .into()
                }),
                "`tags` has 1001 entries",
            ),
            (
                Box::new(|v| {
                    v["properties"]["podIdentityProfile"]["userAssignedIdentityExceptions"][0]
                        ["podLabels"]["app"] = long_value.clone().into()
                }),
                "`properties.podIdentityProfile.userAssignedIdentityExceptions[0].podLabels.app`",
            ),
        ];
        for (patch, named) in cases {
            let e = cluster_with(patch).unwrap_err();
            assert!(
                e.starts_with(named) && e.contains("over the limit"),
                "{named}: {e}"
            );
        }
        // A 4 KiB key is named by its start only.
        let e = cluster_with(|v| v["tags"][ok.as_str()] = long_value.clone().into()).unwrap_err();
        assert!(e.len() < 200, "{e}");
    }

    #[test]
    fn an_oversized_flat_role_assignment_is_left_to_the_full_reader() {
        let id = "/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/a";
        let rd = "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c";
        assert!(flat_role_assignment_is_valid(
            id,
            "p",
            Some(rd),
            None,
            None,
            None
        ));
        let long = "p".repeat(MAX_FIELD_BYTES + 1);
        assert!(!flat_role_assignment_is_valid(
            id,
            &long,
            Some(rd),
            None,
            None,
            None
        ));
        let e = role_assignment(&json!({"id": id, "principalId": long, "roleDefinitionId": rd}))
            .unwrap_err();
        assert!(e.starts_with("`principalId` is 4097 bytes"), "{e}");
    }

    /// The fields of issue 11 §2, shaped like `az aks show` / ARM payloads
    /// (azure-mgmt-containerservice ManagedCluster JSON names; values invented).
    #[test]
    fn situational_fields_are_read_and_keywords_are_not_zones() {
        let c = cluster_with(|v| {
            let p = &mut v["properties"];
            p["apiServerAccessProfile"] = json!({
                "enablePrivateCluster": true,
                "privateDNSZone": "/subscriptions/s/resourceGroups/rg-dns/providers/Microsoft.Network/privateDnsZones/privatelink.japaneast.azmk8s.io",
                "enableVnetIntegration": true,
                "subnetId": "/subscriptions/s/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v/subnets/apiserver"
            });
            p["securityProfile"] = json!({"azureKeyVaultKms": {
                "enabled": true,
                "keyId": "https://kv-etcd.vault.azure.net/keys/etcd/0a1b2c3d",
                "keyVaultNetworkAccess": "Private",
                "keyVaultResourceId": "/subscriptions/s/resourceGroups/keys/providers/Microsoft.KeyVault/vaults/kv-etcd"
            }});
            p["diskEncryptionSetID"] = "/subscriptions/s/resourceGroups/keys/providers/Microsoft.Compute/diskEncryptionSets/des-aks".into();
            p["networkProfile"] = json!({"loadBalancerProfile": {
                "outboundIPs": {"publicIPs": [{"id": "/subscriptions/s/resourceGroups/ips/providers/Microsoft.Network/publicIPAddresses/pip1"}]},
                "outboundIPPrefixes": {"publicIPPrefixes": [{"id": "/subscriptions/s/resourceGroups/ips/providers/Microsoft.Network/publicIPPrefixes/pfx1"}]},
                "effectiveOutboundIPs": [{"id": "/ignored"}]
            }});
            p["podIdentityProfile"]["userAssignedIdentities"] = json!([{
                "name": "orders", "namespace": "orders",
                "identity": {"resourceId": "/subscriptions/s/resourceGroups/ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/orders", "clientId": "c", "objectId": "o"}
            }]);
        })
        .unwrap();
        let f = &c.features;
        assert!(f
            .private_dns_zone
            .as_deref()
            .unwrap()
            .ends_with("privatelink.japaneast.azmk8s.io"));
        assert!(f
            .api_server_subnet
            .as_deref()
            .unwrap()
            .ends_with("/subnets/apiserver"));
        let kms = f.kms.as_ref().unwrap();
        assert!(kms.private && kms.key_vault_resource_id.is_some());
        assert_eq!(kms.vault_name(), Some("kv-etcd"));
        assert!(f
            .disk_encryption_set
            .as_deref()
            .unwrap()
            .ends_with("des-aks"));
        assert_eq!(f.outbound_ips.len(), 2);
        assert_eq!(f.pod_identities.len(), 1);

        // `system` is a keyword, not a zone; integration off means no API server
        // subnet; KMS off is no KMS; pod identity off lists no identities.
        let off = cluster_with(|v| {
            let p = &mut v["properties"];
            p["apiServerAccessProfile"] = json!({"privateDNSZone": "system", "enableVnetIntegration": false, "subnetId": "/x/subnets/y"});
            p["securityProfile"] = json!({"azureKeyVaultKms": {"enabled": false, "keyId": "https://kv.vault.azure.net/keys/k/1"}});
            p["podIdentityProfile"] = json!({"enabled": false, "userAssignedIdentities": [{"identity": {"resourceId": "/r"}}]});
        })
        .unwrap();
        assert_eq!(off.features, ClusterFeatures::default());

        let e = cluster_with(|v| v["properties"]["diskEncryptionSetID"] = json!(5)).unwrap_err();
        assert!(e.contains("properties.diskEncryptionSetID"), "{e}");
    }

    #[test]
    fn management_group_ancestry_projected_nested_or_unknown() {
        let id = "2c7d0d5e-1111-4222-8333-944455556666";
        let chain = json!([{"name": "mg-prod", "displayName": "Production"},
                           {"name": "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9", "displayName": "Tenant Root Group"}]);
        let projected = subscription(
            &json!({"id": format!("/subscriptions/{id}"), "subscriptionId": id,
            "managementGroupAncestorsChain": chain.clone()}),
        )
        .unwrap();
        assert_eq!(projected.management_groups.as_ref().unwrap()[0], "mg-prod");
        assert_eq!(projected.under_management_group("MG-PROD"), Some(true));
        assert_eq!(projected.under_management_group("mg-dev"), Some(false));
        let nested = subscription(&json!({"id": format!("/subscriptions/{id}"),
            "properties": {"state": "Enabled", "managementGroupAncestorsChain": chain}}))
        .unwrap();
        assert_eq!(nested.management_groups, projected.management_groups);
        // `az account list` has no chain: unknown, not "under no group".
        let az = subscription(&json!({"id": id, "name": "x", "tenantId": "t"})).unwrap();
        assert_eq!(az.management_groups, None);
        assert_eq!(az.under_management_group("mg-prod"), None);
        let bad = subscription(
            &json!({"id": id, "managementGroupAncestorsChain": [{"displayName": "x"}]}),
        )
        .unwrap_err();
        assert!(
            bad.contains("managementGroupAncestorsChain[0].name"),
            "{bad}"
        );
    }

    /// Role definitions as Resource Graph returns them (`properties.permissions`;
    /// Microsoft's sample prints `Actions` capitalised) and as `az role definition
    /// list` prints them (flattened, `name` the GUID). Values invented.
    #[test]
    fn role_definitions_in_both_shapes_and_key_casings() {
        let id = "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/3C1E5A7B-9D0F-4A2B-8C4D-6E8F0A2B4C6D";
        let arg = role_definition(&json!({"id": id, "type": "microsoft.authorization/roledefinitions",
            "properties": {"roleName": "subnet-joiner", "type": "CustomRole", "assignableScopes": ["/subscriptions/s"],
                "permissions": [{"Actions": ["Microsoft.Network/virtualNetworks/subnets/*"],
                                 "notActions": ["Microsoft.Network/virtualNetworks/subnets/delete"],
                                 "dataActions": [], "notDataActions": []}]}})).unwrap();
        assert_eq!(arg.guid, "3c1e5a7b-9d0f-4a2b-8c4d-6e8f0a2b4c6d");
        assert_eq!(arg.role_name.as_deref(), Some("subnet-joiner"));
        assert_eq!(
            arg.permissions[0].actions,
            ["Microsoft.Network/virtualNetworks/subnets/*"]
        );
        assert_eq!(
            arg.permissions[0].not_actions,
            ["Microsoft.Network/virtualNetworks/subnets/delete"]
        );
        let az = role_definition(&json!({"id": id, "name": "3c1e5a7b-9d0f-4a2b-8c4d-6e8f0a2b4c6d",
            "roleName": "subnet-joiner", "permissions": [{"actions": ["Microsoft.Network/virtualNetworks/subnets/*"],
            "notActions": ["Microsoft.Network/virtualNetworks/subnets/delete"]}]})).unwrap();
        assert_eq!(az, arg);
        let e =
            role_definition(&json!({"id": id, "properties": {"permissions": [{"actions": [5]}]}}))
                .unwrap_err();
        assert!(e.contains("properties.permissions[0].actions[0]"), "{e}");
        let e = role_definition(&json!({"id": "/subscriptions/s/providers/x"})).unwrap_err();
        assert!(e.contains("`id`"), "{e}");
    }

    #[test]
    fn resource_uid_and_latest_node_image_in_both_shapes() {
        let arm = cluster_with(|v| {
            v["properties"]["resourceUID"] = "6650d1b5e0a1f40001c2a3b4".into();
            v["systemData"] = json!({"createdAt": "2026-05-01T10:00:00.1234567Z"});
            v["properties"]["agentPoolProfiles"][0]["latestNodeImageVersion"] =
                "AKSUbuntu-2204gen2containerd-202606.01.0".into();
        })
        .unwrap();
        assert_eq!(
            arm.resource_uid.as_deref(),
            Some("6650d1b5e0a1f40001c2a3b4")
        );
        assert_eq!(
            arm.created_at.unwrap().to_rfc3339(),
            "2026-05-01T10:00:00.123456700+00:00"
        );
        assert_eq!(
            arm.pools[0].latest_node_image_version.as_deref(),
            Some("AKSUbuntu-2204gen2containerd-202606.01.0")
        );
        let az = cluster(&json!({
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c",
            "resourceUid": "6650d1b5e0a1f40001c2a3b5",
            "agentPoolProfiles": [{"name": "np1", "nodeImageVersion": "a"}]
        }))
        .unwrap();
        assert_eq!(az.resource_uid.as_deref(), Some("6650d1b5e0a1f40001c2a3b5"));
        assert_eq!(az.pools[0].latest_node_image_version, None);
    }

    #[test]
    fn a_delegated_subscription_keeps_its_home_tenant() {
        // `az account list` for a subscription delegated through Azure Lighthouse:
        // `tenantId` is the managing tenant, `homeTenantId` the subscription's own.
        let s = subscription(&json!({
            "id": "2c7d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f", "name": "cust-prod",
            "tenantId": "aaaaaaaa-0000-4000-8000-000000000001",
            "homeTenantId": "bbbbbbbb-0000-4000-8000-000000000002",
            "managedByTenants": [{"tenantId": "aaaaaaaa-0000-4000-8000-000000000001"}]
        }))
        .unwrap();
        assert_eq!(
            s.home_tenant(),
            Some("bbbbbbbb-0000-4000-8000-000000000002")
        );
        // Resource Graph / ARM rows: `tenantId` is the home tenant.
        let r = subscription(&json!({
            "id": "/subscriptions/2c7d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f",
            "tenantId": "bbbbbbbb-0000-4000-8000-000000000002"
        }))
        .unwrap();
        assert_eq!(
            r.home_tenant(),
            Some("bbbbbbbb-0000-4000-8000-000000000002")
        );
    }

    #[test]
    fn registry_mode_and_assignment_condition_in_every_shape() {
        // The audit's Resource Graph projection: flat `roleAssignmentMode`.
        let arg = registry(&json!({
            "id": "/subscriptions/s/resourceGroups/rg-pay/providers/Microsoft.ContainerRegistry/registries/paymentsacr",
            "name": "paymentsacr", "type": "microsoft.containerregistry/registries",
            "roleAssignmentMode": "AbacRepositoryPermissions"
        }))
        .unwrap();
        assert!(arg.is_abac());
        // A whole ARM / `resources` row: under `properties`.
        let arm = registry(&json!({
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/platformacr",
            "properties": {"loginServer": "platformacr.azurecr.io", "roleAssignmentMode": "LegacyRegistryPermissions"}
        }))
        .unwrap();
        assert_eq!(
            arm.role_assignment_mode.as_deref(),
            Some("LegacyRegistryPermissions")
        );
        assert!(!arm.is_abac());
        // Older API versions print no mode: legacy.
        let old = registry(&json!({
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/oldacr",
            "properties": {}
        }))
        .unwrap();
        assert!(old.role_assignment_mode.is_none() && !old.is_abac());
        let e = registry(&json!({
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/x",
            "roleAssignmentMode": 3
        }))
        .unwrap_err();
        assert!(e.contains("roleAssignmentMode"), "{e}");

        let cond = "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})) OR (@Resource[Microsoft.ContainerRegistry/registries/repositories:name] StringEquals 'team-a/api'))";
        let rd = "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/b93aa761-3e63-49ed-ac28-beffa264f7ac";
        let id = "/subscriptions/s/resourceGroups/rg-pay/providers/Microsoft.ContainerRegistry/registries/paymentsacr/providers/Microsoft.Authorization/roleAssignments/a";
        let flat = role_assignment(
            &json!({"id": id, "principalId": "p", "roleDefinitionId": rd,
            "condition": cond, "conditionVersion": "2.0"}),
        )
        .unwrap();
        assert_eq!(flat.condition.as_deref(), Some(cond));
        let arm = role_assignment(&json!({"id": id, "properties": {"principalId": "p",
            "roleDefinitionId": rd, "condition": null}}))
        .unwrap();
        assert_eq!(arm.condition, None);
    }

    #[test]
    fn application_routing_identity_and_zones() {
        let c = cluster_with(|v| {
            v["properties"]["ingressProfile"] = json!({"webAppRouting": {
                "enabled": true,
                "dnsZoneResourceIds": [
                    "/subscriptions/s/resourceGroups/rg-dns/providers/Microsoft.Network/dnszones/contoso.example",
                    "/subscriptions/s/resourceGroups/rg-dns/providers/Microsoft.Network/privateDnsZones/internal.contoso.example"
                ],
                "identity": {"resourceId": "/subscriptions/s/resourcegroups/mc_rg_c_japaneast/providers/Microsoft.ManagedIdentity/userAssignedIdentities/webapprouting-c",
                             "clientId": "c1", "objectId": "o1"}
            }});
        })
        .unwrap();
        let w = c.web_app_routing.as_ref().unwrap();
        assert!(w.enabled && w.dns_zone_ids.len() == 2);
        assert!(c.principal_ids().any(|p| p == "o1"));
        let e = cluster_with(|v| {
            v["properties"]["ingressProfile"] =
                json!({"webAppRouting": {"dnsZoneResourceIds": [7]}})
        })
        .unwrap_err();
        assert!(
            e.starts_with("`properties.ingressProfile.webAppRouting.dnsZoneResourceIds[0]`"),
            "{e}"
        );
    }

    #[test]
    fn sp_credentials_are_bounded_too() {
        let c = SpCredential {
            client_id: "c".into(),
            app_display_name: "x".repeat(MAX_FIELD_BYTES + 1),
            nearest_expiry: None,
        };
        let e = sp_credential_within_limits(&c).unwrap_err();
        assert!(e.starts_with("`app_display_name`"), "{e}");
    }
}
