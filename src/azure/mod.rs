//! Live collection from Azure: authentication, Resource Graph queries with paging,
//! pacing and retries, optional Microsoft Graph enrichment, `--save-inventory`.
//!
//! Shape: the flags and the `[azure]` table of the config file (`crate::config::azure`)
//! resolve into [`AzureSettings`]; [`collect`] turns them into an [`Inventory`] plus
//! [`CollectStats`]. Every query is a file under `kql/`.
pub mod arg;
pub mod auth;
pub mod entra_groups;
pub mod error;
pub mod graph;
pub mod groups;
pub mod pacing;
pub mod paging;
pub mod progress;
pub mod retry;
pub mod role_defs;
pub mod signals;
pub mod sink;
pub mod stats;
pub mod upgrade;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use reqwest::Method;
use serde::Deserialize;
use url::Url;

pub use auth::{AuthMode, ExplicitSecret, Secret};
pub use progress::Progress;
pub use stats::{CollectStats, TableStats};

use crate::inventory::{Cluster, Inventory, Kind};
use arg::{ArmClient, BatchScope, MAX_SUBSCRIPTIONS_PER_QUERY};

/// One Resource Graph query of the audit.
#[derive(Debug, Clone, Copy)]
pub struct TableSpec {
    /// Stats and log name.
    pub name: &'static str,
    /// Where the rows go.
    pub kind: Kind,
    /// Skipped-row source label.
    pub source: &'static str,
    pub query: &'static str,
}

/// The audit's queries, in the order they start. Clusters come first: once every
/// cluster batch is done, the loader knows the cluster identities and keeps only their
/// role assignments as those pages arrive, instead of holding all of them; and the
/// subscriptions query of each batch reads only the resource groups whose tags a rule
/// reads (see [`groups`]; `query` here is its fallback, the full read).
pub const TABLES: [TableSpec; 4] = [
    TableSpec {
        name: "clusters",
        kind: Kind::Clusters,
        source: "Resource Graph clusters",
        query: include_str!("kql/clusters.kql"),
    },
    TableSpec {
        name: "registries",
        kind: Kind::Registries,
        source: "Resource Graph registries",
        query: include_str!("kql/registries.kql"),
    },
    TableSpec {
        name: "subscriptions",
        kind: Kind::Subscriptions,
        source: "Resource Graph subscriptions",
        query: groups::FULL,
    },
    TableSpec {
        name: "role-assignments",
        kind: Kind::RoleAssignments,
        source: "Resource Graph role-assignments",
        query: include_str!("kql/role-assignments.kql"),
    },
];

/// `--cloud`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cloud {
    #[default]
    Public,
    Usgov,
    China,
}

impl Cloud {
    pub fn arm_endpoint(self) -> &'static str {
        match self {
            Cloud::Public => "https://management.azure.com",
            Cloud::Usgov => "https://management.usgovcloudapi.net",
            Cloud::China => "https://management.chinacloudapi.cn",
        }
    }
    pub fn authority_host(self) -> &'static str {
        match self {
            Cloud::Public => "https://login.microsoftonline.com",
            Cloud::Usgov => "https://login.microsoftonline.us",
            Cloud::China => "https://login.chinacloudapi.cn",
        }
    }
    pub fn graph_endpoint(self) -> &'static str {
        match self {
            Cloud::Public => "https://graph.microsoft.com",
            Cloud::Usgov => "https://graph.microsoft.us",
            Cloud::China => "https://microsoftgraph.chinacloudapi.cn",
        }
    }
}

/// What to audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every subscription `GET /subscriptions` lists.
    AllVisible,
    Subscriptions(Vec<String>),
    ManagementGroups(Vec<String>),
}

/// Resolved live-source settings.
#[derive(Debug, Clone)]
pub struct AzureSettings {
    pub auth: AuthMode,
    pub cloud: Cloud,
    pub arm_endpoint: Url,
    /// Explicit authority host; `None` = `AZURE_AUTHORITY_HOST` or the cloud's.
    pub authority_host: Option<String>,
    pub graph_endpoint: Url,
    pub arm_scope: String,
    pub graph_scope: String,
    pub ca_cert: Option<PathBuf>,
    /// A CA given in memory (the demo's emulator).
    pub ca_pem: Option<String>,
    pub scope: Scope,
    pub tenant_id: Option<String>,
    pub graph: bool,
    pub save_inventory: Option<PathBuf>,
    pub request_timeout: Duration,
    pub max_attempts: u32,
    pub concurrency: usize,
    /// Client-secret credentials given in code (the demo), not from the environment.
    pub explicit_secret: Option<ExplicitSecret>,
}

/// The default request timeout in seconds, and its bounds.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 60;
pub const REQUEST_TIMEOUT_SECS: std::ops::RangeInclusive<u64> = 1..=3600;
/// The default attempts per request, and their bounds.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;
pub const MAX_ATTEMPTS: std::ops::RangeInclusive<u32> = 1..=20;
/// The default queries in flight, and their bounds.
pub const DEFAULT_CONCURRENCY: usize = 4;
pub const CONCURRENCY: std::ops::RangeInclusive<usize> = 1..=32;

impl Default for AzureSettings {
    /// The public cloud, every visible subscription, the default credential chain.
    fn default() -> Self {
        let cloud = Cloud::default();
        AzureSettings {
            auth: AuthMode::default(),
            cloud,
            arm_endpoint: parse_endpoint(cloud.arm_endpoint()).expect("constant URL"),
            authority_host: None,
            graph_endpoint: parse_endpoint(cloud.graph_endpoint()).expect("constant URL"),
            arm_scope: scope_of(cloud.arm_endpoint()),
            graph_scope: scope_of(cloud.graph_endpoint()),
            ca_cert: None,
            ca_pem: None,
            scope: Scope::AllVisible,
            tenant_id: None,
            graph: false,
            save_inventory: None,
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECS),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            concurrency: DEFAULT_CONCURRENCY,
            explicit_secret: None,
        }
    }
}

/// An ARM or Graph endpoint: an https URL (plain http only to loopback, where no
/// bearer token leaves the machine), its path ending in `/`.
pub fn parse_endpoint(s: &str) -> Result<Url, String> {
    let mut u = Url::parse(s.trim()).map_err(|e| format!("`{s}` is not a URL ({e})"))?;
    if !matches!(u.scheme(), "https" | "http") {
        return Err(format!("`{s}` must be an https URL"));
    }
    auth::check_bearer_url(&u).map_err(|e| format!("`{s}`: {e}"))?;
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    Ok(u)
}

/// The token scope of an endpoint (`https://management.azure.com/.default`).
pub fn scope_of(base: &str) -> String {
    format!("{}/.default", base.trim_end_matches('/'))
}

impl AzureSettings {
    /// A run against an emulator at `url` whose CA is `ca_pem`, with made-up
    /// client-secret credentials (the emulator accepts any).
    pub fn for_emulator(url: &str, ca_pem: String) -> anyhow::Result<AzureSettings> {
        let endpoint = parse_endpoint(url).map_err(|e| anyhow::anyhow!("emulator URL {e}"))?;
        anyhow::ensure!(
            endpoint.scheme() == "https",
            "emulator URL `{url}` must use https (azure_identity refuses anything else)"
        );
        let mut s = AzureSettings {
            auth: AuthMode::ClientSecret,
            arm_endpoint: endpoint.clone(),
            authority_host: Some(url.to_string()),
            graph_endpoint: endpoint,
            graph: true,
            ..AzureSettings::default()
        };
        s.ca_pem = Some(ca_pem);
        s.explicit_secret = Some(ExplicitSecret {
            tenant_id: "demo".into(),
            client_id: "demo".into(),
            secret: Secret::new("demo"),
        });
        Ok(s)
    }

    /// The extra trusted CA (PEM): the in-memory one (the demo's emulator) or the
    /// `--ca-cert` file's.
    pub fn ca_text(&self) -> anyhow::Result<Option<String>> {
        Ok(match (&self.ca_pem, &self.ca_cert) {
            (Some(pem), _) => Some(pem.clone()),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading --ca-cert {}", path.display()))?,
            ),
            (None, None) => None,
        })
    }

    pub(crate) fn auth_config(&self) -> auth::AuthConfig {
        auth::AuthConfig {
            mode: self.auth,
            authority_host: self.authority_host.clone(),
            cloud_authority_host: self.cloud.authority_host().to_string(),
            tenant_id: self.tenant_id.clone(),
            explicit_secret: self.explicit_secret.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct SubscriptionList {
    #[serde(default)]
    value: Vec<SubscriptionEntry>,
    #[serde(rename = "nextLink", default)]
    next_link: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionEntry {
    subscription_id: String,
}

/// `GET /subscriptions` with `nextLink` paging. A next link must stay on the ARM host.
async fn list_subscriptions(client: &ArmClient, s: &AzureSettings) -> anyhow::Result<Vec<String>> {
    let mut url = s.arm_endpoint.join("subscriptions")?;
    url.query_pairs_mut()
        .append_pair("api-version", "2022-12-01");
    let mut out = Vec::new();
    loop {
        let body = client
            .call(
                "arm/subscriptions",
                Method::GET,
                &url,
                &s.arm_scope,
                None,
                false,
            )
            .await?;
        let page: SubscriptionList =
            serde_json::from_slice(&body).context("GET /subscriptions: unexpected reply")?;
        client.stats.update("arm/subscriptions", |t| {
            t.pages += 1;
            t.rows += page.value.len() as u64;
        });
        out.extend(page.value.into_iter().map(|e| e.subscription_id));
        match page.next_link.filter(|l| !l.is_empty()) {
            None => break,
            Some(link) => {
                let next = Url::parse(&link)
                    .with_context(|| format!("GET /subscriptions: bad nextLink `{link}`"))?;
                anyhow::ensure!(
                    next.origin() == s.arm_endpoint.origin(),
                    "GET /subscriptions: nextLink points to another host ({}); not following it with a token",
                    next.host_str().unwrap_or("?")
                );
                anyhow::ensure!(
                    next != url,
                    "GET /subscriptions: nextLink repeats; stopping"
                );
                url = next;
            }
        }
    }
    out.sort_by_key(|s| s.to_ascii_lowercase());
    out.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    Ok(out)
}

/// Gaps by scope, then reason → tables, rendered once at the end.
#[derive(Default)]
struct Gaps(BTreeMap<String, BTreeMap<String, Vec<&'static str>>>);

impl Gaps {
    fn add(&mut self, scope: String, table: &'static str, reason: String) {
        let tables = self.0.entry(scope).or_default().entry(reason).or_default();
        if !tables.contains(&table) {
            tables.push(table);
        }
    }

    fn render(self) -> Vec<(String, String, Vec<String>)> {
        self.0
            .into_iter()
            .map(|(scope, reasons)| {
                let mut tables: Vec<String> = Vec::new();
                let text: Vec<String> = reasons
                    .into_iter()
                    .map(|(r, t)| {
                        for name in &t {
                            if !tables.iter().any(|x| x == name) {
                                tables.push(name.to_string());
                            }
                        }
                        format!("{}: {r}", t.join(", "))
                    })
                    .collect();
                tables.sort();
                (scope, text.join("; "), tables)
            })
            .collect()
    }
}

/// Runs one of a table's queries (`spec.query` or another for the same rows) over one
/// batch; a batch refused with 403 is narrowed to the readable subscriptions, the
/// refused ones become gaps.
async fn run_batch(
    client: &ArmClient,
    s: &AzureSettings,
    spec: TableSpec,
    query: &str,
    scope: BatchScope,
    sink: &Arc<Mutex<sink::Sink>>,
    gaps: &Mutex<Gaps>,
) {
    let gap = |scope: String, reason: String| {
        gaps.lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(scope, spec.name, reason)
    };
    let mut work = vec![scope];
    while let Some(scope) = work.pop() {
        let res = client
            .query(
                &s.arm_endpoint,
                &s.arm_scope,
                spec.name,
                query,
                &scope,
                |bytes| {
                    let sink = sink.clone();
                    async move {
                        let ingest =
                            move || sink::ingest_page(&sink, spec.kind, spec.source, &bytes);
                        if spec.kind == Kind::Clusters {
                            crate::memory::on_inventory_thread(ingest).await
                        } else {
                            tokio::task::spawn_blocking(ingest)
                                .await
                                .map_err(|e| format!("page task failed: {e}"))?
                        }
                    }
                },
            )
            .await;
        let Err(e) = res else { continue };
        match (&scope, e.status) {
            (BatchScope::Subscriptions(subs), Some(403)) => {
                if let Some(bad) = arg::forbidden_subscription(&e.reason, subs) {
                    gap(
                        format!("/subscriptions/{bad}"),
                        format!("no read access: {}", e.reason),
                    );
                    let rest: Vec<String> = subs.iter().filter(|x| **x != bad).cloned().collect();
                    if !rest.is_empty() {
                        work.push(BatchScope::Subscriptions(rest));
                    }
                } else if subs.len() > 1 {
                    let (a, b) = subs.split_at(subs.len() / 2);
                    work.push(BatchScope::Subscriptions(a.to_vec()));
                    work.push(BatchScope::Subscriptions(b.to_vec()));
                } else {
                    gap(
                        format!("/subscriptions/{}", subs[0]),
                        format!("no read access: {}", e.reason),
                    );
                }
            }
            (BatchScope::ManagementGroups(mgs), Some(403)) if mgs.len() > 1 => {
                work.extend(
                    mgs.iter()
                        .map(|m| BatchScope::ManagementGroups(vec![m.clone()])),
                );
            }
            _ => {
                tracing::warn!(table = spec.name, scopes = scope.len(), error = %e, "query failed; its scope is a coverage gap");
                for sc in scope.scopes() {
                    gap(sc, e.to_string());
                }
            }
        }
    }
}

/// Whether a rule reads a cluster's resource group (its owner tags: the cluster has
/// no owner tag of its own); only those groups are read (see [`groups`]).
pub type NeedsGroup = Arc<dyn Fn(&Cluster) -> bool + Send + Sync>;

/// The grants the rules find missing in a collected inventory: what the narrow pass
/// for grants through groups reads ([`entra_groups`]).
pub type MissingGrants = Arc<dyn Fn(&Inventory) -> crate::rules::groups::Needs + Send + Sync>;

/// Reads the tenant through Resource Graph (and Microsoft Graph with `--graph`, for
/// the service-principal clusters and the `old_sps` migrated clusters left behind).
/// `missing` names the grants to look for through groups, once the rest is in.
pub async fn collect(
    s: &AzureSettings,
    progress: &Progress,
    old_sps: &[String],
    migrated: &[crate::history::PendingCandidate],
    needs_group: NeedsGroup,
    prior: signals::Prior<'_>,
    missing: MissingGrants,
) -> anyhow::Result<(Inventory, CollectStats)> {
    let started = Instant::now();
    let ca = s.ca_text()?;
    let http = auth::http_client(ca.as_deref(), s.request_timeout)?;
    auth::check_bearer_url(&s.arm_endpoint)?;
    progress.stage("authenticating");
    let tokens = Arc::new(auth::connect(&s.auth_config(), &http, &s.arm_scope).await?);
    let client = ArmClient {
        http,
        tokens: tokens.clone(),
        pacer: pacing::Pacer::new(),
        policy: retry::RetryPolicy {
            max_attempts: s.max_attempts,
            ..Default::default()
        },
        stats: stats::StatsHandle::default(),
    };
    let batches: Vec<BatchScope> = match &s.scope {
        Scope::ManagementGroups(m) => m
            .iter()
            .map(|m| BatchScope::ManagementGroups(vec![m.clone()]))
            .collect(),
        Scope::Subscriptions(list) => list
            .chunks(MAX_SUBSCRIPTIONS_PER_QUERY)
            .map(|c| BatchScope::Subscriptions(c.to_vec()))
            .collect(),
        Scope::AllVisible => {
            progress.stage("listing subscriptions");
            let subs = list_subscriptions(&client, s).await?;
            anyhow::ensure!(
                !subs.is_empty(),
                "no subscription is visible to the {} credential: grant it Reader, or give --subscription / --management-group",
                tokens.source
            );
            subs.chunks(MAX_SUBSCRIPTIONS_PER_QUERY)
                .map(|c| BatchScope::Subscriptions(c.to_vec()))
                .collect()
        }
    };
    let n_subs = match &s.scope {
        Scope::ManagementGroups(_) => 0,
        _ => batches.iter().map(BatchScope::len).sum(),
    };
    client.stats.with(|st| {
        st.subscriptions = n_subs;
        st.batches = batches.len() * TABLES.len();
    });
    progress.stage(&format!(
        "querying Resource Graph: {} queries over {} batches ({})",
        TABLES.len(),
        batches.len(),
        match &s.scope {
            Scope::ManagementGroups(m) => format!("management groups {}", m.join(", ")),
            _ => format!("{n_subs} subscriptions"),
        }
    ));
    let sink = Arc::new(Mutex::new(sink::Sink::new(s.save_inventory.as_deref())?));
    let gaps = Mutex::new(Gaps::default());
    let jobs: Vec<(TableSpec, BatchScope)> = TABLES
        .iter()
        .flat_map(|t| batches.iter().map(move |b| (*t, b.clone())))
        .collect();
    let cluster_batches_left = AtomicUsize::new(batches.len());
    // Sent once every cluster batch is in: what each batch's subscriptions query reads.
    let (plan_tx, plan_rx) = tokio::sync::watch::channel(None::<Arc<groups::Plan>>);
    let work = futures::stream::iter(jobs)
        .map(|(t, b)| {
            let (sink, gaps, left) = (&sink, &gaps, &cluster_batches_left);
            let (client, plan_tx, mut plan_rx) = (&client, &plan_tx, plan_rx.clone());
            let needs_group = needs_group.clone();
            async move {
                if t.kind == Kind::Subscriptions {
                    // Every cluster job started before this one (jobs start in order),
                    // so waiting here cannot starve them of a slot.
                    let plan = match plan_rx.wait_for(Option::is_some).await {
                        Ok(p) => p.clone().unwrap_or_default(),
                        Err(_) => Default::default(),
                    };
                    for q in plan.queries(&b) {
                        run_batch(client, s, t, &q, b.clone(), sink, gaps).await;
                    }
                    return;
                }
                run_batch(client, s, t, t.query, b, sink, gaps).await;
                if t.kind == Kind::Clusters && left.fetch_sub(1, Ordering::SeqCst) == 1 {
                    let sink = sink.clone();
                    let plan = crate::memory::on_inventory_thread(move || {
                        let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
                        sink.clusters_complete();
                        groups::Plan::new(sink.clusters(), &*needs_group)
                    })
                    .await;
                    plan_tx.send_replace(Some(Arc::new(plan)));
                }
            }
        })
        .buffer_unordered(s.concurrency)
        .collect::<Vec<()>>();
    if progress.is_interactive() {
        tokio::pin!(work);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = &mut work => break,
                _ = tick.tick() => {
                    let throttled = client.pacer.throttled_until().map(|t| t.saturating_duration_since(Instant::now()));
                    progress.draw(&client.stats.snapshot(), started, throttled);
                }
            }
        }
        progress.clear();
    } else {
        work.await;
    }
    let gap_list = gaps
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .render();
    let sink = Arc::try_unwrap(sink)
        .map_err(|_| anyhow::anyhow!("a page task outlived the collection"))?;
    let mut sink = sink.into_inner().unwrap_or_else(|p| p.into_inner());
    for (scope, reason, tables) in &gap_list {
        sink.gap(scope.clone(), reason.clone(), tables.clone());
    }
    let mut inv = sink.finish()?;
    crate::memory::log("collect: first pass");
    // Custom roles' definitions before the rules look for missing grants (a custom
    // role may hold what is needed), and again for roles met only through groups.
    let mut role_queries = role_defs::enrich(&client, s, &batches, &mut inv).await;
    let needs = missing(&inv);
    crate::memory::log("collect: missing grants found");
    // The groups pass (role assignments, gaps) and the migration follow-ups (the
    // clusters alone) read and write different parts of the inventory: side by side.
    // Before the upgrade profiles: a flip read by the follow-ups can make a pool pending.
    let mut clusters = std::mem::take(&mut inv.clusters);
    let groups_pass = async {
        if needs.missing.is_empty() {
            return Ok::<(), anyhow::Error>(());
        }
        progress.stage(&format!(
            "grants through groups: {} missing grants of {} identities",
            needs.missing.len(),
            needs.principals().len()
        ));
        let queries = entra_groups::enrich(&client, s, &batches, &mut inv, &needs).await;
        tracing::debug!(queries, "groups' role assignments");
        role_queries += role_defs::enrich(&client, s, &batches, &mut inv).await;
        if let Some(dir) = &s.save_inventory {
            entra_groups::save(dir, &inv)?;
        }
        crate::memory::log("collect: groups");
        Ok(())
    };
    let follow_ups = signals::enrich_clusters(&client, s, &mut clusters, &prior);
    let (groups_done, (asked, signal_gaps)) = tokio::join!(groups_pass, follow_ups);
    groups_done?;
    inv.clusters = clusters;
    inv.coverage.gaps.extend(signal_gaps);
    crate::memory::log("collect: groups and migration follow-ups");
    if asked != signals::Asked::default() {
        tracing::info!(
            changes_queries = asked.changes,
            scale_set_queries = asked.scale_sets,
            "migration follow-ups: resourcechanges for flips before the first run, node resource groups' scale sets for verdicts in doubt"
        );
    }
    if role_queries > 0 {
        tracing::debug!(queries = role_queries, "custom role definitions");
        if let Some(dir) = &s.save_inventory {
            role_defs::save(dir, &inv)?;
        }
    }
    if s.graph {
        progress.stage("resolving service principals in Microsoft Graph");
        inv.sp_credentials = graph::enrich(
            &client,
            &s.graph_endpoint,
            &s.graph_scope,
            &inv,
            old_sps,
            chrono::Utc::now(),
        )
        .await;
        if let Some(dir) = &s.save_inventory {
            let text = serde_json::to_string_pretty(&inv.sp_credentials)?;
            crate::history::write_atomic(&dir.join(SP_CREDENTIALS_FILE), text.as_bytes())?;
        }
    }
    if !migrated.is_empty() {
        progress.stage("reading the latest node images of migrated clusters' pools");
        let read = upgrade::enrich(&client, s, &mut inv, migrated).await;
        tracing::debug!(read, "upgrade profiles");
    }
    client.stats.with(|st| {
        st.gaps = gap_list.len();
        st.throttle_wait_ms = client.pacer.waited().as_millis() as u64;
        st.elapsed_ms = started.elapsed().as_millis() as u64;
    });
    let stats = client.stats.snapshot();
    for (name, t) in &stats.tables {
        tracing::info!(table = %name, requests = t.requests, pages = t.pages, rows = t.rows, bytes = t.bytes, throttled_429 = t.throttled_429, retries = t.retries, "collected");
    }
    Ok((inv, stats))
}

/// The demo: starts the emulator in-process on a free loopback port with the
/// built-in demo tenant and the default quota, audits it through the live path
/// (HTTPS, client-secret token, paging, pacing, Graph), and stops it. Only
/// `save_inventory` is taken from `user`. Only with the cargo feature `emulator`.
#[cfg(feature = "emulator")]
pub async fn collect_demo(
    user: &AzureSettings,
    progress: &Progress,
    old_sps: &[String],
    migrated: &[crate::history::PendingCandidate],
    needs_group: NeedsGroup,
    prior: signals::Prior<'_>,
    missing: MissingGrants,
) -> anyhow::Result<(Inventory, CollectStats)> {
    use azure_emulator::{start, EmulatorConfig, Tenant};
    let emu = start(EmulatorConfig::new(Tenant::demo_at(prior.now)))
        .await
        .context("starting the demo emulator")?;
    progress.stage(&format!(
        "demo: emulator serving the demo tenant at {}",
        emu.url()
    ));
    let mut s = AzureSettings::for_emulator(&emu.url(), emu.ca_pem.clone())?;
    s.save_inventory = user.save_inventory.clone();
    let res = collect(&s, progress, old_sps, migrated, needs_group, prior, missing).await;
    emu.shutdown().await;
    res
}

/// The saved Graph enrichment in an inventory folder.
pub const SP_CREDENTIALS_FILE: &str = crate::inventory::folder::SP_CREDENTIALS_FILE;

#[cfg(test)]
mod tests;
