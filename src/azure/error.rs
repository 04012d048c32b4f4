//! Azure error replies rendered as readable text, and the error of one call.
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
struct Wrapped {
    error: Body,
}

#[derive(Debug, Deserialize)]
struct Body {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    details: Vec<Value>,
}

fn detail_text(v: &Value) -> Option<String> {
    let code = v.get("code").and_then(Value::as_str).unwrap_or("");
    let message = v.get("message").and_then(Value::as_str).unwrap_or("");
    match (code.is_empty(), message.is_empty()) {
        (true, true) => None,
        (false, true) => Some(code.to_string()),
        (true, false) => Some(message.to_string()),
        (false, false) => Some(format!("{code}: {message}")),
    }
}

/// The code of an Azure error reply (`{error:{code}}` or the RP's unwrapped `{code}`).
pub fn error_code(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let e = v.get("error").unwrap_or(&v);
    e.get("code").and_then(Value::as_str).map(str::to_string)
}

/// Whether a 401/403 reply says the bearer token was expired or invalid, so that one
/// new token may fix it: ARM's and Graph's JSON codes (`ExpiredAuthenticationToken`,
/// `InvalidAuthenticationToken`) on a 401, and Blob Storage's XML on a 401
/// `InvalidAuthenticationInfo` or (older service versions) a 403 `AuthenticationFailed`
/// whose `AuthenticationErrorDetail` reads "Lifetime validation failed. The token is
/// expired." (as Azure SDK issue reports quote it). A 403 that is a missing role or a
/// bad signature is not a token problem and is not retried.
pub fn token_rejected(status: u16, body: &[u8]) -> bool {
    let json = error_code(body);
    if status == 401
        && matches!(
            json.as_deref(),
            Some("ExpiredAuthenticationToken" | "InvalidAuthenticationToken")
        )
    {
        return true;
    }
    let text = String::from_utf8_lossy(body);
    let storage =
        |code: &str| text.contains("<Error>") && text.contains(&format!("<Code>{code}</Code>"));
    let expired = text.contains("Lifetime validation failed");
    (status == 401 && storage("InvalidAuthenticationInfo"))
        || (status == 403 && storage("AuthenticationFailed") && expired)
}

/// Renders an ARM / Resource Graph / Microsoft Graph error body. With `details`
/// (Resource Graph), the details carry the useful part and are listed instead of the
/// generic message: `InvalidQuery: ...; ParserFailure: ...`. Falls back to a
/// shortened body when it is not the documented shape.
pub fn render(body: &[u8]) -> String {
    if let Ok(w) = serde_json::from_slice::<Wrapped>(body) {
        return render_body(&w.error);
    }
    if let Ok(b) = serde_json::from_slice::<Body>(body) {
        if b.code.is_some() || b.message.is_some() {
            return render_body(&b);
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if let Some(x) = render_storage_xml(text) {
        return x;
    }
    if text.is_empty() {
        return "(empty reply)".into();
    }
    let mut short: String = text.chars().take(300).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

/// Azure Storage's XML error (`<Error><Code>ContainerNotFound</Code><Message>The
/// specified container does not exist.\nRequestId:...`): `Code: first line of the message`.
fn render_storage_xml(text: &str) -> Option<String> {
    let inner = |t: &str| -> Option<String> {
        let open = format!("<{t}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{t}>"))?;
        Some(text[start..start + end].trim().to_string())
    };
    if !text.contains("<Error>") {
        return None;
    }
    let code = inner("Code")?;
    match inner("Message") {
        Some(m) => Some(format!(
            "{code}: {}",
            m.lines().next().unwrap_or_default().trim()
        )),
        None => Some(code),
    }
}

fn render_body(b: &Body) -> String {
    let details: Vec<String> = b.details.iter().filter_map(detail_text).collect();
    if !details.is_empty() {
        return details.join("; ");
    }
    match (&b.code, &b.message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.clone(),
        (None, Some(m)) => m.clone(),
        (None, None) => "(no error details)".into(),
    }
}

/// A call that failed for good (after retries, or at once when retrying cannot help).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct CallError {
    /// `POST Resource Graph (clusters)`, `GET /subscriptions`...
    pub what: String,
    /// HTTP status of the last attempt, if one came back.
    pub status: Option<u16>,
    /// Azure error code of the last reply (`AuthorizationFailed`, `InvalidQuery`...).
    pub code: Option<String>,
    /// Readable reason (rendered error body or transport error), never a token.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_xml_errors_read_as_code_and_first_line() {
        let xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ContainerNotFound</Code><Message>The specified container does not exist.\nRequestId:abc\nTime:2026-01-01T00:00:00Z</Message></Error>";
        assert_eq!(
            render(xml.as_bytes()),
            "ContainerNotFound: The specified container does not exist."
        );
    }

    #[test]
    fn resource_graph_parser_failure_is_readable() {
        let body = br#"{"error":{"code":"BadRequest","message":"Please provide below info when asking for support: timestamp = x, correlationId = y.","details":[{"code":"InvalidQuery","message":"Query is invalid. Please refer to the documentation."},{"code":"ParserFailure","message":"ParserFailure: unexpected token at line 1:11","line":1,"characterPositionInLine":11,"token":"<EOF>"}]}}"#;
        assert_eq!(
            render(body),
            "InvalidQuery: Query is invalid. Please refer to the documentation.; ParserFailure: ParserFailure: unexpected token at line 1:11"
        );
        assert_eq!(error_code(body).as_deref(), Some("BadRequest"));
    }

    #[test]
    fn plain_arm_and_rp_errors() {
        let arm = br#"{"error":{"code":"AuthorizationFailed","message":"The client 'x' does not have authorization"}}"#;
        assert_eq!(
            render(arm),
            "AuthorizationFailed: The client 'x' does not have authorization"
        );
        let rp = br#"{"code":"NotFound","message":"cluster not found"}"#;
        assert_eq!(render(rp), "NotFound: cluster not found");
        assert_eq!(error_code(rp).as_deref(), Some("NotFound"));
    }

    #[test]
    fn odd_bodies() {
        assert_eq!(render(b""), "(empty reply)");
        assert_eq!(
            render(b"<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
        let long = "x".repeat(1000);
        assert!(render(long.as_bytes()).chars().count() <= 301);
        assert_eq!(render(br#"{"error":{}}"#), "(no error details)");
    }

    #[test]
    fn expired_tokens_are_told_apart_from_refusals() {
        let arm = br#"{"error":{"code":"ExpiredAuthenticationToken","message":"expired"}}"#;
        assert!(token_rejected(401, arm));
        assert!(!token_rejected(403, arm));
        let blob401 = b"<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>InvalidAuthenticationInfo</Code><Message>Server failed to authenticate the request.</Message><AuthenticationErrorDetail>Lifetime validation failed. The token is expired.</AuthenticationErrorDetail></Error>";
        assert!(token_rejected(401, blob401));
        let blob403 = b"<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to authenticate the request.</Message><AuthenticationErrorDetail>Lifetime validation failed. The token is expired.</AuthenticationErrorDetail></Error>";
        assert!(token_rejected(403, blob403));
        // A missing role and a bad signature are not fixed by a new token.
        let role = b"<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthorizationPermissionMismatch</Code><Message>This request is not authorized to perform this operation using this permission.</Message></Error>";
        assert!(!token_rejected(403, role));
        let sig = b"<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to authenticate the request.</Message><AuthenticationErrorDetail>Signature not valid in the specified time frame</AuthenticationErrorDetail></Error>";
        assert!(!token_rejected(403, sig));
        assert!(!token_rejected(
            401,
            br#"{"error":{"code":"Unauthorized"}}"#
        ));
    }
}
