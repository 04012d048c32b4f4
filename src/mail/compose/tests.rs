//! Tests of the parent module.
use super::*;

#[test]
fn header_text_strips_line_breaks() {
    assert_eq!(
        header_text("aks\r\nBcc: evil@x.com", 100),
        "aks Bcc: evil@x.com"
    );
    assert_eq!(header_text("  a \t b  ", 100), "a b");
    assert_eq!(header_text("abcdef", 3), "abc…");
}

#[test]
fn an_admin_message_attaches_what_fits_and_names_the_rest() {
    let report = crate::report::html::tests::tiny();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("report.html"), "<html></html>").unwrap();
    std::fs::write(dir.path().join("clusters.csv"), "a,b\r\n").unwrap();
    std::fs::write(dir.path().join("role-assignments.csv"), vec![b'x'; 5000]).unwrap();
    let plan = Plan {
        owners: vec![],
        unroutable: (0..UNROUTABLE_IN_BODY + 3)
            .map(|i| UnroutableRow {
                cluster_id: format!("/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c{i}"),
                cluster_name: format!("c{i}"),
                owner_source: "cluster tag owner".into(),
                raw: "nobody".into(),
                reason: "not an address".into(),
            })
            .collect(),
    };
    let admin: Address = "admin@contoso.com".parse().unwrap();
    let from: Mailbox = "audit@contoso.com".parse().unwrap();
    let unroutable_len = unroutable_csv(&plan.unroutable, &RenderOptions::default())
        .unwrap()
        .len() as u64;
    let m = admin_message_within(
        &report,
        &plan,
        &admin,
        &from,
        dir.path(),
        (false, Lang::En),
        unroutable_len + 100,
        None,
    )
    .unwrap();
    let text = String::from_utf8_lossy(&m.formatted()).to_string();
    for attached in ["unroutable.csv", "report.html", "clusters.csv"] {
        assert!(
            text.contains(&format!("filename=\"{attached}\"")),
            "{attached}"
        );
    }
    assert!(!text.contains("filename=\"role-assignments.csv\""));
    let left_out = [("role-assignments.csv".to_string(), 5000)];
    let (html, plain) = admin_bodies(&report, &plan, &left_out, dir.path(), None, Lang::En);
    for body in [&html, &plain] {
        assert!(body.contains("Too large to attach"), "{body}");
        assert!(body.contains("role-assignments.csv (0.0 MB)"), "{body}");
        assert!(
            body.contains("… and 3 more in the attached unroutable.csv"),
            "{body}"
        );
        assert!(body.contains("c199") && !body.contains("c200"), "{body}");
    }
    let (_, all_fit) = admin_bodies(&report, &plan, &[], dir.path(), None, Lang::En);
    assert!(all_fit.contains("The full report is attached"), "{all_fit}");
}

#[test]
fn with_the_report_uploaded_the_admin_message_links_what_it_does_not_attach() {
    let report = crate::report::html::tests::tiny();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("report.html"), vec![b'x'; 3 * 1024 * 1024]).unwrap();
    std::fs::write(dir.path().join("clusters.csv"), "a,b\r\n").unwrap();
    let plan = Plan {
        owners: vec![],
        unroutable: vec![],
    };
    let admin: Address = "admin@contoso.com".parse().unwrap();
    let from: Mailbox = "audit@contoso.com".parse().unwrap();
    let base = url::Url::parse("https://reports.contoso.com/aks/prod/run-7/").unwrap();
    // 3 MiB fits the 15 MiB budget without links, not the linked one.
    let m = admin_message(
        &report,
        &plan,
        &admin,
        &from,
        dir.path(),
        (false, Lang::En),
        Some(&base),
    )
    .unwrap();
    let text = String::from_utf8_lossy(&m.formatted()).to_string();
    assert!(!text.contains("filename=\"report.html\""));
    assert!(text.contains("filename=\"clusters.csv\""));
    let (html, plain) = admin_bodies(
        &report,
        &plan,
        &[("report.html".into(), 3 * 1024 * 1024)],
        dir.path(),
        Some(&base),
        Lang::En,
    );
    for body in [&html, &plain] {
        assert!(
            body.contains("https://reports.contoso.com/aks/prod/run-7/report.html"),
            "{body}"
        );
        assert!(!body.contains(&dir.path().display().to_string()), "{body}");
    }
    let m = admin_message(
        &report,
        &plan,
        &admin,
        &from,
        dir.path(),
        (false, Lang::En),
        None,
    )
    .unwrap();
    let text = String::from_utf8_lossy(&m.formatted()).to_string();
    assert!(text.contains("filename=\"report.html\""));
}

#[cfg(unix)]
#[test]
fn an_admin_message_attaches_only_the_report_files_and_follows_no_link() {
    let report = crate::report::html::tests::tiny();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("out");
    std::fs::create_dir(&dir).unwrap();
    let outside = tmp.path().join("hostname");
    std::fs::write(&outside, "SECRET-OUTSIDE-CONTENT\n").unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("clusters.csv")).unwrap();
    std::fs::write(dir.join("extra.csv"), "PLANTED-EXTRA-CONTENT\r\n").unwrap();
    std::fs::write(dir.join("findings.csv"), "FINDINGS-CONTENT\r\n").unwrap();
    let plan = Plan {
        owners: vec![],
        unroutable: vec![],
    };
    let admin: Address = "admin@contoso.com".parse().unwrap();
    let from: Mailbox = "audit@contoso.com".parse().unwrap();
    let m = admin_message(&report, &plan, &admin, &from, &dir, (false, Lang::En), None).unwrap();
    let text = String::from_utf8_lossy(&m.formatted()).to_string();
    assert!(text.contains("filename=\"findings.csv\""), "{text}");
    for absent in ["extra.csv", "clusters.csv"] {
        assert!(
            !text.contains(&format!("filename=\"{absent}\"")),
            "{absent}: {text}"
        );
    }
    // Whatever the transfer encoding, neither content is in the message.
    use base64::Engine;
    for secret in ["SECRET-OUTSIDE-CONTENT", "PLANTED-EXTRA-CONTENT"] {
        assert!(!text.contains(secret), "{secret}");
        for enc in [
            base64::engine::general_purpose::STANDARD.encode(format!("{secret}\n")),
            base64::engine::general_purpose::STANDARD.encode(format!("{secret}\r\n")),
        ] {
            assert!(!text.contains(enc.trim_end_matches('=')), "{secret}");
        }
    }
}

#[test]
fn html_escape_is_inert() {
    assert_eq!(
        html_escape("\"><img onerror=x>"),
        "&quot;&gt;&lt;img onerror=x&gt;"
    );
}
