//! The file as a whole, in process with inline TOML: every problem in one pass, the
//! same path for `check-config` and a run, flag and key names.
use super::*;

/// `check-config` on `text` (named `c.toml`).
fn check_text(text: &str) -> Problems {
    check_loaded(Loaded::from_text(Some(Path::new("c.toml")), text))
}

fn problems(text: &str) -> Vec<Problem> {
    check_text(text).list
}

fn one(text: &str) -> Problem {
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:?}");
    p.into_iter().next().unwrap()
}

fn keys(p: &[Problem]) -> Vec<&str> {
    p.iter().map(|p| p.key.as_str()).collect()
}

#[test]
fn a_valid_file_has_no_problem() {
    let p = problems(
        "baseline = \"aks-docs-current\"\nhistory_days = 30\nkeep_reports = \"30d\"\nlock_wait = 10\n\
         [owners]\ntag_keys = [\"team\"]\nfallback = \"ops@contoso.com\"\n\
         [owners.subscriptions]\n\"sub\" = \"a@contoso.com\"\n\
         [schedule]\ncron = \"0 2 * * MON-FRI\"\ntimezone = \"Europe/Berlin\"\n\
         run_missed = false\nshutdown_grace_seconds = 30\n\
         [mail]\nsmtp = \"smtp://mail.contoso.com:587\"\nfrom = \"audit@contoso.com\"\n\
         [azure]\nauth = \"workload-identity\"\nmax_attempts = 4\n",
    );
    assert_eq!(p, vec![]);
}

/// Three unknown keys in three sections, a value out of range and a cron that does
/// not parse: all five, in line order, each with its line.
#[test]
fn every_problem_of_a_file_in_one_pass() {
    let text = "history_dayz = 30\n\
                [mail]\nsmtp_port = 25\ntimeout_seconds = 0\n\
                [azure]\nsubscription = []\n\
                [schedule]\ncron = \"0 25 * * *\"\n";
    let p = check_text(text);
    let got: Vec<(&str, Option<usize>)> = p.list.iter().map(|p| (p.key.as_str(), p.line)).collect();
    assert_eq!(
        got,
        [
            ("history_dayz", Some(1)),
            ("mail.smtp_port", Some(3)),
            ("mail.timeout_seconds", Some(4)),
            ("azure.subscription", Some(6)),
            ("schedule.cron", Some(8)),
        ]
    );
    let text = p.render();
    assert!(
        text.starts_with("c.toml: history_dayz: unknown field `history_dayz`, expected one of "),
        "{text}"
    );
    assert!(
        text.contains("c.toml: mail.timeout_seconds: must be 1 to 3600 seconds, got 0 (line 4)\n"),
        "{text}"
    );
    assert!(
        text.contains("c.toml: schedule.cron: ")
            && text.contains("hour")
            && text.ends_with("(line 8)\n"),
        "{text}"
    );
}

#[test]
fn unknown_keys_name_the_dotted_key_and_line() {
    let p = one("state = \"s\"\n[mail]\nsmtp_port = 25\n");
    assert_eq!((p.key.as_str(), p.line), ("mail.smtp_port", Some(3)));
    assert!(p.reason.contains("unknown field `smtp_port`"), "{p:?}");
    let p = one("[schedule]\ncronn = \"0 2 * * *\"\n");
    assert_eq!(p.key, "schedule.cronn");
    let p = one("fail_onn = \"high\"\n");
    assert_eq!((p.key.as_str(), p.line), ("fail_onn", Some(1)));
    assert!(p.reason.contains("unknown field"), "{p:?}");
    let p = one("[owners]\ntag_key = [\"x\"]\n");
    assert_eq!(p.key, "owners.tag_key");
    let p = one("[report]\nx = 1\n");
    assert_eq!(p.key, "report");
}

#[test]
fn wrong_types_name_the_key() {
    let p = one("history_days = \"thirty\"\n");
    assert_eq!(p.key, "history_days");
    assert!(p.reason.contains("invalid type"), "{p:?}");
    let p = one("[azure]\nmax_attempts = \"6\"\n");
    assert_eq!(p.key, "azure.max_attempts");
    let p = one("[schedule]\nrun_missed = \"yes\"\ncron = \"0 2 * * *\"\n");
    assert_eq!((p.key.as_str(), p.line), ("schedule.run_missed", Some(2)));
    let p = one("[mail]\nadmins = \"ops@contoso.com\"\n");
    assert_eq!(p.key, "mail.admins");
    let p = one("mail = 5\n");
    assert_eq!(p.key, "mail");
    let p = one("[owners.subscriptions]\n\"sub\" = 5\n");
    assert_eq!(
        (p.key.as_str(), p.line),
        ("owners.subscriptions.sub", Some(2))
    );
    let p = one("fail_on = \"urgent\"\n");
    assert_eq!(p.key, "fail_on");
}

#[test]
fn a_wrongly_typed_value_is_not_also_missing() {
    // `from` is read as absent after its type error; "--smtp needs a sender" is not
    // reported on top.
    let p = one("[mail]\nsmtp = \"smtp://mail.contoso.com\"\nfrom = 5\n");
    assert_eq!((p.key.as_str(), p.line), ("mail.from", Some(3)));
    assert!(p.reason.contains("invalid type"), "{p:?}");
}

#[test]
fn syntax_errors_are_all_reported_and_nothing_else() {
    let p = problems("history_days = \ncsv_excel = tru\nfail_onn = 1\n[mail\nsmtp = \"x\"\n");
    let got: Vec<(&str, Option<usize>)> = p.iter().map(|p| (p.key.as_str(), p.line)).collect();
    assert_eq!(
        got,
        [
            ("(syntax)", Some(1)),
            ("(syntax)", Some(2)),
            ("(syntax)", Some(4))
        ],
        "{p:?}"
    );
    assert!(
        p[0].reason.contains("string values must be quoted"),
        "{p:?}"
    );
}

#[test]
fn a_cron_that_does_not_parse_and_a_bad_timezone() {
    let p = one("[schedule]\ncron = \"0 25 * * *\"\n");
    assert_eq!((p.key.as_str(), p.line), ("schedule.cron", Some(2)));
    assert!(p.reason.contains("hour"), "{p:?}");
    let p = one("[schedule]\ncron = \"every night\"\n");
    assert_eq!(p.key, "schedule.cron");
    let p = one("[schedule]\ncron = \"0 2 * * *\"\ntimezone = \"Mars/Base\"\n");
    assert_eq!(p.key, "schedule.timezone");
    assert!(p.reason.contains("Mars/Base"), "{p:?}");
    let p = one("[schedule]\ntimezone = \"UTC\"\n");
    assert_eq!((p.key.as_str(), p.line), ("schedule.cron", Some(1)));
}

#[test]
fn smtp_port_out_of_range_and_a_bad_smtp_url() {
    for url in ["smtp://mail.contoso.com:70000", "smtp://mail.contoso.com:0"] {
        let p = one(&format!(
            "[mail]\nsmtp = \"{url}\"\nfrom = \"a@contoso.com\"\n"
        ));
        assert_eq!(p.key, "mail.smtp");
        assert!(
            p.reason.contains("port") && p.reason.contains("65535"),
            "{p:?}"
        );
    }
    let p = one("[mail]\nsmtp = \"http://mail.contoso.com\"\nfrom = \"a@contoso.com\"\n");
    assert_eq!(p.key, "mail.smtp");
    let p = one("[mail]\nsmtp = \"smtp://mail.contoso.com\"\n");
    assert_eq!((p.key.as_str(), p.line), ("mail.from", Some(1)));
}

#[test]
fn azure_and_top_level_semantics() {
    let p = one("[azure]\nmax_attempts = 50\n");
    assert_eq!(p.key, "azure.max_attempts");
    let p = one("[azure]\narm_endpoint = \"http://arm.example.com\"\n");
    assert_eq!(p.key, "azure.arm_endpoint");
    let p = one("baseline = \"no-such-baseline\"\n");
    assert_eq!((p.key.as_str(), p.line), ("baseline", Some(1)));
    let p = one("suppressions = \"/nonexistent/s.toml\"\n");
    assert_eq!(p.key, "suppressions");
    let p = one("inventory = \"/nonexistent/inv\"\n");
    assert_eq!(p.key, "inventory");
    let p = one("history_days = 0\n");
    assert_eq!(p.key, "history_days");
    let p = problems("history_days = 0\n[schedule]\ncron = \"x\"\n[azure]\nconcurrency = 99\n");
    assert_eq!(
        keys(&p),
        ["history_days", "schedule.cron", "azure.concurrency"]
    );
}

#[test]
fn upload_urls_are_checked_and_a_sas_is_never_shown() {
    let p = one("upload = \"http://acct.blob.core.windows.net/reports\"\n");
    assert_eq!((p.key.as_str(), p.line), ("upload", Some(1)));
    assert!(p.reason.contains("https"), "{p:?}");
    let p = one("upload = \"https://acct.blob.core.windows.net/reports?sv=1&sig=HIDDENSIG\"\n");
    assert_eq!(p.key, "upload");
    assert!(!format!("{p:?}").contains("HIDDENSIG"), "{p:?}");
    let p = one(
        "upload = \"https://acct.blob.core.windows.net/reports\"\nupload_base_url = \"ftp://x\"\n",
    );
    assert_eq!((p.key.as_str(), p.line), ("upload_base_url", Some(2)));
    assert!(problems("upload = \"https://acct.blob.core.windows.net/reports/aks\"\nupload_base_url = \"https://acct.z6.web.core.windows.net\"\n").is_empty());
}

/// A file on disk, for the paths that read one.
fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, text).unwrap();
    (dir, p)
}

#[test]
fn flags_override_file() {
    let (_dir, p) = file(
        "inventory = \"inv\"\nbaseline = \"aks-docs-current\"\nfail_on = \"high\"\n\
         [owners]\nfallback = \"ops@contoso.com\"\n",
    );
    let mut args = RunArgs {
        config: Some(p),
        ..Default::default()
    };
    args.outputs.fail_on = Some(Severity::Critical);
    let s = resolve(&args).unwrap();
    assert_eq!(s.source, Source::Inventory("inv".into()));
    assert_eq!(s.baseline, "aks-docs-current");
    assert_eq!(s.fail_on, Some(Severity::Critical));
    assert_eq!(s.owners.fallback.as_deref(), Some("ops@contoso.com"));
}

#[test]
fn a_run_refuses_what_check_config_refuses_with_the_same_lines() {
    let (_dir, p) = file("fail_onn = \"high\"\n[schedule]\ncron = \"0 2 * * * *\"\n");
    let args = RunArgs {
        config: Some(p.clone()),
        ..Default::default()
    };
    let at_start = resolve(&args).unwrap_err();
    assert_eq!(at_start, check(&p));
    assert_eq!(keys(&at_start.list), ["fail_onn", "schedule.cron"]);
    let e = at_start.to_string();
    assert!(
        e.starts_with(&format!("{}: fail_onn: ", p.display())),
        "{e}"
    );
    assert!(e.contains("(line 1)\n") && e.ends_with("(line 3)"), "{e}");
    // A bad file value is refused under a flag too; flags' problems come first.
    let (_dir, p) = file("history_days = 0\n");
    let mut args = RunArgs {
        config: Some(p),
        now: Some("yesterday".into()),
        ..Default::default()
    };
    args.outputs.history_days = Some(30);
    let e = resolve(&args).unwrap_err();
    assert_eq!(keys(&e.list), ["--now", "history_days"]);
    // A file that cannot be read.
    let args = RunArgs {
        config: Some("/nonexistent/c.toml".into()),
        ..Default::default()
    };
    let e = resolve(&args).unwrap_err().to_string();
    assert!(
        e.starts_with("/nonexistent/c.toml: (file): cannot read"),
        "{e}"
    );
}

#[test]
fn flag_problems_without_a_file() {
    let mut args = RunArgs {
        now: Some("yesterday".into()),
        run_id: Some("a b".into()),
        ..Default::default()
    };
    args.outputs.history_days = Some(0);
    args.mail.smtp_timeout = Some(0);
    args.azure.max_attempts = Some(0);
    let e = resolve(&args).unwrap_err();
    assert_eq!(
        keys(&e.list),
        [
            "--history-days",
            "--now",
            "--run-id",
            "--smtp-timeout",
            "--max-attempts"
        ]
    );
    let text = e.to_string();
    assert!(
        text.contains("--now: `yesterday` is not an RFC 3339 time"),
        "{text}"
    );
    assert!(
        text.contains("--history-days: must be 1 to 36500 days, got 0"),
        "{text}"
    );
    // An empty run id is no id.
    let args = RunArgs {
        run_id: Some(" ".into()),
        ..Default::default()
    };
    assert_eq!(resolve(&args).unwrap().run_id, None);
}

#[test]
fn schedule_needs_a_state_and_a_cron() {
    let e = resolve_schedule(&RunArgs::default(), &Default::default()).unwrap_err();
    assert_eq!(keys(&e.list), ["--state"]);
    let mut run = RunArgs::default();
    run.outputs.state = Some("s".into());
    let e = resolve_schedule(&run, &Default::default()).unwrap_err();
    assert_eq!(keys(&e.list), ["--cron"]);
    let (_dir, p) = file("state = \"st\"\n[schedule]\ncron = \"0 2 * * *\"\n");
    let run = RunArgs {
        config: Some(p),
        ..Default::default()
    };
    let (s, o) = resolve_schedule(&run, &Default::default()).unwrap();
    assert_eq!(s.state, Some("st".into()));
    assert_eq!(o.state_dir, Path::new("st"));
    // A table that leaves the cron to --cron: valid for `schedule --cron`, not alone.
    let (_dir, p) = file("state = \"st\"\n[schedule]\ntimezone = \"Asia/Tokyo\"\n");
    let run = RunArgs {
        config: Some(p.clone()),
        ..Default::default()
    };
    let sched = schedule::ScheduleArgs {
        cron: Some("0 2 * * *".into()),
        ..Default::default()
    };
    let (_, o) = resolve_schedule(&run, &sched).unwrap();
    assert_eq!(o.schedule.timezone(), chrono_tz::Asia::Tokyo);
    assert_eq!(keys(&resolve(&run).unwrap_err().list), ["schedule.cron"]);
    assert_eq!(keys(&check(&p).list), ["schedule.cron"]);
}

#[test]
fn resend_takes_mail_and_lock_wait_from_the_file() {
    let (_dir, p) = file(
        "lock_wait = 7\n[mail]\nsmtp = \"smtps://mail.contoso.com\"\nfrom = \"a@contoso.com\"\n",
    );
    let (m, wait) = resolve_resend(Some(&p), &Default::default(), &Default::default()).unwrap();
    assert!(matches!(m.transport, crate::mail::Transport::Smtp(_)));
    assert_eq!(wait, Duration::from_secs(7));
    let (_dir, p) = file("[mail]\nretries = 11\n");
    let e = resolve_resend(Some(&p), &Default::default(), &Default::default()).unwrap_err();
    assert_eq!(keys(&e.list), ["mail.retries"]);
}

/// Flags whose key is not their name with `_` for `-` (the README lists them as
/// "`--flag` (`key`)"), and flags with no key.
const RENAMED: [(&str, &str); 19] = [
    ("--log-analytics", "log_analytics.endpoint"),
    ("--owner-tag", "owners.tag_keys"),
    ("--webhook", "webhooks.urls"),
    ("--webhook-format", "webhooks.format"),
    ("--mail-via", "mail.via"),
    ("--mail-from", "mail.from"),
    ("--admin", "mail.admins"),
    ("--allowed-domain", "mail.allowed_domains"),
    ("--no-always-send", "mail.always_send = false"),
    ("--no-email", "mail.enabled = false"),
    ("--smtp-timeout", "mail.timeout_seconds"),
    ("--smtp-retries", "mail.retries"),
    ("--subscription", "azure.subscriptions"),
    ("--management-group", "azure.management_groups"),
    ("--no-run-missed", "schedule.run_missed = false"),
    ("--shutdown-grace", "schedule.shutdown_grace_seconds"),
    ("--always-send", "mail.always_send"),
    ("--mail-when", "mail.when"),
    ("--mail-digest", "mail.digest"),
];
const NO_KEY: [&str; 4] = ["--config", "--now", "--run-id", "--backfill"];

fn longs<A: clap::Args>() -> Vec<String> {
    A::augment_args(clap::Command::new("x"))
        .get_arguments()
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect()
}

#[test]
fn every_flag_has_the_key_of_its_name_or_a_documented_one() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .unwrap()
        .replace('\n', " ");
    let sections: Vec<(Vec<String>, &str, &[&str])> = vec![
        (
            longs::<source::SourceArgs>(),
            "",
            document::field_names::<source::SourceFile>(),
        ),
        (
            longs::<outputs::OutputsArgs>(),
            "",
            document::field_names::<outputs::OutputsFile>(),
        ),
        (
            longs::<lang::LangArgs>(),
            "",
            document::field_names::<lang::LangFile>(),
        ),
        (
            longs::<owners::OwnersArgs>(),
            "owners.",
            document::field_names::<owners::OwnersFile>(),
        ),
        (
            longs::<mail::MailArgs>(),
            "mail.",
            document::field_names::<mail::MailFile>(),
        ),
        (
            longs::<upload::UploadArgs>(),
            "",
            document::field_names::<upload::UploadFile>(),
        ),
        (
            longs::<webhooks::WebhooksArgs>(),
            "webhooks.",
            document::field_names::<webhooks::WebhooksFile>(),
        ),
        (
            longs::<log_analytics::LogAnalyticsArgs>(),
            "log_analytics.",
            document::field_names::<log_analytics::LogAnalyticsFile>(),
        ),
        (
            longs::<azure::AzureArgs>(),
            "azure.",
            document::field_names::<azure::AzureFile>(),
        ),
        (
            longs::<schedule::ScheduleArgs>(),
            "schedule.",
            document::field_names::<schedule::ScheduleFile>(),
        ),
    ];
    let mut all: Vec<String> = vec![];
    for (flags, prefix, fields) in &sections {
        for flag in flags {
            all.push(flag.clone());
            let key = match RENAMED.iter().find(|(f, _)| f == flag) {
                Some((_, k)) => {
                    if !flag.starts_with("--always") {
                        assert!(
                            readme.contains(&format!("`{flag}` (`{k}`)")),
                            "README does not list `{flag}` (`{k}`)"
                        );
                    }
                    k.trim_end_matches(" = false").to_string()
                }
                None => format!("{prefix}{}", flag[2..].replace('-', "_")),
            };
            let field = key.strip_prefix(prefix).unwrap_or(&key);
            assert!(
                fields.contains(&field),
                "{flag}: no key `{key}` in {fields:?}"
            );
        }
    }
    // RunArgs is exactly its sections plus the flags that have no key.
    let mut run = longs::<RunArgs>();
    run.retain(|f| !NO_KEY.contains(&f.as_str()));
    let mut sections_flags: Vec<String> = all
        .into_iter()
        .filter(|f| !longs::<schedule::ScheduleArgs>().contains(f))
        .collect();
    run.sort();
    sections_flags.sort();
    assert_eq!(run, sections_flags);
    for f in NO_KEY {
        assert!(
            readme.contains(&format!("`{f}`")),
            "README does not name {f}"
        );
    }
}

/// The modules configured here never import this one back (no cycle through
/// `config`): they take their resolved settings as arguments.
#[test]
fn configured_modules_do_not_import_config() {
    fn rs_files(p: &Path, out: &mut Vec<PathBuf>) {
        if p.is_dir() {
            for e in std::fs::read_dir(p).unwrap() {
                rs_files(&e.unwrap().path(), out);
            }
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p.to_path_buf());
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    for m in [
        "mail",
        "schedule",
        "schedule.rs",
        "azure",
        "rules",
        "retention.rs",
        "state",
    ] {
        rs_files(&src.join(m), &mut files);
    }
    assert!(files.len() > 20, "{files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            assert!(
                !code.contains("crate::config") && !code.contains("check_config"),
                "{}:{}: {line}",
                f.display(),
                n + 1
            );
        }
    }
}

#[test]
fn an_unknown_language_in_the_file_names_the_key_value_and_line() {
    let p = one("history_days = 30\nlang = \"fr\"\n");
    assert_eq!((p.key.as_str(), p.line), ("lang", Some(2)));
    assert_eq!(p.reason, "unknown language `fr` (expected en or ja)");
    assert!(problems("lang = \"ja\"\n").is_empty());
    // A run takes the file's language, the flag over it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "lang = \"ja\"\n").unwrap();
    let mut args = RunArgs {
        config: Some(file),
        ..Default::default()
    };
    assert_eq!(resolve(&args).unwrap().lang, crate::i18n::Lang::Ja);
    assert_eq!(resolve(&args).unwrap().mail.lang, crate::i18n::Lang::Ja);
    args.lang.lang = Some("en".into());
    assert_eq!(resolve(&args).unwrap().lang, crate::i18n::Lang::En);
}
