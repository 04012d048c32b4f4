//! Issue 16, security: nothing leaked. Files are private, no planted link is followed,
//! secrets never reach an error or a log line, hostile names cannot forge output.
use std::path::Path;
use std::process::{Command, Output};

use crate::support::{bin, root, stderr, BIN};

/// The binary under `umask 022` (the usual default), without the caller's config.
fn audit_with_umask_022(args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(BIN)
        .args(args)
        .env_remove("AKS_AUDIT_CONFIG")
        .env_remove("AKS_AUDIT_LOG")
        .env_remove("AKS_AUDIT_SMTP_PASSWORD")
        .output()
        .unwrap()
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Reports, outbox and state: files 0600, the folders the tool creates 0700, under the
/// default umask 022 (which used to leave them all world-readable).
#[cfg(unix)]
#[test]
fn reports_outbox_and_state_are_private_under_umask_022() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("reports/night-1");
    let state = tmp.path().join("state/audit");
    let inv = root().join("tests/fixtures/mail-owners");
    let o = audit_with_umask_022(&[
        "run",
        "--inventory",
        inv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--allowed-domain",
        "contoso.com",
        "--admin",
        "sec@corp.example.com",
    ]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    for d in [
        tmp.path().join("reports"),
        out.clone(),
        out.join("outbox"),
        tmp.path().join("state"),
        state.clone(),
    ] {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }
    let mut files = 0;
    for d in [&out, &out.join("outbox"), &state] {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_file() {
                files += 1;
                assert_eq!(mode(&p), 0o600, "{}", p.display());
            }
        }
    }
    // The six reports, the messages, state.json and runs.csv.
    assert!(files >= 6 + 2 + 2, "{files}");
    assert!(state.join("state.json").is_file() && state.join("runs.csv").is_file());
}

/// A token endpoint whose error echoes the request (client secret included, raw and
/// form-encoded): the secret is in neither the error line nor any log line, plain or JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echoed_client_secret_is_masked_in_errors_and_logs() {
    use azure_emulator::Tenant;
    // `~`, `+` and `/` are percent-encoded in the form body the credential sends.
    const SECRET: &str = "Echo8Q~s3cr3t+Value/9f2c";
    let encoded: String = url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
    assert_ne!(encoded, SECRET);
    let e = crate::live::serve(Tenant::demo(), None, "token-echo").await;
    for format in ["plain", "json"] {
        let o = e
            .audit_with(
                &[
                    "--auth",
                    "client-secret",
                    "--log-level",
                    "trace",
                    "--log-format",
                    format,
                ],
                &["--out", &e.out(format).display().to_string()],
                &[("AZURE_CLIENT_SECRET", SECRET.to_string())],
            )
            .await;
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{}", crate::live::text(&o));
        assert!(err.contains("AADSTS7000215"), "the echo reached us: {err}");
        assert!(err.contains("***"), "masked: {err}");
        for form in [SECRET, &encoded, &encoded.to_lowercase()] {
            assert!(
                !err.contains(form),
                "{format}: secret ({form}) in stderr: {err}"
            );
        }
        assert!(!String::from_utf8_lossy(&o.stdout).contains("Echo8Q"));
    }
}

/// The same through the library: the error `connect` returns does not hold the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth_error_string_holds_no_echoed_secret() {
    use aks_identity_audit::azure::auth::{connect, http_client, AuthConfig};
    use aks_identity_audit::azure::{AuthMode, ExplicitSecret, Secret};
    use azure_emulator::Tenant;
    const SECRET: &str = "Lib8Q~echoed+Secret/77aa";
    let e = crate::live::serve(Tenant::demo(), None, "token-echo").await;
    let http = http_client(
        Some(&std::fs::read_to_string(&e.ca).unwrap()),
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    let cfg = AuthConfig {
        mode: AuthMode::ClientSecret,
        authority_host: Some(e.emu.url()),
        cloud_authority_host: e.emu.url(),
        tenant_id: Some("tenant-1".into()),
        explicit_secret: Some(ExplicitSecret {
            tenant_id: "tenant-1".into(),
            client_id: "auditor".into(),
            secret: Secret::new(SECRET),
        }),
    };
    let err = connect(&cfg, &http, "https://management.azure.com/.default")
        .await
        .unwrap_err();
    let encoded: String = url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
    for text in [format!("{err}"), format!("{err:#}"), format!("{err:?}")] {
        assert!(text.contains("AADSTS7000215"), "{text}");
        assert!(
            !text.contains(SECRET) && !text.contains(&encoded) && !text.contains("Lib8Q"),
            "{text}"
        );
    }
}

/// A plain-http listener that counts the requests it gets and answers with forged data.
fn plain_http_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = r#"{"value":[{"forged":true}]}"#;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, hits)
}

/// The run's HTTP client follows no redirect from https to http (its reply would be used
/// as data); https to https is still followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_client_refuses_a_redirect_from_https_to_http() {
    use aks_identity_audit::azure::auth::http_client;
    use axum::response::IntoResponse;
    use azure_emulator::tls;

    let (plain, hits) = plain_http_server();
    let material = tls::generate().unwrap();
    let config = tls::server_config(&material).await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let to_http = format!("http://127.0.0.1:{plain}/subscriptions");
    let app = axum::Router::new()
        .route(
            "/down",
            axum::routing::get(move || {
                let to = to_http.clone();
                async move {
                    (
                        axum::http::StatusCode::FOUND,
                        [(axum::http::header::LOCATION, to)],
                    )
                        .into_response()
                }
            }),
        )
        .route(
            "/hop",
            axum::routing::get(|| async {
                (
                    axum::http::StatusCode::TEMPORARY_REDIRECT,
                    [(axum::http::header::LOCATION, "/ok")],
                )
                    .into_response()
            }),
        )
        .route("/ok", axum::routing::get(|| async { "fine" }));
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener, config)
        .unwrap()
        .handle(handle.clone());
    tokio::spawn(server.serve(app.into_make_service()));

    let http = http_client(Some(&material.ca_pem), std::time::Duration::from_secs(10)).unwrap();
    let base = format!("https://localhost:{port}");
    // https -> https: followed.
    let ok = http.get(format!("{base}/hop")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "fine");
    // https -> http: an error, and the plain server never asked.
    let e = http
        .get(format!("{base}/down"))
        .bearer_auth("emu.token")
        .send()
        .await
        .unwrap_err();
    assert!(e.is_redirect(), "{e:?}");
    let chain = format!("{:?}", anyhow::Error::from(e));
    assert!(chain.contains("downgrade"), "{chain}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    handle.shutdown();
}

/// The mail-owners fixture with one cluster whose name and owner tag hold a newline, an
/// escape sequence and a C1 control.
fn hostile_inventory(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let src = root().join("tests/fixtures/mail-owners");
    for f in [
        "resource-groups.json",
        "subscriptions.json",
        "role-assignments.json",
    ] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let mut clusters: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(src.join("clusters.json")).unwrap()).unwrap();
    clusters.truncate(1);
    clusters[0]["name"] = "evil\n2026-01-01T00:00:00Z ERROR forged\u{1b}[31mred\u{9b}2J".into();
    clusters[0]["tags"]["owner"] = "nobody\r\nINFO forged owner\u{1b}]0;title\u{7}".into();
    std::fs::write(
        dir.join("clusters.json"),
        serde_json::to_string_pretty(&clusters).unwrap(),
    )
    .unwrap();
}

/// Plain logs: a newline in a cluster name or owner tag forges no record, no escape
/// sequence reaches the terminal.
#[test]
fn plain_logs_escape_control_characters_of_names() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = tmp.path().join("inv");
    hostile_inventory(&inv);
    let out = tmp.path().join("out");
    let o = bin()
        .args([
            "--log-format",
            "plain",
            "--log-level",
            "debug",
            "run",
            "--inventory",
        ])
        .arg(&inv)
        .arg("--out")
        .arg(&out)
        .args([
            "--allowed-domain",
            "contoso.com",
            "--admin",
            "sec@corp.example.com",
        ])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{err}");
    // The hostile values were logged (escaped), so the test exercises something.
    assert!(
        err.contains("nobody\\r\\nINFO forged owner\\u{1b}]0;title\\u{7}"),
        "{err}"
    );
    assert!(!err.contains('\u{1b}') && !err.contains('\u{9b}') && !err.contains('\u{7}'));
    assert!(!err.contains('\r'), "{err:?}");
    // Every line is a record of its own: timestamp, level.
    let record =
        regex::Regex::new(r"^\d{4}-\d\d-\d\dT[0-9:.]+Z +(TRACE|DEBUG|INFO|WARN|ERROR) ").unwrap();
    for line in err.lines() {
        assert!(record.is_match(line), "not a record of its own: {line:?}");
        assert!(
            !line.contains("forged") || !line.starts_with("INFO"),
            "{line:?}"
        );
    }
}

/// CSV and HTML carry no NUL, ESC or C1 byte from the data; the remediation targets the
/// exact name (C1 as its UTF-8 bytes) or, for a NUL, refuses to run.
#[test]
fn reports_escape_control_characters_and_remediation_targets_the_exact_name() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = tmp.path().join("inv");
    std::fs::create_dir_all(&inv).unwrap();
    let src = root().join("tests/fixtures/mail-owners");
    let mut clusters: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(src.join("clusters.json")).unwrap()).unwrap();
    clusters.truncate(2);
    clusters[0]["name"] = "evil\u{85}c1\u{1b}[31m\u{9b}2J".into();
    clusters[1]["name"] = "victim\u{0}-other".into();
    std::fs::write(
        inv.join("clusters.json"),
        serde_json::to_string(&clusters).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        src.join("role-assignments.json"),
        inv.join("role-assignments.json"),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let o = bin()
        .args(["run", "--no-email", "--inventory"])
        .arg(&inv)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    for f in ["clusters.csv", "findings.csv", "report.html"] {
        let bytes = std::fs::read(out.join(f)).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        for c in ['\u{0}', '\u{1b}', '\u{85}', '\u{9b}'] {
            assert!(!text.contains(c), "{f}: {c:?}");
        }
        assert!(text.contains(r"evil\u{85}c1\u{1b}[31m\u{9b}2J"), "{f}");
    }
    let findings = std::fs::read_to_string(out.join("findings.csv")).unwrap();
    assert!(
        findings.contains(r"--name $'evil\xc2\x85c1\x1b[31m\xc2\x9b2J'"),
        "{findings}"
    );
    assert!(
        findings.contains("AKS_AUDIT_UNQUOTABLE:?a value holds a NUL character"),
        "{findings}"
    );
    assert!(!findings.contains("--name victim"), "{findings}");
}

/// `resend` reads regular files only from the outbox: a planted link (here to a valid
/// message elsewhere) is never read and sent.
#[cfg(unix)]
#[test]
fn the_outbox_lists_no_planted_link() {
    use aks_identity_audit::mail::outbox;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let message = "From: aks-audit@contoso.com\r\nTo: a@contoso.com\r\nSubject: x\r\n\r\nx\r\n";
    outbox::write(&out, "0001-a@contoso.com.eml", message.as_bytes()).unwrap();
    let elsewhere = tmp.path().join("elsewhere.eml");
    std::fs::write(&elsewhere, message).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join("outbox/0002-b@contoso.com.eml")).unwrap();
    let pending = outbox::pending(&out).unwrap();
    assert_eq!(pending, [out.join("outbox/0001-a@contoso.com.eml")]);
}

/// Workload identity: the federated token (the client assertion in the request body)
/// echoed by the token endpoint is masked too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echoed_federated_token_is_masked() {
    use azure_emulator::Tenant;
    const FEDERATED: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJlY2hvZWQtZmVkZXJhdGVkIn0.c2lnLWVjaG8";
    let e = crate::live::serve(Tenant::demo(), None, "token-echo").await;
    let token_file = e.out("federated-token");
    std::fs::write(&token_file, FEDERATED).unwrap();
    let o = e
        .audit_with(
            &["--auth", "workload-identity", "--log-level", "trace"],
            &["--out", &e.out("r").display().to_string()],
            &[(
                "AZURE_FEDERATED_TOKEN_FILE",
                token_file.display().to_string(),
            )],
        )
        .await;
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{}", crate::live::text(&o));
    assert!(
        err.contains("AADSTS7000215") && err.contains("***"),
        "{err}"
    );
    assert!(
        !err.contains(FEDERATED) && !err.contains("c2lnLWVjaG8"),
        "{err}"
    );
}
