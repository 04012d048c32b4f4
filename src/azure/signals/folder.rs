//! The follow-ups' rows saved by `--save-inventory` and read back from an inventory
//! folder.
use super::*;

/// The rows the follow-ups read, written by `--save-inventory` under the names the
/// inventory folder and the emulator read ([`from_folder`]).
#[derive(Default)]
pub struct Saved {
    pub(super) changes: Vec<Value>,
    pub(super) sets: Vec<Value>,
    pub(super) vms: Vec<Value>,
}

/// Inventory-folder files of the follow-ups' rows (ARM / Resource Graph rows, or the
/// follow-up queries' projected rows, as `--save-inventory` writes them).
pub const CHANGES_FILE: &str = "resource-changes.json";
pub const SCALE_SETS_FILE: &str = "scale-sets.json";
pub const SCALE_SET_VMS_FILE: &str = "scale-set-vms.json";

impl Saved {
    pub(super) fn write(&self, dir: &std::path::Path) -> anyhow::Result<()> {
        for (name, rows) in [
            (CHANGES_FILE, &self.changes),
            (SCALE_SETS_FILE, &self.sets),
            (SCALE_SET_VMS_FILE, &self.vms),
        ] {
            let text = serde_json::to_vec(rows)?;
            crate::history::write_atomic(&dir.join(name), &text)?;
        }
        Ok(())
    }
}

/// A change row as kql/cluster-flips.kql projects it, from either that shape or the
/// table's own (`properties.targetResourceId`, `properties.changeAttributes.timestamp`,
/// `properties.changes`).
pub(super) fn projected_change(v: &Value) -> Value {
    match v.get("properties") {
        Some(p) if v.get("targetResourceId").is_none() => serde_json::json!({
            "id": v.get("id"),
            "targetResourceType": p.get("targetResourceType"),
            "targetResourceId": p.get("targetResourceId"),
            "timestamp": p.pointer("/changeAttributes/timestamp"),
            "changes": p.get("changes"),
        }),
        _ => v.clone(),
    }
}

/// Whether a change row is one the follow-up queries return: a managed cluster's,
/// and a flip or a pool version change.
pub(super) fn relevant_change(v: &Value) -> bool {
    let cluster = v
        .get("targetResourceType")
        .and_then(Value::as_str)
        .is_none_or(|t| t.eq_ignore_ascii_case("microsoft.containerservice/managedclusters"));
    let Some(changes) = v.get("changes").and_then(Value::as_object) else {
        return false;
    };
    let text = Value::Object(changes.clone())
        .to_string()
        .to_ascii_lowercase();
    cluster
        && (is_flip(changes)
            || text.contains("nodeimageversion")
            || text.contains("rchestratorversion"))
}

/// A scale-set row as kql/scale-sets.kql projects it, from either shape.
pub(super) fn projected_set(v: &Value) -> Value {
    if v.get("poolTag").is_some() || v.get("identities").is_some() {
        return v.clone();
    }
    serde_json::json!({
        "id": v.get("id"), "name": v.get("name"),
        "poolTag": v.pointer("/tags/aks-managed-poolName"),
        "identities": v.pointer("/identity/userAssignedIdentities"),
    })
}

/// An instance row as kql/scale-set-vms.kql projects it, from either shape.
pub(super) fn projected_vm(v: &Value) -> Value {
    if v.get("latestModelApplied").is_some() {
        return v.clone();
    }
    serde_json::json!({"id": v.get("id"), "latestModelApplied": v.pointer("/properties/latestModelApplied")})
}

pub(super) fn read_rows(
    dir: &std::path::Path,
    name: &str,
    of_type: &str,
    project: fn(&Value) -> Value,
) -> anyhow::Result<Option<Vec<Value>>> {
    let path = dir.join(name);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let file = path.display().to_string();
    let mut out = Vec::new();
    for raw in crate::inventory::folder::elements(&text, &file)? {
        let Ok(v) = serde_json::from_str::<Value>(raw.get()) else {
            continue;
        };
        let typed = v
            .get("type")
            .and_then(Value::as_str)
            .is_none_or(|t| t.eq_ignore_ascii_case(of_type));
        if typed {
            out.push(project(&v));
        }
    }
    Ok(Some(out))
}

/// The follow-ups from an inventory folder's files (optional: `resource-changes.json`,
/// `scale-sets.json`, `scale-set-vms.json`, the emulator's names), for the same
/// clusters and by the same rules as the live path, so a folder replays as the live
/// run read it. A file absent: that follow-up not read.
pub fn from_folder(
    dir: &std::path::Path,
    inv: &mut Inventory,
    prior: &Prior<'_>,
) -> anyhow::Result<()> {
    if let Some(rows) = read_rows(
        dir,
        CHANGES_FILE,
        "microsoft.resources/changes",
        projected_change,
    )? {
        let mut by_target: HashMap<String, Vec<ChangeRow>> = HashMap::new();
        for r in rows
            .iter()
            .filter(|v| relevant_change(v))
            .filter_map(ChangeRow::parse)
        {
            by_target.entry(r.target.clone()).or_default().push(r);
        }
        for c in inv.clusters.iter_mut() {
            if needs_changes(prior, c) {
                let rows = by_target
                    .remove(&c.id.to_ascii_lowercase())
                    .unwrap_or_default();
                c.changes = Some(ClusterChanges {
                    flip: flip_from_changes(c, &rows),
                    unread: None,
                });
            }
        }
    }
    let Some(sets) = read_rows(
        dir,
        SCALE_SETS_FILE,
        "microsoft.compute/virtualmachinescalesets",
        projected_set,
    )?
    else {
        return Ok(());
    };
    let vms = read_rows(
        dir,
        SCALE_SET_VMS_FILE,
        "microsoft.compute/virtualmachinescalesets/virtualmachines",
        projected_vm,
    )?;
    let want: Vec<usize> = (0..inv.clusters.len())
        .filter(|&i| needs_scale_sets(prior, &inv.clusters[i]))
        .collect();
    let groups: Vec<(String, String)> = want.iter().map(|&i| group_key(&inv.clusters[i])).collect();
    let by_group = group_scale_sets(&groups, &sets, vms.as_deref());
    for i in want {
        if let Some(n) = by_group.get(&group_key(&inv.clusters[i])) {
            inv.clusters[i].scale_sets = Some(n.clone());
        }
    }
    Ok(())
}
