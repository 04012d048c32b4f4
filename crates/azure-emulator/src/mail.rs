//! Microsoft Graph `POST /v1.0/users/{id | userPrincipalName}/sendMail`: the token's
//! audience is checked (`https://graph.microsoft.com`), the payload validated against
//! the shape of Graph's `message` resource, accepted messages stored (202 Accepted) and
//! listed for tests at `GET /_emulator/mail` (no token: a test surface, not Graph's).
//!
//! Like Exchange's duplicate detection, a second message with the same
//! `internetMessageId` to the same recipients is accepted and not delivered again.
use std::sync::atomic::Ordering;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{json, Map, Value};

use super::server::{json_reply, Req, State};
use super::token::{bearer_info, BearerError};

/// Graph's request limit: "The maximum request length supported is 4MB."
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// The audience a `sendMail` token must have.
pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";

/// Properties of Graph's `message` resource a `sendMail` may carry (v1.0). Anything
/// else is refused as Graph refuses it.
const MESSAGE_PROPERTIES: &[&str] = &[
    "subject",
    "body",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "from",
    "sender",
    "attachments",
    "importance",
    "internetMessageId",
    "internetMessageHeaders",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "categories",
    "flag",
    "inferenceClassification",
    "mentions",
];

/// One delivered message.
#[derive(Debug, Clone)]
pub struct StoredMail {
    pub json: Value,
    recipients: Vec<String>,
    message_id: Option<String>,
}

/// What `sendMail` delivered.
#[derive(Debug, Default)]
pub struct Mailboxes {
    pub delivered: Vec<StoredMail>,
    /// Accepted but not delivered again: same `internetMessageId`, same recipients.
    pub duplicates: u64,
}

pub(crate) fn graph_error(status: StatusCode, code: &str, message: &str) -> Response {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    let id = uuid::Uuid::new_v4().to_string();
    json_reply(
        status,
        &json!({"error": {"code": code, "message": message,
            "innerError": {"date": now, "request-id": id, "client-request-id": id}}}),
        &[],
    )
}

/// Why a `sendMail` body is refused: Graph's error code and message (a 400).
#[derive(Debug)]
struct Refused {
    code: String,
    message: String,
}

fn bad(code: &str, message: &str) -> Refused {
    Refused {
        code: code.to_string(),
        message: message.to_string(),
    }
}

fn with_retry_after(mut r: Response) -> Response {
    r.headers_mut()
        .insert("retry-after", HeaderValue::from_static("1"));
    r
}

fn take(counter: &std::sync::atomic::AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// `%XX` decoded; anything not UTF-8 or malformed is kept as it was.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%' && i + 2 < b.len())
            .then(|| std::str::from_utf8(&b[i + 1..i + 3]).ok())
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

fn valid_address(a: &str) -> bool {
    let mut parts = a.split('@');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(l), Some(d), None) if !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
    ) && !a
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c))
}

/// `toRecipients` (required, not empty) or another recipient list (optional).
fn recipients(m: &Map<String, Value>, key: &str, required: bool) -> Result<Vec<String>, Refused> {
    let list = match m.get(key) {
        None | Some(Value::Null) if !required => return Ok(vec![]),
        None | Some(Value::Null) => {
            return Err(bad(
                "ErrorInvalidRecipients",
                "At least one recipient is not valid., Recipient is missing.",
            ))
        }
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(bad(
                "RequestBodyRead",
                &format!("Property '{key}' must be a collection of recipient."),
            ))
        }
    };
    if required && list.is_empty() {
        return Err(bad(
            "ErrorInvalidRecipients",
            "At least one recipient is not valid., Recipient is missing.",
        ));
    }
    let mut out = Vec::new();
    for r in list {
        let addr = r
            .get("emailAddress")
            .and_then(|e| e.get("address"))
            .and_then(Value::as_str);
        match addr {
            Some(a) if valid_address(a) => out.push(a.to_ascii_lowercase()),
            _ => {
                return Err(bad(
                    "ErrorInvalidRecipients",
                    &format!(
                        "At least one recipient is not valid., Recipient '{}' is not resolved.",
                        addr.unwrap_or_default()
                    ),
                ))
            }
        }
    }
    Ok(out)
}

/// Checks a `sendMail` body; the message and its recipients (`to`, `cc`, `bcc`).
fn validate(body: &[u8]) -> Result<(Map<String, Value>, Vec<String>), Refused> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        bad(
            "RequestBodyRead",
            &format!("Invalid JSON. An unexpected character was encountered: {e}"),
        )
    })?;
    let Value::Object(top) = v else {
        return Err(bad(
            "RequestBodyRead",
            "The request body must be a JSON object.",
        ));
    };
    // Action parameters are matched without regard to case: Microsoft's own SDKs send
    // `Message` and `SaveToSentItems`.
    let param = |name: &str| {
        top.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    for k in top.keys() {
        if !k.eq_ignore_ascii_case("message") && !k.eq_ignore_ascii_case("saveToSentItems") {
            return Err(bad(
                "RequestBodyRead",
                &format!("The parameter '{k}' in the request payload is not a valid parameter for the operation 'sendMail'."),
            ));
        }
    }
    if param("saveToSentItems").is_some_and(|s| !s.is_boolean()) {
        return Err(bad(
            "RequestBodyRead",
            "Cannot convert the literal to the expected type 'Edm.Boolean'.",
        ));
    }
    let Some(Value::Object(m)) = param("message") else {
        return Err(bad(
            "ErrorInvalidParameter",
            "The value of the parameter 'Message' is empty.",
        ));
    };
    for k in m.keys() {
        if !MESSAGE_PROPERTIES.contains(&k.as_str()) && !k.starts_with('@') {
            return Err(bad(
                "RequestBodyRead",
                &format!("The property '{k}' does not exist on type 'microsoft.graph.message'. Make sure to only use property names that are defined by the type or mark the type as open type."),
            ));
        }
    }
    // Graph itself allows an empty subject; the emulator holds its clients to one.
    if !m.get("subject").is_some_and(Value::is_string) {
        return Err(bad(
            "ErrorInvalidParameter",
            "message.subject is required (a string).",
        ));
    }
    let body_ok = m.get("body").is_some_and(|b| {
        let ct = b.get("contentType").and_then(Value::as_str);
        ct.is_some_and(|c| c.eq_ignore_ascii_case("html") || c.eq_ignore_ascii_case("text"))
            && b.get("content").is_some_and(Value::is_string)
    });
    if !body_ok {
        return Err(bad(
            "RequestBodyRead",
            "message.body needs contentType (text or html) and content (a string).",
        ));
    }
    let mut all = recipients(m, "toRecipients", true)?;
    all.extend(recipients(m, "ccRecipients", false)?);
    all.extend(recipients(m, "bccRecipients", false)?);
    if let Some(atts) = m.get("attachments") {
        let Some(list) = atts.as_array() else {
            return Err(bad(
                "RequestBodyRead",
                "Property 'attachments' must be a collection of attachment.",
            ));
        };
        for a in list {
            let kind = a.get("@odata.type").and_then(Value::as_str);
            if kind != Some("#microsoft.graph.fileAttachment") {
                return Err(bad(
                    "RequestBodyRead",
                    &format!(
                        "An attachment needs '@odata.type': '#microsoft.graph.fileAttachment' (the emulator supports no other), got {}.",
                        kind.unwrap_or("none")
                    ),
                ));
            }
            if a.get("name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                return Err(bad(
                    "ErrorInvalidParameter",
                    "A file attachment needs a name.",
                ));
            }
            let bytes_ok = a
                .get("contentBytes")
                .and_then(Value::as_str)
                .is_some_and(|b| base64::engine::general_purpose::STANDARD.decode(b).is_ok());
            if !bytes_ok {
                return Err(bad(
                    "RequestBodyRead",
                    "Cannot convert the literal to the expected type 'Edm.Binary' (contentBytes).",
                ));
            }
        }
    }
    Ok((m.clone(), all))
}

/// `POST /v1.0/users/{user}/sendMail`. `Err(response)` when refused; `Ok(())` when
/// accepted (202); `drop` when the fault says the reply is to be cut after delivery.
pub(crate) fn send_mail(state: &State, req: &Req) -> (Response, bool) {
    let info = match bearer_info(state, req) {
        Ok(i) => i,
        Err(BearerError::Missing) => {
            return (
                graph_error(
                    StatusCode::UNAUTHORIZED,
                    "InvalidAuthenticationToken",
                    "Access token is empty.",
                ),
                false,
            )
        }
        Err(BearerError::Invalid) => {
            return (
                graph_error(
                    StatusCode::UNAUTHORIZED,
                    "InvalidAuthenticationToken",
                    "Access token validation failure.",
                ),
                false,
            )
        }
        Err(BearerError::Expired(_)) => {
            return (
                graph_error(
                    StatusCode::UNAUTHORIZED,
                    "InvalidAuthenticationToken",
                    "Lifetime validation failed, the token is expired.",
                ),
                false,
            )
        }
    };
    if info.audience != GRAPH_AUDIENCE {
        return (
            graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
            ),
            false,
        );
    }
    if state.faults.mail_forbidden {
        return (
            graph_error(
                StatusCode::FORBIDDEN,
                "ErrorAccessDenied",
                "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.",
            ),
            false,
        );
    }
    if take(&state.mail_faults.throttle) {
        state.stat(|s| s.throttled_429 += 1);
        let r = graph_error(
            StatusCode::TOO_MANY_REQUESTS,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
        );
        return (with_retry_after(r), false);
    }
    if take(&state.mail_faults.fail) {
        state.stat(|s| s.errors_5xx += 1);
        let n = state.mail_faults.failed.fetch_add(1, Ordering::SeqCst);
        let r = if n.is_multiple_of(2) {
            with_retry_after(graph_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "Service Unavailable",
            ))
        } else {
            graph_error(
                StatusCode::GATEWAY_TIMEOUT,
                "UnknownError",
                "Gateway Timeout",
            )
        };
        return (r, false);
    }
    if req.body.len() > MAX_REQUEST_BYTES {
        return (
            graph_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                "The maximum request length supported is 4MB.",
            ),
            false,
        );
    }
    // Clients percent-encode the `@` of a user principal name (`a%40contoso.com`).
    let user = percent_decode(req.segs.get(2).map(String::as_str).unwrap_or_default());
    if !(valid_address(&user) || uuid::Uuid::parse_str(&user).is_ok()) {
        return (
            graph_error(
                StatusCode::NOT_FOUND,
                "ErrorInvalidUser",
                &format!("The requested user '{user}' is invalid."),
            ),
            false,
        );
    }
    let (message, recipients) = match validate(&req.body) {
        Ok(v) => v,
        Err(r) => {
            return (
                graph_error(StatusCode::BAD_REQUEST, &r.code, &r.message),
                false,
            )
        }
    };
    let message_id = message
        .get("internetMessageId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let stored = StoredMail {
        json: json!({
            "sender": user,
            "clientId": info.client_id,
            "message": Value::Object(message),
        }),
        recipients: {
            let mut r = recipients;
            r.sort();
            r
        },
        message_id,
    };
    if let Ok(mut boxes) = state.mailboxes.lock() {
        let duplicate = stored.message_id.is_some()
            && boxes
                .delivered
                .iter()
                .any(|d| d.message_id == stored.message_id && d.recipients == stored.recipients);
        if duplicate {
            boxes.duplicates += 1;
        } else {
            boxes.delivered.push(stored);
        }
    }
    let drop_it = take(&state.mail_faults.drop);
    (StatusCode::ACCEPTED.into_response(), drop_it)
}

/// `GET /_emulator/mail`: every delivered message, in order, and the duplicates count.
pub(crate) fn list(state: &State) -> Response {
    let (value, duplicates) = match state.mailboxes.lock() {
        Ok(b) => (
            b.delivered
                .iter()
                .map(|d| d.json.clone())
                .collect::<Vec<_>>(),
            b.duplicates,
        ),
        Err(_) => (vec![], 0),
    };
    json_reply(
        StatusCode::OK,
        &json!({"value": value, "duplicates": duplicates}),
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<(Map<String, Value>, Vec<String>), Refused>) -> String {
        match r {
            Ok(_) => "ok".into(),
            Err(_) => "400".into(),
        }
    }

    #[test]
    fn user_segments_are_percent_decoded() {
        assert_eq!(percent_decode("a%40contoso.com"), "a@contoso.com");
        assert_eq!(percent_decode("a@contoso.com"), "a@contoso.com");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn the_message_schema_is_checked() {
        let ok = json!({"message": {"subject": "s", "body": {"contentType": "HTML", "content": "<p>x</p>"},
            "toRecipients": [{"emailAddress": {"address": "Owner@Contoso.com"}}],
            "attachments": [{"@odata.type": "#microsoft.graph.fileAttachment", "name": "a.csv", "contentBytes": "eHg="}]},
            "saveToSentItems": true});
        let (_, to) = validate(ok.to_string().as_bytes()).unwrap();
        assert_eq!(to, ["owner@contoso.com"]);
        let mutate = |f: &dyn Fn(&mut Value)| {
            let mut v = ok.clone();
            f(&mut v);
            code(validate(v.to_string().as_bytes()))
        };
        assert_eq!(mutate(&|v| v["message"]["subject"] = Value::Null), "400");
        assert_eq!(
            mutate(&|v| v["message"]["body"]["contentType"] = json!("rtf")),
            "400"
        );
        assert_eq!(mutate(&|v| v["message"]["toRecipients"] = json!([])), "400");
        assert_eq!(
            mutate(
                &|v| v["message"]["toRecipients"][0]["emailAddress"]["address"] =
                    json!("a@b.com\r\nBcc: x@y.com")
            ),
            "400"
        );
        assert_eq!(
            mutate(&|v| v["message"]["attachments"][0]["@odata.type"] =
                json!("#microsoft.graph.itemAttachment")),
            "400"
        );
        assert_eq!(
            mutate(&|v| v["message"]["attachments"][0]["contentBytes"] = json!("not base64!")),
            "400"
        );
        assert_eq!(mutate(&|v| v["message"]["colour"] = json!("red")), "400");
        assert_eq!(mutate(&|v| v["extra"] = json!(1)), "400");
        assert_eq!(mutate(&|v| v["saveToSentItems"] = json!("yes")), "400");
        assert_eq!(code(validate(b"{")), "400");
        // As Microsoft's SDKs spell the parameters.
        let mut pascal = Map::new();
        pascal.insert("Message".into(), ok["message"].clone());
        pascal.insert("SaveToSentItems".into(), json!(false));
        assert_eq!(
            code(validate(Value::Object(pascal).to_string().as_bytes())),
            "ok"
        );
        assert_eq!(code(validate(b"{}")), "400");
        // cc and bcc are recipients too.
        let (_, all) = validate(
            json!({"message": {"subject": "s", "body": {"contentType": "text", "content": "x"},
                "toRecipients": [{"emailAddress": {"address": "a@contoso.com"}}],
                "bccRecipients": [{"emailAddress": {"address": "b@contoso.com"}}]}})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(all, ["a@contoso.com", "b@contoso.com"]);
    }
}
