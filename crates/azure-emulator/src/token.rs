//! Token endpoints: Entra client credentials (secret or federated assertion), the
//! App Service managed-identity protocol, IMDS, and bearer validation.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use axum::response::Response;
use rand::distr::Alphanumeric;
use rand::Rng;
use serde_json::{json, Value};

use super::server::{arm_error, json_reply, Req, State};

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub client_id: String,
    /// The resource the token was asked for (`https://graph.microsoft.com`): the
    /// `scope` without `/.default`, or the managed identity's `resource`.
    pub audience: String,
    /// When the emulator stops accepting it.
    pub dies_at: Instant,
    pub dies_at_unix: u64,
}

/// Tokens the emulator issued.
#[derive(Debug, Default)]
pub struct TokenStore {
    tokens: Mutex<HashMap<String, TokenInfo>>,
}

pub fn random_string(n: usize) -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Issues a token; returns (token, lifetime stated to the client in seconds).
fn issue(state: &State, client_id: &str, audience: &str) -> (String, u64) {
    let f = &state.faults;
    let stated = f.token_expiry.map(|d| d.as_secs()).unwrap_or(3600);
    let real = f
        .token_revoke
        .or(f.token_expiry)
        .unwrap_or(Duration::from_secs(3600));
    let aud = audience_of(audience);
    let token = if aud == STORAGE_AUDIENCE {
        storage_jwt(client_id, &aud, real.as_secs())
    } else {
        format!("emu.{}", random_string(48))
    };
    let info = TokenInfo {
        client_id: client_id.to_string(),
        audience: aud,
        dies_at: Instant::now() + real,
        dies_at_unix: unix_now() + real.as_secs(),
    };
    if let Ok(mut t) = state.tokens.tokens.lock() {
        t.retain(|_, i| i.dies_at + Duration::from_secs(3600) > Instant::now());
        t.insert(token.clone(), info);
    }
    state.stat(|s| s.tokens_issued += 1);
    (token, stated)
}

/// The audience of Azure Storage's data plane (Blob).
pub const STORAGE_AUDIENCE: &str = "https://storage.azure.com";

/// The tenant named in the issuer of the storage tokens (the emulator's own).
pub const STORAGE_TOKEN_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/// A JWT-shaped token for the storage audience. Storage clients never look inside a
/// token, but Azurite's `--oauth basic` mode decodes it (no signature check) and
/// requires `iss` to start with `https://sts.windows.net/`, `aud` to be the storage
/// audience and `nbf`/`exp`/`iat` to bracket now (Azurite 3.37
/// `BlobTokenAuthenticator`). The signature part is random, so the token is as
/// unguessable as the opaque ones.
fn storage_jwt(client_id: &str, aud: &str, lifetime: u64) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let now = unix_now();
    let header = json!({"typ": "JWT", "alg": "none"});
    let claims = json!({
        "aud": aud,
        "iss": format!("https://sts.windows.net/{STORAGE_TOKEN_TENANT}/"),
        "iat": now.saturating_sub(60),
        "nbf": now.saturating_sub(60),
        "exp": now + lifetime,
        "appid": client_id,
        "oid": client_id,
        "tid": STORAGE_TOKEN_TENANT,
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        random_string(43)
    )
}

/// `https://graph.microsoft.com/.default` or `https://graph.microsoft.com/` →
/// `https://graph.microsoft.com` (the first of several space-separated scopes).
pub fn audience_of(scope_or_resource: &str) -> String {
    let first = scope_or_resource
        .split_whitespace()
        .next()
        .unwrap_or_default();
    first
        .strip_suffix("/.default")
        .unwrap_or(first)
        .trim_end_matches('/')
        .to_string()
}

/// Why a bearer was refused.
pub(crate) enum BearerError {
    Missing,
    Invalid,
    Expired(u64),
}

/// The client id behind a valid `Authorization: Bearer` header.
pub(crate) fn check_bearer(state: &State, req: &Req) -> Result<String, BearerError> {
    bearer_info(state, req).map(|i| i.client_id)
}

/// What the emulator knows of a valid `Authorization: Bearer` token.
pub(crate) fn bearer_info(state: &State, req: &Req) -> Result<TokenInfo, BearerError> {
    let header = req
        .headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .ok_or(BearerError::Missing)?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or(BearerError::Invalid)?
        .trim();
    let tokens = state
        .tokens
        .tokens
        .lock()
        .map_err(|_| BearerError::Invalid)?;
    let info = tokens.get(token).ok_or(BearerError::Invalid)?;
    if Instant::now() >= info.dies_at {
        return Err(BearerError::Expired(info.dies_at_unix));
    }
    Ok(info.clone())
}

/// ARM's 401 replies.
pub(crate) fn arm_unauthorized(e: BearerError) -> Response {
    let (code, msg) = match e {
        BearerError::Missing => (
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.".to_string(),
        ),
        BearerError::Invalid => (
            "InvalidAuthenticationToken",
            "The access token is invalid.".to_string(),
        ),
        BearerError::Expired(at) => (
            "ExpiredAuthenticationToken",
            format!(
                "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                fmt_unix(at),
                fmt_unix(unix_now())
            ),
        ),
    };
    let mut r = arm_error(StatusCode::UNAUTHORIZED, code, &msg);
    let www = format!(
        "Bearer authorization_uri=\"https://login.microsoftonline.com/common\", error=\"invalid_token\", error_description=\"{msg}\""
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&www) {
        r.headers_mut().insert("www-authenticate", v);
    }
    r
}

fn fmt_unix(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .map(|d| d.format("%m/%d/%Y %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn aadsts(status: StatusCode, error: &str, code: u32, description: &str) -> Response {
    let trace = uuid::Uuid::new_v4();
    let corr = uuid::Uuid::new_v4();
    let now = chrono::Utc::now();
    json_reply(
        status,
        &json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {description}\r\nTrace ID: {trace}\r\nCorrelation ID: {corr}\r\nTimestamp: {}",
                now.format("%Y-%m-%d %H:%M:%SZ")
            ),
            "error_codes": [code],
            "timestamp": now.format("%Y-%m-%d %H:%M:%SZ").to_string(),
            "trace_id": trace.to_string(),
            "correlation_id": corr.to_string(),
        }),
        &[],
    )
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) fn entra(state: &State, req: &Req) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect();
    let get = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if state.faults.token_echo {
        return aadsts(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided: '{}'. Request was: {}",
                get("client_secret").unwrap_or_default(),
                String::from_utf8_lossy(&req.body)
            ),
        );
    }
    let missing = |p: &str| {
        aadsts(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            &format!("The request body must contain the following parameter: '{p}'."),
        )
    };
    let Some(grant) = get("grant_type") else {
        return missing("grant_type");
    };
    if grant != "client_credentials" {
        return aadsts(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{grant}'."),
        );
    }
    let Some(client_id) = get("client_id") else {
        return missing("client_id");
    };
    let Some(scope) = get("scope") else {
        return missing("scope");
    };
    match (get("client_secret"), get("client_assertion")) {
        (Some(_), _) => {}
        (None, Some(_)) => {
            if get("client_assertion_type") != Some(ASSERTION_TYPE) {
                return aadsts(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    50027,
                    &format!("Invalid client_assertion_type; expected '{ASSERTION_TYPE}'."),
                );
            }
        }
        (None, None) => {
            return aadsts(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        }
    }
    let (token, expires_in) = issue(state, client_id, scope);
    json_reply(
        StatusCode::OK,
        &json!({"token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": expires_in,
                "access_token": token}),
        &[],
    )
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub(crate) fn openid(req: &Req) -> Response {
    let base = req.base_url();
    let tenant = req.segs.first().cloned().unwrap_or_default();
    json_reply(
        StatusCode::OK,
        &json!({
            "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
            "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
            "issuer": format!("{base}/{tenant}/v2.0"),
            "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "tenant_region_scope": "EU",
        }),
        &[],
    )
}

fn mi_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_reply(
        status,
        &json!({"error": error, "error_description": description}),
        &[],
    )
}

fn mi_client(req: &Req) -> String {
    req.query_param("client_id")
        .or_else(|| req.query_param("object_id"))
        .or_else(|| req.query_param("mi_res_id"))
        .unwrap_or_else(|| "system-assigned".into())
}

/// `GET /msi/token?api-version=2019-08-01&resource=...` with `x-identity-header`.
pub(crate) fn msi(state: &State, req: &Req) -> Response {
    let secret = req
        .headers
        .get("x-identity-header")
        .and_then(|h| h.to_str().ok());
    if secret != Some(state.msi_secret.as_str()) {
        return mi_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "The x-identity-header is missing or does not match the identity endpoint's secret.",
        );
    }
    let Some(resource) = req.query_param("resource").filter(|r| !r.is_empty()) else {
        return mi_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "resource is required",
        );
    };
    if req.query_param("api-version").as_deref() != Some("2019-08-01") {
        return mi_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "api-version 2019-08-01 is required",
        );
    }
    let (token, expires_in) = issue(state, &mi_client(req), &resource);
    json_reply(
        StatusCode::OK,
        &json!({"access_token": token, "expires_on": (unix_now() + expires_in).to_string(),
                "resource": resource, "token_type": "Bearer", "client_id": mi_client(req)}),
        &[],
    )
}

/// `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=...` with `Metadata: true`.
pub(crate) fn imds(state: &State, req: &Req) -> Response {
    if req.headers.get("metadata").and_then(|h| h.to_str().ok()) != Some("true") {
        return mi_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required metadata header not specified",
        );
    }
    let Some(resource) = req.query_param("resource").filter(|r| !r.is_empty()) else {
        return mi_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "resource is required",
        );
    };
    let (token, expires_in) = issue(state, &mi_client(req), &resource);
    let now = unix_now();
    let body: Value = json!({"access_token": token, "refresh_token": "", "expires_in": expires_in.to_string(),
        "expires_on": (now + expires_in).to_string(), "not_before": now.to_string(),
        "resource": resource, "token_type": "Bearer"});
    json_reply(StatusCode::OK, &body, &[])
}

#[cfg(test)]
mod audience_tests {
    #[test]
    fn storage_tokens_are_jwt_shaped_with_azurites_claims() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let t = super::storage_jwt("app-1", super::STORAGE_AUDIENCE, 3600);
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3, "{t}");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["aud"], "https://storage.azure.com");
        assert!(claims["iss"]
            .as_str()
            .unwrap()
            .starts_with("https://sts.windows.net/"));
        let (nbf, exp) = (
            claims["nbf"].as_u64().unwrap(),
            claims["exp"].as_u64().unwrap(),
        );
        let now = super::unix_now();
        assert!(nbf <= now && now < exp, "{claims}");
        assert_ne!(
            t,
            super::storage_jwt("app-1", super::STORAGE_AUDIENCE, 3600)
        );
    }

    use super::*;

    #[test]
    fn audiences_of_scopes_and_resources() {
        for s in [
            "https://graph.microsoft.com/.default",
            "https://graph.microsoft.com/",
            "https://graph.microsoft.com",
            "https://graph.microsoft.com/.default offline_access",
        ] {
            assert_eq!(audience_of(s), "https://graph.microsoft.com", "{s}");
        }
        assert_eq!(
            audience_of("https://management.azure.com/.default"),
            "https://management.azure.com"
        );
    }
}
