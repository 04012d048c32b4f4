//! HTTPS server: shared state, request dispatch, the fault layer, statistics.
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::{
    arm, logs_ingestion, mail, ms_graph, resource_graph, tls, token, EmulatorConfig, Faults, Quota,
    Tenant,
};

/// Counters of one emulator run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub requests: u64,
    /// Requests per endpoint (`arg`, `token`, `msi`, `arm/subscriptions`, `arm/upgradeProfile`, ...).
    pub requests_per_path: BTreeMap<String, u64>,
    /// Resource Graph queries answered 200, per table.
    pub pages_per_table: BTreeMap<String, u64>,
    /// Rows served per table.
    pub rows_per_table: BTreeMap<String, u64>,
    /// Resource Graph queries received (any outcome), per table.
    pub queries_per_table: BTreeMap<String, u64>,
    pub throttled_429: u64,
    pub errors_5xx: u64,
    pub dropped_connections: u64,
    pub unauthorized_401: u64,
    pub tokens_issued: u64,
    /// Response body bytes sent (ARM, Resource Graph, Graph and token endpoints).
    pub bytes_sent: u64,
    /// PUT/PATCH/DELETE or POST to anything but a query, token, sendMail or logs ingestion endpoint.
    pub rejected_writes: u64,
}

impl Stats {
    pub fn summary(&self) -> String {
        format!(
            "{} requests, {} pages, {} 429s, {} 5xx, {} dropped, {} bytes, {} rejected writes",
            self.requests,
            self.pages_per_table.values().sum::<u64>(),
            self.throttled_429,
            self.errors_5xx,
            self.dropped_connections,
            self.bytes_sent,
            self.rejected_writes
        )
    }
}

pub(crate) struct Window {
    pub start: Instant,
    pub used: u32,
}

/// The `sendMail` faults still to come (`mail-429=N`, `mail-5xx=N`, `mail-drop=N`).
#[derive(Default)]
pub(crate) struct MailFaults {
    pub throttle: AtomicU32,
    pub fail: AtomicU32,
    /// 5xx answered so far (they alternate 503 and 504).
    pub failed: AtomicU32,
    pub drop: AtomicU32,
}

/// The Logs Ingestion faults still to come (`logs-429=N`, `logs-5xx=N`, `logs-drop=N`).
#[derive(Default)]
pub(crate) struct LogsFaults {
    pub throttle: AtomicU32,
    pub fail: AtomicU32,
    /// 5xx answered so far (they alternate 503 and 500).
    pub failed: AtomicU32,
    pub drop: AtomicU32,
}

pub(crate) struct State {
    pub tenant: Tenant,
    pub quota: Option<Quota>,
    pub faults: Faults,
    pub msi_secret: String,
    pub subs_page: usize,
    pub tokens: token::TokenStore,
    pub windows: Mutex<HashMap<String, Window>>,
    pub burst_left: AtomicU32,
    /// Graph batch requests left to answer 429 (`graph-batch-429=N`).
    pub graph_batch_429_left: AtomicU32,
    /// Slow replies left when `slow-requests=N` limits them.
    pub slow_left: AtomicU32,
    pub rng: Mutex<StdRng>,
    pub stats: Mutex<Stats>,
    pub cache: resource_graph::QueryCache,
    pub mail_faults: MailFaults,
    pub mailboxes: Mutex<mail::Mailboxes>,
    pub logs_faults: LogsFaults,
    pub ingested: Mutex<logs_ingestion::Ingested>,
}

impl State {
    pub(crate) fn stat(&self, f: impl FnOnce(&mut Stats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(&mut s);
        }
    }
}

/// A running emulator. Dropping it leaves the server running until the runtime ends;
/// call [`RunningEmulator::shutdown`] to stop it.
pub struct RunningEmulator {
    pub addr: SocketAddr,
    /// PEM of the CA that signed the server certificate.
    pub ca_pem: String,
    /// The secret `/msi/token` expects in `x-identity-header`.
    pub msi_secret: String,
    state: Arc<State>,
    handle: axum_server::Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for RunningEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEmulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningEmulator {
    /// `https://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Every message `sendMail` delivered (sender, client id, the Graph `message`), in
    /// order, and how many duplicates (same `internetMessageId` and recipients) were
    /// accepted without delivering them again: what `GET /_emulator/mail` lists.
    pub fn mail(&self) -> (Vec<Value>, u64) {
        self.state
            .mailboxes
            .lock()
            .map(|b| {
                (
                    b.delivered.iter().map(|d| d.json.clone()).collect(),
                    b.duplicates,
                )
            })
            .unwrap_or_default()
    }

    /// Every row the Logs Ingestion endpoint stored (`{dcr, stream, clientId, row}`),
    /// in order, and the accepted requests: what `GET /_emulator/logs` lists.
    pub fn logs(&self) -> (Vec<Value>, u64) {
        self.state
            .ingested
            .lock()
            .map(|s| {
                (
                    s.rows.iter().map(logs_ingestion::row_json).collect(),
                    s.batches,
                )
            })
            .unwrap_or_default()
    }

    pub fn stats(&self) -> Stats {
        self.state
            .stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    pub async fn shutdown(self) {
        self.handle
            .graceful_shutdown(Some(std::time::Duration::from_secs(1)));
        let _ = self.task.await;
    }
}

/// Starts the emulator on `config.listen`.
pub async fn start(config: EmulatorConfig) -> anyhow::Result<RunningEmulator> {
    let material = tls::generate()?;
    let rustls = tls::server_config(&material).await?;
    let listener = std::net::TcpListener::bind(config.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let msi_secret = config
        .msi_secret
        .clone()
        .unwrap_or_else(|| token::random_string(32));
    let tenant = config
        .tenant
        .with_malformed_clusters(config.faults.malformed_rows, config.faults.seed);
    let state = Arc::new(State {
        tenant,
        quota: config.quota,
        burst_left: AtomicU32::new(config.faults.burst_429),
        graph_batch_429_left: AtomicU32::new(config.faults.graph_batch_429),
        mail_faults: MailFaults {
            throttle: AtomicU32::new(config.faults.mail_429),
            fail: AtomicU32::new(config.faults.mail_5xx),
            failed: AtomicU32::new(0),
            drop: AtomicU32::new(config.faults.mail_drop),
        },
        logs_faults: LogsFaults {
            throttle: AtomicU32::new(config.faults.logs_429),
            fail: AtomicU32::new(config.faults.logs_5xx),
            failed: AtomicU32::new(0),
            drop: AtomicU32::new(config.faults.logs_drop),
        },
        ingested: Mutex::new(logs_ingestion::Ingested::default()),
        slow_left: AtomicU32::new(config.faults.slow_requests),
        rng: Mutex::new(StdRng::seed_from_u64(config.faults.seed)),
        faults: config.faults,
        msi_secret: msi_secret.clone(),
        subs_page: config.subscriptions_page_size.max(1),
        tokens: token::TokenStore::default(),
        windows: Mutex::new(HashMap::new()),
        stats: Mutex::new(Stats::default()),
        cache: resource_graph::QueryCache::default(),
        mailboxes: Mutex::new(mail::Mailboxes::default()),
    });
    // Above axum's 2 MB default: Graph's sendMail takes 4 MB, and the emulator answers a
    // larger request with Graph's own 413 (`mail::send_mail`), not axum's.
    let app = axum::Router::new()
        .fallback(dispatch)
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024))
        .with_state(state.clone());
    let handle = axum_server::Handle::new();
    // TCP_NODELAY: without it small replies wait on delayed ACKs (~40 ms a page).
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(rustls)
        .acceptor(axum_server::accept::NoDelayAcceptor::new());
    let server = axum_server::from_tcp(listener)?
        .acceptor(acceptor)
        .handle(handle.clone());
    let task = tokio::spawn(server.serve(app.into_make_service()));
    Ok(RunningEmulator {
        addr,
        ca_pem: material.ca_pem,
        msi_secret,
        state,
        handle,
        task,
    })
}

/// A request as the handlers see it.
pub(crate) struct Req {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Lower-cased path segments (without the leading empty one).
    pub segs: Vec<String>,
}

impl Req {
    pub(crate) fn query_param(&self, name: &str) -> Option<String> {
        let q = self.uri.query()?;
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.into_owned())
    }

    /// `https://host` as the client addressed us.
    pub(crate) fn base_url(&self) -> String {
        let host = self
            .headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| self.uri.authority().map(|a| a.to_string()))
            .unwrap_or_else(|| "localhost".into());
        format!("https://{host}")
    }
}

/// A JSON reply with extra headers.
pub(crate) fn json_reply(status: StatusCode, body: &Value, headers: &[(&str, String)]) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    for (k, v) in headers {
        if let (Ok(name), Ok(val)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.insert(name, val);
        }
    }
    resp
}

/// ARM-shaped error `{"error":{"code","message"}}`.
pub(crate) fn arm_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_reply(
        status,
        &json!({"error": {"code": code, "message": message}}),
        &[],
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Surface {
    Token,
    Service,
    /// The emulator's own test surface (`/_emulator/...`).
    Test,
}

async fn dispatch(
    AxState(state): AxState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let segs: Vec<String> = uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let req = Req {
        method,
        uri,
        headers,
        body,
        segs,
    };
    let s: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    let is_get = req.method == Method::GET || req.method == Method::HEAD;
    let is_post = req.method == Method::POST;
    let (name, surface) = match s.as_slice() {
        [_, "oauth2", "v2.0", "token"] if is_post => ("token", Surface::Token),
        [_, "v2.0", ".well-known", "openid-configuration"] if is_get => ("openid", Surface::Token),
        ["msi", "token"] if is_get => ("msi", Surface::Token),
        ["metadata", "identity", "oauth2", "token"] if is_get => ("imds", Surface::Token),
        ["providers", "microsoft.resourcegraph", "resources"] if is_post => {
            ("arg", Surface::Service)
        }
        ["subscriptions"] if is_get => ("arm/subscriptions", Surface::Service),
        ["subscriptions", _] if is_get => ("arm/subscription", Surface::Service),
        ["subscriptions", _, "resourcegroups", _, "providers", "microsoft.containerservice", "managedclusters", _, "agentpools", _, "upgradeprofiles", "default"]
            if is_get =>
        {
            ("arm/upgradeProfile", Surface::Service)
        }
        ["v1.0", "applications"] if is_get => ("graph/applications", Surface::Service),
        ["v1.0", "serviceprincipals", _, "transitivememberof", "microsoft.graph.group" | "graph.group"]
            if is_get =>
        {
            ("graph/transitiveMemberOf", Surface::Service)
        }
        // JSON batching: a POST that only reads (each request inside is a GET).
        ["v1.0", "$batch"] if is_post => ("graph/batch", Surface::Service),
        ["v1.0", "users", _, "sendmail"] if is_post => ("graph/sendMail", Surface::Service),
        ["datacollectionrules", _, "streams", _] if is_post => ("logs/ingest", Surface::Service),
        // For tests: what sendMail delivered. No faults, no token.
        ["_emulator", "mail"] if is_get => ("emulator/mail", Surface::Test),
        // For tests: what the Logs Ingestion API stored.
        ["_emulator", "logs"] if is_get => ("emulator/logs", Surface::Test),
        _ if is_get => ("unknown", Surface::Service),
        _ => ("write", Surface::Service),
    };
    state.stat(|st| {
        st.requests += 1;
        *st.requests_per_path.entry(name.to_string()).or_default() += 1;
    });
    if name == "write" {
        state.stat(|st| st.rejected_writes += 1);
        let resp = arm_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!(
                "The emulator is read-only: {} {} is not allowed.",
                req.method,
                req.uri.path()
            ),
        );
        return finish(&state, resp, false).await;
    }

    let mut drop_it = false;
    if surface == Surface::Service {
        if let Some(d) = state.faults.slow {
            let limited = state.faults.slow_requests > 0;
            if !limited
                || state
                    .slow_left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            {
                tokio::time::sleep(d).await;
            }
        }
        let (fail, drop) = {
            let mut rng = state.rng.lock().unwrap_or_else(|p| p.into_inner());
            let f = state.faults.error_5xx_percent > 0
                && rng.random_range(0..100u8) < state.faults.error_5xx_percent;
            let d = state.faults.drop_percent > 0
                && rng.random_range(0..100u8) < state.faults.drop_percent;
            let which = rng.random_bool(0.5);
            (f.then_some(which), d)
        };
        if let Some(which) = fail {
            state.stat(|st| st.errors_5xx += 1);
            let resp = if which {
                arm_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    "Encountered internal server error. Diagnostic information: timestamp '', subscription id '', tracking id '', request correlation id ''.",
                )
            } else {
                let mut r = arm_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "The service is temporarily unavailable. Please try again later.",
                );
                r.headers_mut()
                    .insert("retry-after", HeaderValue::from_static("1"));
                r
            };
            return finish(&state, resp, false).await;
        }
        drop_it = drop;
    }

    let resp = match name {
        "token" => token::entra(&state, &req),
        "openid" => token::openid(&req),
        "msi" => token::msi(&state, &req),
        "imds" => token::imds(&state, &req),
        "arg" => resource_graph::query(&state, &req).await,
        "arm/subscriptions" => arm::list_subscriptions(&state, &req),
        "arm/subscription" => arm::get_subscription(&state, &req),
        "arm/upgradeProfile" => arm::upgrade_profile(&state, &req),
        "graph/applications" => ms_graph::applications(&state, &req),
        "graph/transitiveMemberOf" => {
            let id = req
                .uri
                .path()
                .split('/')
                .nth(3)
                .unwrap_or_default()
                .to_string();
            ms_graph::transitive_member_of(&state, &req, &id)
        }
        "graph/batch" => ms_graph::batch(&state, &req).await,
        "graph/sendMail" => {
            let (resp, cut) = mail::send_mail(&state, &req);
            drop_it |= cut;
            resp
        }
        "emulator/mail" => mail::list(&state),
        "logs/ingest" => {
            let (resp, cut) = logs_ingestion::ingest(&state, &req);
            drop_it |= cut;
            resp
        }
        "emulator/logs" => logs_ingestion::list(&state),
        _ => arm_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("The emulator does not serve {}.", req.uri.path()),
        ),
    };
    finish(&state, resp, drop_it).await
}

/// Counts bytes and, for the drop fault, cuts the body half-way.
async fn finish(state: &State, resp: Response, drop_it: bool) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    if parts.status == StatusCode::UNAUTHORIZED {
        state.stat(|st| st.unauthorized_401 += 1);
    }
    if !drop_it {
        state.stat(|st| st.bytes_sent += bytes.len() as u64);
        return Response::from_parts(parts, Body::from(bytes));
    }
    state.stat(|st| {
        st.dropped_connections += 1;
        st.bytes_sent += (bytes.len() / 2) as u64;
    });
    parts
        .headers
        .insert("content-length", HeaderValue::from(bytes.len().max(2)));
    let half = bytes.slice(..bytes.len() / 2);
    let stream = futures::stream::iter(vec![
        Ok::<Bytes, std::io::Error>(half),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "emulator fault: connection dropped",
        )),
    ]);
    Response::from_parts(parts, Body::from_stream(stream))
}

/// Whether the token fault RNG etc. are needed outside: the burst counter.
pub(crate) fn take_burst(state: &State) -> bool {
    state
        .burst_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}
