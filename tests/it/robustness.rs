//! Random and truncated input never panics the readers; killing a run at any moment
//! leaves history and earlier reports intact.
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use aks_identity_audit::inventory::{folder, Kind, Loader};
use proptest::prelude::*;

fn demo(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/demo")
            .join(name),
    )
    .unwrap()
}

const KINDS: [Kind; 5] = [
    Kind::Clusters,
    Kind::RoleAssignments,
    Kind::Subscriptions,
    Kind::ResourceGroups,
    Kind::Registries,
];

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-zA-Z/:_.-]{0,24}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("msi"),
            Just("SystemAssigned"),
            Just("UserAssigned"),
            Just("/subscriptions/s/resourceGroups/r/providers/x/y/z")
        ]
        .prop_map(serde_json::Value::from),
    ];
    let keys = prop_oneof![
        Just("id"),
        Just("name"),
        Just("properties"),
        Just("identity"),
        Just("type"),
        Just("tags"),
        Just("agentPoolProfiles"),
        Just("identityProfile"),
        Just("kubeletidentity"),
        Just("addonProfiles"),
        Just("servicePrincipalProfile"),
        Just("clientId"),
        Just("principalId"),
        Just("roleDefinitionId"),
        Just("scope"),
        Just("userAssignedIdentities"),
        Just("podIdentityProfile"),
        Just("createdOn"),
        Just("systemData"),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(keys.clone().prop_map(String::from), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_elements_never_panic(v in arb_json(), k in 0usize..5) {
        let mut l = Loader::new();
        l.add(KINDS[k], "random.json", 0, &v);
        let inv = l.finish();
        let total = inv.clusters.len() + inv.role_assignments.len() + inv.subscriptions.len()
            + inv.resource_groups.len() + inv.registries.len() + inv.coverage.skipped_rows.len();
        // Either read, skipped with a reason, or (for other resource types) ignored.
        prop_assert!(total <= 1);
    }

    #[test]
    fn random_text_never_panics(s in ".{0,200}", k in 0usize..5) {
        let mut l = Loader::new();
        let _ = folder::load_text(&mut l, KINDS[k], "random.json", &s);
    }

    #[test]
    fn truncated_real_files_never_panic(cut in 0usize..20000, file in 0usize..2) {
        let text = demo(["clusters.json", "role-assignments.json"][file]);
        let cut = cut.min(text.len());
        let cut = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let mut l = Loader::new();
        match folder::load_text(&mut l, KINDS[file], "t.json", &text[..cut]) {
            Ok(()) => {}
            Err(e) => prop_assert!(e.to_string().contains("t.json")),
        }
    }
}

/// SIGKILL at random moments of a run: state.json is always absent-or-valid, earlier
/// reports untouched, and the next run completes.
#[test]
fn sigkill_never_corrupts_history() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let inv = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo");
    let bin = env!("CARGO_BIN_EXE_aks-identity-audit");
    let run = |out: &Path| {
        Command::new(bin)
            .args(["run", "--now", "2026-06-01T00:00:00Z", "--inventory"])
            .arg(&inv)
            .arg("--state")
            .arg(&state)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let first = tmp.path().join("first");
    assert!(run(&first).status.success());
    let kept = std::fs::read(first.join("report.json")).unwrap();
    let mut rng_delay = 1u64;
    for i in 0..12 {
        let out = tmp.path().join(format!("killed{i}"));
        let mut child = Command::new(bin)
            .args(["run", "--now", "2026-06-02T00:00:00Z", "--inventory"])
            .arg(&inv)
            .arg("--state")
            .arg(&state)
            .arg("--out")
            .arg(&out)
            .stderr(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Spread the kill points over the run's lifetime (a few ms to tens of ms).
        rng_delay = (rng_delay * 7 + 3) % 40;
        std::thread::sleep(Duration::from_millis(rng_delay));
        let _ = child.kill();
        let _ = child.wait();
        let text = std::fs::read_to_string(state.join("state.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).expect("state.json stays valid JSON");
        assert_eq!(std::fs::read(first.join("report.json")).unwrap(), kept);
    }
    assert!(run(&tmp.path().join("after")).status.success());
}
