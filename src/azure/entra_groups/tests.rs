use super::*;
use crate::azure::tests::kql_body as body;

#[test]
fn row_queries_select_group_rows_by_id_or_scope_100_at_a_time() {
    let ids: Vec<String> = (0..150).map(|i| format!("g-{i}")).collect();
    let q = row_queries(&ids, false);
    assert_eq!(q.len(), 2);
    assert_eq!(q[0].matches("'g-").count(), 100);
    let parsed = azure_emulator::kql::Query::parse(&body(&q[1])).unwrap();
    let row = |principal: &str, ty: &str| {
        serde_json::json!({"id": "/x", "type": "microsoft.authorization/roleassignments",
            "properties": {"principalId": principal, "principalType": ty, "scope": "/subscriptions/s"}})
    };
    assert!(
        parsed.run_row(row("G-120", "Group")).is_some(),
        "ids compare without case"
    );
    assert!(parsed.run_row(row("g-120", "ServicePrincipal")).is_none());
    assert!(
        parsed.run_row(row("g-1", "Group")).is_none(),
        "in the other query"
    );
    let q = row_queries(&["/subscriptions/s".to_string()], true);
    let parsed = azure_emulator::kql::Query::parse(&body(&q[0])).unwrap();
    assert!(parsed.run_row(row("any", "Group")).is_some());
    let mut other = row("any", "Group");
    other["properties"]["scope"] = "/subscriptions/s/resourceGroups/rg".into();
    assert!(parsed.run_row(other).is_none());
}

#[test]
fn group_pages_keep_groups_and_the_next_link() {
    let page = serde_json::json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups(id)",
        "@odata.count": 3,
        "@odata.nextLink": "https://graph.microsoft.com/v1.0/servicePrincipals/p/transitiveMemberOf/microsoft.graph.group?$select=id&$count=true&$skiptoken=X",
        "value": [
            {"@odata.type": "#microsoft.graph.group", "id": "g1"},
            {"@odata.type": "#microsoft.graph.directoryRole", "id": "r1"},
            {"id": "g2"}
        ]
    });
    let (ids, next) = parse_groups(&page).unwrap();
    assert_eq!(ids, ["g1", "g2"]);
    assert!(next.unwrap().contains("$skiptoken=X"));
    assert!(parse_groups(&serde_json::json!({"error": {}})).is_err());
    assert!(parse_groups(
        &serde_json::json!({"value": [{"@odata.type": "#microsoft.graph.group"}]})
    )
    .is_err());
}

#[test]
fn retry_after_is_read_in_any_case_and_capped() {
    let h: BTreeMap<String, String> = [("Retry-After".to_string(), "7".to_string())].into();
    assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
    let h: BTreeMap<String, String> = [("retry-after".to_string(), "99999".to_string())].into();
    assert_eq!(retry_after(&h), Some(Duration::from_secs(120)));
    assert_eq!(retry_after(&BTreeMap::new()), None);
}

#[test]
fn the_member_path_is_the_group_cast_with_count() {
    assert_eq!(
        member_of_path("5f1e2d3c-0000-4000-8000-000000000001"),
        "/servicePrincipals/5f1e2d3c-0000-4000-8000-000000000001/transitiveMemberOf/microsoft.graph.group?$select=id&$count=true&$top=999"
    );
}
