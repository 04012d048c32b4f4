use super::*;

fn file(text: &str) -> MailFile {
    toml::from_str(text).unwrap()
}

fn problems(args: &MailArgs, text: &str) -> Vec<Problem> {
    let mut out = vec![];
    assert!(resolve(args, &file(text), MailContext::default(), &mut out).is_none());
    out
}

fn ok(args: &MailArgs, text: &str) -> MailSettings {
    let mut out = vec![];
    let s = resolve(args, &file(text), MailContext::default(), &mut out);
    assert!(out.is_empty(), "{out:?}");
    s.unwrap()
}

#[test]
fn default_policy_is_admins_and_sender_domains() {
    let args = MailArgs {
        admins: vec!["Sec@Corp.example.com".into()],
        mail_from: Some("AKS audit <audit@contoso.com>".into()),
        ..Default::default()
    };
    let s = ok(&args, "");
    assert_eq!(s.policy.domains(), ["corp.example.com", "contoso.com"]);
    assert_eq!(s.admins[0].to_string(), "sec@corp.example.com");
    assert!(s.when == MailWhen::Always && s.enabled);
    assert!(matches!(s.transport, Transport::Outbox));
    let s = ok(&MailArgs::default(), "");
    assert_eq!(s.from.email.to_string(), "aks-identity-audit@localhost");
    let mut out = vec![];
    let demo = MailContext {
        demo: true,
        csv_excel: true,
        lang: crate::i18n::Lang::Ja,
    };
    let s = resolve(&MailArgs::default(), &file(""), demo, &mut out).unwrap();
    assert_eq!(s.from.email.to_string(), "aks-identity-audit@contoso.com");
    assert!(s.csv_excel);
    assert_eq!(s.lang, crate::i18n::Lang::Ja);
}

#[test]
fn mail_when_from_flag_file_or_the_older_switch() {
    let when = |args: &MailArgs, text: &str| ok(args, text).when;
    let flag = |w: &str| MailArgs {
        mail_when: Some(w.into()),
        ..Default::default()
    };
    assert_eq!(when(&MailArgs::default(), ""), MailWhen::Always);
    assert_eq!(
        when(&MailArgs::default(), "when = \"action\"\n"),
        MailWhen::Action
    );
    assert_eq!(
        when(&MailArgs::default(), "always_send = false\n"),
        MailWhen::Changed
    );
    assert_eq!(
        when(&flag("changed"), "when = \"action\"\n"),
        MailWhen::Changed
    );
    assert_eq!(
        when(&flag("always"), "always_send = false\n"),
        MailWhen::Always
    );
    let old = MailArgs {
        no_always_send: true,
        ..Default::default()
    };
    assert_eq!(when(&old, "when = \"always\"\n"), MailWhen::Changed);
    let p = problems(&flag("weekly"), "");
    assert_eq!(p[0].key, "--mail-when");
    assert!(p[0].reason.contains("always"), "{p:?}");
    let p = problems(&MailArgs::default(), "when = \"never\"\n");
    assert_eq!(p[0].key, "mail.when");
    let p = problems(
        &MailArgs::default(),
        "when = \"changed\"\nalways_send = true\n",
    );
    assert_eq!(p[0].key, "mail.when");
    assert!(p[0].reason.contains("one of"), "{p:?}");
}

#[test]
fn a_weekly_digest_day_needs_changed_or_action() {
    let s = ok(
        &MailArgs::default(),
        "when = \"changed\"\ndigest = \"Monday\"\n",
    );
    assert_eq!(s.digest, Some(chrono::Weekday::Mon));
    let args = MailArgs {
        mail_when: Some("action".into()),
        mail_digest: Some("fri".into()),
        ..Default::default()
    };
    assert_eq!(ok(&args, "").digest, Some(chrono::Weekday::Fri));
    assert_eq!(ok(&MailArgs::default(), "").digest, None);
    let p = problems(&MailArgs::default(), "digest = \"mon\"\n");
    assert_eq!(p[0].key, "mail.digest");
    assert!(
        p[0].reason.contains("--mail-when changed or action"),
        "{p:?}"
    );
    let p = problems(
        &MailArgs::default(),
        "when = \"changed\"\ndigest = \"mo\"\n",
    );
    assert_eq!(p[0].key, "mail.digest");
    assert!(p[0].reason.contains("not a weekday"), "{p:?}");
}

#[test]
fn flags_override_file_and_smtp_needs_sender_and_password() {
    let text = "smtp = \"smtp://bot@127.0.0.1:2525\"\nallowed_domains = [\"contoso.com\"]\nalways_send = false\nretries = 1\n";
    let p = problems(&MailArgs::default(), text);
    assert_eq!(p[0].key, "mail.from");
    assert!(p[0].reason.contains("--mail-from"), "{p:?}");
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let args = MailArgs {
        mail_from: Some("audit@contoso.com".into()),
        smtp_password_file: Some(pw),
        always_send: true,
        ..Default::default()
    };
    let s = ok(&args, text);
    assert_eq!(s.when, MailWhen::Always);
    assert_eq!(s.retries, 1);
    assert_eq!(s.policy.domains(), ["contoso.com"]);
    match &s.transport {
        Transport::Smtp(t) => {
            assert_eq!(t.password.as_ref().unwrap().expose(), "s3cret");
            assert!(!format!("{s:?}").contains("s3cret"));
            // Registered: no error or log line shows it, whatever a server echoes.
            assert_eq!(
                crate::redact::redact("535 auth s3cret rejected"),
                "535 auth *** rejected"
            );
        }
        _ => panic!("expected smtp"),
    }
    // A sender flag with the file's URL: the flag fills what the file lacks.
    let args = MailArgs {
        mail_from: Some("audit@contoso.com".into()),
        ..Default::default()
    };
    // Only fails when the environment has no password either.
    if std::env::var(PASSWORD_ENV).is_err() {
        let p = problems(&args, "smtp = \"smtp://bot@mail.contoso.com\"\n");
        assert_eq!(p[0].key, "mail.smtp");
        assert!(p[0].reason.contains(PASSWORD_ENV), "{p:?}");
    }
    // From the flag, the missing sender is named by its flag.
    let args = MailArgs {
        smtp: Some("smtp://mail.contoso.com".into()),
        ..Default::default()
    };
    assert_eq!(problems(&args, "")[0].key, "--mail-from");
    // Mail off: no sender needed.
    let args = MailArgs {
        no_email: true,
        ..args
    };
    assert!(!ok(&args, "").enabled);
}

#[test]
fn mail_via_picks_the_transport_and_says_what_each_needs() {
    let graph = MailArgs {
        mail_via: Some(Via::Graph),
        mail_from: Some("AKS audit <aks-audit@contoso.com>".into()),
        ..Default::default()
    };
    match ok(&graph, "").transport {
        Transport::Graph(g) => assert_eq!(g.sender.to_string(), "aks-audit@contoso.com"),
        t => panic!("expected graph, got {t:?}"),
    }
    // Graph sends as a mailbox: no default sender.
    let p = problems(
        &MailArgs {
            mail_via: Some(Via::Graph),
            ..Default::default()
        },
        "",
    );
    assert_eq!(p[0].key, "--mail-via");
    assert!(p[0].reason.contains("--mail-from"), "{p:?}");
    // From the file, named by its key; an SMTP server beside it is a conflict.
    let p = problems(
        &MailArgs::default(),
        "via = \"graph\"\nfrom = \"a@contoso.com\"\nsmtp = \"smtp://127.0.0.1:25?tls=none\"\n",
    );
    assert_eq!(p[0].key, "mail.smtp");
    assert!(p[0].reason.contains("mail.via is graph"), "{p:?}");
    // smtp without a server.
    let p = problems(&MailArgs::default(), "via = \"smtp\"\n");
    assert_eq!(p[0].key, "mail.via");
    assert!(p[0].reason.contains("--smtp"), "{p:?}");
    // outbox: written only, even with a server configured; a flag overrides the file.
    let outbox = MailArgs {
        mail_via: Some(Via::Outbox),
        mail_from: Some("a@contoso.com".into()),
        ..Default::default()
    };
    let s = ok(
        &outbox,
        "via = \"graph\"\nsmtp = \"smtp://127.0.0.1:25?tls=none\"\n",
    );
    assert!(matches!(s.transport, Transport::Outbox));
    // An unknown value does not read as a `[mail]` table.
    assert!(toml::from_str::<MailFile>("via = \"pigeon\"\n").is_err());
}

#[test]
fn every_bad_value_is_a_problem_of_its_own() {
    let p = problems(
        &MailArgs::default(),
        "smtp = \"smtp://mail.contoso.com:70000\"\nfrom = \"not an address\"\n\
         admins = [\"a@b@c\"]\nallowed_domains = [\"-x-\"]\ntimeout_seconds = 0\nretries = 11\n",
    );
    let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "mail.smtp",
            "mail.from",
            "mail.admins",
            "mail.allowed_domains",
            "mail.timeout_seconds",
            "mail.retries"
        ]
    );
    assert!(p[0].reason.contains("65535"), "{p:?}");
    assert_eq!(p[4].reason, "must be 1 to 3600 seconds, got 0");
    // A bad file value is a problem under a good flag too; a bad flag names the flag.
    let args = MailArgs {
        smtp_timeout: Some(10),
        smtp_retries: Some(11),
        ..Default::default()
    };
    let p = problems(&args, "timeout_seconds = 0\n");
    let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["mail.timeout_seconds", "--smtp-retries"]);
}

#[test]
fn smtp_urls_port_and_ca() {
    for url in ["smtp://mail.contoso.com:70000", "smtp://mail.contoso.com:0"] {
        let e = check_smtp_url(url).unwrap_err();
        assert!(e.contains("port") && e.contains("65535"), "{e}");
    }
    assert!(check_smtp_url("http://mail.contoso.com").is_err());
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, "not a certificate").unwrap();
    let args = MailArgs {
        smtp: Some("smtp://127.0.0.1:2525?tls=none".into()),
        mail_from: Some("a@contoso.com".into()),
        smtp_ca_cert: Some(ca),
        ..Default::default()
    };
    let p = problems(&args, "");
    assert_eq!(p[0].key, "--smtp-ca-cert");
}

#[test]
fn files_named_are_checked_by_check_config() {
    let mut out = vec![];
    check_files(
        &file("smtp_password_file = \"/nonexistent/pw\"\nsmtp_ca_cert = \"/nonexistent/ca\"\n"),
        &mut out,
    );
    let keys: Vec<&str> = out.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["mail.smtp_password_file", "mail.smtp_ca_cert"]);
}
