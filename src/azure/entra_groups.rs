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

/// The relative URL (as a `$batch` request names it) of one identity's groups.
pub fn member_of_path(principal: &str) -> String {
    format!(
        "/servicePrincipals/{}/transitiveMemberOf/microsoft.graph.group?$select=id&$count=true&$top=999",
        urlencoding(principal)
    )
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

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

#[derive(Debug, Deserialize)]
struct BatchReply {
    #[serde(default)]
    responses: Vec<BatchItem>,
}

#[derive(Debug, Deserialize)]
struct BatchItem {
    id: String,
    status: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Value,
}

/// One page of `transitiveMemberOf`: the group ids and the next page's link.
pub fn parse_groups(body: &Value) -> Result<(Vec<String>, Option<String>), String> {
    let Some(list) = body.get("value").and_then(Value::as_array) else {
        return Err("no `value` list in the reply".into());
    };
    let mut ids = Vec::new();
    for v in list {
        // The cast returns groups only; anything else (a directory role) is skipped.
        let ty = v.get("@odata.type").and_then(Value::as_str).unwrap_or("");
        if !ty.is_empty() && !ty.eq_ignore_ascii_case("#microsoft.graph.group") {
            continue;
        }
        match v.get("id").and_then(Value::as_str) {
            Some(id) if !id.trim().is_empty() => ids.push(id.to_string()),
            _ => return Err("a group without an `id`".into()),
        }
    }
    let next = body
        .get("@odata.nextLink")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
        .map(str::to_string);
    Ok((ids, next))
}

/// Seconds a throttled batch item asks to wait (`Retry-After`, any case).
fn retry_after(h: &BTreeMap<String, String>) -> Option<Duration> {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(120)))
}

/// What reading memberships gave.
#[derive(Debug, Default)]
pub struct MembershipRead {
    pub memberships: Vec<GroupMembership>,
    /// Identities whose groups could not be read, with why.
    pub unread: Vec<(String, String)>,
    /// Graph refused (403): no membership was read.
    pub forbidden: bool,
}

/// Reads the groups of `principals` through Graph `$batch`.
pub async fn read_memberships(
    client: &ArmClient,
    graph: &Url,
    scope: &str,
    principals: &[String],
) -> MembershipRead {
    const TABLE: &str = "graph/memberships";
    let mut out = MembershipRead::default();
    let batch_url = graph
        .join("v1.0/$batch")
        .expect("a fixed relative path joins");
    let mut pending: VecDeque<String> = principals.iter().cloned().collect();
    let mut round = 0u32;
    while !pending.is_empty() {
        round += 1;
        let mut again: Vec<String> = Vec::new();
        let mut wait = Duration::ZERO;
        let now: Vec<String> = pending.drain(..).collect();
        for chunk in now.chunks(BATCH_MAX) {
            let requests: Vec<Value> = chunk
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    serde_json::json!({"id": i.to_string(), "method": "GET",
                        "url": member_of_path(p), "headers": {"ConsistencyLevel": "eventual"}})
                })
                .collect();
            let body = serde_json::to_vec(&serde_json::json!({ "requests": requests }))
                .expect("json serializes");
            let reply = client
                .call_with(
                    TABLE,
                    Method::POST,
                    &batch_url,
                    scope,
                    Some((&body, "application/json")),
                    &[],
                    false,
                )
                .await;
            let reply: BatchReply = match reply.map_err(|e| (e.status, e.to_string())).and_then(
                |b| {
                    serde_json::from_slice(&b)
                        .map_err(|e| (None, format!("not a Graph batch reply: {e}")))
                },
            ) {
                Ok(r) => r,
                Err((Some(403), why)) => {
                    tracing::warn!(reason = %why, "no permission to read group membership in Microsoft Graph (Application.Read.All); grants through groups are judged without it");
                    out.forbidden = true;
                    return out;
                }
                Err((_, why)) => {
                    out.unread
                        .extend(chunk.iter().map(|p| (p.clone(), why.clone())));
                    continue;
                }
            };
            client.stats.update(TABLE, |t| t.pages += 1);
            let mut answered = BTreeSet::new();
            for item in reply.responses {
                let Some(p) = item.id.parse::<usize>().ok().and_then(|i| chunk.get(i)) else {
                    continue;
                };
                answered.insert(p.clone());
                match item.status {
                    200 => match follow(client, graph, scope, &item.body).await {
                        Ok(groups) => {
                            client
                                .stats
                                .update(TABLE, |t| t.rows += groups.len() as u64);
                            out.memberships.push(GroupMembership {
                                principal_id: p.clone(),
                                groups,
                            });
                        }
                        Err(why) => out.unread.push((p.clone(), why)),
                    },
                    403 => {
                        tracing::warn!("no permission to read group membership in Microsoft Graph (Application.Read.All); grants through groups are judged without it");
                        out.forbidden = true;
                        out.memberships.clear();
                        return out;
                    }
                    429 | 503 | 504 if round < MAX_ROUNDS => {
                        client
                            .stats
                            .update(TABLE, |t| t.throttled_429 += u64::from(item.status == 429));
                        wait =
                            wait.max(retry_after(&item.headers).unwrap_or(Duration::from_secs(2)));
                        again.push(p.clone());
                    }
                    404 => out
                        .unread
                        .push((p.clone(), "not found in the directory".into())),
                    s => out.unread.push((
                        p.clone(),
                        format!(
                            "HTTP {s} {}",
                            super::error::render(item.body.to_string().as_bytes())
                        ),
                    )),
                }
            }
            for p in chunk.iter().filter(|p| !answered.contains(*p)) {
                out.unread
                    .push((p.clone(), "no answer in the batch reply".into()));
            }
        }
        if !again.is_empty() {
            client
                .stats
                .update(TABLE, |t| t.retries += again.len() as u64);
            tracing::debug!(
                identities = again.len(),
                wait_ms = wait.as_millis() as u64,
                "Graph batch items throttled; retrying"
            );
            tokio::time::sleep(wait).await;
            pending.extend(again);
        }
    }
    out
}

/// The groups on the first page `body` and on the pages after it.
async fn follow(
    client: &ArmClient,
    graph: &Url,
    scope: &str,
    body: &Value,
) -> Result<Vec<String>, String> {
    let (mut groups, mut next) = parse_groups(body)?;
    let mut seen = BTreeSet::new();
    while let Some(link) = next {
        let url = Url::parse(&link).map_err(|e| format!("bad @odata.nextLink `{link}`: {e}"))?;
        if url.origin() != graph.origin() {
            return Err(format!(
                "@odata.nextLink points to another host ({}); not following it with a token",
                url.host_str().unwrap_or("?")
            ));
        }
        if !seen.insert(link.clone()) {
            return Err("@odata.nextLink repeats".into());
        }
        let bytes = client
            .call_with(
                "graph/memberships",
                Method::GET,
                &url,
                scope,
                None,
                &[("ConsistencyLevel", "eventual")],
                false,
            )
            .await
            .map_err(|e| e.to_string())?;
        let v: Value =
            serde_json::from_slice(&bytes).map_err(|e| format!("not a Graph list: {e}"))?;
        let (more, n) = parse_groups(&v)?;
        groups.extend(more);
        next = n;
    }
    groups.sort_by_key(|g| g.to_ascii_lowercase());
    groups.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    Ok(groups)
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
