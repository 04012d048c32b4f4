//! The emulator over real HTTPS: Resource Graph paging, quota, errors and faults, the
//! token endpoints, and azure_identity's own credentials against it.
use std::collections::BTreeSet;
use std::sync::Arc;

use azure_emulator::{
    generate, start, EmulatorConfig, Faults, GenerateArgs, Quota, RunningEmulator, Tenant,
};
use serde_json::{json, Value};

const ARG: &str = "/providers/Microsoft.ResourceGraph/resources?api-version=2022-10-01";

struct Fixture {
    emu: RunningEmulator,
    http: reqwest::Client,
    token: String,
    dir: tempfile::TempDir,
}

fn client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap()
}

fn generated(subs: usize, clusters: usize, ras: usize) -> (tempfile::TempDir, Tenant) {
    let dir = tempfile::tempdir().unwrap();
    generate(&GenerateArgs {
        subscriptions: subs,
        clusters,
        role_assignments: ras,
        seed: 11,
        out: dir.path().to_path_buf(),
    })
    .unwrap();
    let tenant = Tenant::from_inventory_dir(dir.path()).unwrap();
    (dir, tenant)
}

async fn fixture(quota: Option<Quota>, faults: &str) -> Fixture {
    let (dir, tenant) = generated(5, 40, 2500);
    let mut config = EmulatorConfig::new(tenant);
    config.quota = quota;
    config.faults = faults.parse().unwrap();
    config.subscriptions_page_size = 2;
    let emu = start(config).await.unwrap();
    let http = client(&emu.ca_pem);
    let token = token(&http, &emu.url()).await;
    Fixture {
        emu,
        http,
        token,
        dir,
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

async fn token(http: &reqwest::Client, url: &str) -> String {
    let r = http
        .post(format!("{url}/tenant-1/oauth2/v2.0/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "auditor"),
            ("client_secret", "s3cret"),
            ("scope", "https://management.azure.com/.default"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600);
    v["access_token"].as_str().unwrap().to_string()
}

impl Fixture {
    async fn arg(&self, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{ARG}", self.emu.url()))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    fn file(&self, name: &str) -> Vec<Value> {
        serde_json::from_slice(&std::fs::read(self.dir.path().join(name)).unwrap()).unwrap()
    }
}

#[tokio::test]
async fn paging_with_skip_token_reassembles_exactly_the_rows() {
    let f = fixture(None, "").await;
    let query = "authorizationresources | where type =~ 'Microsoft.Authorization/roleAssignments' | project id, principalId = tostring(properties.principalId), properties.scope | order by id asc";
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut options = json!({"$top": 1000, "resultFormat": "objectArray"});
        if let Some(t) = &token {
            options["$skipToken"] = json!(t);
        }
        let r = f.arg(json!({"query": query, "options": options})).await;
        assert_eq!(r.status(), 200);
        assert!(r.headers().contains_key("x-ms-user-quota-remaining"));
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["totalRecords"], 2500);
        assert_eq!(v["resultTruncated"], "false");
        assert_eq!(v["facets"], json!([]));
        let data = v["data"].as_array().unwrap();
        assert_eq!(v["count"].as_u64().unwrap() as usize, data.len());
        assert!(data[0].get("properties_scope").is_some());
        ids.extend(data.iter().map(|r| r["id"].as_str().unwrap().to_string()));
        pages += 1;
        match v.get("$skipToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut expected: Vec<String> = f
        .file("role-assignments.json")
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    expected.sort();
    assert_eq!(ids, expected);

    // A token resent with another query is refused.
    let r = f
        .arg(json!({"query": "authorizationresources | project id", "options": {"$skipToken": token.unwrap()}}))
        .await;
    assert_eq!(r.status(), 400);

    // Without `id` projected: no token, resultTruncated "true"; default $top is 100.
    let r = f
        .arg(json!({"query": "authorizationresources | project name"}))
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["count"], 100);
    assert_eq!(v["resultTruncated"], "true");
    assert!(v.get("$skipToken").is_none());

    // Subscription scope keeps only that subscription's rows.
    let sub = f.file("subscriptions.json")[0]["subscriptionId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = f
        .arg(json!({"subscriptions": [sub], "query": "resources | where type =~ 'microsoft.containerservice/managedclusters' | project id, subscriptionId", "options": {"$top": 1000}}))
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["totalRecords"], 8);
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["subscriptionId"] == json!(sub)));
    let stats = f.emu.stats();
    assert_eq!(stats.pages_per_table["authorizationresources"], 4);
    f.emu.shutdown().await;
}

#[tokio::test]
async fn quota_exceeded_answers_429_with_retry_after() {
    let f = fixture(
        Some(Quota {
            queries: 3,
            window: std::time::Duration::from_secs(60),
        }),
        "",
    )
    .await;
    let body = json!({"query": "resources | project id", "options": {"$top": 1}});
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let r = f.arg(body.clone()).await;
        assert_eq!(r.status(), 200);
        remaining.push(
            r.headers()["x-ms-user-quota-remaining"]
                .to_str()
                .unwrap()
                .to_string(),
        );
        let resets = r.headers()["x-ms-user-quota-resets-after"]
            .to_str()
            .unwrap();
        assert!(resets.starts_with("00:0"), "{resets}");
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let r = f.arg(body).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "RateLimiting");
    assert_eq!(f.emu.stats().throttled_429, 1);
}

#[tokio::test]
async fn burst_fault_then_recovery() {
    let f = fixture(None, "429-burst=2").await;
    let body = json!({"query": "resources | project id"});
    assert_eq!(f.arg(body.clone()).await.status(), 429);
    let r = f.arg(body.clone()).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(f.arg(body).await.status(), 200);
}

#[tokio::test]
async fn unsupported_kql_gets_args_400_shape() {
    let f = fixture(None, "").await;
    let r = f.arg(json!({"query": "resources | distinct type"})).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "BadRequest");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Please provide below info when asking for support: timestamp = "));
    assert_eq!(v["error"]["details"][0]["code"], "InvalidQuery");
    let parser = &v["error"]["details"][1];
    assert_eq!(parser["code"], "ParserFailure");
    assert_eq!(parser["line"], 1);
    assert_eq!(parser["characterPositionInLine"], 12);
    assert_eq!(parser["token"], "distinct");
}

#[tokio::test]
async fn forbidden_subscription_fails_unless_partial_scopes() {
    let (dir, tenant) = generated(3, 12, 200);
    let subs: Vec<Value> =
        serde_json::from_slice(&std::fs::read(dir.path().join("subscriptions.json")).unwrap())
            .unwrap();
    let bad = subs[0]["subscriptionId"].as_str().unwrap().to_string();
    let good = subs[1]["subscriptionId"].as_str().unwrap().to_string();
    let mut config = EmulatorConfig::new(tenant);
    config.faults = format!("forbidden-subscription={bad}").parse().unwrap();
    let emu = start(config).await.unwrap();
    let http = client(&emu.ca_pem);
    let tok = token(&http, &emu.url()).await;
    let q = "resources | where type =~ 'microsoft.containerservice/managedclusters' | project id, subscriptionId";
    let send = |body: Value| {
        http.post(format!("{}{ARG}", emu.url()))
            .bearer_auth(&tok)
            .json(&body)
            .send()
    };
    let r = send(json!({"subscriptions": [bad, good], "query": q}))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "AuthorizationFailed");
    assert!(v["error"]["message"].as_str().unwrap().contains(&bad));

    let r = send(
        json!({"subscriptions": [bad, good], "query": q, "options": {"allowPartialScopes": true}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["totalRecords"], 4);
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["subscriptionId"] == json!(good)));
}

#[tokio::test]
async fn token_endpoints_and_bearer_checks() {
    let f = fixture(None, "").await;
    let url = f.emu.url();
    // Federated client assertion.
    let r = f
        .http
        .post(format!("{url}/tenant-1/oauth2/v2.0/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "wi"),
            ("client_assertion", "eyJhbGciOi.fake.jwt"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("scope", "https://management.azure.com/.default"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v["expires_in"].is_number());
    // Neither secret nor assertion: an AADSTS-shaped error.
    let r = f
        .http
        .post(format!("{url}/tenant-1/oauth2/v2.0/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "x"),
            ("scope", "s"),
        ]))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_client");
    assert_eq!(v["error_codes"], json!([7000218]));
    assert!(v["error_description"]
        .as_str()
        .unwrap()
        .starts_with("AADSTS7000218"));
    for k in ["timestamp", "trace_id", "correlation_id"] {
        assert!(v[k].is_string(), "{k}");
    }
    // Managed identity (App Service protocol).
    let mi = |secret: Option<&str>| {
        let mut rq = f.http.get(format!(
            "{url}/msi/token?api-version=2019-08-01&resource=https://management.azure.com"
        ));
        if let Some(s) = secret {
            rq = rq.header("x-identity-header", s);
        }
        rq.send()
    };
    let r = mi(Some(&f.emu.msi_secret)).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v["expires_on"].as_str().unwrap().parse::<u64>().is_ok());
    assert_eq!(v["resource"], "https://management.azure.com");
    let mi_token = v["access_token"].as_str().unwrap().to_string();
    assert_eq!(mi(Some("wrong")).await.unwrap().status(), 401);
    assert_eq!(mi(None).await.unwrap().status(), 401);
    // The MI token works on Resource Graph; no or unknown bearer → 401 ARM-shaped.
    let send = |bearer: Option<&str>| {
        let mut rq = f
            .http
            .post(format!("{url}{ARG}"))
            .json(&json!({"query": "resources | take 1"}));
        if let Some(b) = bearer {
            rq = rq.bearer_auth(b);
        }
        rq.send()
    };
    assert_eq!(send(Some(&mi_token)).await.unwrap().status(), 200);
    let r = send(None).await.unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "AuthenticationFailed");
    assert_eq!(send(Some("forged")).await.unwrap().status(), 401);
}

#[tokio::test]
async fn revoked_token_answers_expired() {
    let f = fixture(None, "token-revoke=1").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = f.arg(json!({"query": "resources | take 1"})).await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "ExpiredAuthenticationToken");
}

#[tokio::test]
async fn arm_subscriptions_paging_upgrade_profile_and_write_rejection() {
    let f = fixture(None, "").await;
    let mut next = Some(format!(
        "{}/subscriptions?api-version=2022-12-01",
        f.emu.url()
    ));
    let mut seen = BTreeSet::new();
    let mut pages = 0;
    while let Some(u) = next {
        let v: Value = f
            .http
            .get(&u)
            .bearer_auth(&f.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for s in v["value"].as_array().unwrap() {
            assert!(s["displayName"].is_string() && s["tenantId"].is_string());
            seen.insert(s["subscriptionId"].as_str().unwrap().to_string());
        }
        next = v
            .get("nextLink")
            .and_then(Value::as_str)
            .map(str::to_string);
        pages += 1;
    }
    assert_eq!(seen.len(), 5);
    assert_eq!(pages, 3);

    let cluster = &f.file("clusters.json")[0];
    let pool = &cluster["properties"]["agentPoolProfiles"][0];
    let u = format!(
        "{}{}/agentPools/{}/upgradeProfiles/default?api-version=2024-09-01",
        f.emu.url(),
        cluster["id"].as_str().unwrap(),
        pool["name"].as_str().unwrap()
    );
    let r = f.http.get(&u).bearer_auth(&f.token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["name"], "default");
    let latest = v["properties"]["latestNodeImageVersion"].as_str().unwrap();
    assert!(latest >= pool["nodeImageVersion"].as_str().unwrap());
    let r = f
        .http
        .get(u.replace("/agentPools/", "/agentPools/nope"))
        .bearer_auth(&f.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "NotFound", "AKS RP errors are unwrapped");

    let r = f
        .http
        .put(format!(
            "{}{}?api-version=2024-09-01",
            f.emu.url(),
            cluster["id"].as_str().unwrap()
        ))
        .bearer_auth(&f.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "MethodNotAllowed");
    let r = f
        .http
        .delete(format!("{}/subscriptions/x", f.emu.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(f.emu.stats().rejected_writes, 2);
}

#[tokio::test]
async fn graph_applications_and_graph_forbidden() {
    let f = fixture(None, "").await;
    let apps = f.file("graph-applications.json");
    let app = &apps[0];
    let get = |filter: String| {
        f.http
            .get(format!(
                "{}/v1.0/applications?{}",
                f.emu.url(),
                form(&[("$filter", &filter)])
            ))
            .bearer_auth(&f.token)
            .send()
    };
    let r = get(format!("appId eq '{}'", app["appId"].as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["value"][0]["appId"], app["appId"]);
    assert!(v["value"][0]["passwordCredentials"][0]["endDateTime"].is_string());
    if let Some(legacy) = apps.iter().find(|a| {
        a["identifierUris"]
            .as_array()
            .is_some_and(|u| !u.is_empty())
    }) {
        let uri = legacy["identifierUris"][0].as_str().unwrap();
        let v: Value = get(format!("identifierUris/any(x:x eq '{uri}')"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["value"][0]["appId"], legacy["appId"]);
    }
    assert_eq!(
        get("displayName eq 'x'".into()).await.unwrap().status(),
        400
    );

    let g = fixture(None, "graph-forbidden").await;
    let r = g
        .http
        .get(format!(
            "{}/v1.0/applications?$filter=appId%20eq%20'x'",
            g.emu.url()
        ))
        .bearer_auth(&g.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "Authorization_RequestDenied");
}

/// Microsoft Graph's `transitiveMemberOf` cast to groups (learn.microsoft.com
/// graph/api/serviceprincipal-list-transitivememberof: `ConsistencyLevel: eventual`
/// and `$count=true` with an OData cast, pages of `$top` up to 999, `@odata.nextLink`)
/// and JSON batching (`POST /v1.0/$batch`, at most 20 requests, each answered in
/// `responses` with its own status, headers and body).
#[tokio::test]
async fn graph_transitive_member_of_pages_and_batches() {
    const SP: &str = "5f1e2d3c-0000-4000-8000-000000000001";
    let members = json!([{"principalId": SP, "groups": ["g-1", "g-2", "g-3"]}]).to_string();
    let serve = |faults: &str| {
        let tenant =
            Tenant::from_files([("graph-group-memberships.json", members.as_str())]).unwrap();
        let mut config = EmulatorConfig::new(tenant);
        config.faults = faults.parse().unwrap();
        start(config)
    };
    let emu = serve("").await.unwrap();
    let http = client(&emu.ca_pem);
    let token = token(&http, &emu.url()).await;
    let path = |p: &str| {
        format!("/servicePrincipals/{p}/transitiveMemberOf/microsoft.graph.group?$select=id&$count=true")
    };
    let get = |url: String, eventual: bool| {
        let mut r = http.get(url).bearer_auth(&token);
        if eventual {
            r = r.header("ConsistencyLevel", "eventual");
        }
        r.send()
    };
    let r = get(format!("{}/v1.0{}&$top=2", emu.url(), path(SP)), true)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["@odata.count"], 3);
    assert_eq!(v["value"], json!([{"id": "g-1"}, {"id": "g-2"}]));
    let next = v["@odata.nextLink"].as_str().unwrap().to_string();
    assert!(next.starts_with(&emu.url()), "{next}");
    let v: Value = get(next, true).await.unwrap().json().await.unwrap();
    assert_eq!(v["value"], json!([{"id": "g-3"}]));
    assert!(v.get("@odata.nextLink").is_none(), "{v}");
    // The cast without ConsistencyLevel: refused, as documented.
    let r = get(format!("{}/v1.0{}", emu.url(), path(SP)), false)
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "Request_UnsupportedQuery");
    // A service principal in no group.
    let v: Value = get(format!("{}/v1.0{}", emu.url(), path("other")), true)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["value"], json!([]));

    let batch = |emu_url: String, token: String, http: reqwest::Client, n: usize| async move {
        let requests: Vec<Value> = (0..n)
            .map(|i| json!({"id": i.to_string(), "method": "GET", "url": path(if i == 0 { SP } else { "other" }),
                "headers": {"ConsistencyLevel": "eventual"}}))
            .collect();
        http.post(format!("{emu_url}/v1.0/$batch"))
            .bearer_auth(&token)
            .json(&json!({ "requests": requests }))
            .send()
            .await
            .unwrap()
    };
    let r = batch(emu.url(), token.clone(), http.clone(), 2).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let responses = v["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 2);
    assert_eq!(responses[0]["id"], "0");
    assert_eq!(responses[0]["status"], 200);
    assert_eq!(responses[0]["body"]["value"].as_array().unwrap().len(), 3);
    assert_eq!(responses[1]["body"]["value"], json!([]));
    assert_eq!(
        batch(emu.url(), token.clone(), http.clone(), 21)
            .await
            .status(),
        400
    );
    assert_eq!(emu.stats().requests_per_path["graph/batch"], 2);
    assert_eq!(
        emu.stats().rejected_writes,
        0,
        "a batch of reads is no write"
    );

    // Throttled items carry their own 429 and Retry-After; the others are answered.
    let emu = serve("graph-batch-429=1").await.unwrap();
    let http = client(&emu.ca_pem);
    let token = super::emulator::token(&http, &emu.url()).await;
    let v: Value = batch(emu.url(), token, http, 2).await.json().await.unwrap();
    assert_eq!(v["responses"][0]["status"], 429);
    assert_eq!(v["responses"][0]["headers"]["Retry-After"], "1");
    assert_eq!(v["responses"][1]["status"], 200);
    // Without permission each item is refused.
    let emu = serve("graph-forbidden").await.unwrap();
    let http = client(&emu.ca_pem);
    let token = super::emulator::token(&http, &emu.url()).await;
    let v: Value = batch(emu.url(), token, http, 1).await.json().await.unwrap();
    assert_eq!(v["responses"][0]["status"], 403);
    assert_eq!(
        v["responses"][0]["body"]["error"]["code"],
        "Authorization_RequestDenied"
    );
}

#[tokio::test]
async fn five_xx_and_dropped_connections() {
    let f = fixture(None, "5xx=100,seed=3").await;
    let r = f.arg(json!({"query": "resources | take 1"})).await;
    assert!(r.status() == 500 || r.status() == 503, "{}", r.status());
    assert_eq!(f.emu.stats().errors_5xx, 1);

    let d = fixture(None, "drop=100").await;
    let sent = d
        .http
        .post(format!("{}{ARG}", d.emu.url()))
        .bearer_auth(&d.token)
        .json(&json!({"query": "resources | project id"}))
        .send()
        .await;
    // Over HTTP/2 the reset can arrive before or after the headers.
    match sent {
        Err(_) => {}
        Ok(r) => assert!(r.bytes().await.is_err(), "the body must be cut"),
    }
    assert_eq!(d.emu.stats().dropped_connections, 1);
}

#[tokio::test]
async fn malformed_rows_fault_serves_wrong_types() {
    let f = fixture(None, "malformed-rows=3").await;
    let r = f
        .arg(json!({"query": "resources | where type =~ 'microsoft.containerservice/managedclusters' | project id, properties, identity, name", "options": {"$top": 1000}}))
        .await;
    let v: Value = r.json().await.unwrap();
    let rows = v["data"].as_array().unwrap();
    assert_eq!(rows.len(), 40);
    let bad = rows
        .iter()
        .filter(|r| {
            r["properties"].is_string() || r["identity"].is_array() || r["name"].is_number()
        })
        .count();
    assert_eq!(bad, 3);
}

fn azure_options(ca_pem: &str, authority: Option<String>) -> azure_core::http::ClientOptions {
    let mut opts = azure_core::http::ClientOptions {
        transport: Some(azure_core::http::Transport::new(Arc::new(client(ca_pem)))),
        retry: azure_core::http::RetryOptions::none(),
        ..Default::default()
    };
    if let Some(a) = authority {
        let mut custom = azure_core::cloud::CustomConfiguration::default();
        custom.authority_host = a;
        opts.cloud = Some(Arc::new(azure_core::cloud::CloudConfiguration::Custom(
            custom,
        )));
    }
    opts
}

#[tokio::test]
async fn azure_identity_client_secret_credential_gets_a_token() {
    use azure_core::credentials::TokenCredential;
    let emu = start(EmulatorConfig::new(Tenant::demo())).await.unwrap();
    let cred = azure_identity::ClientSecretCredential::new(
        "00000000-0000-0000-0000-000000000001",
        "11111111-1111-1111-1111-111111111111".to_string(),
        "a-secret".to_string().into(),
        Some(azure_identity::ClientSecretCredentialOptions {
            client_options: azure_options(&emu.ca_pem, Some(emu.url())),
        }),
    )
    .unwrap();
    let tok = cred
        .get_token(&["https://management.azure.com/.default"], None)
        .await
        .unwrap();
    // The token is one the emulator accepts.
    let r = client(&emu.ca_pem)
        .post(format!("{}{ARG}", emu.url()))
        .bearer_auth(tok.token.secret())
        .json(&json!({"query": "resourcecontainers | where type == 'microsoft.resources/subscriptions' | project id, name"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v["count"].as_u64().unwrap() > 0);
    assert_eq!(emu.stats().tokens_issued, 1);
}

/// Child half of the managed-identity test: runs in a subprocess whose environment
/// carries IDENTITY_ENDPOINT / IDENTITY_HEADER (process-global, so not set here).
#[tokio::test]
#[ignore = "run by managed_identity_credential_gets_a_token in a subprocess"]
async fn mi_child() {
    use azure_core::credentials::TokenCredential;
    let ca = std::env::var("EMU_CA_PEM").expect("EMU_CA_PEM");
    let cred = azure_identity::ManagedIdentityCredential::new(Some(
        azure_identity::ManagedIdentityCredentialOptions {
            client_options: azure_options(&ca, None),
            ..Default::default()
        },
    ))
    .unwrap();
    let tok = cred
        .get_token(&["https://management.azure.com/.default"], None)
        .await
        .unwrap();
    println!("MI-TOKEN-OK {}", tok.token.secret().len());
}

#[tokio::test]
async fn managed_identity_credential_gets_a_token() {
    let emu = start(EmulatorConfig::new(Tenant::demo())).await.unwrap();
    let exe = std::env::current_exe().unwrap();
    let envs = [
        ("IDENTITY_ENDPOINT", format!("{}/msi/token", emu.url())),
        ("IDENTITY_HEADER", emu.msi_secret.clone()),
        ("EMU_CA_PEM", emu.ca_pem.clone()),
    ];
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args([
                "emulator::mi_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .envs(envs)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("MI-TOKEN-OK"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(emu.stats().requests_per_path.get("msi"), Some(&1));
}

#[test]
fn faults_spec_errors_are_clear() {
    let e = "5xx=200".parse::<Faults>().unwrap_err().to_string();
    assert!(e.contains("above 100"), "{e}");
}
