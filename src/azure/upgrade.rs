//! `latestNodeImageVersion` of the agent pools of clusters that left a service
//! principal for a user-assigned identity: the only ones AKSMI002 can call pending,
//! whose fix depends on it (`az aks nodepool upgrade --node-image-only` does nothing
//! on a pool already on the latest image: "An update only works if there's a VHD
//! update to consume", user-assigned-managed-identity.md L64).
//!
//! Not in Resource Graph (its table list has no agent pools nor upgrade profiles):
//! one ARM `GET .../agentPools/{p}/upgradeProfiles/default` per pool, only for those
//! clusters. A failed read is logged and leaves the value unknown: it refines a fix,
//! it is no verdict, so never a coverage gap.
use std::collections::HashMap;

use reqwest::Method;
use serde::Deserialize;
use url::Url;

use super::arg::ArmClient;
use super::AzureSettings;
use crate::history::PendingCandidate;
use crate::inventory::{IdentityType, Inventory};

/// The AKS API version of the request (GA; the reply field exists since 2020-11-01).
const API_VERSION: &str = "2024-09-01";

#[derive(Deserialize)]
struct Profile {
    properties: ProfileProperties,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileProperties {
    latest_node_image_version: Option<String>,
}

/// The request URL for one pool's upgrade profile (names as path segments, escaped).
pub fn profile_url(
    arm: &Url,
    subscription: &str,
    resource_group: &str,
    cluster: &str,
    pool: &str,
) -> Option<Url> {
    let mut url = arm.clone();
    url.path_segments_mut().ok()?.pop_if_empty().extend([
        "subscriptions",
        subscription,
        "resourceGroups",
        resource_group,
        "providers",
        "Microsoft.ContainerService",
        "managedClusters",
        cluster,
        "agentPools",
        pool,
        "upgradeProfiles",
        "default",
    ]);
    url.query_pairs_mut()
        .append_pair("api-version", API_VERSION);
    Some(url)
}

/// Fills `latest_node_image_version` of each pool among `candidates` (see
/// [`crate::history::pending_candidates`]) that still runs the image the last
/// service-principal run saw, on a cluster now on a user-assigned control-plane
/// identity, when the inventory does not give it. Returns how many were read.
pub async fn enrich(
    client: &ArmClient,
    s: &AzureSettings,
    inv: &mut Inventory,
    candidates: &[PendingCandidate],
) -> usize {
    use futures::StreamExt;
    // (cluster id, pool) -> the images the last service-principal run saw.
    let mut wanted: HashMap<(String, String), Vec<&str>> = HashMap::new();
    for k in candidates {
        wanted
            .entry((
                k.cluster_id.to_ascii_lowercase(),
                k.pool.to_ascii_lowercase(),
            ))
            .or_default()
            .push(k.node_image_version.trim());
    }
    // Which pools to read: (cluster index, pool index, request URL).
    let mut jobs: Vec<(usize, usize, Url)> = Vec::new();
    for (ci, c) in inv.clusters.iter().enumerate() {
        if c.identity.as_ref().map(|i| i.kind) != Some(IdentityType::UserAssigned) {
            continue;
        }
        let id = c.id.to_ascii_lowercase();
        for (pi, p) in c.pools.iter().enumerate() {
            let due = p.latest_node_image_version.is_none()
                && wanted
                    .get(&(id.clone(), p.name.to_ascii_lowercase()))
                    .is_some_and(|seen| {
                        p.node_image_version
                            .as_deref()
                            .is_some_and(|v| seen.contains(&v.trim()))
                    });
            if !due {
                continue;
            }
            if let Some(url) = profile_url(
                &s.arm_endpoint,
                &c.subscription_id,
                &c.resource_group,
                &c.name,
                &p.name,
            ) {
                jobs.push((ci, pi, url));
            }
        }
    }
    // One GET per pool, several in flight (ARM, not Resource Graph's quota; the
    // client's pacing and Retry-After handling apply as to every call).
    let mut replies = futures::stream::iter(jobs)
        .map(|(ci, pi, url)| async move {
            let got = client
                .call(
                    "arm/upgradeProfile",
                    Method::GET,
                    &url,
                    &s.arm_scope,
                    None,
                    false,
                )
                .await;
            (ci, pi, got)
        })
        .buffer_unordered(s.concurrency.max(1));
    let mut read = 0;
    while let Some((ci, pi, got)) = replies.next().await {
        let c = &mut inv.clusters[ci];
        let p = &mut c.pools[pi];
        match got.map(|b| serde_json::from_slice::<Profile>(&b)) {
            Ok(Ok(profile)) => {
                client.stats.update("arm/upgradeProfile", |t| {
                    t.pages += 1;
                    t.rows += 1;
                });
                p.latest_node_image_version = profile
                    .properties
                    .latest_node_image_version
                    .filter(|v| !v.trim().is_empty());
                read += 1;
            }
            Ok(Err(e)) => {
                tracing::warn!(cluster = %c.id, pool = %p.name, error = %e, "upgrade profile: unexpected reply; latest node image unknown")
            }
            Err(e) => {
                tracing::warn!(cluster = %c.id, pool = %p.name, error = %e, "upgrade profile not read; latest node image unknown")
            }
        }
    }
    read
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_names_the_pool_under_its_cluster_with_an_api_version() {
        let arm = Url::parse("https://management.azure.com").unwrap();
        let u = profile_url(&arm, "s1", "rg one", "aks-prod", "np1").unwrap();
        assert_eq!(
            u.as_str(),
            "https://management.azure.com/subscriptions/s1/resourceGroups/rg%20one/providers/Microsoft.ContainerService/managedClusters/aks-prod/agentPools/np1/upgradeProfiles/default?api-version=2024-09-01"
        );
        // A name cannot climb out of its segment.
        let u = profile_url(&arm, "s1", "rg", "a/../../x", "np1").unwrap();
        assert!(
            u.path().contains("/managedClusters/a%2F..%2F..%2Fx/"),
            "{u}"
        );
    }

    #[test]
    fn the_reply_gives_the_latest_image() {
        let p: Profile = serde_json::from_str(
            r#"{"id":"/subscriptions/s/resourcegroups/rg/providers/Microsoft.ContainerService/managedClusters/c/agentPools/np1/upgradeprofiles/default","name":"default","type":"Microsoft.ContainerService/managedClusters/agentPools/upgradeProfiles","properties":{"kubernetesVersion":"1.31.4","osType":"Linux","upgrades":[],"latestNodeImageVersion":"AKSUbuntu-2204gen2containerd-202606.01.0"}}"#,
        )
        .unwrap();
        assert_eq!(
            p.properties.latest_node_image_version.as_deref(),
            Some("AKSUbuntu-2204gen2containerd-202606.01.0")
        );
    }
}
