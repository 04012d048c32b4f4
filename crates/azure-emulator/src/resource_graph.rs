//! Resource Graph: `POST /providers/Microsoft.ResourceGraph/resources`.
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::kql::{KqlError, Query};
use super::server::{arm_error, json_reply, take_burst, Req, State, Window};
use super::tenant::NO_SUBSCRIPTION;
use super::token::{arm_unauthorized, check_bearer};

pub const API_VERSIONS: [&str; 4] = ["2019-04-01", "2021-03-01", "2022-10-01", "2024-04-01"];
const MAX_PAGE: u64 = 1000;
const DEFAULT_TOP: u64 = 100;
const CACHE_ENTRIES: usize = 512;

#[derive(Debug, Deserialize, Default)]
struct Body {
    #[serde(default)]
    subscriptions: Option<Vec<String>>,
    #[serde(default, rename = "managementGroups")]
    management_groups: Option<Vec<String>>,
    query: Option<String>,
    #[serde(default)]
    options: Option<Options>,
}

#[derive(Debug, Deserialize, Default)]
struct Options {
    #[serde(rename = "$top")]
    top: Option<i64>,
    #[serde(rename = "$skip")]
    skip: Option<i64>,
    #[serde(rename = "$skipToken")]
    skip_token: Option<String>,
    #[serde(rename = "resultFormat")]
    result_format: Option<String>,
    #[serde(rename = "allowPartialScopes")]
    allow_partial_scopes: Option<bool>,
}

type CacheMap = (HashMap<u64, Arc<Matches>>, VecDeque<u64>);

/// A query's result in output order: the matching rows' indices (run row by row when
/// a page is served), or, for a query that summarizes, the rows it made.
pub enum Matches {
    Rows(Vec<u32>),
    Made(Vec<Value>),
}

impl Matches {
    fn len(&self) -> usize {
        match self {
            Matches::Rows(v) => v.len(),
            Matches::Made(v) => v.len(),
        }
    }
}

impl Default for Matches {
    fn default() -> Self {
        Matches::Rows(Vec::new())
    }
}

/// Query results per (query, scope).
#[derive(Default)]
pub struct QueryCache {
    inner: Mutex<CacheMap>,
}

impl QueryCache {
    fn get(&self, key: u64) -> Option<Arc<Matches>> {
        self.inner.lock().ok()?.0.get(&key).cloned()
    }
    fn put(&self, key: u64, v: Arc<Matches>) {
        if let Ok(mut g) = self.inner.lock() {
            if g.0.insert(key, v).is_none() {
                g.1.push_back(key);
            }
            while g.1.len() > CACHE_ENTRIES {
                if let Some(old) = g.1.pop_front() {
                    g.0.remove(&old);
                }
            }
        }
    }
}

/// The state carried in `$skipToken`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct SkipToken {
    #[serde(rename = "q")]
    pub query_hash: String,
    #[serde(rename = "s")]
    pub skip: u64,
}

impl SkipToken {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(json)
    }
    pub fn decode(s: &str) -> Option<SkipToken> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// `hh:mm:ss`, rounded up to whole seconds.
pub fn hhmmss(d: Duration) -> String {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// Fixed-window quota. Returns Ok((remaining, resets_after)) or Err(retry_after).
pub(crate) fn consume(
    windows: &Mutex<HashMap<String, Window>>,
    quota: &super::Quota,
    client: &str,
    now: Instant,
) -> Result<(u32, Duration), Duration> {
    let mut w = windows.lock().unwrap_or_else(|p| p.into_inner());
    let win = w.entry(client.to_string()).or_insert(Window {
        start: now,
        used: 0,
    });
    if now.duration_since(win.start) >= quota.window {
        win.start = now;
        win.used = 0;
    }
    let resets = quota.window.saturating_sub(now.duration_since(win.start));
    if win.used >= quota.queries {
        return Err(resets);
    }
    win.used += 1;
    Ok((quota.queries - win.used, resets))
}

fn bad_query(e: &KqlError) -> Response {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
    json_reply(
        StatusCode::BAD_REQUEST,
        &json!({"error": {
            "code": "BadRequest",
            "message": format!("Please provide below info when asking for support: timestamp = {now}, correlationId = {}.", uuid::Uuid::new_v4()),
            "details": [
                {"code": "InvalidQuery", "message": "Query is invalid. Please refer to the documentation for the Azure Resource Graph service and fix the error before retrying."},
                {"code": "ParserFailure", "message": format!("ParserFailure: {} at line {}:{}", e.message, e.line, e.col),
                 "line": e.line, "characterPositionInLine": e.col, "token": e.token},
            ]
        }}),
        &[],
    )
}

fn with_headers(mut r: Response, headers: &[(String, String)]) -> Response {
    for (k, v) in headers {
        if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            axum::http::HeaderValue::from_str(v),
        ) {
            r.headers_mut().insert(n, v);
        }
    }
    r
}

pub(crate) async fn query(state: &Arc<State>, req: &Req) -> Response {
    match req.query_param("api-version") {
        None => {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        }
        Some(v) if !API_VERSIONS.contains(&v.as_str()) => {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidApiVersionParameter",
                &format!(
                    "The api-version '{v}' is invalid. The supported versions are '{}'.",
                    API_VERSIONS.join(",")
                ),
            )
        }
        Some(_) => {}
    }
    let client = match check_bearer(state, req) {
        Ok(c) => c,
        Err(e) => return arm_unauthorized(e),
    };
    let body: Body = match serde_json::from_slice(&req.body) {
        Ok(b) => b,
        Err(e) => {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContent",
                &format!("The request content was invalid and could not be deserialized: '{e}'."),
            )
        }
    };
    let parsed = body.query.as_deref().map(Query::parse);
    if let Some(Ok(q)) = &parsed {
        state.stat(|s| {
            *s.queries_per_table
                .entry(q.table.name().into())
                .or_default() += 1
        });
    }

    if take_burst(state) {
        state.stat(|s| s.throttled_429 += 1);
        return throttled(Duration::from_secs(1), state.quota.map(|q| q.window));
    }
    let quota_headers = match &state.quota {
        None => vec![
            ("x-ms-user-quota-remaining".to_string(), "10000".to_string()),
            (
                "x-ms-user-quota-resets-after".to_string(),
                "00:00:05".to_string(),
            ),
            (
                "x-ms-ratelimit-remaining-tenant-resource-requests".to_string(),
                "10000".to_string(),
            ),
        ],
        Some(q) => match consume(&state.windows, q, &client, Instant::now()) {
            Ok((remaining, resets)) => vec![
                (
                    "x-ms-user-quota-remaining".to_string(),
                    remaining.to_string(),
                ),
                ("x-ms-user-quota-resets-after".to_string(), hhmmss(resets)),
                (
                    "x-ms-ratelimit-remaining-tenant-resource-requests".to_string(),
                    remaining.to_string(),
                ),
            ],
            Err(retry) => {
                state.stat(|s| s.throttled_429 += 1);
                return throttled(retry, Some(q.window));
            }
        },
    };
    let resp = answer(state, &client, body, parsed).await;
    with_headers(resp, &quota_headers)
}

fn throttled(retry: Duration, window: Option<Duration>) -> Response {
    let secs = (retry.as_secs() + u64::from(retry.subsec_nanos() > 0)).max(1);
    let mut r = json_reply(
        StatusCode::TOO_MANY_REQUESTS,
        &json!({"error": {"code": "RateLimiting",
            "message": "Please provide below info when asking for support: timestamp = , correlationId = .",
            "details": [{"code": "RateLimiting", "message": format!("Client application has been throttled and should not attempt to repeat the request until an amount of time has elapsed. Please see https://aka.ms/resourcegraph-throttling for help.")}]}}),
        &[],
    );
    let h = r.headers_mut();
    if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
        h.insert("retry-after", v);
    }
    h.insert(
        "x-ms-user-quota-remaining",
        axum::http::HeaderValue::from_static("0"),
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&hhmmss(retry.max(Duration::from_secs(1)))) {
        h.insert("x-ms-user-quota-resets-after", v);
    }
    let _ = window;
    r
}

async fn answer(
    state: &Arc<State>,
    client: &str,
    body: Body,
    parsed: Option<Result<Query, KqlError>>,
) -> Response {
    let text = body.query.clone().unwrap_or_default();
    let query = match parsed {
        None => {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "The request body must contain a 'query'.",
            )
        }
        Some(Err(e)) => return bad_query(&e),
        Some(Ok(q)) => q,
    };
    let opts = body.options.unwrap_or_default();
    let partial = opts.allow_partial_scopes.unwrap_or(false);
    let tenant = &state.tenant;

    // Scope: explicit subscriptions, or everything (management groups / none).
    let explicit: Option<Vec<String>> = body
        .subscriptions
        .filter(|s| !s.is_empty() && body.management_groups.as_ref().is_none_or(|m| m.is_empty()))
        .map(|s| s.into_iter().map(|x| x.to_ascii_lowercase()).collect());
    let in_scope: Vec<String> = match &explicit {
        Some(s) => s.clone(),
        None => tenant.subscription_ids().to_vec(),
    };
    let forbidden: Vec<&String> = in_scope
        .iter()
        .filter(|s| state.faults.is_forbidden(s))
        .collect();
    if !forbidden.is_empty() && !partial {
        return arm_error(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            &format!(
                "The client '{client}' does not have authorization to perform action 'Microsoft.ResourceGraph/resources/read' over scope '/subscriptions/{}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
                forbidden[0]
            ),
        );
    }
    let n_subs = tenant.subscription_ids().len();
    let mut allowed = vec![explicit.is_none(); n_subs];
    if let Some(list) = &explicit {
        for s in list {
            if let Some(i) = tenant.subscription_index(s) {
                allowed[i as usize] = true;
            }
        }
    }
    for s in &forbidden {
        if let Some(i) = tenant.subscription_index(s) {
            allowed[i as usize] = false;
        }
    }
    let include_unscoped = explicit.is_none();

    let mut h = DefaultHasher::new();
    (query.table.name(), &text, include_unscoped).hash(&mut h);
    allowed.hash(&mut h);
    let key = h.finish();
    let key_hex = format!("{key:016x}");

    let (skip, top) = match &opts.skip_token {
        Some(tok) => match SkipToken::decode(tok) {
            Some(t) if t.query_hash == key_hex => (t.skip, opts.top),
            _ => {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidSkipToken",
                    "The $skipToken is invalid or does not belong to this query and scope; resend the same query and scopes with the token from the previous page.",
                )
            }
        },
        None => (opts.skip.unwrap_or(0).max(0) as u64, opts.top),
    };
    let skip = if query.take.is_some() && opts.skip_token.is_none() {
        0
    } else {
        skip
    };
    let mut top = top
        .map(|t| t.clamp(1, MAX_PAGE as i64) as u64)
        .unwrap_or(DEFAULT_TOP);
    if query.summarizes() && state.faults.summary_page > 0 {
        top = top.min(state.faults.summary_page);
    }

    let matches = match state.cache.get(key) {
        Some(m) => m,
        None => {
            let st = state.clone();
            let q = query.clone();
            let allowed = allowed.clone();
            let computed =
                tokio::task::spawn_blocking(move || evaluate(&st, &q, &allowed, include_unscoped))
                    .await
                    .unwrap_or_default();
            let m = Arc::new(computed);
            state.cache.put(key, m.clone());
            m
        }
    };

    let total = matches.len() as u64;
    let start = skip.min(total) as usize;
    let end = (skip.saturating_add(top)).min(total) as usize;
    let rows = tenant.rows(query.table);
    let data: Vec<Value> = match matches.as_ref() {
        Matches::Rows(idx) => idx[start..end]
            .iter()
            .filter_map(|&i| rows.get(i as usize))
            .filter_map(|r| serde_json::from_str(&r.json).ok())
            .filter_map(|v| query.run_row(v))
            .map(|r| r.row)
            .collect(),
        Matches::Made(made) => made[start..end].to_vec(),
    };
    let count = data.len() as u64;
    let more = (end as u64) < total;
    let pageable = query.projects_id();
    let table_name = query.table.name();
    state.stat(|s| {
        *s.pages_per_table.entry(table_name.into()).or_default() += 1;
        *s.rows_per_table.entry(table_name.into()).or_default() += count;
    });

    let data = if opts
        .result_format
        .as_deref()
        .is_some_and(|f| f.eq_ignore_ascii_case("table"))
    {
        to_table(&data)
    } else {
        Value::Array(data)
    };
    let mut reply = json!({
        "totalRecords": total,
        "count": count,
        "data": data,
        "facets": [],
        "resultTruncated": if more && !pageable { "true" } else { "false" },
    });
    if more && pageable {
        reply["$skipToken"] = json!(SkipToken {
            query_hash: key_hex,
            skip: end as u64
        }
        .encode());
    }
    json_reply(StatusCode::OK, &reply, &[])
}

/// The query's result over the rows in the scope, in output order.
fn evaluate(state: &State, q: &Query, allowed: &[bool], include_unscoped: bool) -> Matches {
    let rows = state.tenant.rows(q.table);
    let in_scope = |sub: u32| {
        if sub == NO_SUBSCRIPTION {
            include_unscoped
        } else {
            allowed.get(sub as usize).copied().unwrap_or(false)
        }
    };
    if q.summarizes() {
        return Matches::Made(
            q.aggregate(
                rows.iter()
                    .filter(|r| in_scope(r.sub))
                    .filter_map(|r| serde_json::from_str::<Value>(&r.json).ok()),
            ),
        );
    }
    let mut hits: Vec<(u32, Option<Vec<Value>>)> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        if !in_scope(row.sub) {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(&row.json) else {
            continue;
        };
        if let Some(r) = q.run_row(v) {
            hits.push((i as u32, r.key));
        }
    }
    if q.orders() {
        hits.sort_by(|a, b| {
            q.compare_keys(a.1.as_deref().unwrap_or(&[]), b.1.as_deref().unwrap_or(&[]))
        });
    }
    if let Some(n) = q.take {
        hits.truncate(n as usize);
    }
    Matches::Rows(hits.into_iter().map(|(i, _)| i).collect())
}

/// The `table` result format: `{columns: [{name, type}], rows: [[...]]}`.
fn to_table(rows: &[Value]) -> Value {
    let mut names: Vec<String> = Vec::new();
    for r in rows {
        if let Value::Object(m) = r {
            for k in m.keys() {
                if !names.contains(k) {
                    names.push(k.clone());
                }
            }
        }
    }
    let kind = |name: &str| {
        rows.iter()
            .filter_map(|r| r.get(name))
            .find(|v| !v.is_null())
            .map(|v| match v {
                Value::String(_) => "string",
                Value::Bool(_) => "boolean",
                Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
                Value::Number(_) => "number",
                _ => "object",
            })
            .unwrap_or("string")
    };
    let columns: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": n, "type": kind(n)}))
        .collect();
    let out: Vec<Value> = rows
        .iter()
        .map(|r| {
            Value::Array(
                names
                    .iter()
                    .map(|n| r.get(n).cloned().unwrap_or(Value::Null))
                    .collect(),
            )
        })
        .collect();
    json!({"columns": columns, "rows": out})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Quota;

    #[test]
    fn skip_token_round_trips_and_rejects_garbage() {
        let t = SkipToken {
            query_hash: "00ff".into(),
            skip: 3000,
        };
        assert_eq!(SkipToken::decode(&t.encode()), Some(t));
        assert_eq!(SkipToken::decode("not base64!"), None);
        assert_eq!(SkipToken::decode("eyAibm8iOiAibHVjayIgfQ=="), None);
    }

    #[test]
    fn hhmmss_rounds_up() {
        assert_eq!(hhmmss(Duration::from_secs(5)), "00:00:05");
        assert_eq!(hhmmss(Duration::from_millis(4200)), "00:00:05");
        assert_eq!(hhmmss(Duration::from_secs(3725)), "01:02:05");
    }

    #[test]
    fn quota_window_counts_and_resets() {
        let w = Mutex::new(HashMap::new());
        let q = Quota {
            queries: 3,
            window: Duration::from_secs(5),
        };
        let t0 = Instant::now();
        assert_eq!(consume(&w, &q, "a", t0).unwrap().0, 2);
        assert_eq!(consume(&w, &q, "a", t0).unwrap().0, 1);
        assert_eq!(consume(&w, &q, "a", t0).unwrap().0, 0);
        let retry = consume(&w, &q, "a", t0 + Duration::from_secs(2)).unwrap_err();
        assert_eq!(retry, Duration::from_secs(3));
        // Another client has its own window.
        assert_eq!(consume(&w, &q, "b", t0).unwrap().0, 2);
        // After the window, a fresh quota.
        let (rem, resets) = consume(&w, &q, "a", t0 + Duration::from_secs(5)).unwrap();
        assert_eq!((rem, resets), (2, Duration::from_secs(5)));
    }

    #[test]
    fn table_format_shape() {
        let t = to_table(&[
            json!({"id": "a", "n": 1}),
            json!({"id": "b", "x": {"k": 1}}),
        ]);
        assert_eq!(t["columns"][0], json!({"name": "id", "type": "string"}));
        assert_eq!(t["columns"][1], json!({"name": "n", "type": "integer"}));
        assert_eq!(t["rows"][1], json!(["b", null, {"k": 1}]));
    }
}
