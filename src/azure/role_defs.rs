//! Custom role definitions, read only for the roles the audit meets: the GUIDs of the
//! role assignments read (cluster identities' own, then groups' from the second pass)
//! that are no built-in role the tool knows and whose definition is not read yet.
//! Most estates grant cluster identities built-in roles only: then no query is sent
//! (it was one per subscription batch). A definition is looked for in every batch, as
//! before, since a custom role may be defined in another subscription than the one it
//! is assigned in (its `assignableScopes`).
use std::collections::BTreeSet;

use serde_json::Value;

use super::arg::{ArmClient, BatchScope};
use super::AzureSettings;
use crate::inventory::{read, Inventory};

const QUERY: &str = include_str!("kql/role-definitions.kql");
/// Stats and gap table name (the name the query had as a first-pass table).
pub const TABLE: &str = "role-definitions";
const SOURCE: &str = "Resource Graph role-definitions";
/// Role GUIDs in one query.
const PER_QUERY: usize = 100;

/// The role GUIDs (lower case) of `inv`'s assignments that are not built-in roles the
/// tool knows and have no definition in `inv` yet.
pub fn unknown(inv: &Inventory) -> Vec<String> {
    let read: BTreeSet<&str> = inv
        .role_definitions
        .iter()
        .map(|d| d.guid.as_str())
        .collect();
    let mut out: BTreeSet<String> = BTreeSet::new();
    for a in &inv.role_assignments {
        let g = a.role_guid.to_ascii_lowercase();
        if g.is_empty() || read.contains(g.as_str()) || out.contains(&g) {
            continue;
        }
        if crate::rules::baseline::role_display(&g, None) == g {
            out.insert(g);
        }
    }
    out.into_iter().collect()
}

/// The queries for `guids`, 100 a query.
pub fn queries(guids: &[String]) -> Vec<String> {
    guids
        .chunks(PER_QUERY)
        .map(|c| {
            let list: Vec<String> = c.iter().map(|g| super::groups::literal(g)).collect();
            QUERY.replacen("{names}", &format!("name in~ ({})", list.join(", ")), 1)
        })
        .collect()
}

/// Reads the definitions of [`unknown`] roles into `inv`. A batch that fails is a
/// coverage gap of this table (a custom role held there is then "verify", never a
/// verdict). Returns the queries sent.
pub async fn enrich(
    client: &ArmClient,
    s: &AzureSettings,
    batches: &[BatchScope],
    inv: &mut Inventory,
) -> usize {
    let guids = unknown(inv);
    if guids.is_empty() {
        return 0;
    }
    let mut rows: Vec<Value> = Vec::new();
    let mut n = 0;
    let mut failed: Vec<(String, String)> = Vec::new();
    for q in queries(&guids) {
        for b in batches {
            n += 1;
            let res = client
                .query_each(&s.arm_endpoint, &s.arm_scope, TABLE, &q, b, |v| {
                    rows.push(v)
                })
                .await;
            if let Err(e) = res {
                tracing::warn!(error = %e, "reading custom role definitions failed; custom roles there are not evaluated");
                for sc in b.scopes() {
                    failed.push((sc, e.to_string()));
                }
            }
        }
    }
    let known: BTreeSet<String> = inv
        .coverage
        .gaps
        .iter()
        .map(|g| g.scope.to_ascii_lowercase())
        .collect();
    for (scope, reason) in failed {
        if !known.contains(&scope.to_ascii_lowercase()) {
            inv.coverage.gaps.push(crate::inventory::Gap {
                scope,
                reason: format!("custom role definitions not read: {reason}"),
                tables: vec![TABLE.into()],
            });
        }
    }
    for (i, v) in rows.iter().enumerate() {
        match read::role_definition(v) {
            Ok(d) => inv.role_definitions.push(d),
            Err(reason) => inv
                .coverage
                .skipped_rows
                .push(crate::inventory::SkippedRow {
                    source: SOURCE.into(),
                    index: i,
                    reason,
                }),
        }
    }
    let mut seen = BTreeSet::new();
    inv.role_definitions
        .retain(|d| seen.insert(d.id.to_ascii_lowercase()));
    n
}

/// Writes the definitions read into a `--save-inventory` folder's
/// `role-definitions.json` (the flat shape `az role definition list` prints).
pub fn save(dir: &std::path::Path, inv: &Inventory) -> anyhow::Result<()> {
    let rows: Vec<Value> = inv
        .role_definitions
        .iter()
        .map(|d| {
            serde_json::json!({
                "id": d.id, "roleName": d.role_name, "roleType": "CustomRole",
                "permissions": d.permissions.iter().map(|p| serde_json::json!({
                    "actions": p.actions, "notActions": p.not_actions,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    crate::history::write_atomic(
        &dir.join(crate::inventory::Kind::RoleDefinitions.file_name()),
        serde_json::to_string_pretty(&rows)?.as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{RoleAssignment, RoleDefinition};

    fn held(guid: &str) -> RoleAssignment {
        RoleAssignment {
            id: format!(
                "/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/{guid}"
            ),
            role_definition_id: format!(
                "/providers/Microsoft.Authorization/roleDefinitions/{guid}"
            )
            .into(),
            role_guid: guid.into(),
            role_name: None,
            principal_id: "p".into(),
            principal_name: None,
            principal_type: None,
            scope: "/subscriptions/s".into(),
            created_on: None,
            condition: None,
            via_group: None,
        }
    }

    #[test]
    fn only_roles_neither_built_in_nor_read_are_asked_for() {
        // Contributor (built in), two assignments of one custom role, one already read.
        let mut inv = Inventory {
            role_assignments: vec![
                held("b24988ac-6180-42a0-ab88-20f7382dd24c"),
                held("6A1F0C2E-4B8D-4E3A-9F5C-7D2B1E0A3C01"),
                held("6a1f0c2e-4b8d-4e3a-9f5c-7d2b1e0a3c01"),
                held("6a1f0c2e-4b8d-4e3a-9f5c-7d2b1e0a3c02"),
            ],
            role_definitions: vec![RoleDefinition {
                guid: "6a1f0c2e-4b8d-4e3a-9f5c-7d2b1e0a3c02".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(unknown(&inv), ["6a1f0c2e-4b8d-4e3a-9f5c-7d2b1e0a3c01"]);
        inv.role_assignments.truncate(1);
        assert!(unknown(&inv).is_empty(), "built-in roles only: no query");
        let many: Vec<String> = (0..201).map(|i| format!("{i:08}")).collect();
        assert_eq!(queries(&many).len(), 3, "100 names a query");
        assert!(queries(&many[..1])[0].contains("name in~ ('00000000')"));
    }
}
