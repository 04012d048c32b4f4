//! Flip bootstrap: the change history (`resourcechanges`) of managed-identity clusters
//! never read, parsed into the flip and each pool's versions around it.
use super::*;

/// One change row, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRow {
    /// Lower-cased.
    pub target: String,
    pub at: DateTime<Utc>,
    pub changes: serde_json::Map<String, Value>,
}

impl ChangeRow {
    pub fn parse(v: &Value) -> Option<ChangeRow> {
        let target = v.get("targetResourceId")?.as_str()?.to_ascii_lowercase();
        let at = DateTime::parse_from_rfc3339(v.get("timestamp")?.as_str()?)
            .ok()?
            .with_timezone(&Utc);
        let changes = v.get("changes")?.as_object()?.clone();
        Some(ChangeRow {
            target,
            at,
            changes,
        })
    }
}

/// A change value as a string: `None` for absent, empty or `"null"` (the docs'
/// example prints a missing previous value as the string `"null"`).
pub(super) fn value(
    changes: &serde_json::Map<String, Value>,
    key: &str,
    which: &str,
) -> Option<String> {
    let v = changes.get(key)?.get(which)?;
    let s = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Null => return None,
        other => other.to_string(),
    };
    (!s.is_empty() && !s.eq_ignore_ascii_case("null")).then_some(s)
}

/// Whether a change switched the control plane from a service principal to a
/// managed identity.
pub fn is_flip(changes: &serde_json::Map<String, Value>) -> bool {
    const CLIENT: &str = "properties.servicePrincipalProfile.clientId";
    let to_msi = value(changes, CLIENT, "newValue").is_some_and(|v| v.eq_ignore_ascii_case("msi"))
        && value(changes, CLIENT, "previousValue").is_some_and(|v| !v.eq_ignore_ascii_case("msi"));
    let identity = value(changes, "identity.type", "newValue").is_some_and(|v| {
        v.eq_ignore_ascii_case("SystemAssigned") || v.eq_ignore_ascii_case("UserAssigned")
    }) && value(changes, "identity.type", "previousValue")
        .is_none_or(|v| v.eq_ignore_ascii_case("None"));
    to_msi || identity
}

/// `properties.agentPoolProfiles[3].nodeImageVersion` → (3, "nodeImageVersion");
/// `Err` for a key about the pools that is not one pool's field (an element or the
/// array added or removed).
pub(super) fn pool_key(key: &str) -> Option<Result<(usize, &str), ()>> {
    let rest = key.strip_prefix("properties.agentPoolProfiles")?;
    let Some(rest) = rest.strip_prefix('[') else {
        return Some(Err(()));
    };
    let Some((index, field)) = rest.split_once(']') else {
        return Some(Err(()));
    };
    let Ok(index) = index.parse::<usize>() else {
        return Some(Err(()));
    };
    match field.strip_prefix('.') {
        Some(f) if !f.is_empty() => Some(Ok((index, f))),
        _ => Some(Err(())),
    }
}

/// The flip `c`'s change rows show (the last one, if several), with each pool's
/// versions just before and after it rebuilt by undoing the later changes from
/// what the cluster shows now. A pool change that cannot be tied to one of today's
/// pools (index out of range, a new value that is not today's, a pool added or
/// removed, a first value) makes every pool's versions unknown: the verdict then
/// says `unknown`, never `pending`, for them.
pub fn flip_from_changes(c: &Cluster, rows: &[ChangeRow]) -> Option<ChangedFlip> {
    let mut rows: Vec<&ChangeRow> = rows.iter().collect();
    rows.sort_by_key(|r| r.at);
    let flip_at = rows.iter().rposition(|r| is_flip(&r.changes))?;
    let flip = rows[flip_at];
    let mut now: Vec<PoolRecord> = c
        .pools
        .iter()
        .map(|p| PoolRecord {
            node_image_version: p.node_image_version.clone(),
            orchestrator_version: p.orchestrator_version.clone(),
        })
        .collect();
    let mut known = true;
    let mut after: Option<Vec<PoolRecord>> = None;
    for (i, r) in rows.iter().enumerate().rev() {
        if i < flip_at {
            break;
        }
        if i == flip_at {
            after = Some(now.clone());
        }
        for key in r.changes.keys() {
            let Some(parsed) = pool_key(key) else {
                continue;
            };
            let Ok((index, field)) = parsed else {
                known = false;
                continue;
            };
            let current =
                format!("properties.agentPoolProfiles[{index}].currentOrchestratorVersion");
            let image = match field {
                "nodeImageVersion" => true,
                "currentOrchestratorVersion" => false,
                // The desired version: only when the row lacks the current one.
                "orchestratorVersion" if !r.changes.contains_key(&current) => false,
                "name" => {
                    known = false;
                    continue;
                }
                _ => continue,
            };
            let Some(record) = now.get_mut(index) else {
                known = false;
                continue;
            };
            let slot = if image {
                &mut record.node_image_version
            } else {
                &mut record.orchestrator_version
            };
            // Each change must end where the next one (or today) starts.
            if slot.as_deref().map(str::trim) != value(&r.changes, key, "newValue").as_deref() {
                known = false;
            }
            match value(&r.changes, key, "previousValue") {
                Some(prev) => *slot = Some(prev),
                None => known = false, // the pool was created here
            }
        }
    }
    let before = now;
    let after = after.unwrap_or_else(|| before.clone());
    let named = |records: Vec<PoolRecord>| -> SmallMap<PoolRecord> {
        c.pools
            .iter()
            .zip(records)
            .map(|(p, r)| {
                (
                    p.name.to_ascii_lowercase(),
                    if known { r } else { PoolRecord::default() },
                )
            })
            .collect()
    };
    Some(ChangedFlip {
        at: flip.at,
        sp_client_id: value(
            &flip.changes,
            "properties.servicePrincipalProfile.clientId",
            "previousValue",
        )
        .filter(|v| !v.eq_ignore_ascii_case("msi")),
        pools_before: named(before),
        pools_after: named(after),
    })
}

/// Reads the flips of `want` (indices into `clusters`); returns the queries sent.
pub(super) async fn read_changes(
    client: &ArmClient,
    s: &AzureSettings,
    clusters: &mut [Cluster],
    want: &[usize],
    failed: &mut Failed,
    mut saved: Option<&mut Saved>,
) -> usize {
    let mut sent = 0;
    // Batches of subscriptions, as the audit's own queries.
    let subs = distinct_subscriptions(want.iter().map(|&i| clusters[i].subscription_id.as_str()));
    let mut found: HashMap<String, Vec<ChangeRow>> = HashMap::new();
    let mut read: Vec<usize> = Vec::new();
    for batch in subs.chunks(MAX_SUBSCRIPTIONS_PER_QUERY) {
        let members: Vec<usize> = want
            .iter()
            .copied()
            .filter(|&i| batch.contains(&clusters[i].subscription_id.to_ascii_lowercase()))
            .collect();
        let filter = if members.len() <= IDS_PER_QUERY {
            let ids: Vec<String> = members.iter().map(|&i| literal(&clusters[i].id)).collect();
            format!(
                "and tostring(properties.targetResourceId) in~ ({})",
                ids.join(", ")
            )
        } else {
            String::new()
        };
        sent += 1;
        match rows(
            client,
            s,
            "resourcechanges",
            &FLIPS.replacen("{clusters}", &filter, 1),
            batch.to_vec(),
        )
        .await
        {
            Ok(rs) => {
                for r in rs.iter().filter_map(ChangeRow::parse) {
                    found.entry(r.target.clone()).or_default().push(r);
                }
                if let Some(saved) = saved.as_deref_mut() {
                    saved.changes.extend(rs);
                }
                read.extend(members);
            }
            Err(e) => {
                tracing::warn!(error = %e, clusters = members.len(), "resourcechanges not read; the migration check of those clusters is not evaluated");
                let why = format!("Resource Graph's change history not read: {e}");
                failed.add(batch, &why);
                for &i in &members {
                    clusters[i].changes = Some(ClusterChanges {
                        flip: None,
                        unread: Some(why.clone()),
                    });
                }
            }
        }
    }
    // Pool version changes, only for the clusters whose flip was found.
    let flipped: Vec<usize> = read
        .iter()
        .copied()
        .filter(|&i| {
            found
                .get(&clusters[i].id.to_ascii_lowercase())
                .is_some_and(|rs| rs.iter().any(|r| is_flip(&r.changes)))
        })
        .collect();
    let mut unread: Vec<usize> = Vec::new();
    for chunk in flipped.chunks(IDS_PER_QUERY) {
        let ids: Vec<String> = chunk.iter().map(|&i| literal(&clusters[i].id)).collect();
        let subs =
            distinct_subscriptions(chunk.iter().map(|&i| clusters[i].subscription_id.as_str()));
        sent += 1;
        match rows(
            client,
            s,
            "resourcechanges",
            &POOL_CHANGES.replacen("{ids}", &ids.join(", "), 1),
            subs.clone(),
        )
        .await
        {
            Ok(rs) => {
                for r in rs.iter().filter_map(ChangeRow::parse) {
                    let list = found.entry(r.target.clone()).or_default();
                    if !list.iter().any(|x| x == &r) {
                        list.push(r);
                    }
                }
                if let Some(saved) = saved.as_deref_mut() {
                    let known: std::collections::HashSet<String> = saved
                        .changes
                        .iter()
                        .map(|v| str_of(v, "id").to_string())
                        .collect();
                    saved
                        .changes
                        .extend(rs.into_iter().filter(|v| !known.contains(str_of(v, "id"))));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "resourcechanges (pool versions) not read; those flips are read again next run");
                let why = format!("Resource Graph's change history not read: {e}");
                failed.add(&subs, &why);
                for &i in chunk {
                    clusters[i].changes = Some(ClusterChanges {
                        flip: None,
                        unread: Some(why.clone()),
                    });
                }
                unread.extend_from_slice(chunk);
            }
        }
    }
    for i in read.into_iter().filter(|i| !unread.contains(i)) {
        let c = &mut clusters[i];
        let rows = found.remove(&c.id.to_ascii_lowercase()).unwrap_or_default();
        c.changes = Some(ClusterChanges {
            flip: flip_from_changes(c, &rows),
            unread: None,
        });
    }
    sent
}
