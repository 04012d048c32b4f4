//! The second, narrow pass for grants through Microsoft Entra groups: only when the
//! rules find a cluster identity without a grant it needs (AKSMI010/020/021/023), and
//! only for those identities and places (see [`crate::rules::groups`]).
//!
//! - With `--graph`: the groups each such identity belongs to, transitively
//!   (Microsoft Graph `GET /servicePrincipals/{id}/transitiveMemberOf/microsoft.graph.group`,
//!   least privilege `Application.Read.All` — the permission `--graph` already needs;
//!   the OData cast needs `ConsistencyLevel: eventual` and `$count=true`), up to 20
//!   lookups per JSON `$batch`; then the role assignments of those groups, by id
//!   (`principalId in~ (...)`, 100 ids a query), wherever they are in the audited
//!   scope — so a group's Owner on a subscription is seen too.
//! - Without: membership cannot be known. The groups' assignments at the places the
//!   grants are missing (the target and every scope above it) are read, so a missing
//!   grant a group may explain is told apart from one no group explains: one
//!   summarized query per subscription batch (the subscriptions holding such a place),
//!   a row per scope with its groups' assignments packed in, of which the scopes on the
//!   missing grants' paths are kept. A batch whose summary is more than a page is
//!   halved; one subscription's, or a management group's, scopes are asked 100 a query.
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::arg::{ArmClient, BatchScope};
use super::error::CallError;
use super::groups::literal;
use super::AzureSettings;
use crate::inventory::{read, GroupMembership, Inventory, RoleAssignment};
use crate::rules::groups::Needs;

mod graph;
pub use graph::*;

/// Requests in one Graph JSON batch (the documented maximum).
pub const BATCH_MAX: usize = 20;
/// Ids (or scopes) in one Resource Graph lookup query.
pub const IDS_PER_QUERY: usize = 100;
/// Rounds of retries for lookups a batch answered with 429/503/504.
const MAX_ROUNDS: u32 = 6;

const ROWS: &str = include_str!("kql/group-role-assignments.kql");
const BY_SCOPE: &str = include_str!("kql/group-role-assignments-by-scope.kql");
const TABLE: &str = "group-role-assignments";
const SOURCE: &str = "Resource Graph group-role-assignments";

/// The Resource Graph queries for groups' role assignments: by the groups' ids, or
/// (`by_scope`) at the given scopes; 100 a query.
pub fn row_queries(values: &[String], by_scope: bool) -> Vec<String> {
    let column = if by_scope {
        "tostring(properties.scope)"
    } else {
        "tostring(properties.principalId)"
    };
    values
        .chunks(IDS_PER_QUERY)
        .map(|chunk| {
            let list: Vec<String> = chunk.iter().map(|v| literal(v)).collect();
            ROWS.replacen(
                "{condition}",
                &format!("{column} in~ ({})", list.join(", ")),
                1,
            )
        })
        .collect()
}

/// Runs `queries` over `batches` and returns the role-assignment rows (bad rows are
/// counted as skipped). A failed query is a coverage gap of the group rows.
async fn read_rows(
    client: &ArmClient,
    s: &AzureSettings,
    queries: &[String],
    batches: &[BatchScope],
    inv: &mut Inventory,
) {
    let mut rows: Vec<Value> = Vec::new();
    // Subscriptions the first pass could not read are gaps already: not asked again.
    let unread = unread_subscriptions(inv);
    let mut known_gaps: BTreeSet<String> = unread.clone();
    for q in queries {
        let mut work: Vec<BatchScope> = batches
            .iter()
            .filter_map(|b| match b {
                BatchScope::Subscriptions(subs) => {
                    let keep: Vec<String> = subs
                        .iter()
                        .filter(|x| {
                            !unread.contains(&format!("/subscriptions/{}", x.to_ascii_lowercase()))
                        })
                        .cloned()
                        .collect();
                    (!keep.is_empty()).then_some(BatchScope::Subscriptions(keep))
                }
                m => Some(m.clone()),
            })
            .collect();
        while let Some(b) = work.pop() {
            let res = client
                .query_each(&s.arm_endpoint, &s.arm_scope, TABLE, q, &b, |v| {
                    rows.push(v)
                })
                .await;
            let Err(e) = res else { continue };
            // A subscription refused now (403): the rest of the batch is read, as in
            // the first pass; it alone is a gap.
            if let (BatchScope::Subscriptions(subs), Some(403)) = (&b, e.status) {
                let bad = super::arg::forbidden_subscription(&e.reason, subs);
                if let Some(bad) = bad.or_else(|| (subs.len() == 1).then(|| subs[0].clone())) {
                    let rest: Vec<String> = subs.iter().filter(|x| **x != bad).cloned().collect();
                    if !rest.is_empty() {
                        work.push(BatchScope::Subscriptions(rest));
                    }
                    gap(inv, &mut known_gaps, format!("/subscriptions/{bad}"), &e);
                    continue;
                }
                if subs.len() > 1 {
                    let (x, y) = subs.split_at(subs.len() / 2);
                    work.push(BatchScope::Subscriptions(x.to_vec()));
                    work.push(BatchScope::Subscriptions(y.to_vec()));
                    continue;
                }
            }
            tracing::warn!(error = %e, "reading groups' role assignments failed; grants through groups there are not evaluated");
            for sc in b.scopes() {
                gap(inv, &mut known_gaps, sc, &e);
            }
        }
    }
    push_group_rows(rows.iter().map(read::role_assignment).collect(), inv);
}

/// Subscriptions (as `/subscriptions/<id>`, lower case) the first pass could not read
/// role assignments of: gaps already, not asked again.
fn unread_subscriptions(inv: &Inventory) -> BTreeSet<String> {
    inv.coverage
        .gaps
        .iter()
        .filter(|g| g.tables.iter().any(|t| t == "role-assignments"))
        .map(|g| g.scope.to_ascii_lowercase())
        .collect()
}

/// A coverage gap for the groups' rows of `scope` (once per scope).
fn gap(inv: &mut Inventory, known: &mut BTreeSet<String>, scope: String, e: &CallError) {
    if known.insert(scope.to_ascii_lowercase()) {
        inv.coverage.gaps.push(crate::inventory::Gap {
            scope,
            reason: format!("groups' role assignments not read: {e}"),
            tables: vec!["role-assignments".into()],
        });
    }
}

/// Reads groups' role-assignment rows into the inventory (a bad row is skipped and
/// counted; a row already there is kept once).
/// Repeated strings (role, scope, type) are shared, as the first pass's loader does:
/// a large tenant's groups hold the same role on the same subscription tens of times.
fn push_group_rows(rows: Vec<Result<RoleAssignment, String>>, inv: &mut Inventory) {
    let mut strings: std::collections::HashSet<Arc<str>> = Default::default();
    let mut one = |s: &mut Arc<str>| match strings.get(&**s) {
        Some(shared) => *s = shared.clone(),
        None => {
            strings.insert(s.clone());
        }
    };
    inv.role_assignments.reserve(rows.len());
    for (i, r) in rows.into_iter().enumerate() {
        match r {
            Ok(mut ra) if crate::rules::groups::is_group_row(&ra) => {
                one(&mut ra.role_definition_id);
                one(&mut ra.role_guid);
                one(&mut ra.principal_id);
                one(&mut ra.scope);
                ra.principal_type.as_mut().map(&mut one);
                inv.role_assignments.push(ra)
            }
            Ok(_) => {}
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
    // A group row already read (an inventory that had it) is kept once.
    let mut seen = BTreeSet::new();
    inv.role_assignments.retain(|a| {
        !crate::rules::groups::is_group_row(a) || seen.insert(a.id.to_ascii_lowercase())
    });
    inv.role_assignments.shrink_to_fit();
}

/// Without membership: the groups' rows at `scopes` (inside the subscriptions `subs`),
/// with one summarized query ([`BY_SCOPE`]) for all of them. A summary that does not
/// fit one page (`resultTruncated`, no `$skipToken`) is asked again of each half of
/// the subscriptions, down to one, whose scopes are then asked 100 a query. Returns
/// the queries sent.
/// What [`fetch_by_scope`] read for one subscription batch, applied to the inventory
/// by [`apply_by_scope`] (batches are fetched side by side, applied in order).
#[derive(Default)]
struct ByScope {
    rows: Vec<Result<RoleAssignment, String>>,
    /// Subscriptions refused or failed, with the error.
    gaps: Vec<(String, CallError)>,
    /// Single subscriptions whose summary was more than a page.
    scope_by_scope: Vec<String>,
    queries: usize,
}

async fn fetch_by_scope(
    client: &ArmClient,
    s: &AzureSettings,
    subs: Vec<String>,
    scopes: &[String],
    unread: &BTreeSet<String>,
) -> ByScope {
    let wanted: BTreeSet<String> = scopes.iter().map(|x| x.to_ascii_lowercase()).collect();
    let mut out = ByScope::default();
    let subs: Vec<String> = subs
        .into_iter()
        .filter(|x| !unread.contains(&format!("/subscriptions/{}", x.to_ascii_lowercase())))
        .collect();
    let mut work: Vec<Vec<String>> = if subs.is_empty() { vec![] } else { vec![subs] };
    let truncated = super::paging::PagingError::Truncated.to_string();
    while let Some(subs) = work.pop() {
        out.queries += 1;
        let mut got: Vec<Result<RoleAssignment, String>> = Vec::new();
        let b = BatchScope::Subscriptions(subs.clone());
        let res = client
            .query_each(&s.arm_endpoint, &s.arm_scope, TABLE, BY_SCOPE, &b, |v| {
                let scope = v.get("scope").and_then(Value::as_str).unwrap_or("");
                if !wanted.contains(&scope.to_ascii_lowercase()) {
                    return;
                }
                match v.get("rows") {
                    Some(Value::Array(list)) => got.extend(list.iter().map(read::role_assignment)),
                    _ => got.push(Err(format!(
                        "the summary row of scope {scope} has no `rows` list"
                    ))),
                }
            })
            .await;
        let e = match res {
            Ok(()) => {
                out.rows.extend(got);
                continue;
            }
            Err(e) => e,
        };
        if e.reason == truncated {
            if subs.len() > 1 {
                let (x, y) = subs.split_at(subs.len() / 2);
                work.push(x.to_vec());
                work.push(y.to_vec());
            } else {
                out.scope_by_scope.push(subs[0].clone());
            }
            continue;
        }
        // A subscription refused now (403): the rest is asked again; it alone is a gap.
        if e.status == Some(403) {
            let bad = super::arg::forbidden_subscription(&e.reason, &subs)
                .or_else(|| (subs.len() == 1).then(|| subs[0].clone()));
            if let Some(bad) = bad {
                let rest: Vec<String> = subs.iter().filter(|x| **x != bad).cloned().collect();
                if !rest.is_empty() {
                    work.push(rest);
                }
                out.gaps.push((format!("/subscriptions/{bad}"), e));
                continue;
            }
            if subs.len() > 1 {
                let (x, y) = subs.split_at(subs.len() / 2);
                work.push(x.to_vec());
                work.push(y.to_vec());
                continue;
            }
        }
        tracing::warn!(error = %e, "reading groups' role assignments failed; grants through groups there are not evaluated");
        for sub in &subs {
            out.gaps.push((format!("/subscriptions/{sub}"), e.clone()));
        }
    }
    // In the order the scope-by-scope queries give (by id).
    out.rows.sort_by_cached_key(|r| match r {
        Ok(a) => a.id.to_ascii_lowercase(),
        Err(_) => String::new(),
    });
    out
}

/// Applies one batch's [`ByScope`]: its gaps, the scope-by-scope lookups of the
/// subscriptions whose summary was too long, then its rows. Returns the queries sent.
async fn apply_by_scope(
    client: &ArmClient,
    s: &AzureSettings,
    got: ByScope,
    scopes: &[String],
    inv: &mut Inventory,
) -> usize {
    let mut n = got.queries;
    let mut known_gaps = unread_subscriptions(inv);
    for (scope, e) in &got.gaps {
        gap(inv, &mut known_gaps, scope.clone(), e);
    }
    for sub in &got.scope_by_scope {
        let mine: Vec<String> = scopes
            .iter()
            .filter(|sc| {
                crate::inventory::ids::subscription_of(sc)
                    .is_some_and(|x| x.eq_ignore_ascii_case(sub))
            })
            .cloned()
            .collect();
        let q = row_queries(&mine, true);
        n += q.len();
        let b = BatchScope::Subscriptions(vec![sub.clone()]);
        read_rows(client, s, &q, std::slice::from_ref(&b), inv).await;
    }
    push_group_rows(got.rows, inv);
    n
}

/// The second pass: reads what grants through groups need for `needs`, into `inv`.
/// Returns the number of Resource Graph queries planned (for the log).
pub async fn enrich(
    client: &ArmClient,
    s: &AzureSettings,
    batches: &[BatchScope],
    inv: &mut Inventory,
    needs: &Needs,
) -> usize {
    let principals = needs.principals();
    let mut n = 0;
    let mut unknown = needs.clone();
    if s.graph {
        let read = read_memberships(client, &s.graph_endpoint, &s.graph_scope, &principals).await;
        for (p, why) in &read.unread {
            tracing::info!(principal = %p, reason = %why, "group membership not read");
        }
        if !read.forbidden {
            let groups: BTreeSet<String> = read
                .memberships
                .iter()
                .flat_map(|m| m.groups.iter().map(|g| g.to_ascii_lowercase()))
                .collect();
            let known: BTreeSet<String> = read
                .memberships
                .iter()
                .map(|m| m.principal_id.to_ascii_lowercase())
                .collect();
            inv.group_memberships.extend(read.memberships);
            let groups: Vec<String> = groups.into_iter().collect();
            if !groups.is_empty() {
                let q = row_queries(&groups, false);
                n += q.len() * batches.len();
                read_rows(client, s, &q, batches, inv).await;
            }
            unknown
                .missing
                .retain(|(p, _)| !known.contains(&p.to_ascii_lowercase()));
        }
    }
    if unknown.missing.is_empty() {
        return n;
    }
    // Membership unknown (no --graph, Graph refused, or some identities unread): the
    // groups' grants where the missing grants are.
    let needs = &unknown;
    // Each batch is asked only for the scopes in its own subscriptions (a query per
    // 100 of them); the management groups above go with the first batch that has any.
    let scopes = scopes_with_management_groups(needs, inv);
    let (mgs, in_subs): (Vec<&String>, Vec<&String>) = scopes
        .iter()
        .partition(|sc| crate::inventory::ids::subscription_of(sc).is_none());
    // Each batch's summary is fetched side by side (the emulator or Resource Graph
    // answers them in parallel), then applied in batch order (the same inventory
    // whatever order the answers come in). The management groups' places go with the
    // first batch that has any place.
    let mut jobs: Vec<(usize, Vec<String>, Vec<String>)> = Vec::new();
    for (i, b) in batches.iter().enumerate() {
        let BatchScope::Subscriptions(batch_subs) = b else {
            continue;
        };
        let subs: BTreeSet<String> = batch_subs.iter().map(|x| x.to_ascii_lowercase()).collect();
        let mine: Vec<String> = in_subs
            .iter()
            .filter(|sc| {
                crate::inventory::ids::subscription_of(sc)
                    .is_some_and(|x| subs.contains(&x.to_ascii_lowercase()))
            })
            .map(|sc| sc.to_string())
            .collect();
        if mine.is_empty() {
            continue;
        }
        let holding: BTreeSet<String> = mine
            .iter()
            .filter_map(|sc| crate::inventory::ids::subscription_of(sc))
            .map(|x| x.to_ascii_lowercase())
            .collect();
        let holding: Vec<String> = batch_subs
            .iter()
            .filter(|x| holding.contains(&x.to_ascii_lowercase()))
            .cloned()
            .collect();
        jobs.push((i, holding, mine));
    }
    let unread = unread_subscriptions(inv);
    let first_with_places = jobs.first().map(|(i, _, _)| *i);
    {
        use futures::StreamExt;
        // Two in flight: one answered while the next is read; each applied (its rows
        // interned) as soon as it is in, so no more than two batches' rows are held.
        let mut fetched = futures::stream::iter(jobs.iter())
            .map(|(_, holding, mine)| fetch_by_scope(client, s, holding.clone(), mine, &unread))
            .buffered(2);
        let mut places = jobs.iter();
        while let Some(got) = fetched.next().await {
            let (_, _, mine) = places.next().expect("one answer per job");
            n += apply_by_scope(client, s, got, mine, inv).await;
        }
    }
    if let (Some(i), false) = (first_with_places, mgs.is_empty()) {
        let mgs: Vec<String> = mgs.iter().map(|m| m.to_string()).collect();
        let q = row_queries(&mgs, true);
        n += q.len();
        read_rows(client, s, &q, std::slice::from_ref(&batches[i]), inv).await;
    }
    for b in batches
        .iter()
        .filter(|b| matches!(b, BatchScope::ManagementGroups(_)))
    {
        let q = row_queries(&scopes, true);
        n += q.len();
        read_rows(client, s, &q, std::slice::from_ref(b), inv).await;
    }
    n
}

/// Writes what the pass read into a `--save-inventory` folder: the groups' rows
/// (`group-role-assignments.json`) and the memberships (`group-memberships.json`).
pub fn save(dir: &std::path::Path, inv: &Inventory) -> anyhow::Result<()> {
    use crate::inventory::folder::{GROUP_MEMBERSHIPS_FILE, GROUP_ROLE_ASSIGNMENTS_FILE};
    let rows: Vec<Value> = inv
        .role_assignments
        .iter()
        .filter(|a| crate::rules::groups::is_group_row(a))
        .map(|a| {
            serde_json::json!({"id": a.id, "principalId": &*a.principal_id, "principalType": "Group",
                "roleDefinitionId": &*a.role_definition_id, "scope": &*a.scope,
                "createdOn": a.created_on, "condition": a.condition})
        })
        .collect();
    crate::history::write_atomic(
        &dir.join(GROUP_ROLE_ASSIGNMENTS_FILE),
        serde_json::to_string_pretty(&rows)?.as_bytes(),
    )?;
    if !inv.group_memberships.is_empty() {
        crate::history::write_atomic(
            &dir.join(GROUP_MEMBERSHIPS_FILE),
            serde_json::to_string_pretty(&inv.group_memberships)?.as_bytes(),
        )?;
    }
    Ok(())
}

/// [`Needs::scopes`] plus the management groups above each target's subscription
/// (when the inventory knows them): a group's grant there reaches the target too.
fn scopes_with_management_groups(needs: &Needs, inv: &Inventory) -> Vec<String> {
    let mut out = needs.scopes();
    let subs: BTreeSet<String> = needs
        .missing
        .iter()
        .filter_map(|(_, t)| {
            crate::inventory::ids::subscription_of(t).map(|s| s.to_ascii_lowercase())
        })
        .collect();
    for sub in inv
        .subscriptions
        .iter()
        .filter(|x| subs.contains(&x.id.to_ascii_lowercase()))
    {
        for mg in sub.management_groups.iter().flatten() {
            out.push(format!(
                "/providers/microsoft.management/managementgroups/{}",
                mg.to_ascii_lowercase()
            ));
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests;
