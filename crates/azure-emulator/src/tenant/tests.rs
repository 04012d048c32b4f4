use super::*;

fn tenant(files: &[(&str, &str)]) -> Tenant {
    Tenant::from_files(files.iter().copied()).unwrap()
}

const CLUSTER_AZ: &str = r#"[{"id": "/subscriptions/AAAAAAAA-0000-0000-0000-000000000001/resourcegroups/RG1/providers/Microsoft.ContainerService/managedClusters/c1",
  "name": "c1", "type": "Microsoft.ContainerService/ManagedClusters", "location": "westeurope",
  "identity": {"type": "SystemAssigned"}, "servicePrincipalProfile": {"clientId": "msi"},
  "nodeResourceGroup": "MC_rg1_c1", "agentPoolProfiles": [{"name": "np", "nodeImageVersion": "AKSUbuntu-2204gen2containerd-202401.09.0"}]},
  "garbage", {"name": "no id"}]"#;

#[test]
fn az_shape_moves_fields_into_properties_and_derives_ids() {
    let t = tenant(&[("clusters.json", CLUSTER_AZ)]);
    let rows = t.rows(Table::Resources);
    assert_eq!(rows.len(), 3, "malformed elements are kept");
    let c: Value = rows
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.json).unwrap())
        .find(|v| v.get("name") == Some(&json!("c1")))
        .unwrap();
    assert_eq!(c["type"], "microsoft.containerservice/managedclusters");
    assert_eq!(c["properties"]["nodeResourceGroup"], "MC_rg1_c1");
    assert_eq!(
        c["properties"]["servicePrincipalProfile"]["clientId"],
        "msi"
    );
    assert_eq!(c["identity"]["type"], "SystemAssigned");
    assert_eq!(c["location"], "westeurope");
    assert_eq!(c["subscriptionId"], "AAAAAAAA-0000-0000-0000-000000000001");
    assert_eq!(c["resourceGroup"], "rg1");
    assert!(t.cluster("/subscriptions/aaaaaaaa-0000-0000-0000-000000000001/resourceGroups/rg1/providers/microsoft.containerservice/managedclusters/C1").is_some());
    assert!(rows.iter().any(|r| &*r.json == "\"garbage\""));
}

#[test]
fn a_delegated_subscription_serves_its_home_tenant_like_resource_graph() {
    // `az account list` under Azure Lighthouse: `tenantId` is the managing tenant.
    let az = r#"[{"id": "11111111-0000-0000-0000-000000000003", "name": "cust", "tenantId": "msp", "homeTenantId": "customer", "managedByTenants": [{"tenantId": "msp"}]}]"#;
    let t = tenant(&[("subscriptions.json", az), ("clusters.json", "[]")]);
    let row: Value = serde_json::from_str(&t.rows(Table::ResourceContainers)[0].json).unwrap();
    assert_eq!(row["tenantId"], "customer");
    assert_eq!(row["properties"]["managedByTenants"][0]["tenantId"], "msp");
}

#[test]
fn subscriptions_from_every_shape() {
    let az = r#"[{"id": "11111111-0000-0000-0000-000000000001", "name": "one", "tenantId": "t1", "state": "Enabled", "isDefault": true}]"#;
    let arm = r#"{"value": [{"id": "/subscriptions/11111111-0000-0000-0000-000000000002", "subscriptionId": "11111111-0000-0000-0000-000000000002", "displayName": "two", "tenantId": "t1", "state": "Disabled"}]}"#;
    let t1 = tenant(&[("subscriptions.json", az), ("clusters.json", "[]")]);
    let t2 = tenant(&[("subscriptions.json", arm), ("clusters.json", "[]")]);
    let row = |t: &Tenant| {
        serde_json::from_str::<Value>(&t.rows(Table::ResourceContainers)[0].json).unwrap()
    };
    let r1 = row(&t1);
    assert_eq!(
        r1["id"],
        "/subscriptions/11111111-0000-0000-0000-000000000001"
    );
    assert_eq!(r1["type"], "microsoft.resources/subscriptions");
    assert_eq!(r1["name"], "one");
    assert_eq!(r1["subscriptionId"], "11111111-0000-0000-0000-000000000001");
    assert_eq!(r1["properties"]["state"], "Enabled");
    let r2 = row(&t2);
    assert_eq!(r2["name"], "two");
    assert_eq!(r2["properties"]["state"], "Disabled");
    assert_eq!(t2.subscriptions()[0].display_name, "two");
    // ARG rows pass through unchanged in substance.
    let arg = format!("{{\"data\": [{}]}}", r2);
    let t3 = tenant(&[("subscriptions.json", &arg), ("clusters.json", "[]")]);
    assert_eq!(row(&t3), r2);
}

#[test]
fn rows_sorted_by_id_and_tenant_filled_from_subscription() {
    let subs = r#"[{"subscriptionId": "s1", "displayName": "x", "tenantId": "tenant-1"}]"#;
    let ras = r#"[{"id": "/subscriptions/s1/providers/Microsoft.Authorization/roleAssignments/b", "type": "Microsoft.Authorization/roleAssignments", "principalId": "p", "roleDefinitionId": "/x/b24988ac-6180-42a0-ab88-20f7382dd24c", "scope": "/subscriptions/s1"},
                  {"id": "/subscriptions/s1/providers/Microsoft.Authorization/roleAssignments/a", "type": "Microsoft.Authorization/roleAssignments", "properties": {"principalId": "q"}}]"#;
    let t = tenant(&[
        ("subscriptions.json", subs),
        ("clusters.json", "[]"),
        ("role-assignments.json", ras),
    ]);
    let rows: Vec<Value> = t
        .rows(Table::AuthorizationResources)
        .iter()
        .map(|r| serde_json::from_str(&r.json).unwrap())
        .collect();
    assert!(rows[0]["id"].as_str().unwrap().ends_with("/a"));
    assert_eq!(rows[1]["properties"]["principalId"], "p");
    assert_eq!(rows[1]["type"], "microsoft.authorization/roleassignments");
    assert_eq!(rows[1]["tenantId"], "tenant-1");
    assert_eq!(t.subscription_index("S1"), Some(0));
}

#[test]
fn demo_loads_with_graph_apps_for_sp_clusters() {
    let t = Tenant::demo();
    assert!(t.rows(Table::Resources).len() >= 5);
    assert!(!t.subscriptions().is_empty());
    assert!(!t.applications().is_empty());
    assert!(t.applications().iter().any(|a| a["identifierUris"]
        .as_array()
        .is_some_and(|u| !u.is_empty())));
}

#[test]
fn the_demo_is_dated_by_the_clock_it_is_given() {
    let at = chrono::DateTime::parse_from_rfc3339("2026-01-15T06:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let a = Tenant::demo_at(at);
    assert_eq!(a.applications(), Tenant::demo_at(at).applications());
    // The first service principal's secret expired ten days before the given clock,
    // whatever the wall clock says.
    let ends: Vec<&str> = a
        .applications()
        .iter()
        .filter_map(|app| app["passwordCredentials"][0]["endDateTime"].as_str())
        .collect();
    assert_eq!(ends.first(), Some(&"2026-01-05T06:00:00Z"), "{ends:?}");
    let later = Tenant::demo_at(at + chrono::Duration::days(30));
    assert_ne!(a.applications(), later.applications());
}

#[test]
fn malformed_clusters_fault() {
    let t = tenant(&[("clusters.json", CLUSTER_AZ)]).with_malformed_clusters(1, 0);
    let c = t
        .cluster("/subscriptions/aaaaaaaa-0000-0000-0000-000000000001/resourcegroups/rg1/providers/Microsoft.ContainerService/managedClusters/c1")
        .unwrap();
    let v: Value = serde_json::from_str(&c.json).unwrap();
    assert_eq!(v["properties"], "corrupted");
}

#[test]
fn latest_node_image_by_family() {
    let t = tenant(&[
        ("clusters.json", "[]"),
        (
            "latest-node-images.json",
            r#"{"AKSUbuntu-2204gen2containerd": "AKSUbuntu-2204gen2containerd-202409.01.0"}"#,
        ),
    ]);
    assert_eq!(
        t.latest_node_image("AKSUbuntu-2204gen2containerd-202401.09.0"),
        "AKSUbuntu-2204gen2containerd-202409.01.0"
    );
    assert_eq!(
        t.latest_node_image("AKSUbuntu-1804-2020.01.01"),
        "AKSUbuntu-1804-2020.01.01"
    );
}

#[test]
fn missing_clusters_file_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    let e = Tenant::from_inventory_dir(d.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("clusters.json"), "{e}");
    std::fs::write(d.path().join("clusters.json"), "{\"nope\": 1}").unwrap();
    let e = format!("{:#}", Tenant::from_inventory_dir(d.path()).unwrap_err());
    assert!(e.contains("\"value\" or \"data\""), "{e}");
    std::fs::write(d.path().join("clusters.json"), "{\"value\": []}").unwrap();
    assert!(Tenant::from_inventory_dir(d.path())
        .unwrap()
        .rows(Table::Resources)
        .is_empty());
    std::fs::write(d.path().join("clusters.json"), "[1,").unwrap();
    assert!(Tenant::from_inventory_dir(d.path()).is_err());
}
