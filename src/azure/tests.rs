//! Tests of the parent module.
use super::*;

/// A query file's text without its `//` comment lines (the emulator's KQL parser, like
/// the tests' string checks, takes the query alone).
pub(crate) fn kql_body(q: &str) -> String {
    q.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_query_projects_id_and_orders_by_it_and_parses_in_the_emulator_subset() {
    for t in TABLES {
        let q = t.query;
        assert!(q.contains("| project id,"), "{}: {q}", t.name);
        assert!(q.trim_end().ends_with("| order by id asc"), "{}", t.name);
        let body = kql_body(q);
        let parsed =
            azure_emulator::kql::Query::parse(&body).unwrap_or_else(|e| panic!("{}: {e}", t.name));
        assert!(parsed.projects_id(), "{}", t.name);
    }
}

#[test]
fn default_settings_and_the_emulators() {
    let s = AzureSettings::default();
    assert_eq!(s.arm_endpoint.as_str(), "https://management.azure.com/");
    assert_eq!(s.arm_scope, "https://management.azure.com/.default");
    assert_eq!(s.scope, Scope::AllVisible);
    assert_eq!(
        (s.max_attempts, s.request_timeout, s.auth, s.concurrency),
        (6, Duration::from_secs(60), AuthMode::Auto, 4)
    );
    let e = AzureSettings::for_emulator("https://127.0.0.1:8443", "pem".into()).unwrap();
    assert_eq!(e.arm_endpoint.as_str(), "https://127.0.0.1:8443/");
    assert_eq!(e.graph_endpoint, e.arm_endpoint);
    assert_eq!(e.authority_host.as_deref(), Some("https://127.0.0.1:8443"));
    assert_eq!(e.arm_scope, s.arm_scope);
    assert!(e.graph && e.auth == AuthMode::ClientSecret && e.explicit_secret.is_some());
    assert!(parse_endpoint("http://arm.example.com")
        .unwrap_err()
        .contains("refusing"));
    // Plain http to loopback is allowed (a local test server).
    assert!(parse_endpoint("http://127.0.0.1:8080").is_ok());
}

#[test]
fn gaps_merge_tables_per_scope() {
    let mut g = Gaps::default();
    g.add(
        "/subscriptions/a".into(),
        "clusters",
        "no read access: x".into(),
    );
    g.add(
        "/subscriptions/a".into(),
        "registries",
        "no read access: x".into(),
    );
    g.add(
        "/subscriptions/a".into(),
        "registries",
        "no read access: x".into(),
    );
    g.add("/subscriptions/b".into(), "clusters", "503".into());
    assert_eq!(
        g.render(),
        vec![
            (
                "/subscriptions/a".to_string(),
                "clusters, registries: no read access: x".to_string(),
                vec!["clusters".to_string(), "registries".to_string()]
            ),
            (
                "/subscriptions/b".to_string(),
                "clusters: 503".to_string(),
                vec!["clusters".to_string()]
            ),
        ]
    );
}

/// The subscriptions query carries the management-group chain through the emulator's
/// KQL, as a generated tenant serves it, and the reader places grants with it.
#[test]
fn subscriptions_query_projects_the_management_group_chain() {
    let t = TABLES.iter().find(|t| t.name == "subscriptions").unwrap();
    let body = kql_body(t.query);
    let q = azure_emulator::kql::Query::parse(&body).unwrap();
    let id = "2c7d0d5e-1111-4222-8333-944455556666";
    let row = serde_json::json!({
        "id": format!("/subscriptions/{id}"), "name": "sub-00000", "type": "microsoft.resources/subscriptions",
        "tenantId": "t", "subscriptionId": id, "resourceGroup": "", "tags": {},
        "properties": {"state": "Enabled", "managementGroupAncestorsChain": [
            {"name": "mg-prod", "displayName": "Production"}, {"name": "t", "displayName": "Tenant Root Group"}]}
    });
    let out = q.run_row(row.clone()).expect("a subscription row").row;
    let s = crate::inventory::read::subscription(&out).unwrap();
    assert_eq!(
        s.management_groups,
        Some(vec!["mg-prod".to_string(), "t".to_string()])
    );
    // A row without the chain: unknown.
    let mut bare = row;
    bare["properties"]
        .as_object_mut()
        .unwrap()
        .remove("managementGroupAncestorsChain");
    let out = q.run_row(bare).unwrap().row;
    assert_eq!(
        crate::inventory::read::subscription(&out)
            .unwrap()
            .management_groups,
        None
    );
}

/// The role-definitions query keeps custom roles only and projects what the reader
/// needs (ARG row shaped like the azure-docs sample "authorization-resources-role-
/// definitions-permissions-list"; values invented).
#[test]
fn role_definitions_query_keeps_custom_roles_with_their_permissions() {
    let q = super::role_defs::queries(&["3c1e5a7b-9d0f-4a2b-8c4d-6e8f0a2b4c6d".to_string()]);
    assert_eq!(q.len(), 1);
    let body = kql_body(&q[0]);
    let q = azure_emulator::kql::Query::parse(&body).unwrap();
    let row = |kind: &str| {
        serde_json::json!({
            "id": "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/3c1e5a7b-9d0f-4a2b-8c4d-6e8f0a2b4c6d",
            "name": "3c1e5a7b-9d0f-4a2b-8c4d-6e8f0a2b4c6d",
            "type": "microsoft.authorization/roledefinitions",
            "properties": {"roleName": "subnet-joiner", "type": kind, "assignableScopes": ["/subscriptions/s"],
                "permissions": [{"actions": ["Microsoft.Network/virtualNetworks/subnets/*"], "notActions": [],
                                 "dataActions": [], "notDataActions": []}]}
        })
    };
    let out = q.run_row(row("CustomRole")).expect("a custom role").row;
    let d = crate::inventory::read::role_definition(&out).unwrap();
    assert_eq!(d.role_name.as_deref(), Some("subnet-joiner"));
    assert!(crate::rules::actions::lacking(&d, &crate::rules::actions::SUBNET_ACTIONS).is_empty());
    assert!(q.run_row(row("BuiltInRole")).is_none());
}
