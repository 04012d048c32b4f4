//! Microsoft Graph: `GET /v1.0/applications?$filter=...` for the SP-secret enrichment.
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

pub(crate) fn applications(state: &State, req: &Req) -> Response {
    match check_bearer(state, req) {
        Ok(_) => {}
        Err(BearerError::Missing) => {
            return graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token is empty.",
            )
        }
        Err(BearerError::Invalid) => {
            return graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
            )
        }
        Err(BearerError::Expired(_)) => {
            return graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is expired.",
            )
        }
    }
    if state.faults.graph_forbidden {
        return graph_error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        );
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
