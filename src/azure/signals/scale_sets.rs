//! Direct signal: the node resource groups' scale sets and their instances.
use super::*;

/// `/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachineScaleSets/x/virtualMachines/0` → its scale set's id, lower-cased.
pub(super) fn scale_set_of(vm_id: &str) -> Option<String> {
    let lower = vm_id.to_ascii_lowercase();
    let at = lower.rfind("/virtualmachines/")?;
    let parent = &lower[..at];
    parent
        .contains("/virtualmachinescalesets/")
        .then(|| parent.to_string())
}

pub(super) fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Reads the scale sets of the node resource groups of `want`; returns queries sent.
pub(super) async fn read_scale_sets(
    client: &ArmClient,
    s: &AzureSettings,
    clusters: &mut [Cluster],
    want: &[usize],
    failed: &mut Failed,
    mut saved: Option<&mut Saved>,
) -> usize {
    let key = group_key;
    let mut groups: Vec<(String, String)> = want.iter().map(|&i| key(&clusters[i])).collect();
    groups.sort();
    groups.dedup();
    let mut sent = 0;
    let mut by_group: BTreeMap<(String, String), NodeScaleSets> = BTreeMap::new();
    for chunk in groups.chunks(IDS_PER_QUERY) {
        let mut names: Vec<String> = chunk.iter().map(|(_, g)| literal(g)).collect();
        names.dedup();
        let subs = distinct_subscriptions(chunk.iter().map(|(s, _)| s.as_str()));
        sent += 1;
        let sets = match rows(
            client,
            s,
            "scale-sets",
            &SCALE_SETS.replacen("{groups}", &names.join(", "), 1),
            subs.clone(),
        )
        .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, groups = chunk.len(), "scale sets not read; the migration verdict of those clusters rests on history");
                failed.add(
                    &subs,
                    &format!("node resource groups' scale sets not read: {e}"),
                );
                for g in chunk {
                    by_group.insert(
                        g.clone(),
                        NodeScaleSets {
                            unread: Some(format!("Resource Graph: {e}")),
                            ..Default::default()
                        },
                    );
                }
                continue;
            }
        };
        sent += 1;
        let vms = match rows(
            client,
            s,
            "scale-set-vms",
            &SCALE_SET_VMS.replacen("{groups}", &names.join(", "), 1),
            subs.clone(),
        )
        .await
        {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(error = %e, groups = chunk.len(), "scale-set instances not read (computeresources)");
                failed.add(
                    &subs,
                    &format!("node resource groups' scale-set instances not read: {e}"),
                );
                None
            }
        };
        if let Some(saved) = saved.as_deref_mut() {
            saved.sets.extend(sets.iter().cloned());
            saved.vms.extend(vms.iter().flatten().cloned());
        }
        by_group.extend(group_scale_sets(chunk, &sets, vms.as_deref()));
    }
    for &i in want {
        if let Some(n) = by_group.get(&key(&clusters[i])) {
            clusters[i].scale_sets = Some(n.clone());
        }
    }
    sent
}

/// (subscription, node resource group), lower-cased.
pub(super) fn group_key(c: &Cluster) -> (String, String) {
    (
        c.subscription_id.to_ascii_lowercase(),
        c.node_resource_group
            .as_deref()
            .unwrap_or("")
            .to_ascii_lowercase(),
    )
}

/// `/subscriptions/{s}/resourceGroups/{g}/...` → (s, g), lower-cased.
pub(super) fn id_group(id: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = id.split('/').collect();
    let s = parts
        .iter()
        .position(|p| p.eq_ignore_ascii_case("subscriptions"))?;
    let g = parts
        .iter()
        .position(|p| p.eq_ignore_ascii_case("resourcegroups"))?;
    Some((
        parts.get(s + 1)?.to_ascii_lowercase(),
        parts.get(g + 1)?.to_ascii_lowercase(),
    ))
}

/// The scale sets of each of `groups`, from the rows of kql/scale-sets.kql and
/// kql/scale-set-vms.kql (`vms` `None`: not read). Rows of other groups are ignored.
pub(super) fn group_scale_sets(
    groups: &[(String, String)],
    sets: &[Value],
    vms: Option<&[Value]>,
) -> BTreeMap<(String, String), NodeScaleSets> {
    let mut instances: HashMap<String, Vec<Option<bool>>> = HashMap::new();
    for vm in vms.into_iter().flatten() {
        if let Some(parent) = scale_set_of(str_of(vm, "id")) {
            instances
                .entry(parent)
                .or_default()
                .push(vm.get("latestModelApplied").and_then(Value::as_bool));
        }
    }
    let mut out: BTreeMap<(String, String), NodeScaleSets> = groups
        .iter()
        .map(|g| {
            (
                g.clone(),
                NodeScaleSets {
                    scale_sets: vec![],
                    instances_read: vms.is_some(),
                    unread: None,
                },
            )
        })
        .collect();
    for row in sets {
        let id = str_of(row, "id").to_string();
        let Some(entry) = id_group(&id).and_then(|g| out.get_mut(&g)) else {
            continue;
        };
        entry.scale_sets.push(ScaleSet {
            instances: instances
                .remove(&id.to_ascii_lowercase())
                .unwrap_or_default(),
            name: str_of(row, "name").to_string(),
            pool_tag: row
                .get("poolTag")
                .and_then(Value::as_str)
                .map(str::to_string),
            identities: row
                .get("identities")
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect()),
            id,
        });
    }
    out
}
