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
    let bad =
        subscription(&json!({"id": id, "managementGroupAncestorsChain": [{"displayName": "x"}]}))
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
    let e = role_definition(&json!({"id": id, "properties": {"permissions": [{"actions": [5]}]}}))
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
        v["properties"]["ingressProfile"] = json!({"webAppRouting": {"dnsZoneResourceIds": [7]}})
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
