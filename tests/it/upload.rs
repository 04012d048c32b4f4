//! `--upload` against **Azurite** (Microsoft's Azure Storage emulator, npm `azurite`,
//! installed by `scripts/setup-test-tools.sh` into `tests/.tools/azurite`), over HTTPS
//! with OAuth (`azurite-blob --oauth basic --cert --key`). The job's token for
//! `https://storage.azure.com/.default` comes from the project's emulator (client
//! secret), which issues JWT-shaped tokens for that audience as Azurite's basic mode
//! requires (issuer `https://sts.windows.net/...`, audience, `nbf`/`exp`/`iat`).
//! Mail goes through the emulator's Graph `sendMail`.
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

use crate::live::{serve, Emu, SECRET};
use crate::support::{self, bin, root, stderr};

const ACCOUNT: &str = "devstoreaccount1";
const CONTAINER: &str = "reports";
const PREFIX: &str = "aks/prod";
const ADMIN: &str = "sec@corp.example.com";

/// One Azurite blob service over HTTPS with basic OAuth, its data in `location`.
struct Azurite {
    child: Option<Child>,
    port: u16,
    location: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Azurite {
    /// Starts Azurite with a fresh CA and leaf (the emulator's generator); returns it
    /// with the CA's PEM.
    fn start(dir: &Path) -> (Azurite, String) {
        let bin = root().join("tests/.tools/azurite/node_modules/.bin/azurite-blob");
        assert!(
            bin.exists(),
            "{} missing: run scripts/setup-test-tools.sh",
            bin.display()
        );
        let tls = azure_emulator::tls::generate().unwrap();
        let cert = dir.join("azurite-cert.pem");
        let key = dir.join("azurite-key.pem");
        std::fs::write(&cert, &tls.leaf_pem).unwrap();
        std::fs::write(&key, &tls.leaf_key_pem).unwrap();
        let location = dir.join("azurite-data");
        std::fs::create_dir_all(&location).unwrap();
        let mut a = Azurite {
            child: None,
            port: free_port(),
            location,
            cert,
            key,
        };
        a.resume();
        (a, tls.ca_pem)
    }

    /// (Re)starts the process on the same port and data.
    fn resume(&mut self) {
        let bin = root().join("tests/.tools/azurite/node_modules/.bin/azurite-blob");
        let child = Command::new(bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort"])
            .arg(self.port.to_string())
            .arg("--location")
            .arg(&self.location)
            .args(["--oauth", "basic", "--cert"])
            .arg(&self.cert)
            .arg("--key")
            .arg(&self.key)
            .args(["--silent", "--disableTelemetry"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "Azurite did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn container_url(&self) -> String {
        format!("https://127.0.0.1:{}/{ACCOUNT}/{CONTAINER}", self.port)
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A JWT-shaped token Azurite's basic OAuth accepts (it checks claims, not the
/// signature): what the test itself uses to create the container and list blobs.
fn test_token() -> String {
    let b = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let now = chrono::Utc::now().timestamp();
    format!(
        "{}.{}.sig",
        b(serde_json::json!({"typ": "JWT", "alg": "none"})),
        b(serde_json::json!({"aud": "https://storage.azure.com",
            "iss": "https://sts.windows.net/tenant-1/", "iat": now - 60, "nbf": now - 60,
            "exp": now + 3600}))
    )
}

fn client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

async fn create_container(a: &Azurite, ca_pem: &str) {
    let r = client(ca_pem)
        .put(format!("{}?restype=container", a.container_url()))
        .bearer_auth(test_token())
        .header("x-ms-version", "2025-01-05")
        .send()
        .await
        .unwrap();
    // 409 ContainerAlreadyExists: Azurite kept it across a restart.
    assert!(
        matches!(r.status().as_u16(), 201 | 409),
        "{}",
        r.text().await.unwrap()
    );
}

/// Every blob of the container: (name, content type).
async fn list(a: &Azurite, ca_pem: &str) -> Vec<(String, String)> {
    let r = client(ca_pem)
        .get(format!("{}?restype=container&comp=list", a.container_url()))
        .bearer_auth(test_token())
        .header("x-ms-version", "2025-01-05")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let xml = r.text().await.unwrap();
    let tag = |s: &str, t: &str| -> String {
        let open = format!("<{t}>");
        let start = s.find(&open).map(|i| i + open.len()).unwrap_or(0);
        let end = s[start..].find(&format!("</{t}>")).unwrap_or(0);
        s[start..start + end].to_string()
    };
    xml.split("<Blob>")
        .skip(1)
        .map(|b| (tag(b, "Name"), tag(b, "Content-Type")))
        .collect()
}

async fn download(a: &Azurite, ca_pem: &str, blob: &str) -> Vec<u8> {
    let r = client(ca_pem)
        .get(format!("{}/{blob}", a.container_url()))
        .bearer_auth(test_token())
        .header("x-ms-version", "2025-01-05")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{blob}");
    r.bytes().await.unwrap().to_vec()
}

/// `run` over the mail-owners fixture, mailing through `emu`'s Graph, uploading to
/// `upload`, trusting `bundle` (the emulator's CA and Azurite's).
async fn audit(emu: &Emu, bundle: &Path, out: &Path, run_id: &str, upload: &str) -> Output {
    audit_env(emu, bundle, out, run_id, upload, &[], "2").await
}

async fn audit_env(
    emu: &Emu,
    bundle: &Path,
    out: &Path,
    run_id: &str,
    upload: &str,
    env: &[(&str, &str)],
    max_attempts: &str,
) -> Output {
    let url = emu.emu.url();
    let mut c = bin();
    c.args(["--log-format", "json", "run", "--inventory"])
        .arg(support::fixture("mail-owners"))
        .arg("--out")
        .arg(out)
        .args(["--allowed-domain", "contoso.com", "--admin", ADMIN])
        .args([
            "--mail-via",
            "graph",
            "--mail-from",
            "AKS audit <aks-audit@contoso.com>",
        ])
        .args(["--graph-endpoint", &url, "--authority-host", &url])
        .arg("--ca-cert")
        .arg(bundle)
        .args(["--auth", "client-secret", "--tenant-id", "tenant-1"])
        .args([
            "--run-id",
            run_id,
            "--max-attempts",
            max_attempts,
            "--upload",
            upload,
        ]);
    for k in [
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_AUTHORITY_HOST",
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "MSI_ENDPOINT",
    ] {
        c.env_remove(k);
    }
    c.env("AZURE_CLIENT_ID", "auditor")
        .env("AZURE_CLIENT_SECRET", SECRET);
    for (k, v) in env {
        c.env(k, v);
    }
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

fn report_files(out: &Path) -> Vec<String> {
    aks_identity_audit::upload::report_files(out)
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

fn assert_no_token(o: &Output) {
    let text = format!("{}{}", stderr(o), String::from_utf8_lossy(&o.stdout));
    assert!(!text.contains(SECRET), "the client secret was printed");
    // A JWT's header starts `eyJ` (base64 of `{"`); the opaque tokens `emu.`.
    assert!(!text.contains("eyJ"), "a storage token was printed");
    assert!(!text.contains("emu."), "an access token was printed");
    assert!(!text.to_lowercase().contains("bearer "), "{text}");
}

struct Setup {
    emu: Emu,
    azurite: Azurite,
    ca_pem: String,
    bundle: PathBuf,
}

async fn setup() -> Setup {
    let emu = serve(azure_emulator::Tenant::demo(), None, "").await;
    let (azurite, ca_pem) = Azurite::start(emu.dir.path());
    let bundle = emu.out("bundle.pem");
    std::fs::write(
        &bundle,
        format!("{}{}", std::fs::read_to_string(&emu.ca).unwrap(), ca_pem),
    )
    .unwrap();
    create_container(&azurite, &ca_pem).await;
    Setup {
        emu,
        azurite,
        ca_pem,
        bundle,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_report_file_goes_under_the_run_id_and_latest_with_its_content_type() {
    let s = setup().await;
    let out = s.emu.out("out");
    let upload = format!("{}/{PREFIX}", s.azurite.container_url());
    let o = audit(&s.emu, &s.bundle, &out, "run-1", &upload).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_no_token(&o);
    let files = report_files(&out);
    assert!(files.contains(&"report.html".to_string()), "{files:?}");
    assert!(files.iter().any(|f| f.ends_with(".csv")), "{files:?}");
    let blobs = list(&s.azurite, &s.ca_pem).await;
    for dir in ["run-1", "latest"] {
        let mut under: Vec<(String, String)> = blobs
            .iter()
            .filter_map(|(n, t)| {
                n.strip_prefix(&format!("{PREFIX}/{dir}/"))
                    .map(|f| (f.to_string(), t.clone()))
            })
            .collect();
        under.sort();
        let names: Vec<&str> = under.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, files, "blobs under {dir}/");
        for (name, ctype) in &under {
            let want = match name.rsplit('.').next() {
                Some("html") => "text/html; charset=utf-8",
                Some("csv") => "text/csv",
                Some("json") => "application/json",
                _ => "application/octet-stream",
            };
            assert_eq!(ctype, want, "{dir}/{name}");
        }
    }
    assert_eq!(blobs.len(), 2 * files.len(), "{blobs:?}");
    // The timing, for the record (never asserted).
    if let Some(l) = stderr(&o).lines().find(|l| l.contains("audit finished")) {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        eprintln!(
            "upload of {} files x2: {} ms (total {} ms)",
            files.len(),
            v["upload_ms"],
            v["total_ms"]
        );
    }
    let html = download(
        &s.azurite,
        &s.ca_pem,
        &format!("{PREFIX}/run-1/report.html"),
    )
    .await;
    assert_eq!(html, std::fs::read(out.join("report.html")).unwrap());
    // Mail went out too.
    let (msgs, _) = s.emu.emu.mail();
    assert!(!msgs.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn azurite_down_is_exit_3_mail_still_goes_and_the_next_run_uploads() {
    let mut s = setup().await;
    s.azurite.stop();
    let upload = s.azurite.container_url();
    let out1 = s.emu.out("out1");
    let o = audit(&s.emu, &s.bundle, &out1, "run-1", &upload).await;
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("report file not uploaded"), "{err}");
    assert_no_token(&o);
    let (msgs, _) = s.emu.emu.mail();
    assert!(
        msgs.iter()
            .any(|m| m["message"]["toRecipients"][0]["emailAddress"]["address"] == ADMIN),
        "the admin mail was not sent while Blob Storage was down"
    );

    s.azurite.resume();
    // Azurite saves its metadata on a timer: a killed one may have lost the container.
    create_container(&s.azurite, &s.ca_pem).await;
    let out2 = s.emu.out("out2");
    let o = audit(&s.emu, &s.bundle, &out2, "run-2", &upload).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let blobs = list(&s.azurite, &s.ca_pem).await;
    let files = report_files(&out2);
    for f in &files {
        for dir in ["run-2", "latest"] {
            let name = format!("{dir}/{f}");
            assert!(
                blobs.iter().any(|(n, _)| *n == name),
                "{name} missing: {blobs:?}"
            );
        }
    }
    assert!(
        !blobs.iter().any(|(n, _)| n.starts_with("run-1/")),
        "{blobs:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sas_in_the_upload_url_is_refused_without_showing_it() {
    let o = bin()
        .args(["run", "--demo", "--upload"])
        .arg("https://acct.blob.core.windows.net/reports?sv=2024-11-04&sig=TOPSECRETSIG")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--upload"), "{err}");
    assert!(!err.contains("TOPSECRETSIG"), "{err}");
}

/// The committed block ids of `blob` (Get Block List).
async fn committed_blocks(a: &Azurite, ca_pem: &str, blob: &str) -> Vec<String> {
    let r = client(ca_pem)
        .get(format!(
            "{}/{blob}?comp=blocklist&blocklisttype=committed",
            a.container_url()
        ))
        .bearer_auth(test_token())
        .header("x-ms-version", "2025-01-05")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{blob}");
    let xml = r.text().await.unwrap();
    xml.split("<Name>")
        .skip(1)
        .map(|s| s.split("</Name>").next().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn large_files_go_in_blocks_and_a_retried_run_re_puts_them_without_duplicating() {
    let s = setup().await;
    let upload = s.azurite.container_url();
    let env = [("AKS_AUDIT_TEST_UPLOAD_BLOCK_BYTES", "4096")];
    let out = s.emu.out("out");
    let o = audit_env(&s.emu, &s.bundle, &out, "run-1", &upload, &env, "2").await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let local = std::fs::read(out.join("report.html")).unwrap();
    assert!(
        local.len() > 2 * 4096,
        "report.html is {} bytes",
        local.len()
    );
    let want_blocks = local.len().div_ceil(4096);
    for blob in ["run-1/report.html", "latest/report.html"] {
        assert_eq!(download(&s.azurite, &s.ca_pem, blob).await, local, "{blob}");
        let blocks = committed_blocks(&s.azurite, &s.ca_pem, blob).await;
        assert_eq!(blocks.len(), want_blocks, "{blob}: {blocks:?}");
    }
    let ctype = list(&s.azurite, &s.ca_pem)
        .await
        .into_iter()
        .find(|(n, _)| n == "run-1/report.html")
        .unwrap()
        .1;
    assert_eq!(ctype, "text/html; charset=utf-8");
    // The same run id again (a retried Kubernetes Job): the same block ids re-put and
    // committed; the blob is the new file, not the old one with blocks appended.
    std::fs::remove_dir_all(&out).unwrap();
    let o = audit_env(&s.emu, &s.bundle, &out, "run-1", &upload, &env, "2").await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let again = std::fs::read(out.join("report.html")).unwrap();
    assert_eq!(
        download(&s.azurite, &s.ca_pem, "run-1/report.html").await,
        again
    );
    assert_eq!(
        committed_blocks(&s.azurite, &s.ca_pem, "run-1/report.html")
            .await
            .len(),
        again.len().div_ceil(4096)
    );
}

/// A TCP proxy to `port` that drops the first `drop_first` connections as soon as they
/// are accepted (a connection reset before any reply) and forwards the others
/// byte for byte (TLS passes through to Azurite).
async fn dropping_proxy(
    port: u16,
    drop_first: usize,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let p = l.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = l.accept().await {
            if counter.fetch_add(1, Ordering::SeqCst) < drop_first {
                drop(inbound);
                continue;
            }
            tokio::spawn(async move {
                if let Ok(mut up) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut up).await;
                }
            });
        }
    });
    (p, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_connections_are_retried_and_the_upload_completes() {
    let s = setup().await;
    let (port, seen) = dropping_proxy(s.azurite.port, 2).await;
    let upload = format!("https://127.0.0.1:{port}/{ACCOUNT}/{CONTAINER}");
    let out = s.emu.out("out");
    // Three attempts: the two dropped connections cost the first file two retries.
    let o = {
        let url = s.emu.emu.url();
        let mut cmd = bin();
        cmd.args(["--log-format", "json", "run", "--inventory"])
            .arg(support::fixture("mail-owners"))
            .arg("--out")
            .arg(&out)
            .args([
                "--no-email",
                "--authority-host",
                &url,
                "--graph-endpoint",
                &url,
            ])
            .arg("--ca-cert")
            .arg(&s.bundle)
            .args(["--auth", "client-secret", "--tenant-id", "tenant-1"])
            .args([
                "--run-id",
                "run-1",
                "--max-attempts",
                "3",
                "--upload",
                &upload,
            ])
            .env("AZURE_CLIENT_ID", "auditor")
            .env("AZURE_CLIENT_SECRET", SECRET)
            .env_remove("AZURE_FEDERATED_TOKEN_FILE")
            .env_remove("IDENTITY_ENDPOINT");
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    };
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(seen.load(std::sync::atomic::Ordering::SeqCst) > 2);
    let finished = err
        .lines()
        .find(|l| l.contains("upload finished"))
        .expect("upload finished line");
    let v: serde_json::Value = serde_json::from_str(finished).unwrap();
    assert_eq!(v["retries"], 2, "{finished}");
    assert_eq!(v["failed"], 0, "{finished}");
    let files = report_files(&out);
    assert_eq!(v["uploaded"], files.len(), "{finished}");
    assert_eq!(list(&s.azurite, &s.ca_pem).await.len(), 2 * files.len());
}

/// With `--upload-base-url` and a report too large for the linked budget (a generated
/// tenant of 1,000 clusters: report.html ~1.2 MB, the CSVs ~2 MB), the admin's Graph
/// message attaches at most 2 MiB and links the rest under the base URL.
#[tokio::test(flavor = "multi_thread")]
async fn the_admin_mail_links_the_uploaded_files_it_does_not_attach() {
    let s = setup().await;
    let inv = crate::live::tenant_dir(4, 1000, 3000);
    let out = s.emu.out("out");
    let url = s.emu.emu.url();
    let upload = format!("{}/{PREFIX}", s.azurite.container_url());
    let mut c = bin();
    c.args(["--log-format", "json", "run", "--inventory"])
        .arg(inv.path())
        .arg("--out")
        .arg(&out)
        .args(["--allowed-domain", "nowhere.invalid", "--admin", ADMIN])
        .args([
            "--mail-via",
            "graph",
            "--mail-from",
            "aks-audit@contoso.com",
        ])
        .args(["--graph-endpoint", &url, "--authority-host", &url])
        .arg("--ca-cert")
        .arg(&s.bundle)
        .args(["--auth", "client-secret", "--tenant-id", "tenant-1"])
        .args(["--run-id", "run-9", "--upload", &upload])
        .args(["--upload-base-url", "https://reports.contoso.com/audit"])
        .env("AZURE_CLIENT_ID", "auditor")
        .env("AZURE_CLIENT_SECRET", SECRET)
        .env_remove("AZURE_FEDERATED_TOKEN_FILE")
        .env_remove("IDENTITY_ENDPOINT");
    let o = tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap();
    let err = stderr(&o);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{err}");
    assert!(!err.contains("report file not uploaded"), "{err}");
    let (msgs, _) = s.emu.emu.mail();
    let admin = msgs
        .iter()
        .find(|m| m["message"]["toRecipients"][0]["emailAddress"]["address"] == ADMIN)
        .expect("the admin's message");
    let attached: Vec<(&str, usize)> = admin["message"]["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let b = a["contentBytes"].as_str().unwrap();
            (a["name"].as_str().unwrap(), b.len() / 4 * 3)
        })
        .collect();
    let total: usize = attached.iter().map(|(_, n)| n).sum();
    assert!(total <= 2 * 1024 * 1024, "{attached:?}");
    let body = admin["message"]["body"]["content"].as_str().unwrap();
    let mut linked = 0;
    for name in [
        "report.html",
        "clusters.csv",
        "findings.csv",
        "role-assignments.csv",
    ] {
        let link = format!("https://reports.contoso.com/audit/{PREFIX}/run-9/{name}");
        let is_attached = attached.iter().any(|(n, _)| *n == name);
        assert!(
            is_attached ^ body.contains(&link),
            "{name}: attached {is_attached}, linked {}",
            body.contains(&link)
        );
        linked += usize::from(!is_attached);
    }
    assert!(linked > 0, "nothing was linked: {attached:?}");
    // Nothing left for Graph to drop, and no path on the job's volume.
    assert!(!body.contains("Microsoft Graph accepts at most"), "{body}");
    assert!(!body.contains(&out.display().to_string()), "{body}");
}

/// A refusal as Blob Storage sends it: status, headers, XML body.
type Refusal = (u16, &'static [(&'static str, &'static str)], &'static str);

const SERVER_BUSY: Refusal = (
    503,
    &[("retry-after", "1"), ("x-ms-error-code", "ServerBusy")],
    "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ServerBusy</Code><Message>The server is busy.</Message></Error>",
);

/// A 429 with `Retry-After`, as a gateway or proxy in front of Blob Storage throttles
/// (Blob Storage itself answers 503 ServerBusy, above).
const TOO_MANY_REQUESTS: Refusal = (
    429,
    &[("retry-after", "1")],
    "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>TooManyRequests</Code><Message>Too many requests.</Message></Error>",
);

/// What Blob Storage answers a bearer token past its lifetime (the shape quoted in
/// Azure/azure-sdk-for-net issue 42859); Azurite answers 403 instead, so a proxy plays it.
const TOKEN_EXPIRED: Refusal = (
    401,
    &[("x-ms-error-code", "InvalidAuthenticationInfo"), ("www-authenticate", "Bearer authorization_uri=https://login.microsoftonline.com/tenant/oauth2/authorize resource_id=https://storage.azure.com")],
    "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>InvalidAuthenticationInfo</Code><Message>Server failed to authenticate the request. Please refer to the information in the www-authenticate header.\nRequestId:00000000-0000-0000-0000-000000000000\nTime:2026-12-04T00:00:00.0000000Z</Message><AuthenticationErrorDetail>Lifetime validation failed. The token is expired.</AuthenticationErrorDetail></Error>",
);

/// An HTTPS proxy to Azurite (its own certificate from `material`) that answers the
/// first `busy` requests with `refusal` (503 ServerBusy with `Retry-After: 1` as Blob
/// Storage throttles, an expired token...) and forwards the others.
async fn refusing_proxy(
    azurite_port: u16,
    azurite_ca: &str,
    material: &azure_emulator::tls::TlsMaterial,
    busy: usize,
    refusal: Refusal,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::response::IntoResponse;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let served = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    let upstream = client(azurite_ca);
    let handler = move |req: axum::extract::Request| {
        let counter = counter.clone();
        let upstream = upstream.clone();
        async move {
            if counter.fetch_add(1, Ordering::SeqCst) < busy {
                let (status, headers, body) = refusal;
                let mut r =
                    (axum::http::StatusCode::from_u16(status).unwrap(), body).into_response();
                for (k, v) in headers {
                    r.headers_mut().insert(*k, v.parse().unwrap());
                }
                return r;
            }
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let path = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let mut rb = upstream.request(
                parts.method.clone(),
                format!("https://127.0.0.1:{azurite_port}{path}"),
            );
            for (k, v) in &parts.headers {
                if k != "host" && k != "content-length" {
                    rb = rb.header(k, v);
                }
            }
            let r = rb.body(body).send().await.unwrap();
            let status = r.status();
            let bytes = r.bytes().await.unwrap();
            (status, bytes).into_response()
        }
    };
    let app = axum::Router::new().fallback(handler);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = azure_emulator::tls::server_config(material).await.unwrap();
    let server = axum_server::from_tcp_rustls(listener, config).unwrap();
    tokio::spawn(server.serve(app.into_make_service()));
    (port, served)
}

/// What one upload through [`refusing_proxy`] did.
struct Refused {
    err: String,
    /// The `upload finished` log line.
    finished: serde_json::Value,
    /// Requests the proxy saw.
    served: usize,
    /// Report files of the run.
    files: usize,
    /// Blobs in the container afterwards.
    listed: usize,
}

/// A run uploading through a proxy that answers the first `refused` requests with
/// `refusal`; it must succeed (exit 0) and print no token.
async fn upload_through(refused: usize, refusal: Refusal) -> Refused {
    let s = setup().await;
    let material = azure_emulator::tls::generate().unwrap();
    let (port, served) =
        refusing_proxy(s.azurite.port, &s.ca_pem, &material, refused, refusal).await;
    let bundle = s.emu.out("bundle-proxy.pem");
    std::fs::write(
        &bundle,
        format!(
            "{}{}",
            std::fs::read_to_string(&s.bundle).unwrap(),
            material.ca_pem
        ),
    )
    .unwrap();
    let upload = format!("https://127.0.0.1:{port}/{ACCOUNT}/{CONTAINER}");
    let out = s.emu.out("out");
    let o = audit_env(&s.emu, &bundle, &out, "run-1", &upload, &[], "3").await;
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_no_token(&o);
    let finished = err
        .lines()
        .find(|l| l.contains("upload finished"))
        .expect("upload finished line");
    let finished: serde_json::Value = serde_json::from_str(finished).unwrap();
    Refused {
        finished,
        served: served.load(std::sync::atomic::Ordering::SeqCst),
        files: report_files(&out).len(),
        listed: list(&s.azurite, &s.ca_pem).await.len(),
        err,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_503_with_retry_after_is_retried_and_the_upload_completes() {
    // Three attempts: the first file is refused twice, then goes through.
    let r = upload_through(2, SERVER_BUSY).await;
    let finished = &r.finished;
    assert_eq!(finished["retries"], 2, "{finished}");
    assert_eq!(finished["failed"], 0, "{finished}");
    assert_eq!(r.served, 2 + 2 * r.files);
    assert_eq!(r.listed, 2 * r.files);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_renewed_once_and_the_upload_completes() {
    // Blob Storage says the token expired: one new token, the same request again
    // (not counted as a retry), and everything arrives.
    let r = upload_through(1, TOKEN_EXPIRED).await;
    let finished = &r.finished;
    assert_eq!(finished["retries"], 0, "{finished}");
    assert!(r.err.contains("token rejected as expired"), "{}", r.err);
    assert_eq!(finished["failed"], 0, "{finished}");
    assert_eq!(r.served, 1 + 2 * r.files);
    assert_eq!(r.listed, 2 * r.files);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_with_retry_after_is_retried_and_the_upload_completes() {
    let r = upload_through(2, TOO_MANY_REQUESTS).await;
    let finished = &r.finished;
    assert_eq!(finished["retries"], 2, "{finished}");
    assert_eq!(finished["failed"], 0, "{finished}");
    assert_eq!(r.served, 2 + 2 * r.files);
    assert_eq!(
        r.listed,
        2 * r.files,
        "every file once under the run and latest/"
    );
}
