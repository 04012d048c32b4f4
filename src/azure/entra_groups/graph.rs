//! Microsoft Graph: the groups each identity belongs to, transitively
//! (`transitiveMemberOf` through JSON `$batch`, with retries and next links).
use super::*;

/// The relative URL (as a `$batch` request names it) of one identity's groups.
pub fn member_of_path(principal: &str) -> String {
    format!(
        "/servicePrincipals/{}/transitiveMemberOf/microsoft.graph.group?$select=id&$count=true&$top=999",
        urlencoding(principal)
    )
}

pub(super) fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[derive(Debug, Deserialize)]
pub(super) struct BatchReply {
    #[serde(default)]
    responses: Vec<BatchItem>,
}

#[derive(Debug, Deserialize)]
pub(super) struct BatchItem {
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
pub(super) fn retry_after(h: &BTreeMap<String, String>) -> Option<Duration> {
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
                            crate::azure::error::render(item.body.to_string().as_bytes())
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
pub(super) async fn follow(
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
