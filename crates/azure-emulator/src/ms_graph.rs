//! Microsoft Graph: `GET /v1.0/applications?$filter=...` for the SP-secret enrichment,
//! `GET /v1.0/servicePrincipals/{id}/transitiveMemberOf/microsoft.graph.group` for
//! grants through groups, and JSON batching (`POST /v1.0/$batch`, up to 20 requests).
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::server::{json_reply, Req, State};
use super::token::{check_bearer, BearerError};

/// A supported `$filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    AppId(String),
    IdentifierUri(String),
}

/// Parses an OData string literal `'...'` (with `''` escapes); returns the value and the rest.
fn literal(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start().strip_prefix('\'')?;
    let mut out = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if matches!(chars.peek(), Some((_, '\''))) {
                chars.next();
                out.push('\'');
            } else {
                return Some((out, &s[i + 1..]));
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// `appId eq 'GUID'` or `identifierUris/any(x:x eq 'URI')`.
pub fn parse_filter(f: &str) -> Option<Filter> {
    let f = f.trim();
    if let Some(rest) = f.strip_prefix("appId") {
        let rest = rest.trim_start().strip_prefix("eq")?;
        let (v, tail) = literal(rest)?;
        return tail.trim().is_empty().then_some(Filter::AppId(v));
    }
    let rest = f.strip_prefix("identifierUris/any(")?;
    let (var, rest) = rest.split_once(':')?;
    let var = var.trim();
    let rest = rest.trim_start().strip_prefix(var)?;
    let rest = rest.trim_start().strip_prefix("eq")?;
    let (v, tail) = literal(rest)?;
    (tail.trim() == ")").then_some(Filter::IdentifierUri(v))
}

fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let id = uuid::Uuid::new_v4().to_string();
    json_reply(
        status,
        &json!({"error": {"code": code, "message": message,
            "innerError": {"date": now, "request-id": id, "client-request-id": id}}}),
        &[],
    )
}

/// The token check and the `graph-forbidden` fault every Graph read answers first.
fn refuse(state: &State, req: &Req) -> Option<Response> {
    match check_bearer(state, req) {
        Ok(_) => {}
        Err(BearerError::Missing) => {
            return Some(graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token is empty.",
            ))
        }
        Err(BearerError::Invalid) => {
            return Some(graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
            ))
        }
        Err(BearerError::Expired(_)) => {
            return Some(graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            ))
        }
    }
    if state.faults.graph_forbidden {
        return Some(graph_error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        ));
    }
    None
}

/// The default and largest page of `transitiveMemberOf` ("Default and maximum page
/// sizes are 100 and 999 objects", serviceprincipal-list-transitivememberof).
const DEFAULT_TOP: usize = 100;
const MAX_TOP: usize = 999;

/// `GET /v1.0/servicePrincipals/{id}/transitiveMemberOf/microsoft.graph.group`: the
/// groups the service principal is in, nested ones included, `$top` a page, paged
/// with `@odata.nextLink` (`$skiptoken`). The OData cast needs `ConsistencyLevel:
/// eventual` and `$count=true` (the page's "Request headers" table); `$select`
/// may ask for `id` only. A principal the tenant lists no membership for is in none.
pub(crate) fn transitive_member_of(state: &State, req: &Req, principal: &str) -> Response {
    if let Some(r) = refuse(state, req) {
        return r;
    }
    let eventual = req
        .headers
        .get("consistencylevel")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
    let counted = req
        .query_param("$count")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !eventual || !counted {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "Request_UnsupportedQuery",
            "The specified OData cast requires the ConsistencyLevel: eventual header and $count=true.",
        );
    }
    if let Some(sel) = req.query_param("$select") {
        if sel.split(',').any(|f| !f.trim().eq_ignore_ascii_case("id")) {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                &format!("The emulator serves $select=id only, not '{sel}'."),
            );
        }
    }
    let top = match req.query_param("$top").map(|t| t.parse::<usize>()) {
        None => DEFAULT_TOP,
        Some(Ok(t)) if (1..=MAX_TOP).contains(&t) => t,
        Some(_) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                &format!(
                    "Invalid page size specified: '{}'. Must be between 1 and {MAX_TOP} inclusive.",
                    req.query_param("$top").unwrap_or_default()
                ),
            )
        }
    };
    let skip = match req.query_param("$skiptoken").map(|t| t.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "Directory_InvalidSkipToken",
                "The specified skip token is not valid.",
            )
        }
    };
    let groups = state.tenant.groups_of(principal);
    let value: Vec<Value> = groups
        .iter()
        .skip(skip)
        .take(top)
        .map(|g| json!({"id": g}))
        .collect();
    let mut body = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups(id)",
        "@odata.count": groups.len(),
        "value": value,
    });
    if skip + top < groups.len() {
        body["@odata.nextLink"] = json!(format!(
            "{}/v1.0/servicePrincipals/{principal}/transitiveMemberOf/microsoft.graph.group?$select=id&$count=true&$top={top}&$skiptoken={}",
            req.base_url(),
            skip + top
        ));
    }
    json_reply(StatusCode::OK, &body, &[])
}

/// Requests in one JSON batch.
const BATCH_LIMIT: usize = 20;

/// `POST /v1.0/$batch`: each request (`id`, `method`, `url` relative to the version,
/// `headers`) answered as its own call would be, in `responses` (`id`, `status`,
/// `headers`, `body`). Only reads of what this emulator serves; the `graph-batch-429`
/// fault answers the first N requests 429 with `Retry-After`.
pub(crate) async fn batch(state: &State, req: &Req) -> Response {
    if let Err(e) = check_bearer(state, req) {
        let _ = e;
        return graph_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token validation failure.",
        );
    }
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("Invalid batch payload: {e}"),
            )
        }
    };
    let Some(requests) = body.get("requests").and_then(Value::as_array) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Invalid batch payload: no `requests`.",
        );
    };
    if requests.len() > BATCH_LIMIT {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Number of requests in a batch exceeds the limit of {BATCH_LIMIT}."),
        );
    }
    let mut responses = Vec::new();
    for r in requests {
        let id = r
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let method = r.get("method").and_then(Value::as_str).unwrap_or("GET");
        let url = r.get("url").and_then(Value::as_str).unwrap_or_default();
        let throttled = state
            .graph_batch_429_left
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .is_ok();
        if throttled {
            state.stat(|st| st.throttled_429 += 1);
            responses.push(json!({"id": id, "status": 429,
                "headers": {"Retry-After": "1", "Content-Type": "application/json"},
                "body": {"error": {"code": "TooManyRequests", "message": "Too many requests."}}}));
            continue;
        }
        let (status, reply) = batch_item(state, req, method, url, r.get("headers")).await;
        responses.push(json!({"id": id, "status": status,
            "headers": {"Content-Type": "application/json"}, "body": reply}));
    }
    json_reply(StatusCode::OK, &json!({ "responses": responses }), &[])
}

/// One request of a batch, answered by its own handler.
async fn batch_item(
    state: &State,
    outer: &Req,
    method: &str,
    url: &str,
    headers: Option<&Value>,
) -> (u16, Value) {
    let path = format!("/v1.0/{}", url.trim_start_matches('/'));
    let Ok(uri) = path.parse::<axum::http::Uri>() else {
        return (
            400,
            json!({"error": {"code": "BadRequest", "message": format!("Invalid request URL '{url}'.")}}),
        );
    };
    let mut h = outer.headers.clone();
    // Links in the answer name the host the batch was sent to (an HTTP/2 request
    // carries it in the URI, not in a Host header).
    let base = outer.base_url();
    if let Ok(v) = axum::http::HeaderValue::from_str(base.trim_start_matches("https://")) {
        h.insert("host", v);
    }
    h.remove("content-type");
    h.remove("content-length");
    if let Some(Value::Object(m)) = headers {
        for (k, v) in m {
            if let (Ok(name), Some(Ok(val))) = (
                axum::http::HeaderName::from_bytes(k.as_bytes()),
                v.as_str().map(axum::http::HeaderValue::from_str),
            ) {
                h.insert(name, val);
            }
        }
    }
    let segs: Vec<String> = uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let inner = Req {
        method: axum::http::Method::GET,
        uri,
        headers: h,
        body: Default::default(),
        segs,
    };
    let s: Vec<&str> = inner.segs.iter().map(String::as_str).collect();
    let resp = match (method.eq_ignore_ascii_case("GET"), s.as_slice()) {
        (
            true,
            ["v1.0", "serviceprincipals", _, "transitivememberof", "microsoft.graph.group" | "graph.group"],
        ) => {
            // The id as the client wrote it (segments are lower-cased).
            let id = inner
                .uri
                .path()
                .split('/')
                .nth(3)
                .unwrap_or_default()
                .to_string();
            transitive_member_of(state, &inner, &id)
        }
        (true, ["v1.0", "applications"]) => applications(state, &inner),
        (false, _) => graph_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "The emulator is read-only.",
        ),
        _ => graph_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("The emulator does not serve {url}."),
        ),
    };
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

pub(crate) fn applications(state: &State, req: &Req) -> Response {
    if let Some(r) = refuse(state, req) {
        return r;
    }
    let filter = match req.query_param("$filter") {
        None => None,
        Some(f) => match parse_filter(&f) {
            Some(f) => Some(f),
            None => {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    "Request_UnsupportedQuery",
                    &format!("Unsupported or invalid query filter clause specified: '{f}'."),
                )
            }
        },
    };
    let select: Option<Vec<String>> = req
        .query_param("$select")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let matches = |app: &Value| match &filter {
        None => true,
        Some(Filter::AppId(id)) => app
            .get("appId")
            .and_then(Value::as_str)
            .is_some_and(|a| a.eq_ignore_ascii_case(id)),
        Some(Filter::IdentifierUri(u)) => app
            .get("identifierUris")
            .and_then(Value::as_array)
            .is_some_and(|uris| uris.iter().any(|x| x.as_str() == Some(u.as_str()))),
    };
    let value: Vec<Value> = state
        .tenant
        .applications()
        .iter()
        .filter(|a| matches(a))
        .take(999)
        .map(|a| match (&select, a) {
            (Some(fields), Value::Object(m)) => Value::Object(
                m.iter()
                    .filter(|(k, _)| fields.iter().any(|f| f == *k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            _ => a.clone(),
        })
        .collect();
    json_reply(
        StatusCode::OK,
        &json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications", "value": value}),
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        assert_eq!(
            parse_filter("appId eq '0000-1'"),
            Some(Filter::AppId("0000-1".into()))
        );
        assert_eq!(
            parse_filter("identifierUris/any(x:x eq 'http://clitest000001')"),
            Some(Filter::IdentifierUri("http://clitest000001".into()))
        );
        assert_eq!(
            parse_filter("identifierUris/any(u: u eq 'it''s')"),
            Some(Filter::IdentifierUri("it's".into()))
        );
        assert_eq!(parse_filter("displayName eq 'x'"), None);
        assert_eq!(parse_filter("appId eq 'x' or true"), None);
        assert_eq!(parse_filter("appId eq 'unterminated"), None);
    }
}
