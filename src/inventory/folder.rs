//! Reads an inventory folder: `clusters.json` (required) and optional
//! `role-assignments.json`, `subscriptions.json`, `resource-groups.json`, `registries.json`,
//! `role-definitions.json` (custom roles), `sp-credentials.json`, and for grants through
//! groups `group-role-assignments.json` and `group-memberships.json`. The migration
//! follow-ups' optional files (`resource-changes.json`, `scale-sets.json`,
//! `scale-set-vms.json`) are read by `azure::signals::from_folder`, which needs the
//! previous history.
use std::path::Path;

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::{Inventory, Kind, Loader};

/// ARM's `{value: [...]}` and Resource Graph's `{data: [...]}` envelopes.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    value: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    data: Option<Vec<&'a RawValue>>,
}

/// Splits a file's text into its elements, each still unparsed: a bare array, an
/// ARM list (`value`) or a Resource Graph reply (`data`).
pub fn elements<'a>(text: &'a str, file: &str) -> anyhow::Result<Vec<&'a RawValue>> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let parsed = if trimmed.starts_with('[') {
        serde_json::from_str::<Vec<&RawValue>>(trimmed).map(Some)
    } else {
        serde_json::from_str::<Envelope>(trimmed).map(|e| e.value.or(e.data))
    };
    match parsed {
        Ok(Some(v)) => Ok(v),
        Ok(None) => bail!(
            "{file}: expected a JSON array, an object with `value` (ARM list) or an object with `data` (Resource Graph reply)"
        ),
        Err(e) => match serde_json::from_str::<Value>(trimmed) {
            Err(_) => bail!("{file}: not valid JSON: {e}"),
            Ok(_) => bail!("{file}: expected a JSON array, an object with `value` (ARM list) or an object with `data` (Resource Graph reply): {e}"),
        },
    }
}

/// Feeds every element of `text` into `loader`.
pub fn load_text(loader: &mut Loader, kind: Kind, file: &str, text: &str) -> anyhow::Result<()> {
    for (i, raw) in elements(text, file)?.into_iter().enumerate() {
        match serde_json::from_str::<Value>(raw.get()) {
            Ok(v) => loader.add(kind, file, i, &v),
            Err(e) => loader.skip(file, i, format!("not valid JSON: {e}")),
        }
    }
    Ok(())
}

/// Reads a whole inventory folder.
pub fn read_folder(dir: &Path) -> anyhow::Result<Inventory> {
    if !dir.is_dir() {
        bail!("inventory folder {} does not exist", dir.display());
    }
    let mut loader = Loader::new();
    loader.track_role_assignment_scopes();
    for kind in [
        Kind::Clusters,
        Kind::Subscriptions,
        Kind::ResourceGroups,
        Kind::Registries,
        Kind::RoleAssignments,
        Kind::RoleDefinitions,
    ] {
        let path = dir.join(kind.file_name());
        if !path.exists() {
            if kind == Kind::Clusters {
                bail!(
                    "{}: missing (the inventory folder needs clusters.json)",
                    path.display()
                );
            }
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        load_text(&mut loader, kind, &path.display().to_string(), &text)?;
        if kind == Kind::Clusters {
            loader.clusters_complete();
        }
    }
    // Groups' role assignments `--save-inventory` read in its narrow pass.
    let groups_file = dir.join(GROUP_ROLE_ASSIGNMENTS_FILE);
    if groups_file.exists() {
        let text = std::fs::read_to_string(&groups_file)
            .with_context(|| format!("reading {}", groups_file.display()))?;
        load_text(
            &mut loader,
            Kind::RoleAssignments,
            &groups_file.display().to_string(),
            &text,
        )?;
    }
    // What the folder covers: a subscription with clusters but no role assignment at
    // or below it was not exported (the `az` recipe covers one subscription at a
    // time); its clusters' role verdicts would be invented from absent data.
    let ra_file = dir.join(Kind::RoleAssignments.file_name());
    for sub in loader
        .subscriptions_without_role_assignments()
        .unwrap_or_default()
    {
        let reason = if ra_file.exists() {
            format!(
                "{} holds no role assignment at or below this subscription (was it exported?)",
                ra_file.display()
            )
        } else {
            format!("{} is absent", ra_file.display())
        };
        loader.gap(
            format!("/subscriptions/{sub}"),
            reason,
            vec!["role-assignments".to_string()],
        );
    }
    let mut inv = loader.finish();
    read_sp_credentials(dir, &mut inv)?;
    read_group_memberships(dir, &mut inv)?;
    Ok(inv)
}

/// The file `--save-inventory` writes for Microsoft Graph's credential expiry data.
pub const SP_CREDENTIALS_FILE: &str = "sp-credentials.json";

/// Reads `sp-credentials.json` (optional): one bad element is skipped and counted.
fn read_sp_credentials(dir: &Path, inv: &mut Inventory) -> anyhow::Result<()> {
    let path = dir.join(SP_CREDENTIALS_FILE);
    if !path.exists() {
        return Ok(());
    }
    let file = path.display().to_string();
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {file}"))?;
    for (i, raw) in elements(&text, &file)?.into_iter().enumerate() {
        let read = serde_json::from_str::<super::SpCredential>(raw.get())
            .map_err(|e| e.to_string())
            .and_then(|c| super::read::sp_credential_within_limits(&c).map(|()| c));
        match read {
            Ok(c) => inv.sp_credentials.push(c),
            Err(reason) => inv.coverage.skipped_rows.push(super::SkippedRow {
                source: file.clone(),
                index: i,
                reason,
            }),
        }
    }
    Ok(())
}

/// Groups' role assignments (`principalType` Group) read by the live pass for grants
/// through groups; `role-assignments.json` may hold group rows too (an `az` export).
pub const GROUP_ROLE_ASSIGNMENTS_FILE: &str = "group-role-assignments.json";

/// The file with the groups cluster identities belong to (what `--graph` reads from
/// Microsoft Graph; `--save-inventory` writes it): a JSON array of
/// `{"principalId": "<object id>", "groups": ["<group object id>", ...]}`, one element
/// per identity whose membership was read (an empty `groups` is "in no group").
pub const GROUP_MEMBERSHIPS_FILE: &str = "group-memberships.json";

/// Reads `group-memberships.json` (optional): one bad element is skipped and counted.
fn read_group_memberships(dir: &Path, inv: &mut Inventory) -> anyhow::Result<()> {
    let path = dir.join(GROUP_MEMBERSHIPS_FILE);
    if !path.exists() {
        return Ok(());
    }
    let file = path.display().to_string();
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {file}"))?;
    for (i, raw) in elements(&text, &file)?.into_iter().enumerate() {
        let read = serde_json::from_str::<super::GroupMembership>(raw.get())
            .map_err(|e| {
                format!("not a group membership ({{\"principalId\": ..., \"groups\": [...]}}): {e}")
            })
            .and_then(|m| {
                if m.principal_id.trim().is_empty() {
                    Err("`principalId` is empty".to_string())
                } else if m.groups.iter().any(|g| g.trim().is_empty()) {
                    Err("`groups` holds an empty id".to_string())
                } else {
                    Ok(m)
                }
            });
        match read {
            Ok(m) => inv.group_memberships.push(m),
            Err(reason) => inv.coverage.skipped_rows.push(super::SkippedRow {
                source: file.clone(),
                index: i,
                reason,
            }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_memberships_are_read_and_a_bad_element_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("clusters.json"), "[]").unwrap();
        std::fs::write(
            dir.path().join(GROUP_MEMBERSHIPS_FILE),
            r#"[{"principalId":"p1","groups":["g1","g2"]},{"principalId":"p2","groups":[]},{"groups":["g3"]},{"principalId":"p4","groups":[""]}]"#,
        )
        .unwrap();
        let inv = read_folder(dir.path()).unwrap();
        assert_eq!(inv.group_memberships.len(), 2);
        assert_eq!(inv.group_memberships[0].groups, ["g1", "g2"]);
        assert!(inv.group_memberships[1].groups.is_empty());
        let skipped: Vec<(usize, &str)> = inv
            .coverage
            .skipped_rows
            .iter()
            .map(|r| (r.index, r.reason.as_str()))
            .collect();
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(skipped[0].1.contains("principalId"), "{skipped:?}");
        assert_eq!(skipped[1], (3, "`groups` holds an empty id"));
    }

    #[test]
    fn envelopes_are_detected() {
        for text in [
            r#"[{"id":"a"}]"#,
            r#"{"value":[{"id":"a"}]}"#,
            r#"{"data":[{"id":"a"}],"count":1}"#,
        ] {
            assert_eq!(elements(text, "f").unwrap().len(), 1, "{text}");
        }
    }

    #[test]
    fn wrong_shape_names_the_file() {
        let e = elements(r#"{"items":[]}"#, "clusters.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("clusters.json") && e.contains("`value`"), "{e}");
        let e = elements("{", "clusters.json").unwrap_err().to_string();
        assert!(e.contains("not valid JSON"), "{e}");
    }

    #[test]
    fn bad_elements_are_skipped_and_counted() {
        let mut l = Loader::new();
        let text = r#"[{"id":"/subscriptions/s/resourceGroups/r/providers/Microsoft.ContainerService/managedClusters/c","properties":{}}, {"name":"no id"}, {"id":"/subscriptions/s/resourceGroups/r/providers/Microsoft.ContainerService/managedClusters/d","properties":{"agentPoolProfiles":"x"}}]"#;
        load_text(&mut l, Kind::Clusters, "clusters.json", text).unwrap();
        let inv = l.finish();
        assert_eq!(inv.clusters.len(), 1);
        assert_eq!(inv.coverage.skipped_rows.len(), 2);
        assert_eq!(inv.coverage.skipped_rows[0].index, 1);
        assert!(inv.coverage.skipped_rows[1]
            .reason
            .contains("agentPoolProfiles"));
    }
}
