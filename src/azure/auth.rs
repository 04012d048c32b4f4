//! Authentication with `azure_identity` credentials, tried in order for `--auth auto`,
//! the HTTP client every call shares (with the optional extra CA), the token cache in
//! front of the credential, and the rules that keep tokens and secrets private.
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential};
use azure_core::http::{ClientOptions, RetryOptions, Transport};
use azure_core::time::OffsetDateTime;
use url::Url;

/// A secret (client secret, access token): its `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// `--auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    /// Workload identity (if AZURE_FEDERATED_TOKEN_FILE is set), managed identity,
    /// client secret (if AZURE_CLIENT_SECRET is set), Azure CLI — the first that works.
    #[default]
    Auto,
    WorkloadIdentity,
    ManagedIdentity,
    ClientSecret,
    AzureCli,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Auto => "auto",
            AuthMode::WorkloadIdentity => "workload-identity",
            AuthMode::ManagedIdentity => "managed-identity",
            AuthMode::ClientSecret => "client-secret",
            AuthMode::AzureCli => "azure-cli",
        }
    }
}

/// Client-secret credentials given in code (the demo), instead of the environment.
#[derive(Debug, Clone)]
pub struct ExplicitSecret {
    pub tenant_id: String,
    pub client_id: String,
    pub secret: Secret,
}

/// What the credentials need to know.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// `None`: the cloud's default, or `AZURE_AUTHORITY_HOST` (read by azure_identity).
    pub authority_host: Option<String>,
    /// The cloud's authority host, used when `authority_host` is `None` and the
    /// environment does not set one.
    pub cloud_authority_host: String,
    pub tenant_id: Option<String>,
    pub explicit_secret: Option<ExplicitSecret>,
}

/// Whether `url` is `https`, or `http` to a loopback host: the only places a bearer token may go.
pub fn check_bearer_url(url: &Url) -> anyhow::Result<()> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        other => anyhow::bail!(
            "refusing to send a bearer token to {} over {other}: use https (plain http is allowed only to a loopback address)",
            url.host_str().unwrap_or("(no host)")
        ),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// The redirect policy of [`http_client`]: never from `https` to anything else.
///
/// Azure Resource Manager, Resource Graph, Microsoft Graph and the token endpoints do not
/// answer the calls this tool makes with redirects, so none is needed in normal
/// operation; `https` → `https` hops (a gateway or a moved endpoint) are still followed,
/// at most [`MAX_REDIRECTS`], and reqwest drops the `Authorization` header when the host
/// changes. A downgrade from `https` (to `http` or any other scheme) is refused: its reply
/// could be forged in transit and would be used as data.
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let from_https = attempt
            .previous()
            .last()
            .is_some_and(|u| u.scheme() == "https");
        if from_https && attempt.url().scheme() != "https" {
            let reason = format!(
                "refusing a redirect from https to {} ({}): a downgrade",
                attempt.url().scheme(),
                attempt.url().host_str().unwrap_or("(no host)")
            );
            attempt.error(reason)
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else {
            attempt.follow()
        }
    })
}

/// The one HTTP client of a run: ARM, Resource Graph, Graph and the credentials.
pub fn http_client(ca_pem: Option<&str>, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .redirect(redirect_policy())
        .connect_timeout(Duration::from_secs(10).min(timeout))
        .timeout(timeout)
        .pool_max_idle_per_host(8);
    if let Some(pem) = ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| anyhow::anyhow!("--ca-cert: not a PEM certificate: {e}"))?;
        anyhow::ensure!(
            !certs.is_empty(),
            "--ca-cert: no certificate in the PEM file"
        );
        b = b.tls_certs_merge(certs);
    }
    b.build()
        .map_err(|e| anyhow::anyhow!("building the HTTP client: {e}"))
}

fn client_options(http: &reqwest::Client, authority_host: Option<&str>) -> ClientOptions {
    let mut opts = ClientOptions {
        transport: Some(Transport::new(Arc::new(http.clone()))),
        // Our own loop retries ARM calls; a failing token endpoint should fail fast
        // and say why rather than back off silently.
        retry: RetryOptions::none(),
        ..Default::default()
    };
    if let Some(host) = authority_host {
        let mut custom = azure_core::cloud::CustomConfiguration::default();
        custom.authority_host = host.to_string();
        opts.cloud = Some(Arc::new(azure_core::cloud::CloudConfiguration::Custom(
            custom,
        )));
    }
    opts
}

type Factory = Arc<dyn Fn() -> azure_core::Result<Arc<dyn TokenCredential>> + Send + Sync>;

/// A credential with a token cache in front: a token is reused until less than five
/// minutes are left; [`TokenProvider::refresh`] rebuilds the credential (dropping its
/// own cache) after a 401 `ExpiredAuthenticationToken`.
pub struct TokenProvider {
    /// Which credential won (`client-secret`, ...).
    pub source: &'static str,
    factory: Factory,
    inner: tokio::sync::Mutex<(Arc<dyn TokenCredential>, HashMap<String, AccessToken>)>,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

const REFRESH_AHEAD: Duration = Duration::from_secs(300);

fn fresh(t: &AccessToken) -> bool {
    t.expires_on > OffsetDateTime::now_utc() + REFRESH_AHEAD
}

impl TokenProvider {
    /// A token for `scope` (e.g. `https://management.azure.com/.default`).
    pub async fn token(&self, scope: &str) -> anyhow::Result<Secret> {
        let mut g = self.inner.lock().await;
        if let Some(t) = g.1.get(scope).filter(|t| fresh(t)) {
            return Ok(Secret::new(t.token.secret()));
        }
        let t = g.0.get_token(&[scope], None).await.map_err(|e| {
            anyhow::anyhow!(
                "getting a token ({}): {}",
                self.source,
                one_line(&e.to_string())
            )
        })?;
        // An access token is a secret too: masked wherever a server echoes it back.
        crate::redact::register(t.token.secret());
        let s = Secret::new(t.token.secret());
        g.1.insert(scope.to_string(), t);
        Ok(s)
    }

    /// Forgets every cached token and rebuilds the credential.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let cred = (self.factory)().map_err(|e| {
            anyhow::anyhow!(
                "rebuilding the {} credential: {}",
                self.source,
                one_line(&e.to_string())
            )
        })?;
        let mut g = self.inner.lock().await;
        *g = (cred, HashMap::new());
        Ok(())
    }
}

/// `s` on one line, every known secret masked ([`crate::redact`]): an error from a token
/// endpoint may echo the request, client secret included.
fn one_line(s: &str) -> String {
    let s = crate::redact::redact(s);
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::redact::redact(&joined).into_owned()
}

/// Registers the secrets this run's credentials may send, so no error or log line shows
/// them: the client secret and the federated token (read again at each rebuild).
fn register_secrets(cfg: &AuthConfig) {
    if let Some(e) = &cfg.explicit_secret {
        crate::redact::register(e.secret.expose());
    }
    if let Some(s) = env("AZURE_CLIENT_SECRET") {
        crate::redact::register(&s);
    }
    if let Some(f) = env("AZURE_FEDERATED_TOKEN_FILE") {
        register_token_file(&f);
    }
}

fn register_token_file(path: &str) {
    if let Ok(t) = std::fs::read_to_string(path) {
        crate::redact::register(t.trim());
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The factory for one credential kind, or why it does not apply.
fn factory(kind: AuthMode, cfg: &AuthConfig, http: &reqwest::Client) -> Result<Factory, String> {
    let authority = cfg
        .authority_host
        .clone()
        .or_else(|| env("AZURE_AUTHORITY_HOST"))
        .unwrap_or_else(|| cfg.cloud_authority_host.clone());
    let opts = {
        let http = http.clone();
        let authority = authority.clone();
        move || client_options(&http, Some(&authority))
    };
    match kind {
        AuthMode::WorkloadIdentity => {
            let token_file =
                env("AZURE_FEDERATED_TOKEN_FILE").ok_or("AZURE_FEDERATED_TOKEN_FILE is not set")?;
            let client_id = env("AZURE_CLIENT_ID").ok_or("AZURE_CLIENT_ID is not set")?;
            let tenant_id = cfg
                .tenant_id
                .clone()
                .or_else(|| env("AZURE_TENANT_ID"))
                .ok_or("AZURE_TENANT_ID is not set (or give --tenant-id)")?;
            Ok(Arc::new(move || {
                register_token_file(&token_file);
                let c: Arc<dyn TokenCredential> = azure_identity::WorkloadIdentityCredential::new(
                    Some(azure_identity::WorkloadIdentityCredentialOptions {
                        credential_options: azure_identity::ClientAssertionCredentialOptions {
                            client_options: opts(),
                        },
                        client_id: Some(client_id.clone()),
                        tenant_id: Some(tenant_id.clone()),
                        token_file_path: Some(token_file.clone().into()),
                    }),
                )?;
                Ok(c)
            }))
        }
        AuthMode::ManagedIdentity => {
            let user_assigned =
                env("AZURE_CLIENT_ID").map(azure_identity::UserAssignedId::ClientId);
            let http = http.clone();
            Ok(Arc::new(move || {
                let c: Arc<dyn TokenCredential> = azure_identity::ManagedIdentityCredential::new(
                    Some(azure_identity::ManagedIdentityCredentialOptions {
                        user_assigned_id: user_assigned.clone(),
                        client_options: client_options(&http, None),
                    }),
                )?;
                Ok(c)
            }))
        }
        AuthMode::ClientSecret => {
            let (tenant_id, client_id, secret) = match &cfg.explicit_secret {
                Some(e) => (e.tenant_id.clone(), e.client_id.clone(), e.secret.clone()),
                None => {
                    let secret = env("AZURE_CLIENT_SECRET")
                        .map(Secret::new)
                        .ok_or("AZURE_CLIENT_SECRET is not set")?;
                    let client_id = env("AZURE_CLIENT_ID").ok_or("AZURE_CLIENT_ID is not set")?;
                    let tenant_id = cfg
                        .tenant_id
                        .clone()
                        .or_else(|| env("AZURE_TENANT_ID"))
                        .ok_or("AZURE_TENANT_ID is not set (or give --tenant-id)")?;
                    (tenant_id, client_id, secret)
                }
            };
            Ok(Arc::new(move || {
                let c: Arc<dyn TokenCredential> = azure_identity::ClientSecretCredential::new(
                    &tenant_id,
                    client_id.clone(),
                    secret.expose().to_string().into(),
                    Some(azure_identity::ClientSecretCredentialOptions {
                        client_options: opts(),
                    }),
                )?;
                Ok(c)
            }))
        }
        AuthMode::AzureCli => {
            let tenant_id = cfg.tenant_id.clone();
            Ok(Arc::new(move || {
                let c: Arc<dyn TokenCredential> = azure_identity::AzureCliCredential::new(Some(
                    azure_identity::AzureCliCredentialOptions {
                        tenant_id: tenant_id.clone(),
                        ..Default::default()
                    },
                ))?;
                Ok(c)
            }))
        }
        AuthMode::Auto => Err("`auto` is not a credential".into()),
    }
}

/// Tries one credential: builds it and gets a first token within `limit`.
async fn attempt(
    kind: AuthMode,
    cfg: &AuthConfig,
    http: &reqwest::Client,
    scope: &str,
    limit: Duration,
) -> Result<TokenProvider, String> {
    let f = factory(kind, cfg, http)?;
    let cred = f().map_err(|e| one_line(&e.to_string()))?;
    // Whatever the server said, no known secret in the reason (one_line masks them).
    let token = match tokio::time::timeout(limit, cred.get_token(&[scope], None)).await {
        Err(_) => return Err(format!("no answer within {} s", limit.as_secs())),
        Ok(Err(e)) => return Err(one_line(&e.to_string())),
        Ok(Ok(t)) => t,
    };
    crate::redact::register(token.token.secret());
    let mut cache = HashMap::new();
    cache.insert(scope.to_string(), token);
    Ok(TokenProvider {
        source: kind.as_str(),
        factory: f,
        inner: tokio::sync::Mutex::new((cred, cache)),
    })
}

/// The auto order and the condition for each step.
const AUTO_ORDER: [AuthMode; 4] = [
    AuthMode::WorkloadIdentity,
    AuthMode::ManagedIdentity,
    AuthMode::ClientSecret,
    AuthMode::AzureCli,
];

/// Builds the credential for `cfg.mode` and proves it with a first token for `scope`.
/// For `auto`, every attempt and its reason is listed when none works.
pub async fn connect(
    cfg: &AuthConfig,
    http: &reqwest::Client,
    scope: &str,
) -> anyhow::Result<TokenProvider> {
    register_secrets(cfg);
    if cfg.mode != AuthMode::Auto {
        return attempt(cfg.mode, cfg, http, scope, Duration::from_secs(60))
            .await
            .map_err(|reason| {
                anyhow::anyhow!("authentication ({}) failed: {reason}", cfg.mode.as_str())
            });
    }
    let mut failures = Vec::new();
    for kind in AUTO_ORDER {
        let skip = match kind {
            AuthMode::WorkloadIdentity if env("AZURE_FEDERATED_TOKEN_FILE").is_none() => {
                Some("AZURE_FEDERATED_TOKEN_FILE is not set")
            }
            AuthMode::ClientSecret
                if env("AZURE_CLIENT_SECRET").is_none() && cfg.explicit_secret.is_none() =>
            {
                Some("AZURE_CLIENT_SECRET is not set")
            }
            _ => None,
        };
        if let Some(why) = skip {
            failures.push(format!("{}: skipped, {why}", kind.as_str()));
            continue;
        }
        // The VM metadata endpoint does not answer off Azure: do not wait long for it.
        let limit = match kind {
            AuthMode::ManagedIdentity if env("IDENTITY_ENDPOINT").is_none() => {
                Duration::from_secs(3)
            }
            _ => Duration::from_secs(30),
        };
        match attempt(kind, cfg, http, scope, limit).await {
            Ok(p) => {
                tracing::info!(credential = kind.as_str(), "authenticated");
                return Ok(p);
            }
            Err(reason) => {
                tracing::debug!(credential = kind.as_str(), %reason, "credential did not work");
                failures.push(format!("{}: {reason}", kind.as_str()));
            }
        }
    }
    anyhow::bail!(
        "no credential worked (--auth auto tried, in order):\n  - {}",
        failures.join("\n  - ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        let e = ExplicitSecret {
            tenant_id: "t".into(),
            client_id: "c".into(),
            secret: s.clone(),
        };
        let dbg = format!("{e:?}");
        assert!(!dbg.contains("hunter2") && dbg.contains("***"), "{dbg}");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn bearer_only_over_https_or_loopback() {
        let ok = |u: &str| check_bearer_url(&Url::parse(u).unwrap()).is_ok();
        assert!(ok("https://management.azure.com"));
        assert!(ok("http://127.0.0.1:8080"));
        assert!(ok("http://[::1]:8080"));
        assert!(ok("http://localhost:1"));
        assert!(!ok("http://management.azure.com"));
        assert!(!ok("http://10.0.0.1"));
        assert!(!ok("ftp://127.0.0.1"));
        let e = check_bearer_url(&Url::parse("http://example.com").unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("refusing") && e.contains("example.com"), "{e}");
    }

    #[test]
    fn bad_ca_is_a_clear_error() {
        let e = http_client(Some("not a pem"), Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--ca-cert"), "{e}");
    }

    #[tokio::test]
    async fn explicit_mode_reports_what_is_missing() {
        let cfg = AuthConfig {
            mode: AuthMode::WorkloadIdentity,
            authority_host: Some("https://127.0.0.1:9".into()),
            cloud_authority_host: "https://login.microsoftonline.com".into(),
            tenant_id: None,
            explicit_secret: None,
        };
        // Only meaningful where the CI environment has no workload identity.
        if std::env::var("AZURE_FEDERATED_TOKEN_FILE").is_err() {
            let http = http_client(None, Duration::from_secs(2)).unwrap();
            let e = connect(&cfg, &http, "https://management.azure.com/.default")
                .await
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("workload-identity") && e.contains("AZURE_FEDERATED_TOKEN_FILE"),
                "{e}"
            );
        }
    }
}
