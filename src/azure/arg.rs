//! The ARM / Resource Graph client: requests as values ([`QueryRequest`]), one call
//! with pacing, token and retries ([`ArmClient::call`]), and the paging loop of one
//! query over one scope ([`ArmClient::query`]).
use std::sync::Arc;
use std::time::Duration;

use azure_core::Bytes;
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::Method;
use serde::Serialize;
use url::Url;

use super::auth::{check_bearer_url, TokenProvider};
use super::error::{self, CallError};
use super::pacing::Pacer;
use super::paging::PageState;
use super::retry::{classify, Decision, ErrorKind, RetryPolicy};
use super::stats::StatsHandle;

/// Times one request renews a token the server rejected as expired.
const MAX_TOKEN_REFRESHES: u32 = 3;

pub const API_VERSION: &str = "2021-03-01";
/// Resource Graph's largest page.
pub const PAGE_SIZE: u32 = 1000;
/// Resource Graph answers slowly or not at all above about 300 subscriptions a query.
pub const MAX_SUBSCRIPTIONS_PER_QUERY: usize = 300;

/// The scope of one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchScope {
    Subscriptions(Vec<String>),
    ManagementGroups(Vec<String>),
}

impl BatchScope {
    /// Gap scopes: `/subscriptions/<id>` or the management group's resource id.
    pub fn scopes(&self) -> Vec<String> {
        match self {
            BatchScope::Subscriptions(s) => {
                s.iter().map(|s| format!("/subscriptions/{s}")).collect()
            }
            BatchScope::ManagementGroups(m) => m
                .iter()
                .map(|m| format!("/providers/Microsoft.Management/managementGroups/{m}"))
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            BatchScope::Subscriptions(s) | BatchScope::ManagementGroups(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `POST /providers/Microsoft.ResourceGraph/resources` body, field names as ARG spells them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryRequest {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<String>,
    #[serde(rename = "managementGroups", skip_serializing_if = "Vec::is_empty")]
    pub management_groups: Vec<String>,
    pub query: String,
    pub options: QueryOptions,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryOptions {
    #[serde(rename = "$top")]
    pub top: u32,
    #[serde(rename = "$skipToken", skip_serializing_if = "Option::is_none")]
    pub skip_token: Option<String>,
    #[serde(rename = "resultFormat")]
    pub result_format: &'static str,
    #[serde(rename = "allowPartialScopes")]
    pub allow_partial_scopes: bool,
}

impl QueryRequest {
    /// The first page's request. Management-group scope allows partial scopes (ARG
    /// answers what it can instead of refusing a large group).
    pub fn new(scope: &BatchScope, query: &str) -> QueryRequest {
        let (subscriptions, management_groups, partial) = match scope {
            BatchScope::Subscriptions(s) => (s.clone(), vec![], false),
            BatchScope::ManagementGroups(m) => (vec![], m.clone(), true),
        };
        QueryRequest {
            subscriptions,
            management_groups,
            query: query.to_string(),
            options: QueryOptions {
                top: PAGE_SIZE,
                skip_token: None,
                result_format: "objectArray",
                allow_partial_scopes: partial,
            },
        }
    }

    /// The request for the page `state` points at.
    pub fn at(&self, state: &PageState) -> QueryRequest {
        let mut r = self.clone();
        r.options.skip_token = state.skip_token().map(str::to_string);
        r
    }
}

/// The metadata of one page, after its rows went to the sink.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageMeta {
    pub skip_token: Option<String>,
    pub truncated: bool,
    pub rows: u64,
    pub total_records: Option<u64>,
}

/// Everything calls share: HTTP client, token, pacing, retry policy, counters.
pub struct ArmClient {
    pub http: reqwest::Client,
    pub tokens: Arc<TokenProvider>,
    pub pacer: Pacer,
    pub policy: RetryPolicy,
    pub stats: StatsHandle,
}

fn transport_kind(e: &reqwest::Error) -> ErrorKind {
    if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_connect() || e.is_request() {
        ErrorKind::Connect
    } else if e.is_body() || e.is_decode() {
        ErrorKind::Body
    } else {
        ErrorKind::Other
    }
}

/// A transport error with its causes, on one line (URLs never carry tokens here).
fn transport_text(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

impl ArmClient {
    /// One logical call: token, pacing (`paced`: Resource Graph), retries per
    /// [`classify`] and the policy, one token refresh on a 401 for an expired token.
    pub async fn call(
        &self,
        table: &str,
        method: Method,
        url: &Url,
        scope: &str,
        body: Option<&[u8]>,
        paced: bool,
    ) -> Result<Bytes, CallError> {
        self.call_with(
            table,
            method,
            url,
            scope,
            body.map(|b| (b, "application/json")),
            &[],
            paced,
        )
        .await
    }

    /// [`Self::call`] with the body's content type and extra request headers (Blob
    /// Storage's `x-ms-version`, `x-ms-blob-type`...).
    #[allow(clippy::too_many_arguments)]
    pub async fn call_with(
        &self,
        table: &str,
        method: Method,
        url: &Url,
        scope: &str,
        body: Option<(&[u8], &str)>,
        headers: &[(&str, &str)],
        paced: bool,
    ) -> Result<Bytes, CallError> {
        let what = format!("{method} {}", url.path());
        let fail = |status: Option<u16>, code: Option<String>, reason: String| CallError {
            what: what.clone(),
            status,
            code,
            reason,
        };
        check_bearer_url(url).map_err(|e| fail(None, None, e.to_string()))?;
        let mut attempt = 0u32;
        // A token can expire again while a request waits for the quota (a short-lived
        // or revoked token on a loaded machine): renew it a few times, not forever.
        let mut refreshes = 0u32;
        loop {
            attempt += 1;
            let (kind, headers, status, code, reason) = match self.tokens.token(scope).await {
                Err(e) => (
                    ErrorKind::Connect,
                    HeaderMap::new(),
                    None,
                    None,
                    e.to_string(),
                ),
                Ok(token) => {
                    let permit = if paced {
                        Some(self.pacer.acquire().await)
                    } else {
                        None
                    };
                    let mut rb = self
                        .http
                        .request(method.clone(), url.clone())
                        .bearer_auth(token.expose());
                    for (k, v) in headers {
                        rb = rb.header(*k, *v);
                    }
                    if let Some((b, ctype)) = body {
                        rb = rb.header(CONTENT_TYPE, ctype).body(b.to_vec());
                    }
                    self.stats.update(table, |t| t.requests += 1);
                    match rb.send().await {
                        Err(e) => {
                            drop(permit);
                            (
                                transport_kind(&e),
                                HeaderMap::new(),
                                None,
                                None,
                                transport_text(&e),
                            )
                        }
                        Ok(resp) => {
                            let status = resp.status();
                            let headers = resp.headers().clone();
                            if let Some(p) = permit {
                                p.observe(&headers);
                            }
                            match resp.bytes().await {
                                Err(e) => {
                                    let kind = if e.is_timeout() {
                                        ErrorKind::Timeout
                                    } else {
                                        ErrorKind::Body
                                    };
                                    (
                                        kind,
                                        headers,
                                        Some(status.as_u16()),
                                        None,
                                        format!("reading the reply: {}", transport_text(&e)),
                                    )
                                }
                                Ok(bytes) => {
                                    self.stats.update(table, |t| t.bytes += bytes.len() as u64);
                                    if status.is_success() {
                                        return Ok(bytes);
                                    }
                                    let code = error::error_code(&bytes);
                                    if refreshes < MAX_TOKEN_REFRESHES
                                        && error::token_rejected(status.as_u16(), &bytes)
                                    {
                                        refreshes += 1;
                                        attempt -= 1;
                                        tracing::info!(
                                            table,
                                            "token rejected as expired; getting a new one"
                                        );
                                        if let Err(e) = self.tokens.refresh().await {
                                            return Err(fail(
                                                Some(status.as_u16()),
                                                code,
                                                e.to_string(),
                                            ));
                                        }
                                        continue;
                                    }
                                    if status.as_u16() == 429 {
                                        self.stats.update(table, |t| t.throttled_429 += 1);
                                    }
                                    (
                                        ErrorKind::Status(status.as_u16()),
                                        headers,
                                        Some(status.as_u16()),
                                        code,
                                        error::render(&bytes),
                                    )
                                }
                            }
                        }
                    }
                }
            };
            let verdict = classify(kind, &headers);
            match self.policy.decide(attempt, verdict, rand::random::<f64>()) {
                Decision::Retry { after } => {
                    self.stats.update(table, |t| t.retries += 1);
                    tracing::debug!(table, attempt, status = ?status, %reason, after_ms = after.as_millis() as u64, "retrying");
                    tokio::time::sleep(after).await;
                }
                Decision::GiveUp(why) => {
                    let reason = match status {
                        Some(s) => format!("HTTP {s} {reason} ({why})"),
                        None => format!("{reason} ({why})"),
                    };
                    return Err(fail(status, code, reason));
                }
            }
        }
    }

    /// Runs `query` over `scope`, following `$skipToken` to the end; each page's body
    /// goes to `ingest` (which parses rows and returns the page's metadata, or `Err`
    /// when the body is not a Resource Graph page).
    pub async fn query<F, Fut>(
        &self,
        arm: &Url,
        arm_scope: &str,
        table: &str,
        query: &str,
        scope: &BatchScope,
        mut ingest: F,
    ) -> Result<(), CallError>
    where
        F: FnMut(Bytes) -> Fut,
        Fut: std::future::Future<Output = Result<PageMeta, String>>,
    {
        let mut url = arm
            .join("providers/Microsoft.ResourceGraph/resources")
            .map_err(|e| CallError {
                what: "Resource Graph".into(),
                status: None,
                code: None,
                reason: format!("bad ARM endpoint: {e}"),
            })?;
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        let first = QueryRequest::new(scope, query);
        let mut state = PageState::Start;
        let mut bad_pages = 0;
        while !state.is_done() {
            let body = serde_json::to_vec(&first.at(&state)).expect("a request always serializes");
            let bytes = self
                .call(table, Method::POST, &url, arm_scope, Some(&body), true)
                .await?;
            let meta = match ingest(bytes).await {
                Ok(m) => m,
                Err(reason) if bad_pages < 2 => {
                    bad_pages += 1;
                    tracing::warn!(table, %reason, "unreadable page; asking again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Err(reason) => {
                    return Err(CallError {
                        what: format!("POST {}", url.path()),
                        status: Some(200),
                        code: None,
                        reason,
                    })
                }
            };
            self.stats.update(table, |t| {
                t.pages += 1;
                t.rows += meta.rows;
            });
            state = state
                .advance(meta.skip_token, meta.truncated)
                .map_err(|e| CallError {
                    what: format!("POST {}", url.path()),
                    status: Some(200),
                    code: None,
                    reason: e.to_string(),
                })?;
        }
        Ok(())
    }
}

impl ArmClient {
    /// [`ArmClient::query`] for callers that take the rows one by one: each row of
    /// every page goes to `each` as its page arrives (an unparsable row as `null`, for
    /// the reader to count as skipped).
    pub async fn query_each(
        &self,
        arm: &Url,
        arm_scope: &str,
        table: &str,
        query: &str,
        scope: &BatchScope,
        each: impl FnMut(serde_json::Value) + Send,
    ) -> Result<(), CallError> {
        let each = std::sync::Mutex::new(each);
        self.query(arm, arm_scope, table, query, scope, |bytes| {
            let each = &each;
            async move {
                let page: super::paging::Page = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("reply is not a Resource Graph page: {e}"))?;
                let mut each = each.lock().unwrap_or_else(|p| p.into_inner());
                for raw in &page.data {
                    (*each)(serde_json::from_str(raw.get()).unwrap_or(serde_json::Value::Null));
                }
                Ok(page.meta())
            }
        })
        .await
    }
}

/// The subscription a 403 `AuthorizationFailed` names (`... over scope '/subscriptions/<id>' ...`).
pub fn forbidden_subscription(reason: &str, batch: &[String]) -> Option<String> {
    let lower = reason.to_ascii_lowercase();
    batch
        .iter()
        .find(|s| lower.contains(&format!("/subscriptions/{}", s.to_ascii_lowercase())))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_json_has_resource_graph_names() {
        let scope = BatchScope::Subscriptions(vec!["s1".into(), "s2".into()]);
        let r = QueryRequest::new(&scope, "resources | project id");
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"subscriptions": ["s1", "s2"], "query": "resources | project id",
                   "options": {"$top": 1000, "resultFormat": "objectArray", "allowPartialScopes": false}})
        );
        let next = r.at(&PageState::Next {
            skip_token: "tok".into(),
            page: 1,
        });
        assert_eq!(
            serde_json::to_value(&next).unwrap()["options"]["$skipToken"],
            "tok"
        );
        let mg = QueryRequest::new(&BatchScope::ManagementGroups(vec!["root".into()]), "q");
        assert_eq!(
            serde_json::to_value(&mg).unwrap(),
            json!({"managementGroups": ["root"], "query": "q",
                   "options": {"$top": 1000, "resultFormat": "objectArray", "allowPartialScopes": true}})
        );
    }

    #[test]
    fn scopes_name_gaps() {
        assert_eq!(
            BatchScope::Subscriptions(vec!["a".into()]).scopes(),
            ["/subscriptions/a"]
        );
        assert_eq!(
            BatchScope::ManagementGroups(vec!["mg".into()]).scopes(),
            ["/providers/Microsoft.Management/managementGroups/mg"]
        );
    }

    #[test]
    fn finds_the_forbidden_subscription_in_the_message() {
        let batch = vec!["aaaa".to_string(), "BBBB".to_string()];
        let msg = "AuthorizationFailed: The client 'x' does not have authorization to perform action 'read' over scope '/subscriptions/bbbb' or the scope is invalid.";
        assert_eq!(forbidden_subscription(msg, &batch).as_deref(), Some("BBBB"));
        assert_eq!(
            forbidden_subscription("AuthorizationFailed: no scope named", &batch),
            None
        );
    }
}
