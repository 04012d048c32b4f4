use super::*;
use serde_json::json;

fn rows() -> Vec<Value> {
    vec![
        json!({"id": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/a",
               "name": "a", "type": "microsoft.containerservice/managedclusters", "subscriptionId": "s1",
               "identity": {"type": "SystemAssigned"},
               "properties": {"servicePrincipalProfile": {"clientId": "msi"}, "nodeResourceGroup": "MC_rg_a",
                              "agentPoolProfiles": [{"name": "nodepool1"}]}}),
        json!({"id": "/subscriptions/s2/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/b",
               "name": "b", "type": "microsoft.containerservice/managedclusters", "subscriptionId": "s2",
               "properties": {"servicePrincipalProfile": {"clientId": "http://legacy"}}}),
        json!({"id": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/r",
               "name": "r", "type": "microsoft.containerregistry/registries", "subscriptionId": "s1",
               "properties": "oops"}),
        json!("not an object"),
    ]
}

fn run(q: &str) -> Vec<Value> {
    let q = Query::parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    let mut out: Vec<RowResult> = rows().into_iter().filter_map(|r| q.run_row(r)).collect();
    if q.orders() {
        out.sort_by(|a, b| {
            q.compare_keys(
                a.key.as_deref().unwrap_or(&[]),
                b.key.as_deref().unwrap_or(&[]),
            )
        });
    }
    out.into_iter().map(|r| r.row).collect()
}

fn names(rows: &[Value]) -> Vec<&str> {
    rows.iter()
        .map(|r| r["name"].as_str().unwrap_or("?"))
        .collect()
}

#[test]
fn table_names_are_case_insensitive_and_optional() {
    assert_eq!(Query::parse("Resources").unwrap().table, Table::Resources);
    assert_eq!(
        Query::parse("AuthorizationResources | take 5")
            .unwrap()
            .table,
        Table::AuthorizationResources
    );
    assert_eq!(
        Query::parse("resourcecontainers").unwrap().table,
        Table::ResourceContainers
    );
    let q = Query::parse("project id").unwrap();
    assert_eq!(q.table, Table::Resources);
    assert!(q.projects_id());
}

#[test]
fn where_operators() {
    assert_eq!(
        names(&run(
            "resources | where type =~ 'Microsoft.ContainerService/managedClusters'"
        )),
        ["a", "b"]
    );
    assert_eq!(
        names(&run(
            "resources | where type == 'Microsoft.ContainerService/managedClusters'"
        )),
        Vec::<&str>::new()
    );
    assert_eq!(names(&run("resources | where name != 'a'")), ["b", "r"]);
    assert_eq!(names(&run("resources | where name !~ 'A'")), ["b", "r"]);
    assert_eq!(
        names(&run("resources | where name in ('a', 'r')")),
        ["a", "r"]
    );
    assert_eq!(
        names(&run("resources | where name in ('A', 'R')")),
        Vec::<&str>::new()
    );
    assert_eq!(
        names(&run("resources | where name in~ ('A', 'R')")),
        ["a", "r"]
    );
    assert_eq!(names(&run("resources | where name !in~ ('A', 'R')")), ["b"]);
    assert_eq!(
        names(&run(
            "resources | where subscriptionId == 's1' and not(name == 'a')"
        )),
        ["r"]
    );
    assert_eq!(
        names(&run("resources | where name == 'a' or name == \"b\"")),
        ["a", "b"]
    );
    assert_eq!(names(&run("resources | where isnotempty(identity)")), ["a"]);
    assert_eq!(
        names(&run("resources | where isnull(identity)")),
        ["b", "r", "?"]
    );
    assert_eq!(
        names(&run(
            "resources | where tolower(tostring(properties.servicePrincipalProfile.clientId)) == 'msi'"
        )),
        ["a"]
    );
    assert_eq!(names(&run("resources | where name contains 'A'")), ["a"]);
    assert_eq!(
        names(&run("resources | where id startswith '/subscriptions/s2'")),
        ["b"]
    );
    assert_eq!(names(&run("resources | where id has 'registries'")), ["r"]);
}

#[test]
fn project_names_dotted_paths_with_underscores() {
    let out = run(
        "resources | where name == 'a' | project id, kind = tostring(identity.type), properties.nodeResourceGroup, pool = properties.agentPoolProfiles[0].name",
    );
    assert_eq!(
        out,
        vec![
            json!({"id": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/a",
                    "kind": "SystemAssigned", "properties_nodeResourceGroup": "MC_rg_a", "pool": "nodepool1"})
        ]
    );
    let out = run("resources | where name == 'b' | project tostring(properties.servicePrincipalProfile.clientId)");
    assert_eq!(
        out,
        vec![json!({"properties_servicePrincipalProfile_clientId": "http://legacy"})]
    );
}

#[test]
fn extend_then_where_and_project_away() {
    let out = run(
        "resources | extend cid = tolower(tostring(properties.servicePrincipalProfile.clientId)) | where cid == 'msi' | project-away properties, identity",
    );
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["cid"], "msi");
    assert!(out[0].get("properties").is_none());
    assert_eq!(out[0]["name"], "a");
}

#[test]
fn order_by_defaults_to_descending() {
    assert_eq!(
        names(&run("resources | where isnotempty(name) | order by name")),
        ["r", "b", "a"]
    );
    assert_eq!(
        names(&run(
            "resources | where isnotempty(name) | order by name asc"
        )),
        ["a", "b", "r"]
    );
    assert_eq!(
        names(&run(
            "resources | where isnotempty(name) | sort by subscriptionId asc, name desc"
        )),
        ["r", "a", "b"]
    );
}

#[test]
fn projects_id_detection() {
    assert!(Query::parse("resources | project id, name")
        .unwrap()
        .projects_id());
    assert!(!Query::parse("resources | project name")
        .unwrap()
        .projects_id());
    assert!(!Query::parse("resources | project-away id")
        .unwrap()
        .projects_id());
    assert!(Query::parse("resources | project name | extend id = name")
        .unwrap()
        .projects_id());
    assert!(Query::parse("resources | where name == 'x'")
        .unwrap()
        .projects_id());
}

#[test]
fn take_is_trailing_only() {
    assert_eq!(Query::parse("resources | take 5").unwrap().take, Some(5));
    assert_eq!(Query::parse("resources | limit 2").unwrap().take, Some(2));
    assert!(Query::parse("resources | take 5 | project id").is_err());
}

#[test]
fn unsupported_and_bad_syntax_report_positions() {
    let e = Query::parse("resources | distinct type").unwrap_err();
    assert!(e.message.contains("distinct"), "{e}");
    assert_eq!((e.line, e.col, e.token.as_str()), (1, 12, "distinct"));

    let e = Query::parse("resources | summarize dcount(type)").unwrap_err();
    assert!(e.message.contains("dcount"), "{e}");
    assert!(Query::parse("resources | summarize count() | summarize count()").is_err());
    assert!(Query::parse("resources | extend p = pack('a')").is_err());

    let e = Query::parse("resources\n| mv-expand x").unwrap_err();
    assert_eq!((e.line, e.col, e.token.as_str()), (2, 2, "mv-expand"));

    let e = Query::parse("where where").unwrap_err();
    assert_eq!(e.line, 1);

    let e = Query::parse("resources | where name == 'unterminated").unwrap_err();
    assert!(e.message.contains("unterminated"));

    let e = Query::parse("resources | where foo(name)").unwrap_err();
    assert!(e.message.contains("function 'foo'"));

    let e = Query::parse("healthresourcechanges").unwrap_err();
    assert!(e.message.contains("healthresourcechanges"));

    let e = Query::parse("resources | where name == 'a' |").unwrap_err();
    assert_eq!(e.token, "<EOF>");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let q = format!(
        "resources | where {}name{}",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    assert!(Query::parse(&q).is_err());
    let q = format!("resources | where {}true", "not(".repeat(5000));
    assert!(Query::parse(&q).is_err());
}

proptest::proptest! {
    #[test]
    fn never_panics_on_random_input(s in "\\PC{0,80}") {
        if let Ok(q) = Query::parse(&s) {
            for r in rows() {
                let _ = q.run_row(r);
            }
        }
    }

    #[test]
    fn never_panics_on_kql_like_input(
        parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "resources", "|", "where", "project", "extend", "order", "by", "asc", "desc",
                "name", "id", "properties", ".", "x", "==", "=~", "!=", "!~", "in", "in~", "(",
                ")", ",", "'a'", "\"b\"", "and", "or", "not", "tostring", "tolower", "isnull",
                "isnotempty", "take", "3", "=", "[", "]", "0", "-", "@'v'", "//c\n",
            ]),
            0..25,
        )
    ) {
        let s = parts.join(" ");
        if let Ok(q) = Query::parse(&s) {
            let mut out: Vec<RowResult> = rows().into_iter().filter_map(|r| q.run_row(r)).collect();
            out.sort_by(|a, b| q.compare_keys(a.key.as_deref().unwrap_or(&[]), b.key.as_deref().unwrap_or(&[])));
        }
    }
}

/// The audit's role-assignment filter: service principals and untyped (older)
/// assignments, as ARG answers it (`isempty` is true for a missing, null or empty
/// value; `==` is case-sensitive).
#[test]
fn principal_type_filter() {
    let rows = vec![
        json!({"name": "sp", "properties": {"principalType": "ServicePrincipal"}}),
        json!({"name": "sp-case", "properties": {"principalType": "serviceprincipal"}}),
        json!({"name": "user", "properties": {"principalType": "User"}}),
        json!({"name": "group", "properties": {"principalType": "Group"}}),
        json!({"name": "missing", "properties": {}}),
        json!({"name": "null", "properties": {"principalType": null}}),
        json!({"name": "empty", "properties": {"principalType": ""}}),
        json!({"name": "no-properties"}),
    ];
    let q = Query::parse(
        "authorizationresources | where isempty(properties.principalType) or tostring(properties.principalType) == 'ServicePrincipal'",
    )
    .unwrap();
    let kept: Vec<Value> = rows
        .into_iter()
        .filter_map(|r| q.run_row(r))
        .map(|r| r.row)
        .collect();
    assert_eq!(
        names(&kept),
        ["sp", "missing", "null", "empty", "no-properties"]
    );
}

/// The audit's resource-group filter: node resource groups (managed by a cluster) are
/// left out; `managedBy` is empty or absent on other groups and on subscriptions, and
/// `!contains` is case-insensitive as in KQL.
#[test]
fn managed_by_filter() {
    let rows = vec![
        json!({"name": "sub", "type": "microsoft.resources/subscriptions"}),
        json!({"name": "rg", "managedBy": ""}),
        json!({"name": "rg-null", "managedBy": null}),
        json!({"name": "mc", "managedBy": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c"}),
        json!({"name": "mc-lower", "managedBy": "/subscriptions/s/resourcegroups/rg/providers/microsoft.containerservice/managedclusters/c"}),
        json!({"name": "app", "managedBy": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Solutions/applications/a"}),
    ];
    let q = Query::parse(
        "resourcecontainers | where managedBy !contains '/providers/Microsoft.ContainerService/managedClusters/'",
    )
    .unwrap();
    let kept: Vec<Value> = rows
        .into_iter()
        .filter_map(|r| q.run_row(r))
        .map(|r| r.row)
        .collect();
    assert_eq!(names(&kept), ["sub", "rg", "rg-null", "app"]);
}

/// The audit's lookup of resources by id (Resource Graph's documented grouping
/// pattern `where id in~ (...)`), combined with another type by `or`: ids match
/// whatever their case, and `and` binds tighter than `or`.
#[test]
fn lookup_by_ids_in_a_disjunction() {
    let q = "resources | where type =~ 'microsoft.containerregistry/registries' or \
             (type =~ 'microsoft.containerservice/managedclusters' and id in~ \
             ('/SUBSCRIPTIONS/S2/resourcegroups/RG/providers/microsoft.containerservice/managedclusters/B', '/subscriptions/s9/x'))";
    assert_eq!(names(&run(q)), ["b", "r"]);
    let q = "resources | where type =~ 'microsoft.containerservice/managedclusters' and id in~ ('/nothing')";
    assert!(run(q).is_empty());
    // Without the parentheses, `and` binds first: the registry still matches.
    let q = "resources | where type =~ 'microsoft.containerregistry/registries' or type =~ 'x' and id in~ ('/nothing')";
    assert_eq!(names(&run(q)), ["r"]);
    // An escaped quote inside a literal is part of the id, not its end.
    let q = r"resources | where id in~ ('/a\'b', '/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/r')";
    assert_eq!(names(&run(q)), ["r"]);
}

/// The audit's migration follow-up queries (src/azure/kql/), filled in as
/// `src/azure/signals.rs` fills them, over rows in Azure's shapes: the subset keeps up
/// with what they use (bracketed keys with dots, `tostring(dynamic) contains`, `in~`
/// over a `tostring`, the `computeresources` and `resourcechanges` tables).
#[test]
fn the_migration_follow_up_queries_run_on_azure_shaped_rows() {
    let eval = |text: &str, rows: Vec<Value>| -> Vec<Value> {
        let q = Query::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert!(q.projects_id(), "pages need id: {text}");
        rows.into_iter()
            .filter_map(|r| q.run_row(r))
            .map(|r| r.row)
            .collect()
    };
    let cluster = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/a";
    let change = |changes: Value| {
        json!({"id": format!("{cluster}/providers/Microsoft.Resources/changes/1"), "type": "microsoft.resources/changes",
               "subscriptionId": "s1", "resourceGroup": "rg",
               "properties": {"targetResourceId": cluster, "targetResourceType": "microsoft.containerservice/managedclusters",
                              "changeType": "Update", "changeAttributes": {"timestamp": "2026-06-01T00:00:00.000+00:00"},
                              "changes": changes}})
    };
    let flip = change(
        json!({"properties.servicePrincipalProfile.clientId": {"previousValue": "app", "newValue": "msi"}}),
    );
    let image = change(
        json!({"properties.agentPoolProfiles[0].nodeImageVersion": {"previousValue": "v1", "newValue": "v2"}}),
    );
    let count = change(
        json!({"properties.agentPoolProfiles[0].count": {"previousValue": "3", "newValue": "4"}}),
    );
    let flips = include_str!("../../../../src/azure/kql/cluster-flips.kql").replacen(
        "{clusters}",
        &format!(
            "and tostring(properties.targetResourceId) in~ ('{}')",
            cluster.to_uppercase()
        ),
        1,
    );
    let got = eval(&flips, vec![flip.clone(), image.clone(), count.clone()]);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0]["changes"]["properties.servicePrincipalProfile.clientId"]["newValue"],
        "msi"
    );
    assert_eq!(got[0]["timestamp"], "2026-06-01T00:00:00.000+00:00");
    assert_eq!(
        eval(
            &flips.replace(&cluster.to_uppercase(), "/other"),
            vec![flip.clone()]
        )
        .len(),
        0
    );
    let pools = include_str!("../../../../src/azure/kql/cluster-pool-changes.kql").replacen(
        "{ids}",
        &format!("'{cluster}'"),
        1,
    );
    assert_eq!(
        eval(&pools, vec![flip, image, count]).len(),
        1,
        "the image change only"
    );

    let nrg = "/subscriptions/s1/resourceGroups/MC_rg_a_westeurope";
    let vmss = json!({"id": format!("{nrg}/providers/Microsoft.Compute/virtualMachineScaleSets/aks-np1-1234-vmss"),
                      "name": "aks-np1-1234-vmss", "type": "microsoft.compute/virtualmachinescalesets",
                      "subscriptionId": "s1", "resourceGroup": "mc_rg_a_westeurope",
                      "tags": {"aks-managed-poolName": "np1"},
                      "identity": {"type": "UserAssigned", "userAssignedIdentities": {"/subscriptions/s1/resourceGroups/MC_rg_a_westeurope/providers/Microsoft.ManagedIdentity/userAssignedIdentities/a-agentpool": {"principalId": "p", "clientId": "c"}}},
                      "properties": {"orchestrationMode": "Uniform"}});
    let sets = include_str!("../../../../src/azure/kql/scale-sets.kql").replacen(
        "{groups}",
        "'MC_rg_a_westeurope', 'other'",
        1,
    );
    let got = eval(&sets, vec![vmss.clone()]);
    assert_eq!(got[0]["poolTag"], "np1");
    assert!(got[0]["identities"]
        .as_object()
        .is_some_and(|m| m.len() == 1));
    let vm = json!({"id": format!("{nrg}/providers/Microsoft.Compute/virtualMachineScaleSets/aks-np1-1234-vmss/virtualMachines/0"),
                    "type": "microsoft.compute/virtualmachinescalesets/virtualmachines", "subscriptionId": "s1",
                    "resourceGroup": "mc_rg_a_westeurope", "properties": {"latestModelApplied": false}});
    let vms_query = include_str!("../../../../src/azure/kql/scale-set-vms.kql").replacen(
        "{groups}",
        "'MC_rg_a_westeurope'",
        1,
    );
    assert_eq!(
        Query::parse(&vms_query).unwrap().table,
        Table::ComputeResources
    );
    let got = eval(&vms_query, vec![vm, vmss]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["latestModelApplied"], false);
    assert_eq!(
        Query::parse("ResourceChanges | take 1").unwrap().table,
        Table::ResourceChanges
    );
}

fn grants() -> Vec<Value> {
    let ra = |id: &str, p: &str, scope: &str| {
        json!({"id": id, "type": "microsoft.authorization/roleassignments",
               "properties": {"principalId": p, "principalType": "Group", "scope": scope}})
    };
    vec![
        ra("/s/1/ra/1", "g1", "/subscriptions/S1"),
        ra("/s/1/ra/2", "g2", "/subscriptions/s1"),
        ra("/s/1/ra/3", "g1", "/subscriptions/s1/resourceGroups/net"),
        ra("/s/2/ra/4", "g3", "/subscriptions/s2"),
        ra("/s/2/ra/5", "g3", "/subscriptions/s2"),
        json!({"id": "/s/2/ra/6", "type": "other", "properties": {"scope": "/subscriptions/s2"}}),
    ]
}

#[test]
fn summarize_packs_each_groups_rows_and_counts_them() {
    let q = Query::parse(
        "authorizationresources | where type =~ 'microsoft.authorization/roleassignments'
         | extend scope = tolower(tostring(properties.scope))
         | summarize rows = make_list(pack('id', id, 'principalId', properties.principalId)), count(),
                     groups = make_set(properties.principalId), first = take_any(id) by scope
         | order by scope asc",
    )
    .unwrap();
    assert!(q.summarizes());
    assert!(!q.projects_id(), "a summary has no id column: not pageable");
    let out = q.aggregate(grants().into_iter());
    let scopes: Vec<&str> = out.iter().map(|r| r["scope"].as_str().unwrap()).collect();
    assert_eq!(
        scopes,
        [
            "/subscriptions/s1",
            "/subscriptions/s1/resourcegroups/net",
            "/subscriptions/s2"
        ]
    );
    assert_eq!(out[0]["count_"], json!(2));
    assert_eq!(
        out[0]["rows"],
        json!([{"id": "/s/1/ra/1", "principalId": "g1"}, {"id": "/s/1/ra/2", "principalId": "g2"}])
    );
    assert_eq!(
        out[2]["groups"],
        json!(["g3"]),
        "make_set keeps one of each"
    );
    assert_eq!(
        out[2]["count_"],
        json!(2),
        "the other type was filtered before"
    );
    assert_eq!(out[1]["first"], json!("/s/1/ra/3"));
}

#[test]
fn summarize_names_unnamed_aggregations_and_runs_later_stages_on_groups() {
    let q = Query::parse(
        "authorizationresources | summarize count(), make_list(id) by p = tostring(properties.principalId)
         | where count_ > 1 | order by p desc | take 1",
    )
    .unwrap();
    let out = q.aggregate(grants().into_iter());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["p"], json!("g3"));
    assert_eq!(out[0]["list_id"], json!(["/s/2/ra/4", "/s/2/ra/5"]));
    let by_nothing = Query::parse("authorizationresources | summarize n = count()").unwrap();
    assert_eq!(
        by_nothing.aggregate(grants().into_iter()),
        vec![json!({"n": 6})]
    );
    let keyed = Query::parse("authorizationresources | summarize count() by id").unwrap();
    assert!(keyed.projects_id(), "grouped by id: pageable");
}

#[test]
fn the_audits_group_rows_by_scope_query_packs_each_scopes_group_rows() {
    let q = Query::parse(include_str!(
        "../../../../src/azure/kql/group-role-assignments-by-scope.kql"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let mut rows = grants();
    rows.push(json!({"id": "/s/2/ra/7", "type": "microsoft.authorization/roleassignments",
        "properties": {"principalId": "sp", "principalType": "ServicePrincipal", "scope": "/subscriptions/s2"}}));
    let out = q.aggregate(rows.into_iter());
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(out[0]["scope"], json!("/subscriptions/s1"));
    let packed = out[0]["rows"].as_array().unwrap();
    assert_eq!(packed.len(), 2);
    assert_eq!(
        packed[0]["scope"],
        json!("/subscriptions/S1"),
        "the row's own scope, as stored"
    );
    assert_eq!(packed[0]["principalType"], json!("Group"));
    let s2: Vec<&str> = out[2]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["principalId"].as_str().unwrap())
        .collect();
    assert_eq!(s2, ["g3", "g3"], "only groups' rows");
}
