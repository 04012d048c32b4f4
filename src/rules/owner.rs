//! Who owns a cluster: the first configured tag on the cluster, then its resource
//! group, then its subscription, then a subscription→address map, then the fallback.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::index::Index;
use crate::inventory::{Cluster, SmallMap};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnerPolicy {
    pub tag_keys: Vec<String>,
    /// Subscription id (or name) → address.
    pub subscription_owners: BTreeMap<String, String>,
    pub fallback: Option<String>,
}

impl Default for OwnerPolicy {
    fn default() -> Self {
        OwnerPolicy {
            tag_keys: default_tag_keys(),
            subscription_owners: BTreeMap::new(),
            fallback: None,
        }
    }
}

pub fn default_tag_keys() -> Vec<String> {
    ["owner", "Owner", "owner-email", "contact"]
        .map(String::from)
        .to_vec()
}

#[derive(Debug, Clone, PartialEq)]
pub struct Owner {
    /// The raw value as found (validated only when mail is sent); empty when none.
    pub address: String,
    pub source: String,
}

fn tag<'t>(tags: &'t SmallMap<String>, keys: &'t [String]) -> Option<(&'t str, &'t str)> {
    // Exact key first (keys are ordered by preference), then case-insensitive.
    for k in keys {
        if let Some(v) = tags.get(k).filter(|v| !v.trim().is_empty()) {
            return Some((k.as_str(), v.as_str()));
        }
    }
    for k in keys {
        if let Some((tk, v)) = tags
            .iter()
            .find(|(tk, v)| tk.eq_ignore_ascii_case(k) && !v.trim().is_empty())
        {
            return Some((tk.as_str(), v.as_str()));
        }
    }
    None
}

/// Whether [`resolve`] reads `c`'s resource group: the cluster has no owner tag of its
/// own. Live collection reads only those groups.
pub fn needs_resource_group(policy: &OwnerPolicy, c: &Cluster) -> bool {
    tag(&c.tags, &policy.tag_keys).is_none()
}

pub fn resolve(policy: &OwnerPolicy, c: &Cluster, idx: &Index) -> Owner {
    let found = |v: &str, source: String| Owner {
        address: v.trim().to_string(),
        source,
    };
    if let Some((k, v)) = tag(&c.tags, &policy.tag_keys) {
        return found(v, format!("cluster tag {k}"));
    }
    if let Some(g) = idx.resource_group(&c.subscription_id, &c.resource_group) {
        if let Some((k, v)) = tag(&g.tags, &policy.tag_keys) {
            return found(v, format!("resource group tag {k}"));
        }
    }
    let sub = idx.subscription(&c.subscription_id);
    if let Some(s) = sub {
        if let Some((k, v)) = tag(&s.tags, &policy.tag_keys) {
            return found(v, format!("subscription tag {k}"));
        }
    }
    let by_map = policy.subscription_owners.iter().find(|(k, _)| {
        k.eq_ignore_ascii_case(&c.subscription_id)
            || sub.is_some_and(|s| k.eq_ignore_ascii_case(&s.name))
    });
    if let Some((_, v)) = by_map {
        return found(v, "subscription map".into());
    }
    match &policy.fallback {
        Some(f) => found(f, "fallback".into()),
        None => Owner {
            address: String::new(),
            source: "none".into(),
        },
    }
}
