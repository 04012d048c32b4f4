//! Azure Monitor's Logs Ingestion API:
//! `POST /dataCollectionRules/{dcrImmutableId}/streams/{stream}?api-version=2023-01-01`.
//! The token's audience must be `https://monitor.azure.com`; the body is a JSON array of
//! objects, plain or `Content-Encoding: gzip`, at most 1 MB compressed and uncompressed
//! (413 over it, 400 for anything but an array of objects); accepted rows are stored
//! (204 No Content, as the service answers) and listed for tests at
//! `GET /_emulator/logs` (no token: a test surface, not Azure's).
//!
//! Like the service, the emulator has no idempotency key: a batch sent twice is stored
//! twice (what `logs-drop=N` makes a client do).
use std::io::Read;
use std::sync::atomic::Ordering;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::server::{json_reply, Req, State};
use super::token::{bearer_info, BearerError};

/// "Maximum size of API call: 1 MB. Both compressed and uncompressed data." (Azure
/// Monitor service limits). The emulator reads MB as 2^20 bytes, as Microsoft's SDKs
/// cut their chunks.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// The audience an ingestion token must have.
pub const MONITOR_AUDIENCE: &str = "https://monitor.azure.com";

/// API versions the service documents.
const API_VERSIONS: &[&str] = &["2023-01-01", "2021-11-01-preview"];

/// One stored row.
#[derive(Debug, Clone)]
pub struct StoredRow {
    pub dcr: String,
    pub stream: String,
    pub client_id: String,
    pub row: Value,
}

/// What the ingestion endpoint accepted.
#[derive(Debug, Default)]
pub struct Ingested {
    pub rows: Vec<StoredRow>,
    /// Requests accepted (204).
    pub batches: u64,
    /// Of those, how many came gzip-compressed.
    pub gzip_batches: u64,
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut r = json_reply(
        status,
        &json!({"error": {"code": code, "message": message}}),
        &[],
    );
    if let Ok(v) = HeaderValue::from_str(code) {
        r.headers_mut().insert("x-ms-error-code", v);
    }
    r
}

fn take(counter: &std::sync::atomic::AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

fn valid_dcr(id: &str) -> bool {
    id.strip_prefix("dcr-")
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A refusal: status, error code, message.
type Refusal = (StatusCode, &'static str, String);

/// The body, gunzipped when it says it is gzip; `Err` a refusal.
fn decode(req: &Req) -> Result<(Vec<u8>, bool), Refusal> {
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "ContentLengthLimitExceeded",
            "The request is over the 1 MB limit of a Logs Ingestion API call (compressed and uncompressed).".to_string(),
        )
    };
    if req.body.len() > MAX_REQUEST_BYTES {
        return Err(too_large());
    }
    let gzip = req
        .headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    if !gzip {
        return Ok((req.body.to_vec(), false));
    }
    let mut out = Vec::new();
    // One byte past the limit is enough to know it is over.
    let mut d = flate2::read::GzDecoder::new(&req.body[..]).take(MAX_REQUEST_BYTES as u64 + 1);
    d.read_to_end(&mut out).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            "InvalidContentEncoding",
            format!("Content-Encoding is gzip but the body does not decompress: {e}"),
        )
    })?;
    if out.len() > MAX_REQUEST_BYTES {
        return Err(too_large());
    }
    Ok((out, true))
}

/// `POST /dataCollectionRules/{dcr}/streams/{stream}`; `drop` when the fault says the
/// reply is to be cut after the rows were stored.
pub(crate) fn ingest(state: &State, req: &Req) -> (Response, bool) {
    let refuse = |r: Response| (r, false);
    let info = match bearer_info(state, req) {
        Ok(i) => i,
        Err(BearerError::Missing) => {
            return refuse(error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "An access token is required.",
            ))
        }
        Err(BearerError::Invalid) => {
            return refuse(error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "The access token is invalid.",
            ))
        }
        Err(BearerError::Expired(_)) => {
            return refuse(error(
                StatusCode::UNAUTHORIZED,
                "ExpiredAuthenticationToken",
                "The access token has expired.",
            ))
        }
    };
    if info.audience != MONITOR_AUDIENCE {
        return refuse(error(
            StatusCode::UNAUTHORIZED,
            "InvalidAudience",
            &format!(
                "The token's audience {} is not {MONITOR_AUDIENCE}.",
                info.audience
            ),
        ));
    }
    match req.query_param("api-version") {
        Some(v) if API_VERSIONS.contains(&v.as_str()) => {}
        other => {
            return refuse(error(
                StatusCode::BAD_REQUEST,
                "InvalidApiVersion",
                &format!(
                    "api-version {} is not supported; use 2023-01-01.",
                    other.unwrap_or_else(|| "(none)".into())
                ),
            ))
        }
    }
    // The path's own spelling: stream names keep their case.
    let segs: Vec<&str> = req
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (dcr, stream) = (segs[1].to_string(), segs[3].to_string());
    if !valid_dcr(&dcr) {
        return refuse(error(
            StatusCode::NOT_FOUND,
            "DataCollectionRuleNotFound",
            &format!("Data collection rule with immutable Id '{dcr}' not found."),
        ));
    }
    if !stream.starts_with("Custom-") {
        return refuse(error(
            StatusCode::NOT_FOUND,
            "InvalidStream",
            &format!("Stream '{stream}' is not declared by the data collection rule."),
        ));
    }
    let f = &state.logs_faults;
    if take(&f.throttle) {
        state.stat(|s| s.throttled_429 += 1);
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "Rate limit of requests per minute for the data collection rule exceeded.",
        );
        r.headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
        return refuse(r);
    }
    if take(&f.fail) {
        state.stat(|s| s.errors_5xx += 1);
        let n = f.failed.fetch_add(1, Ordering::SeqCst);
        let r = if n.is_multiple_of(2) {
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "The service is temporarily unavailable.",
            );
            r.headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            r
        } else {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "An internal error occurred.",
            )
        };
        return refuse(r);
    }
    let (body, gzip) = match decode(req) {
        Ok(b) => b,
        Err((status, code, message)) => return refuse(error(status, code, &message)),
    };
    let rows =
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Array(rows)) if rows.iter().all(Value::is_object) => rows,
            Ok(Value::Array(_)) => return refuse(error(
                StatusCode::BAD_REQUEST,
                "InvalidPayload",
                "Every element of the body must be a JSON object matching the stream's columns.",
            )),
            Ok(_) => {
                return refuse(error(
                    StatusCode::BAD_REQUEST,
                    "InvalidPayload",
                    "The body must be a JSON array of objects.",
                ))
            }
            Err(e) => {
                return refuse(error(
                    StatusCode::BAD_REQUEST,
                    "InvalidPayload",
                    &format!("The body is not JSON: {e}"),
                ))
            }
        };
    if let Ok(mut store) = state.ingested.lock() {
        store.batches += 1;
        store.gzip_batches += u64::from(gzip);
        store.rows.extend(rows.into_iter().map(|row| StoredRow {
            dcr: dcr.clone(),
            stream: stream.clone(),
            client_id: info.client_id.clone(),
            row,
        }));
    }
    let drop_it = take(&f.drop);
    (StatusCode::NO_CONTENT.into_response(), drop_it)
}

/// A stored row as the listing shows it.
pub fn row_json(r: &StoredRow) -> Value {
    json!({"dcr": r.dcr, "stream": r.stream, "clientId": r.client_id, "row": r.row})
}

/// `GET /_emulator/logs`: every stored row in order, with the batch counts.
pub(crate) fn list(state: &State) -> Response {
    let v = match state.ingested.lock() {
        Ok(s) => json!({
            "value": s.rows.iter().map(row_json).collect::<Vec<_>>(),
            "batches": s.batches,
            "gzipBatches": s.gzip_batches,
        }),
        Err(_) => json!({"value": [], "batches": 0, "gzipBatches": 0}),
    };
    json_reply(StatusCode::OK, &v, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_checked() {
        assert!(valid_dcr("dcr-00112233445566778899aabbccddeeff"));
        assert!(!valid_dcr("dcr-0011"));
        assert!(!valid_dcr("00112233445566778899aabbccddeeff"));
    }
}
