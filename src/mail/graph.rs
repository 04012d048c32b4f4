//! `--mail-via graph`: the outbox's `.eml` files sent through Microsoft Graph
//! (`POST {graph}/v1.0/users/{sender}/sendMail`) with a token for Graph from the run's
//! credential chain: no SMTP password.
//!
//! - Each message is read back from the outbox (the same bytes SMTP would send) and
//!   turned into a Graph `message`: subject, HTML body, one recipient (the envelope's,
//!   checked as for SMTP), attachments as `#microsoft.graph.fileAttachment` with base64
//!   `contentBytes`, and the `.eml`'s `Message-ID` as `internetMessageId` (Exchange's
//!   duplicate detection then keeps a retried message from arriving twice).
//! - A request over Graph's limit (4 MB; [`MAX_REQUEST_BYTES`]) is never sent to fail:
//!   the largest attachments are left out and the body says so and where the report is.
//! - Retries: 429 and 503 after `Retry-After`, 500/502/504 and dropped connections with
//!   backoff, one new token after a 401 for an expired one (the ARM client's loop).
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use lettre::Address;
use mail_parser::{MessageParser, MimeHeaders};
use reqwest::Method;
use serde_json::{json, Value};
use url::Url;

use super::settings::GraphMail;
use crate::azure::arg::ArmClient;
use crate::azure::{auth, pacing, retry, stats};

/// Graph refuses a request over 4 MB ("The maximum request length supported is 4MB",
/// HTTP 413; Microsoft's guide to large Outlook attachments puts direct attachments
/// under 3 MB and larger ones in upload sessions). The whole JSON request counts, base64
/// attachments included.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// Kept free under [`MAX_REQUEST_BYTES`] for the note about left-out attachments and
/// rounding.
const HEADROOM: usize = 32 * 1024;

/// The stats table name of sendMail calls.
const TABLE: &str = "graph/sendMail";

/// One message as Graph's `sendMail` takes it.
#[derive(Debug)]
pub struct GraphMessage {
    /// The request body: `{"message": {...}, "saveToSentItems": true}`.
    pub body: Vec<u8>,
    /// Attachments left out to stay under [`MAX_REQUEST_BYTES`]: name and size in bytes.
    pub left_out: Vec<(String, usize)>,
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn mb(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

/// The `.eml` `eml` (from the outbox of `run_dir`) as a Graph `sendMail` request to
/// `to`, under [`MAX_REQUEST_BYTES`]; `max_bytes` is that limit (tests pass less).
pub fn message(
    eml: &[u8],
    to: &Address,
    run_dir: &Path,
    max_bytes: usize,
) -> anyhow::Result<GraphMessage> {
    let parsed = MessageParser::default()
        .parse(eml)
        .context("the message does not parse as MIME")?;
    // Graph takes the subject as a JSON string: no header to inject into, but a line
    // break or other control character has no business in it either.
    let subject: String = parsed
        .subject()
        .context("the message has no Subject")?
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    // mail-parser renders a text-only message as HTML too: HTML only for a real part.
    let has_html = parsed.html_bodies().next().is_some_and(|p| {
        p.content_type()
            .and_then(|c| c.subtype())
            .is_some_and(|s| s.eq_ignore_ascii_case("html"))
    });
    let (content_type, mut content) = match parsed.body_html(0).filter(|_| has_html) {
        Some(html) => ("HTML", html.into_owned()),
        None => (
            "Text",
            parsed
                .body_text(0)
                .context("the message has no body")?
                .into_owned(),
        ),
    };
    let mut attachments: Vec<(String, String, String)> = Vec::new();
    for part in parsed.attachments() {
        let name = part
            .attachment_name()
            .unwrap_or("attachment.bin")
            .to_string();
        let ctype = part
            .content_type()
            .map(|c| match c.subtype() {
                Some(sub) => format!("{}/{}", c.ctype(), sub),
                None => c.ctype().to_string(),
            })
            .unwrap_or_else(|| "application/octet-stream".into());
        let b64 = base64::engine::general_purpose::STANDARD.encode(part.contents());
        attachments.push((name, ctype, b64));
    }
    let recipient = json!([{"emailAddress": {"address": to.to_string()}}]);
    let message_id = parsed.message_id().map(|id| format!("<{id}>"));
    let build = |content: &str, attachments: &[(String, String, String)]| -> Value {
        let mut m = json!({
            "subject": subject,
            "body": {"contentType": content_type, "content": content},
            "toRecipients": recipient,
        });
        if let Some(id) = &message_id {
            m["internetMessageId"] = json!(id);
        }
        if !attachments.is_empty() {
            m["attachments"] = attachments
                .iter()
                .map(|(name, ctype, b64)| {
                    json!({"@odata.type": "#microsoft.graph.fileAttachment",
                           "name": name, "contentType": ctype, "contentBytes": b64})
                })
                .collect();
        }
        json!({"message": m, "saveToSentItems": true})
    };
    let size = |v: &Value| serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX);
    let budget = max_bytes.saturating_sub(HEADROOM);
    let mut left_out = Vec::new();
    // Largest first: the small CSVs an owner filters stay attached.
    while size(&build(&content, &attachments)) > budget && !attachments.is_empty() {
        let (i, _) = attachments
            .iter()
            .enumerate()
            .max_by_key(|(_, a)| a.2.len())
            .expect("not empty");
        let (name, _, b64) = attachments.remove(i);
        left_out.push((name, b64.len() / 4 * 3));
    }
    if !left_out.is_empty() {
        let items: Vec<String> = left_out
            .iter()
            .map(|(name, bytes)| {
                format!("{name} ({}): {}", mb(*bytes), run_dir.join(name).display())
            })
            .collect();
        let lead = "Not attached: Microsoft Graph accepts at most 4 MB per message. \
                    The files are in the audit's output folder";
        if content_type == "HTML" {
            let list: String = items
                .iter()
                .map(|i| format!("<li>{}</li>", escape_html(i)))
                .collect();
            let note = format!(
                "<p><strong>{}:</strong></p><ul>{list}</ul>",
                escape_html(lead)
            );
            match content.rfind("</body>") {
                Some(at) => content.insert_str(at, &note),
                None => content.push_str(&note),
            }
        } else {
            content.push_str(&format!("\n\n{lead}:\n- {}\n", items.join("\n- ")));
        }
    }
    let body = serde_json::to_vec(&build(&content, &attachments))?;
    anyhow::ensure!(
        body.len() <= max_bytes,
        "the message is {} without attachments, over Microsoft Graph's {} limit",
        mb(body.len()),
        mb(max_bytes)
    );
    Ok(GraphMessage { body, left_out })
}

/// The `sendMail` URL of `sender` under `graph` (`.../v1.0/users/{sender}/sendMail`).
pub fn send_mail_url(graph: &Url, sender: &Address) -> anyhow::Result<Url> {
    let mut url = graph.join("v1.0/users/")?;
    url.path_segments_mut()
        .map_err(|_| anyhow::anyhow!("the Graph endpoint {graph} cannot have a path"))?
        .pop_if_empty()
        .push(sender.as_ref())
        .push("sendMail");
    Ok(url)
}

/// A connected Graph sender: the credential proved with a first token.
pub struct GraphSender {
    client: ArmClient,
    url: Url,
    scope: String,
    run_dir: std::path::PathBuf,
}

impl GraphSender {
    /// Builds the HTTP client and the credential (a first token for Graph).
    /// `retries` after the first attempt, backoff from `base`.
    pub async fn connect(
        g: &GraphMail,
        run_dir: &Path,
        retries: u32,
        base: Duration,
    ) -> anyhow::Result<GraphSender> {
        let a = &g.azure;
        let http = auth::http_client(a.ca_text()?.as_deref(), a.request_timeout)?;
        let url = send_mail_url(&a.graph_endpoint, &g.sender)?;
        auth::check_bearer_url(&url)?;
        let tokens = auth::connect(&a.auth_config(), &http, &a.graph_scope).await?;
        Ok(GraphSender {
            client: ArmClient {
                http,
                tokens: Arc::new(tokens),
                pacer: pacing::Pacer::new(),
                policy: retry::RetryPolicy {
                    max_attempts: retries.saturating_add(1),
                    base,
                    ..Default::default()
                },
                stats: stats::StatsHandle::default(),
            },
            url,
            scope: a.graph_scope.clone(),
            run_dir: run_dir.to_path_buf(),
        })
    }

    /// Sends one message; `Err` says why it was not accepted (never a token), and for
    /// a refusal of the sender what to check.
    pub async fn send(&self, eml: &[u8], to: &Address, label: &str) -> Result<(), String> {
        let m = message(eml, to, &self.run_dir, MAX_REQUEST_BYTES).map_err(|e| {
            format!(
                "not a message Graph can send: {}",
                crate::exit::render_error(&e)
            )
        })?;
        if !m.left_out.is_empty() {
            let names: Vec<&str> = m.left_out.iter().map(|(n, _)| n.as_str()).collect();
            tracing::warn!(file = label, left_out = %names.join(", "), "mail: attachments over Microsoft Graph's 4 MB limit left out; the body says where they are");
        }
        self.client
            .call(
                TABLE,
                Method::POST,
                &self.url,
                &self.scope,
                Some(&m.body),
                false,
            )
            .await
            .map(|_| ())
            .map_err(|e| match e.status {
                Some(403) => format!(
                    "{e}; the job's identity may not send as this mailbox: grant it Microsoft Graph's Mail.Send application permission and put the mailbox in its Exchange scope (RBAC for Applications or an application access policy; README \"Mail through Microsoft Graph\")"
                ),
                Some(404) => format!(
                    "{e}; no such mailbox: --mail-from must be a user or shared mailbox of the tenant"
                ),
                _ => e.to_string(),
            })
    }

    /// Requests made and retries, for the closing log line.
    pub fn counts(&self) -> (u64, u64, u64) {
        let s = self.client.stats.snapshot();
        s.tables
            .get(TABLE)
            .map(|t| (t.requests, t.retries, t.throttled_429))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::message::{header::ContentType, Attachment, Mailbox, MultiPart};

    fn eml(attachments: &[(&str, usize)]) -> Vec<u8> {
        let mut mixed = MultiPart::mixed().multipart(MultiPart::alternative_plain_html(
            "plain text".to_string(),
            "<html><body><p>Dear owner</p></body></html>".to_string(),
        ));
        for (name, size) in attachments {
            mixed = mixed.singlepart(
                Attachment::new(name.to_string())
                    .body(vec![b'x'; *size], ContentType::parse("text/csv").unwrap()),
            );
        }
        lettre::Message::builder()
            .from("AKS audit <audit@contoso.com>".parse::<Mailbox>().unwrap())
            .to("owner@contoso.com".parse::<Mailbox>().unwrap())
            .subject("AKS identity audit: 2 clusters, 1 high")
            .message_id(Some("<abc.123@contoso.com>".into()))
            .multipart(mixed)
            .unwrap()
            .formatted()
    }

    fn to() -> Address {
        "owner@contoso.com".parse().unwrap()
    }

    #[test]
    fn a_message_becomes_graphs_shape() {
        let m = message(
            &eml(&[("findings.csv", 10)]),
            &to(),
            Path::new("/out"),
            MAX_REQUEST_BYTES,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&m.body).unwrap();
        let msg = &v["message"];
        assert_eq!(msg["subject"], "AKS identity audit: 2 clusters, 1 high");
        assert_eq!(msg["body"]["contentType"], "HTML");
        assert!(msg["body"]["content"]
            .as_str()
            .unwrap()
            .contains("Dear owner"));
        assert_eq!(
            msg["toRecipients"][0]["emailAddress"]["address"],
            "owner@contoso.com"
        );
        assert_eq!(msg["toRecipients"].as_array().unwrap().len(), 1);
        assert_eq!(msg["internetMessageId"], "<abc.123@contoso.com>");
        let a = &msg["attachments"][0];
        assert_eq!(a["@odata.type"], "#microsoft.graph.fileAttachment");
        assert_eq!(a["name"], "findings.csv");
        assert_eq!(a["contentType"], "text/csv");
        assert_eq!(a["contentBytes"], "eHh4eHh4eHh4eA==");
        assert!(m.left_out.is_empty());
    }

    #[test]
    fn over_the_limit_the_largest_attachment_is_left_out_and_named_in_the_body() {
        let limit = 200 * 1024;
        let m = message(
            &eml(&[("report.html", 150 * 1024), ("findings.csv", 10)]),
            &to(),
            Path::new("/reports/run-1"),
            limit,
        )
        .unwrap();
        assert!(m.body.len() <= limit);
        assert_eq!(m.left_out, vec![("report.html".to_string(), 150 * 1024)]);
        let v: Value = serde_json::from_slice(&m.body).unwrap();
        let body = v["message"]["body"]["content"].as_str().unwrap();
        assert!(body.contains("/reports/run-1/report.html"), "{body}");
        assert!(body.contains("4 MB"), "{body}");
        let names: Vec<&str> = v["message"]["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["findings.csv"]);
    }

    #[test]
    fn a_subject_cannot_carry_a_line_break() {
        let raw = b"From: a@contoso.com\r\nTo: owner@contoso.com\r\nSubject: hi\r\n =?utf-8?q?there=0D=0ABcc=3A_evil=40x=2Ecom?=\r\n\r\nbody\r\n";
        let m = message(raw, &to(), Path::new("/out"), MAX_REQUEST_BYTES).unwrap();
        let v: Value = serde_json::from_slice(&m.body).unwrap();
        let s = v["message"]["subject"].as_str().unwrap();
        assert!(!s.contains('\r') && !s.contains('\n'), "{s:?}");
        assert_eq!(v["message"]["body"]["contentType"], "Text");
        assert!(v["message"].get("ccRecipients").is_none());
        assert!(v["message"].get("bccRecipients").is_none());
    }

    #[test]
    fn the_url_names_the_sender_mailbox() {
        let u = send_mail_url(
            &Url::parse("https://graph.microsoft.com/").unwrap(),
            &"aks-audit@contoso.com".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(
            u.as_str(),
            "https://graph.microsoft.com/v1.0/users/aks-audit@contoso.com/sendMail"
        );
    }
}
