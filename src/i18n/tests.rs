//! The catalogues: every key in both, every key the templates and code use exists.
use std::collections::BTreeSet;

use super::*;

fn keys(lang: Lang) -> BTreeSet<String> {
    lang.catalogue()
        .keys()
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// A catalogue's keys without the `.one` forms (a language without a singular, as
/// Japanese, has only `.other`), each `.one` checked to have its `.other`.
fn comparable(lang: Lang) -> BTreeSet<String> {
    let all = keys(lang);
    for k in all.iter().filter(|k| k.ends_with(".one")) {
        let other = format!("{}.other", k.trim_end_matches(".one"));
        assert!(all.contains(&other), "{lang}: {k} without {other}");
    }
    all.into_iter().filter(|k| !k.ends_with(".one")).collect()
}

#[test]
fn both_catalogues_parse_and_hold_only_strings() {
    for lang in Lang::ALL {
        Catalogue::parse(lang, lang.source()).unwrap();
    }
    assert!(Catalogue::parse(Lang::En, "a = 1")
        .unwrap_err()
        .contains("`a` is not a string"));
}

#[test]
fn every_key_is_in_both_catalogues() {
    let en = comparable(Lang::En);
    let mut ja = comparable(Lang::Ja);
    // The rule texts: English in the rule catalogue, every rule's in ja.toml.
    let rule_keys: BTreeSet<String> = CATALOGUE
        .iter()
        .flat_map(|r| {
            [
                format!("rule.{}.title", r.id),
                format!("rule.{}.rationale", r.id),
            ]
        })
        .collect();
    // The top actions' sentences: en.toml's are report::actions::FIX_TEXT's (the
    // catalogue cannot use the report module: i18n sits below it).
    for (id, one, other) in crate::report::actions::FIX_TEXT {
        assert_eq!(Lang::En.t(&format!("action.{id}.one")), *one);
        assert_eq!(Lang::En.t(&format!("action.{id}.other")), *other);
        let k = format!("action.{id}.other");
        assert_ne!(Lang::En.t(&k), Lang::Ja.t(&k), "{k} is not translated");
    }
    assert_eq!(crate::report::actions::FIX_TEXT.len(), CATALOGUE.len());
    for k in &rule_keys {
        assert!(ja.remove(k), "ja.toml lacks {k}");
        assert_ne!(Lang::En.t(k), Lang::Ja.t(k), "{k} is not translated");
    }
    let only_en: Vec<_> = en.difference(&ja).collect();
    let only_ja: Vec<_> = ja.difference(&en).collect();
    assert!(only_en.is_empty(), "keys missing from ja.toml: {only_en:?}");
    assert!(only_ja.is_empty(), "keys missing from en.toml: {only_ja:?}");
}

#[test]
fn every_argument_of_a_message_is_in_its_translation() {
    let args = |s: &str| -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut rest = s;
        while let Some(i) = rest.find('{') {
            rest = &rest[i + 1..];
            if let Some(j) = rest.find('}') {
                out.insert(rest[..j].to_string());
                rest = &rest[j + 1..];
            }
        }
        out
    };
    let ja = Lang::Ja.catalogue();
    for (k, en) in Lang::En.catalogue().entries() {
        let other = k.strip_suffix(".one").map(|b| format!("{b}.other"));
        let Some(j) = ja.get(other.as_deref().unwrap_or(k)) else {
            continue; // every_key_is_in_both_catalogues says so
        };
        // A `.one` form may say "1" instead of `{n}`; the translation has the others.
        let mut want = args(en);
        if other.is_some() {
            want.insert("n".into());
        }
        assert_eq!(want, args(j), "{k}: the arguments differ");
    }
}

/// Every `t(key="...")` in the templates and every `"key"` the code looks up exists in
/// both languages.
#[test]
fn every_key_used_exists() {
    let sources = [
        (
            "templates/report.html",
            include_str!("../../templates/report.html"),
        ),
        (
            "templates/email.html",
            include_str!("../../templates/email.html"),
        ),
        (
            "templates/admin.html",
            include_str!("../../templates/admin.html"),
        ),
    ];
    let mut used = BTreeSet::new();
    for (name, text) in sources {
        let mut rest = text;
        let mut n = 0;
        while let Some(i) = rest.find("t(key=\"") {
            rest = &rest[i + 7..];
            let end = rest.find('"').unwrap();
            let key = &rest[..end];
            let call_end = rest.find(')').unwrap_or(rest.len());
            // With `n=` the key names a message or a count's forms.
            let plural = rest[..call_end].contains(" n=")
                && Lang::En.lookup(key).is_none()
                && Lang::En.lookup(&format!("{key}.other")).is_some();
            if plural {
                used.insert(format!("{key}.other"));
            } else {
                used.insert(key.to_string());
            }
            n += 1;
        }
        assert!(n > 10, "{name} uses t(key=...) only {n} times");
    }
    // `value | t(ns="...")`: every value of each enumeration the templates translate.
    for s in crate::rules::Severity::ALL {
        used.insert(format!("severity.{s}"));
    }
    for v in ["service_principal", "system_assigned", "user_assigned"] {
        used.insert(format!("control_plane.{v}"));
    }
    for v in [
        "service_principal",
        "aks_managed",
        "user_assigned",
        "missing",
    ] {
        used.insert(format!("kubelet.{v}"));
    }
    for v in [
        "not_migrated",
        "none_observed",
        "pending",
        "complete",
        "unknown",
    ] {
        used.insert(format!("migration.{v}"));
    }
    for v in ["classification", "roles", "secret_expiry", "migration"] {
        used.insert(format!("family.{v}"));
    }
    for v in ["ok", "missing", "excess", "too_wide", "not_documented"] {
        used.insert(format!("role_status.{v}"));
    }
    for v in ["active", "expired", "stale"] {
        used.insert(format!("suppression_status.{v}"));
    }
    for v in ["l-sp", "l-pending", "l-pools"] {
        used.insert(format!("chart.line.{v}"));
    }
    for v in ["week", "run"] {
        used.insert(format!("report.granularity.{v}"));
    }
    for v in ["control_plane", "kubelet"] {
        used.insert(format!("identity.{v}"));
    }
    for r in CATALOGUE {
        used.insert(format!("rule.{}.title", r.id));
        used.insert(format!("rule.{}.rationale", r.id));
        used.insert(format!("action.{}.other", r.id));
    }
    for lang in Lang::ALL {
        let have = keys(lang);
        let missing: Vec<_> = used
            .iter()
            .filter(|k| !have.contains(*k) && rule_text(lang, k).is_none())
            .collect();
        assert!(missing.is_empty(), "{lang}: used but missing: {missing:?}");
    }
}

#[test]
fn lookups_interpolate_and_pick_the_count_form() {
    assert_eq!(Lang::Ja.t("severity.high"), "高");
    assert_eq!(
        Lang::En.plural("mail.subject_nothing", 1, &[]),
        "AKS identity audit: 1 cluster, nothing to do"
    );
    assert_eq!(
        Lang::En.plural("mail.subject_nothing", 2, &[]),
        "AKS identity audit: 2 clusters, nothing to do"
    );
    assert_eq!(
        Lang::Ja.plural("mail.subject_nothing", 1, &[]),
        "AKS ID 監査: 1 個のクラスター、対応は不要です"
    );
    // An unknown key is the key (a test failure elsewhere, never a panic); an unknown
    // argument stays as written; braces that are not an argument are kept.
    assert_eq!(Lang::Ja.t("no.such.key"), "no.such.key");
    assert_eq!(
        interpolate("a {x} {y} {} {a-b", |n| (n == "x").then(|| "1".into())),
        "a 1 {y} {} {a-b"
    );
    assert_eq!(
        Lang::Ja.rule_title(RuleId::ServicePrincipal),
        "コントロール プレーンがサービス プリンシパルを使用しています"
    );
    assert_eq!(
        Lang::En.rule_title(RuleId::ServicePrincipal),
        RuleId::ServicePrincipal.info().title
    );
}

#[test]
fn dates_in_the_language_format() {
    let d = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
    assert_eq!(Lang::En.date(d), "2026-12-04");
    assert_eq!(Lang::Ja.date(d), "2026 年 12 月 4 日");
    assert_eq!(
        Lang::Ja.localize_date_text("2026-12-04 06:00 UTC"),
        "2026 年 12 月 4 日 06:00 UTC"
    );
    assert_eq!(
        Lang::Ja.localize_date_text("2026-12-04"),
        "2026 年 12 月 4 日"
    );
    assert_eq!(
        Lang::En.localize_date_text("2026-12-04 06:00 UTC"),
        "2026-12-04 06:00 UTC"
    );
    // Not a date: unchanged.
    assert_eq!(Lang::Ja.localize_date_text("never"), "never");
    assert_eq!(Lang::Ja.localize_date_text("2026-13-04"), "2026-13-04");
    assert_eq!(
        Lang::Ja.localize_date_text("2026-12-04T06:00:00Z"),
        "2026-12-04T06:00:00Z"
    );
}

#[test]
fn languages_parse_by_code() {
    assert_eq!("ja".parse::<Lang>(), Ok(Lang::Ja));
    assert_eq!("EN".parse::<Lang>(), Ok(Lang::En));
    assert_eq!(
        "jp".parse::<Lang>().unwrap_err(),
        "unknown language `jp` (expected en or ja)"
    );
}

/// One message of each shape the rules write, as they write it: each is translated,
/// with its values (ids, names, scopes) kept and its dates in the Japanese format.
#[test]
fn finding_messages_of_every_shape_translate() {
    let cases = [
        ("control plane uses service principal `sp-1`; its secret must be rotated by hand and the cluster breaks when it expires",
         "コントロール プレーンがサービス プリンシパル `sp-1` を使用しています。シークレットは手動で更新する必要があり、期限が切れるとクラスターは動作しなくなります"),
        ("the credential of service principal `s` (app) expired 10 days ago (2026-11-24); the cluster can no longer authenticate to Azure",
         "サービス プリンシパル `s` (app) の資格情報は 10 日前 (2026 年 11 月 24 日) に期限切れになりました。クラスターは Azure に認証できなくなっています"),
        ("the credential of service principal `s` (app) expires in 1 day (2026-12-05)",
         "サービス プリンシパル `s` (app) の資格情報は 1 日後 (2026 年 12 月 5 日) に期限切れになります"),
        ("add-on omsAgent identity holds Reader at /subscriptions/x/resourceGroups/rg beyond its documented defaults",
         "アドオン omsAgent の ID が、ドキュメントに記載された既定のロール以外に /subscriptions/x/resourceGroups/rg で Reader を持っています"),
        ("kubelet identity holds Contributor at /subscriptions/x, wider than documented (a narrower scope)",
         "kubelet の ID が /subscriptions/x で Contributor を持っています。ドキュメントの記載 (より狭いスコープ) よりも広いスコープです"),
        ("control-plane identity holds Contributor at /subscriptions/x, wider than documented (/subscriptions/x/resourceGroups/MC_a)",
         "コントロール プレーン の ID が /subscriptions/x で Contributor を持っています。ドキュメントの記載 (/subscriptions/x/resourceGroups/MC_a) よりも広いスコープです"),
        ("HTTP application routing was retired on 2025-03-03",
         "HTTP アプリケーション ルーティングは 2025 年 3 月 3 日に廃止されました"),
        ("add-on `kv` has an identity the baseline `b` documents no roles for; it holds Reader at /s/1; Owner at /s/2",
         "アドオン `kv` には ID がありますが、ベースライン `b` にはそのロールが記載されていません。割り当て: /s/1 の Reader、/s/2 の Owner"),
        ("add-on `kv` has an identity the baseline `b` documents no roles for; it holds no roles",
         "アドオン `kv` には ID がありますが、ベースライン `b` にはそのロールが記載されていません。割り当て: ロールなし"),
        ("pool `np2` has not been re-imaged since the switch to a user-assigned managed identity (seen 2026-11-22; same node image and Kubernetes version as on the service principal): kubelet still uses the service principal `sp`; it already runs the latest node image, so `--node-image-only` alone changes nothing",
         "ノード プール `np2` は、ユーザー割り当てのマネージド ID への切り替え (2026 年 11 月 22 日に検出) 以降、ノード イメージがアップグレードされていません (ノード イメージと Kubernetes バージョンはサービス プリンシパルのときと同じです)。kubelet はまだサービス プリンシパル `sp`を使用しています。このノード プールはすでに最新のノード イメージで動作しているため、`--node-image-only` だけでは何も変わりません"),
        ("pool `np2` has not been re-imaged since the switch to a user-assigned managed identity (seen 2026-11-22; same node image and Kubernetes version as on the service principal): kubelet still uses the service principal",
         "ノード プール `np2` は、ユーザー割り当てのマネージド ID への切り替え (2026 年 11 月 22 日に検出) 以降、ノード イメージがアップグレードされていません (ノード イメージと Kubernetes バージョンはサービス プリンシパルのときと同じです)。kubelet はまだサービス プリンシパルを使用しています"),
        ("verify: the control plane left service principal `sp` (seen 2026-11-22), but Azure's data cannot tell whether kubelet did on pool(s) np1 (its node image version is not reported); np3 (node image and Kubernetes version unchanged since the service principal; the docs say the update that brings a kubelet identity upgrades every pool, which need not change the image)",
         "確認してください: コントロール プレーンはサービス プリンシパル `sp`から移行しました (2026 年 11 月 22 日に検出) が、Azure のデータからは次のノード プールで kubelet が移行したかどうかを判断できません: np1 (ノード イメージのバージョンが報告されていません)、np3 (ノード イメージと Kubernetes バージョンはサービス プリンシパルのときから変わっていません。ドキュメントでは、kubelet ID を追加する更新はすべてのノード プールをアップグレードするとされていますが、イメージが変わるとは限りません)"),
    ];
    for (en, ja) in cases {
        assert_eq!(Lang::Ja.finding_message(en).as_deref(), Some(ja), "{en}");
        assert_eq!(Lang::En.finding_message(en).as_deref(), Some(en));
    }
    // A message of a shape no pattern knows: none (shown in English), never a guess.
    assert_eq!(Lang::Ja.finding_message("a new rule's message"), None);
    assert_eq!(
        Lang::Ja.finding_message("HTTP application routing was retired on someday"),
        None
    );
}

#[test]
fn the_rules_command_in_japanese() {
    assert_eq!(
        render_rules(Lang::En),
        crate::rules::catalogue::render_text()
    );
    let ja = render_rules(Lang::Ja);
    assert!(ja.starts_with("AKSMI001  高"), "{ja}");
    assert!(ja.contains("コントロール プレーンがサービス プリンシパルを使用しています"));
    assert!(ja.contains("出典: https://learn.microsoft.com/azure/aks/use-managed-identity"));
    for r in CATALOGUE {
        assert!(!ja.contains(r.title), "{}: English title", r.id);
    }
}

#[test]
fn reasons_translate() {
    assert_eq!(
        Lang::Ja
            .not_evaluated_reason("not_evaluated: role assignments of /subscriptions/s1 not read"),
        "/subscriptions/s1 のロールの割り当てを読み取れませんでした"
    );
    assert_eq!(
        Lang::En.not_evaluated_reason("not_evaluated: needs Microsoft Graph (--graph)"),
        "needs Microsoft Graph (--graph)"
    );
    assert_eq!(
        Lang::Ja.not_evaluated_reason("something new"),
        "something new"
    );
}

#[test]
fn sources_translate() {
    assert_eq!(
        Lang::Ja.source_text("Azure Resource Graph (12 subscriptions)"),
        "Azure Resource Graph (12 個のサブスクリプション)"
    );
    assert_eq!(
        Lang::Ja.source_text("inventory folder /data/inv"),
        "インベントリ フォルダー /data/inv"
    );
    assert_eq!(
        Lang::Ja.source_text("built-in demo tenant (embedded emulator, live path)"),
        "組み込みのデモ テナント (埋め込みのエミュレーター、ライブ経路)"
    );
    assert_eq!(
        Lang::En.source_text("inventory folder x"),
        "inventory folder x"
    );
}

/// No message is dead weight: each key outside the enumerated tables (looked up by
/// value) is named in a template or in the code.
#[test]
fn every_message_is_used() {
    let sources = [
        include_str!("../../templates/report.html"),
        include_str!("../../templates/email.html"),
        include_str!("../../templates/admin.html"),
        include_str!("../report/email.rs"),
        include_str!("../mail/compose.rs"),
        include_str!("../report/csv.rs"),
        include_str!("../report/html/charts.rs"),
        include_str!("mod.rs"),
        include_str!("messages.rs"),
    ]
    .concat();
    let by_value = [
        "severity.",
        "control_plane.",
        "kubelet.",
        "migration.",
        "family.",
        "identity.",
        "suppression_status.",
        "role_status.",
        "chart.line.",
        "report.granularity.",
        "csv.",
        "rule.",
        "action.",
        "finding.",
        "phrase.",
        "reason.",
        "source.",
    ];
    let unused: Vec<&str> = Lang::En
        .catalogue()
        .keys()
        .into_iter()
        .filter(|k| !by_value.iter().any(|p| k.starts_with(p)))
        .filter(|k| {
            let base = k.trim_end_matches(".one").trim_end_matches(".other");
            !sources.contains(&format!("\"{base}\""))
        })
        .collect();
    assert!(unused.is_empty(), "unused messages: {unused:?}");
}

/// The shapes of the situational checks (AKSMI020 custom roles, AKSMI023 feature roles,
/// AKSMI004 features with a system-assigned control plane): translated, nothing of the
/// English sentence left.
#[test]
fn situational_messages_translate() {
    let cases = [
        "the cluster uses KMS etcd encryption (securityProfile.azureKeyVaultKms), and the control-plane identity has no Key Vault Crypto User on key vault `kv1` (named by keyId) (a key vault on access policies needs an access policy with encrypt and decrypt instead; vault settings are not read: verify)",
        "the cluster uses a disk encryption set (diskEncryptionSetID), and the control-plane identity has no Reader on /subscriptions/s/resourceGroups/k/providers/Microsoft.Compute/diskEncryptionSets/d",
        "the cluster uses KMS etcd encryption with a private key vault (keyVaultNetworkAccess: Private), and the control-plane identity has no Key Vault Contributor on /subscriptions/s/resourceGroups/k/providers/Microsoft.KeyVault/vaults/v",
        "KMS etcd encryption (securityProfile.azureKeyVaultKms) with a system-assigned control plane: the docs require a user-assigned identity (created and granted before the feature is turned on); verify the configuration",
        "custom private DNS zone (apiServerAccessProfile.privateDNSZone) with a system-assigned control plane: the docs require a user-assigned identity (created and granted before the feature is turned on); verify the configuration",
        "pool `p` uses subnet /s/x outside the node resource group, and the control-plane identity has no Network Contributor on it, its VNet or their resource group, and its custom role `r` lacks Microsoft.Network/virtualNetworks/subnets/join/action and Microsoft.Network/virtualNetworks/subnets/read",
        "pool `p` uses subnet /s/x outside the node resource group, and the control-plane identity holds custom role 0000-1 there, whose definition was not read: verify it grants a/action and b/read",
        "kubelet identity holds AcrPull on registry acr1, which is in ABAC mode (roleAssignmentMode AbacRepositoryPermissions): AcrPull is not honoured there and the identity has no Container Registry Repository Reader, so image pulls from it fail",
        "kubelet identity's Container Registry Repository Reader on registry acr1 carries an ABAC condition: it pulls only from the repositories the condition names; images elsewhere in the registry fail to pull",
        "the service principal could pull from registry acr1 (through AcrPull at /subscriptions/s) before the migration; the new kubelet identity has no Container Registry Repository Reader (the registry is in ABAC mode, where AcrPull is not honoured) there",
        "the service principal could pull from registry acr1 before the migration; the new kubelet identity has no AcrPull there",
        "the pod identity managed add-on's support ended on 2025-09-30; move to Microsoft Entra Workload ID",
    ];
    for en in cases {
        let ja = Lang::Ja
            .finding_message(en)
            .unwrap_or_else(|| panic!("untranslated: {en}"));
        for english in [
            " the ", " uses ", " has no ", " needs ", "verify", " lacks ",
        ] {
            assert!(!ja.contains(english), "{english:?} left in {ja}");
        }
    }
    let ja = Lang::Ja.finding_message(cases[0]).unwrap();
    assert!(
        ja.contains("キー コンテナー `kv1` (keyId で指定) に対する Key Vault Crypto User"),
        "{ja}"
    );
    assert!(ja.ends_with("確認してください)"), "{ja}");
    let ja = Lang::Ja.finding_message(cases[1]).unwrap();
    assert!(
        ja.ends_with("diskEncryptionSets/d に対する Reader がありません"),
        "{ja}"
    );
}

#[test]
fn migration_signal_messages_translate() {
    let cases = [
        ("pool `np2` has not been re-imaged since the switch to a user-assigned managed identity (seen 2026-11-22; same node image and Kubernetes version as on the service principal): kubelet still uses the service principal `sp`; Resource Graph shows scale set `aks-np2-1-vmss` with 2 of 2 instance(s) not on its latest model (`latestModelApplied: false`)",
         "ノード プール `np2` は、ユーザー割り当てのマネージド ID への切り替え (2026 年 11 月 22 日に検出) 以降、ノード イメージがアップグレードされていません (ノード イメージと Kubernetes バージョンはサービス プリンシパルのときと同じです)。kubelet はまだサービス プリンシパル `sp`を使用しています。Resource Graph の表示: スケール セット `aks-np2-1-vmss` の 2 個のインスタンスのうち 2 個が最新モデルではありません (`latestModelApplied: false`)"),
        ("pool `np1` has not been re-imaged since the switch to a user-assigned managed identity (2026-12-01, from Resource Graph's change history; same node image and Kubernetes version as on the service principal): kubelet still uses the service principal `sp`; direct signal not available: no scale set of pool `np1` is visible in the node resource group (reading it needs Reader there)",
         "ノード プール `np1` は、ユーザー割り当てのマネージド ID への切り替え (2026 年 12 月 1 日、Resource Graph の変更履歴による) 以降、ノード イメージがアップグレードされていません (ノード イメージと Kubernetes バージョンはサービス プリンシパルのときと同じです)。kubelet はまだサービス プリンシパル `sp`を使用しています。直接のシグナルは得られません: ノード リソース グループにノード プール `np1` のスケール セットが見えません (読み取るにはそこでの閲覧者ロールが必要です)"),
        ("verify: the control plane left service principal `sp` (2026-12-01, from Resource Graph's change history), but Azure's data cannot tell whether kubelet did on pool(s) np1 (same node image and Kubernetes version since the switch to a user-assigned identity, which the docs say leaves kubelet on the service principal, but its scale set says otherwise) — Resource Graph shows scale set `aks-np1-1-vmss` with the kubelet identity attached and all 2 instance(s) on its latest model; np2 (its node image version is not reported) — direct signal not available: the instances of scale set `aks-np2-1-vmss` do not report `latestModelApplied`",
         "確認してください: コントロール プレーンはサービス プリンシパル `sp`から移行しました (2026 年 12 月 1 日、Resource Graph の変更履歴による) が、Azure のデータからは次のノード プールで kubelet が移行したかどうかを判断できません: np1 (ユーザー割り当ての ID への切り替え以降、ノード イメージと Kubernetes バージョンは変わっていません (ドキュメントではこの場合 kubelet はサービス プリンシパルのままとされています) が、スケール セットは移行済みを示しています) — Resource Graph の表示: スケール セット `aks-np1-1-vmss` に kubelet の ID が割り当てられ、2 個のインスタンスすべてが最新モデルです、np2 (ノード イメージのバージョンが報告されていません) — 直接のシグナルは得られません: スケール セット `aks-np2-1-vmss` のインスタンスが `latestModelApplied` を報告していません"),
    ];
    for (en, ja) in cases {
        assert_eq!(Lang::Ja.finding_message(en).as_deref(), Some(ja), "{en}");
        assert_eq!(Lang::En.finding_message(en).as_deref(), Some(en));
    }
}

/// The shapes of grants through groups: the low "membership not checked" verdict and
/// a group's grant judged as a member's (AKSMI011/012 with "through group").
#[test]
fn group_messages_translate() {
    let cases = [
        ("control-plane identity has no grant of its own for what it needs on /s/x/subnets/a; group 9d2c holds one at /s/x, but whether the identity is a member was not checked (run with --graph)",
         "コントロール プレーン の ID は、/s/x/subnets/a で必要な付与を自身では持っていません。グループ 9d2c が /s/x でそれを持っていますが、ID がそのグループのメンバーかどうかは確認していません (--graph を付けて実行してください)"),
        ("control-plane identity holds Owner at /subscriptions/x through group 9d2c beyond its documented defaults",
         "コントロール プレーン の ID が、ドキュメントに記載された既定のロール以外に /subscriptions/x でグループ 9d2c を通じて Owner を持っています"),
        ("control-plane identity holds Contributor at /subscriptions/x through group 9d2c, wider than documented (/subscriptions/x/resourceGroups/MC_a)",
         "コントロール プレーン の ID が /subscriptions/x でグループ 9d2c を通じて Contributor を持っています。ドキュメントの記載 (/subscriptions/x/resourceGroups/MC_a) よりも広いスコープです"),
    ];
    for (en, ja) in cases {
        assert_eq!(Lang::Ja.finding_message(en).as_deref(), Some(ja), "{en}");
    }
}
