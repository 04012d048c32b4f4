//! `--upload https://ACCOUNT.blob.core.windows.net/CONTAINER[/prefix]`: every report file
//! of the run copied to Azure Blob Storage under `<prefix>/<run id>/` and again under
//! `<prefix>/latest/`, with a token for Storage (`https://storage.azure.com/.default`)
//! from the run's credential chain: no account key, no SAS.
//!
//! - REST through reqwest (Blob service `x-ms-version` [`API_VERSION`]): Put Blob for a
//!   file up to [`UploadSettings::block_size`], else Put Block + Put Block List.
//! - Block ids are deterministic (`base64("block-000000")`...), so a retried request or
//!   a retried run re-puts the same blocks under the same ids and commits the list:
//!   nothing half-written is ever visible (a blob changes only on the commit), nothing
//!   is appended twice. A retried run re-puts every block; it does not ask the service
//!   which uncommitted blocks it already holds.
//! - Retries: the ARM client's loop (429 and 503 after `Retry-After`, 500/502/504 and
//!   dropped connections with backoff, a new token after a 401 for an expired one).
//! - Never fails the run: each file that could not be uploaded is logged (blob name and
//!   reason, never a token) and counted; the run then exits 3 (a delivery gap).
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use reqwest::Method;
use url::Url;

use crate::azure::arg::ArmClient;
use crate::azure::{auth, pacing, retry, stats, AzureSettings};

/// The Blob service REST version sent as `x-ms-version` (supported by Azure and by
/// Azurite 3.37).
pub const API_VERSION: &str = "2025-01-05";

/// The token scope of Azure Storage's data plane.
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// Files up to this size go in one Put Blob; larger ones in blocks of this size.
pub const DEFAULT_BLOCK_SIZE: usize = 4 * 1024 * 1024;

/// The stats table name of Blob calls.
const TABLE: &str = "blob/upload";

/// Where reports go: the container URL (virtual-host or path-style) and the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https://acct.blob.core.windows.net/container/` or, path-style (Azurite, a
    /// private endpoint by IP), `https://127.0.0.1:10000/acct/container/`.
    pub container: Url,
    /// Without leading or trailing `/`; empty for the container's root.
    pub prefix: String,
}

fn valid_container(name: &str) -> bool {
    // Azure: 3-63 characters, lowercase letters, digits and single hyphens, starting
    // and ending with a letter or digit ("$root" and "$web" are the special ones).
    if name == "$root" || name == "$web" {
        return true;
    }
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

impl Target {
    /// Parses `--upload`. The account is the host's first label
    /// (`ACCOUNT.blob.core.windows.net/CONTAINER/...`), or, for an IP address or
    /// `localhost` (Azurite's and a private endpoint's path-style form), the first path
    /// segment (`https://127.0.0.1:10000/ACCOUNT/CONTAINER/...`). A query is refused
    /// and never shown: it would be a SAS, and the job authenticates with its identity.
    pub fn parse(raw: &str) -> Result<Target, String> {
        let raw = raw.trim();
        let url = Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
        if url.query().is_some() {
            return Err("has a query string (a SAS?); the value is not shown. Give the container URL only: the job authenticates with its Azure identity (Storage Blob Data Contributor)".into());
        }
        if url.scheme() != "https" {
            return Err(format!(
                "must be https (a bearer token goes with every request), not {}",
                url.scheme()
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry a user name or password".into());
        }
        if url.fragment().is_some() {
            return Err("must not have a #fragment".into());
        }
        let host = url.host_str().unwrap_or_default().to_string();
        let path_style = matches!(url.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)))
            || host == "localhost";
        let segs: Vec<&str> = url
            .path_segments()
            .map(|s| s.filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let (account_path, rest) = if path_style {
            match segs.split_first() {
                Some((acct, rest)) => (Some(*acct), rest),
                None => {
                    return Err(format!(
                        "`{host}` is an address: give https://{host}/ACCOUNT/CONTAINER (path-style)"
                    ))
                }
            }
        } else {
            if !host.contains(".blob.") {
                return Err(format!(
                    "`{host}` is not a Blob endpoint: give https://ACCOUNT.blob.core.windows.net/CONTAINER[/prefix]"
                ));
            }
            (None, &segs[..])
        };
        let Some((container, prefix)) = rest.split_first() else {
            return Err(
                "names no container: give https://ACCOUNT.blob.core.windows.net/CONTAINER[/prefix]"
                    .into(),
            );
        };
        if !valid_container(container) {
            return Err(format!(
                "`{container}` is not a container name (3-63 lowercase letters, digits and single hyphens)"
            ));
        }
        let mut base = url.clone();
        base.set_path(&match account_path {
            Some(a) => format!("/{a}/{container}/"),
            None => format!("/{container}/"),
        });
        Ok(Target {
            container: base,
            prefix: prefix.join("/"),
        })
    }

    /// The blob `dir/name` under the prefix.
    pub fn blob_name(&self, dir: &str, name: &str) -> String {
        if self.prefix.is_empty() {
            format!("{dir}/{name}")
        } else {
            format!("{}/{dir}/{name}", self.prefix)
        }
    }

    /// The URL of blob `name` (each segment percent-encoded).
    pub fn blob_url(&self, name: &str) -> Url {
        let mut u = self.container.clone();
        if let Ok(mut segs) = u.path_segments_mut() {
            segs.pop_if_empty();
            for s in name.split('/') {
                segs.push(s);
            }
        }
        u
    }
}

/// The content type a report file is stored with.
pub fn content_type(name: &str) -> &'static str {
    match Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("html") | Some("htm") => "text/html; charset=utf-8",
        Some("csv") => "text/csv",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Resolved `--upload` settings.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    pub target: Target,
    /// `--upload-base-url`: where the container's root is served to readers.
    pub base_url: Option<Url>,
    /// The run's endpoints, credential chain and CA (`config::settings` fills it).
    pub azure: AzureSettings,
    /// Put Blob up to this size; larger files in blocks of this size.
    pub block_size: usize,
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    pub backoff: Duration,
}

/// What the upload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Report files of the run uploaded (under both the run id and `latest/`).
    pub uploaded: usize,
    /// Report files not uploaded (under either name).
    pub failed: usize,
    /// Where readers find this run's files (`<base>/<prefix>/<run id>/`): only with
    /// `--upload-base-url` and every file uploaded.
    pub links: Option<Url>,
}

/// The run's mail settings, with the uploaded run folder to link when there is one.
pub fn with_links<'a>(
    mail: &'a crate::mail::MailSettings,
    o: &Outcome,
) -> std::borrow::Cow<'a, crate::mail::MailSettings> {
    match &o.links {
        Some(l) => std::borrow::Cow::Owned(crate::mail::MailSettings {
            report_links: Some(l.clone()),
            ..mail.clone()
        }),
        None => std::borrow::Cow::Borrowed(mail),
    }
}

/// The report files of `out_dir`: its regular files (the outbox folder and anything
/// else that is not a plain file stays out), sorted by name.
pub fn report_files(out_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(out_dir)? {
        let e = e?;
        if e.file_type()?.is_file() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            files.push(e.path());
        }
    }
    files.sort();
    Ok(files)
}

/// `<base>/<prefix>/<run id>/`.
pub fn run_folder_url(base: &Url, target: &Target, run_id: &str) -> Option<Url> {
    let mut u = base.clone();
    {
        let mut segs = u.path_segments_mut().ok()?;
        segs.pop_if_empty();
        for s in target.prefix.split('/').filter(|s| !s.is_empty()) {
            segs.push(s);
        }
        segs.push(run_id).push("");
    }
    Some(u)
}

/// Test hook: `AKS_AUDIT_TEST_UPLOAD_BLOCK_BYTES=N` puts files over N bytes in blocks
/// of N (the report files of a test are far below the 4 MiB of a real run).
fn test_block_size() -> Option<usize> {
    std::env::var("AKS_AUDIT_TEST_UPLOAD_BLOCK_BYTES")
        .ok()?
        .parse()
        .ok()
}

/// The block id of block `i` (same length for every block, as the service requires).
pub fn block_id(i: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("block-{i:06}"))
}

/// The Put Block List body committing blocks `0..n`.
pub fn block_list_xml(n: usize) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
    for i in 0..n {
        x.push_str("<Latest>");
        x.push_str(&block_id(i));
        x.push_str("</Latest>");
    }
    x.push_str("</BlockList>");
    x
}

struct Uploader {
    client: ArmClient,
    block_size: usize,
}

impl Uploader {
    async fn put(&self, url: &Url, bytes: &[u8], ctype: &str) -> Result<(), String> {
        let common = [
            ("x-ms-version", API_VERSION),
            ("x-ms-blob-content-type", ctype),
        ];
        if bytes.len() <= self.block_size {
            let mut h = common.to_vec();
            h.push(("x-ms-blob-type", "BlockBlob"));
            return self
                .client
                .call_with(
                    TABLE,
                    Method::PUT,
                    url,
                    STORAGE_SCOPE,
                    Some((bytes, ctype)),
                    &h,
                    false,
                )
                .await
                .map(|_| ())
                .map_err(|e| e.to_string());
        }
        let chunks: Vec<&[u8]> = bytes.chunks(self.block_size).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut u = url.clone();
            u.query_pairs_mut()
                .append_pair("comp", "block")
                .append_pair("blockid", &block_id(i));
            self.client
                .call_with(
                    TABLE,
                    Method::PUT,
                    &u,
                    STORAGE_SCOPE,
                    Some((chunk, "application/octet-stream")),
                    &[("x-ms-version", API_VERSION)],
                    false,
                )
                .await
                .map_err(|e| format!("block {i}: {e}"))?;
        }
        let mut u = url.clone();
        u.query_pairs_mut().append_pair("comp", "blocklist");
        let xml = block_list_xml(chunks.len());
        self.client
            .call_with(
                TABLE,
                Method::PUT,
                &u,
                STORAGE_SCOPE,
                Some((xml.as_bytes(), "application/xml")),
                &common,
                false,
            )
            .await
            .map(|_| ())
            .map_err(|e| format!("block list: {e}"))
    }
}

/// What to do about the refusals an operator can fix.
fn hint(e: String) -> String {
    if e.contains("ContainerNotFound") {
        format!("{e}; create the container first (the least-privilege role, Storage Blob Data Contributor on the container, cannot create it)")
    } else if e.contains("AuthorizationPermissionMismatch") || e.contains("AuthorizationFailure") {
        format!("{e}; grant the job's identity Storage Blob Data Contributor on the container (README \"Reports in Azure Blob Storage\")")
    } else {
        e
    }
}

/// Uploads every report file of `out_dir` under `<prefix>/<run_id>/` and then
/// `<prefix>/latest/`. Never fails: problems are logged and counted.
pub async fn upload(out_dir: &Path, run_id: &str, s: &UploadSettings) -> Outcome {
    let mut o = Outcome::default();
    let files = match report_files(out_dir) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(out = %out_dir.display(), error = %e, "upload: cannot list the report files; nothing uploaded");
            o.failed = 1;
            return o;
        }
    };
    let a = &s.azure;
    let connected = async {
        let http = auth::http_client(a.ca_text()?.as_deref(), a.request_timeout)?;
        auth::check_bearer_url(&s.target.container)?;
        let tokens = auth::connect(&a.auth_config(), &http, STORAGE_SCOPE).await?;
        anyhow::Ok(Uploader {
            client: ArmClient {
                http,
                tokens: Arc::new(tokens),
                pacer: pacing::Pacer::new(),
                policy: retry::RetryPolicy {
                    max_attempts: s.max_attempts.max(1),
                    base: s.backoff,
                    ..Default::default()
                },
                stats: stats::StatsHandle::default(),
            },
            block_size: test_block_size().unwrap_or(s.block_size).max(1),
        })
    }
    .await;
    let up = match connected {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(container = %s.target.container, error = %crate::exit::render_error(&e), "upload: no token for Azure Storage; no report file uploaded");
            o.failed = files.len().max(1);
            return o;
        }
    };
    for path in &files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "upload: cannot read the report file");
                o.failed += 1;
                continue;
            }
        };
        let ctype = content_type(&name);
        let mut ok = true;
        for dir in [run_id, "latest"] {
            let blob = s.target.blob_name(dir, &name);
            let url = s.target.blob_url(&blob);
            if let Err(e) = up.put(&url, &bytes, ctype).await {
                let e = hint(e);
                tracing::error!(blob = %blob, container = %s.target.container, error = %e, "upload: report file not uploaded");
                ok = false;
                // `latest/` keeps the previous run's file rather than a newer one of a
                // run that is not complete under its own id.
                break;
            }
        }
        if ok {
            o.uploaded += 1;
        } else {
            o.failed += 1;
        }
    }
    if o.failed == 0 {
        o.links = s
            .base_url
            .as_ref()
            .and_then(|b| run_folder_url(b, &s.target, run_id));
    }
    let st = up.client.stats.snapshot();
    let (requests, retries) = st
        .tables
        .get(TABLE)
        .map(|t| (t.requests, t.retries))
        .unwrap_or_default();
    tracing::info!(
        uploaded = o.uploaded,
        failed = o.failed,
        requests,
        retries,
        container = %s.target.container,
        prefix = %s.target.prefix,
        "upload finished"
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_urls_and_path_style_urls_parse() {
        let t =
            Target::parse("https://contosoaudit.blob.core.windows.net/reports/aks/prod").unwrap();
        assert_eq!(
            t.container.as_str(),
            "https://contosoaudit.blob.core.windows.net/reports/"
        );
        assert_eq!(t.prefix, "aks/prod");
        assert_eq!(t.blob_name("r1", "report.html"), "aks/prod/r1/report.html");
        let t = Target::parse("https://127.0.0.1:10000/devstoreaccount1/reports").unwrap();
        assert_eq!(
            t.container.as_str(),
            "https://127.0.0.1:10000/devstoreaccount1/reports/"
        );
        assert_eq!(t.prefix, "");
        assert_eq!(
            t.blob_url(&t.blob_name("latest", "findings.csv")).as_str(),
            "https://127.0.0.1:10000/devstoreaccount1/reports/latest/findings.csv"
        );
    }

    #[test]
    fn malformed_targets_say_what_is_wrong_and_never_show_a_sas() {
        let sas = "https://a.blob.core.windows.net/reports?sv=2024&sig=SECRETSIG";
        let e = Target::parse(sas).unwrap_err();
        assert!(e.contains("query"), "{e}");
        assert!(!e.contains("SECRETSIG"), "{e}");
        for (raw, says) in [
            ("http://a.blob.core.windows.net/reports", "https"),
            ("https://a.blob.core.windows.net/", "no container"),
            ("https://a.blob.core.windows.net/Reports", "container name"),
            (
                "https://a.blob.core.windows.net/re--ports",
                "container name",
            ),
            ("https://example.com/reports", "not a Blob endpoint"),
            ("https://127.0.0.1:10000/", "path-style"),
            ("https://127.0.0.1:10000/devstoreaccount1", "no container"),
            ("not a url", "not a URL"),
        ] {
            let e = Target::parse(raw).unwrap_err();
            assert!(e.contains(says), "{raw}: {e}");
        }
    }

    #[test]
    fn links_join_the_base_the_prefix_and_the_run_id() {
        let t = Target::parse("https://a.blob.core.windows.net/$web/aks/prod").unwrap();
        let base = Url::parse("https://a.z6.web.core.windows.net/").unwrap();
        let u = run_folder_url(&base, &t, "2026-01-15T0600Z").unwrap();
        assert_eq!(
            u.join("report.html").unwrap().as_str(),
            "https://a.z6.web.core.windows.net/aks/prod/2026-01-15T0600Z/report.html"
        );
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("report.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("findings.csv"), "text/csv");
        assert_eq!(content_type("report.json"), "application/json");
        assert_eq!(content_type("x.bin"), "application/octet-stream");
    }

    #[test]
    fn block_ids_are_deterministic_and_of_one_length() {
        assert_eq!(block_id(0), block_id(0));
        assert_ne!(block_id(0), block_id(1));
        assert_eq!(block_id(3).len(), block_id(999_999).len());
        let x = block_list_xml(2);
        assert!(
            x.contains(&format!(
                "<Latest>{}</Latest><Latest>{}</Latest>",
                block_id(0),
                block_id(1)
            )),
            "{x}"
        );
    }

    #[test]
    fn report_files_skip_folders_and_hidden_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("report.html"), "x").unwrap();
        std::fs::write(d.path().join("findings.csv"), "x").unwrap();
        std::fs::write(d.path().join(".lock"), "x").unwrap();
        std::fs::create_dir(d.path().join("outbox")).unwrap();
        let names: Vec<String> = report_files(d.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["findings.csv", "report.html"]);
    }
}
