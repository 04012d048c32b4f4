//! The audit: pure functions from an inventory (plus baseline, history and clock) to a
//! [`Report`]. No I/O here.
pub mod baseline;
pub mod catalogue;
pub mod checks;
pub mod classify;
pub mod evaluated;
pub mod index;
pub mod migration;
pub mod owner;
pub mod remedy;
pub mod roles;
pub mod scope;
pub mod suppress;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use baseline::Baseline;
pub use catalogue::{RuleId, Severity};

use crate::history::{self, ClusterHistory, History, MigrationStatus};
use crate::inventory::{Coverage, Inventory};
use index::Index;

pub const SCHEMA_VERSION: u32 = 1;

/// One finding about one identity of one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub cluster_id: String,
    pub cluster_name: String,
    pub subscription_id: String,
    pub rule_id: RuleId,
    pub severity: Severity,
    /// `control_plane`, `kubelet` or `addon:<key>`.
    pub identity: String,
    pub message: String,
    /// Copy-ready `az` command(s), one per line.
    pub remediation: String,
    /// What exactly the finding is about (a role assignment id, a pool, a registry):
    /// with rule, cluster and identity it makes the finding's stable fingerprint.
    pub subject: String,
    pub suppressed: Option<suppress::Applied>,
}

impl Finding {
    pub fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.rule_id,
            self.cluster_id.to_ascii_lowercase(),
            self.identity.to_ascii_lowercase(),
            self.subject.to_ascii_lowercase()
        )
    }
}

/// One row of `clusters.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterRow {
    pub subscription_id: String,
    pub subscription_name: String,
    pub resource_group: String,
    pub cluster_name: String,
    pub cluster_id: String,
    pub location: String,
    pub control_plane_identity: String,
    pub kubelet_identity: String,
    pub migration_status: MigrationStatus,
    pub pools_pending_upgrade: usize,
    pub pending_pools: Vec<String>,
    pub owner: String,
    /// Where the owner came from: `cluster tag owner`, `resource group tag`, `fallback`...
    pub owner_source: String,
    /// Unsuppressed findings.
    pub findings: usize,
    pub worst_severity: Option<Severity>,
    pub node_resource_group: String,
    pub kubernetes_version: String,
    pub migration_observed_at: Option<DateTime<Utc>>,
    /// Whether each family of checks was evaluated, and why not.
    #[serde(default)]
    pub checks: evaluated::Checks,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineInfo {
    pub name: String,
    pub title: String,
    pub date: String,
    pub source: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub clusters: usize,
    pub subscriptions: usize,
    pub control_plane: BTreeMap<String, usize>,
    pub kubelet: BTreeMap<String, usize>,
    pub migration: BTreeMap<String, usize>,
    /// Clusters whose kubelet still runs on the service principal (pending).
    pub kubelet_on_sp: usize,
    pub pools_pending_upgrade: usize,
    /// Percentage of clusters whose control plane uses a managed identity.
    pub managed_identity_percent: f64,
    /// Unsuppressed findings by severity.
    pub findings: BTreeMap<String, usize>,
    pub suppressed: usize,
    pub skipped_rows: usize,
    pub gaps: usize,
    /// Clusters per check family (`roles`, `secret_expiry`, ...) whose checks were not
    /// evaluated; only families with at least one.
    #[serde(default)]
    pub not_evaluated: BTreeMap<String, usize>,
    /// Clusters with every check family evaluated.
    #[serde(default)]
    pub fully_evaluated: usize,
}

/// Findings that appeared or went away since the previous run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Changes {
    /// False on the first run: everything would be "new".
    pub has_previous: bool,
    pub new: Vec<String>,
    pub resolved: Vec<String>,
}

/// One row of `role-assignments.csv`: an identity's expected role or actual assignment,
/// and what the role checks made of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
///
/// There is a row per assignment (a million in a large tenant), so the repeated
/// strings are shared `Arc<str>`s: one cluster id per cluster, one scope per scope.
pub struct RoleCheck {
    pub cluster_id: Arc<str>,
    /// `control_plane`, `kubelet` or `addon:<key>`.
    pub identity: String,
    pub principal_id: Arc<str>,
    pub expected_role: Arc<str>,
    pub expected_scope: Arc<str>,
    pub actual_role: Arc<str>,
    pub actual_scope: Arc<str>,
    /// `ok`, `missing`, `excess`, `too_wide` or `not_documented`.
    pub status: String,
}

/// One copy of each repeated string of the role checks.
#[derive(Default)]
struct Strings(HashSet<Arc<str>, foldhash::fast::RandomState>);

impl Strings {
    fn one(&mut self, s: &mut Arc<str>) {
        match self.0.get(&**s) {
            Some(shared) => *s = shared.clone(),
            None => {
                self.0.insert(s.clone());
            }
        }
    }

    /// `c` with the strings one cluster's checks cannot share among themselves shared.
    fn share(&mut self, mut c: RoleCheck) -> RoleCheck {
        self.one(&mut c.expected_role);
        self.one(&mut c.expected_scope);
        self.one(&mut c.actual_role);
        c
    }
}

/// The whole report; its JSON form is `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: String,
    pub tool_version: String,
    pub generated_at: DateTime<Utc>,
    pub source: String,
    pub baseline: BaselineInfo,
    pub summary: Summary,
    pub clusters: Vec<ClusterRow>,
    pub findings: Vec<Finding>,
    pub coverage: Coverage,
    pub changes: Changes,
    pub suppressions: suppress::SuppressionReport,
    /// Every identity's expected roles and actual assignments (`role-assignments.csv`).
    #[serde(default)]
    pub role_checks: Vec<RoleCheck>,
    /// Report files this run could not write (the run exits 3 and tells admins).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_errors: Vec<OutputError>,
}

/// A report file that could not be rendered or written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputError {
    pub file: String,
    pub error: String,
}

/// Inputs besides inventory, baseline and history.
#[derive(Debug, Clone)]
pub struct Options {
    pub source: String,
    pub owners: owner::OwnerPolicy,
    pub suppressions: Vec<suppress::Suppression>,
    /// Clusters unseen for longer than this are forgotten.
    pub history_days: i64,
    /// Microsoft Graph was asked (`--graph`, or an inventory folder with
    /// sp-credentials.json): a missing credential is then a finding gap, not an option off.
    pub graph: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            source: "inventory".into(),
            owners: owner::OwnerPolicy::default(),
            suppressions: vec![],
            history_days: 400,
            graph: false,
        }
    }
}

/// A report and the history the run leaves behind.
pub struct Outcome {
    pub report: Report,
    pub history: History,
}

/// Everything the checks of one cluster may look at.
pub struct ClusterCtx<'a> {
    pub cluster: &'a crate::inventory::Cluster,
    pub observed: &'a ClusterHistory,
    pub status: MigrationStatus,
    /// Pools pending (for `pending`) or undeterminable (for `unknown`).
    pub status_pools: Vec<String>,
    /// The control plane's principal: the managed identity, or the service principal
    /// when role assignments name it (`principalName`).
    pub control_plane_principal: Option<String>,
    pub now: DateTime<Utc>,
}

impl Report {
    /// The audit. Pure: same inputs, same report.
    ///
    /// Takes the inventory and the previous history by value: each cluster and its
    /// previous state are freed once audited, so a large estate's report and next
    /// history take the place of its inventory rather than adding to it.
    pub fn generate(
        mut inv: Inventory,
        baseline: &Baseline,
        mut prev: History,
        now: DateTime<Utc>,
        opts: &Options,
    ) -> Outcome {
        let clusters = std::mem::take(&mut inv.clusters);
        let shared = index::sharing_identities(&clusters);
        let inv = inv;
        let idx = Index::build(&inv, &shared);
        let sp_creds = checks::sp_credential_index(&inv.sp_credentials);
        let mut findings = Vec::new();
        let mut rows = Vec::with_capacity(clusters.len());
        let mut observed_all = Vec::with_capacity(clusters.len());
        let mut role_checks = Vec::new();
        let mut strings = Strings::default();
        let graph = opts.graph || !inv.sp_credentials.is_empty();
        // Clusters with a family not evaluated: their earlier findings of that family
        // stay in history.
        let mut not_evaluated: HashMap<String, evaluated::Checks> = HashMap::new();
        for c in clusters {
            let c = &c;
            let cp_principal = idx.control_plane_principal(c);
            let sp_acr: Vec<String> = if classify::is_managed(c) {
                vec![]
            } else {
                cp_principal
                    .as_deref()
                    .map(|p| idx.acr_pull_registries(p))
                    .unwrap_or_default()
            };
            let sp_credentials_read = c
                .sp_client_id
                .as_deref()
                .is_some_and(|sp| sp_creds.contains_key(&sp.to_ascii_lowercase()));
            let checks = evaluated::for_cluster(
                c,
                &inv.coverage.gaps,
                cp_principal.is_some(),
                sp_credentials_read,
                graph,
            );
            let before = prev.take(&c.id);
            // Conflicting duplicate rows: nothing is learnt from either copy.
            let observed = match (&c.conflict, &before) {
                (Some(_), Some(b)) => b.clone(),
                _ => history::observe(before.as_ref(), c, now, &sp_acr),
            };
            let (status, status_pools) = migration::status(c, &observed);
            let mut checks = checks;
            migration::old_sp_secret_checks(&mut checks, status, &observed, &sp_creds, graph);
            let ctx = ClusterCtx {
                cluster: c,
                observed: &observed,
                status,
                status_pools,
                control_plane_principal: cp_principal,
                now,
            };
            let mut mine = Vec::new();
            if c.conflict.is_none() {
                mine = checks::identity_findings(&ctx, &idx);
                mine.extend(checks::secret_expiry_findings(&ctx, &sp_creds));
                if checks.roles.is_evaluated() {
                    let (role_findings, checks) =
                        roles::role_findings_and_checks(&ctx, &idx, baseline);
                    mine.extend(role_findings);
                    role_checks.extend(checks.into_iter().map(|c| strings.share(c)));
                } else {
                    mine.extend(checks::addon_findings(&ctx, &idx, baseline));
                }
                mine.retain(|f| checks.get(evaluated::Family::of(f.rule_id)).is_evaluated());
            }
            for f in &mut mine {
                f.suppressed = suppress::applies(&opts.suppressions, f, now);
            }
            let owner = owner::resolve(&opts.owners, c, &idx);
            if !checks.all_evaluated() {
                not_evaluated.insert(c.id.to_ascii_lowercase(), checks.clone());
            }
            rows.push(row(&ctx, &idx, &mine, owner, checks));
            findings.extend(mine);
            if c.conflict.is_none() || before.is_some() {
                observed_all.push(observed);
            }
        }
        // What follows needs none of these; a large estate's index is ~100 MB.
        drop((idx, strings, sp_creds));
        findings.sort_by(|a, b| {
            (
                b.severity,
                a.rule_id,
                &a.cluster_id,
                &a.identity,
                &a.subject,
            )
                .cmp(&(
                    a.severity,
                    b.rule_id,
                    &b.cluster_id,
                    &b.identity,
                    &b.subject,
                ))
        });
        let fingerprints: BTreeSet<String> = findings
            .iter()
            .filter(|f| f.suppressed.is_none())
            .map(Finding::fingerprint)
            .collect();
        // Earlier findings whose checks did not run this time (not evaluated, or the
        // cluster's subscription not read): neither resolved nor new again.
        let carried: BTreeSet<String> = prev
            .findings
            .iter()
            .filter(|fp| {
                !fingerprints.contains(*fp) && still_open(fp, &not_evaluated, &inv.coverage.gaps)
            })
            .cloned()
            .collect();
        let changes = Changes {
            has_previous: prev.last_run.is_some(),
            new: if prev.last_run.is_some() {
                fingerprints.difference(&prev.findings).cloned().collect()
            } else {
                vec![]
            },
            resolved: if prev.last_run.is_some() {
                prev.findings
                    .difference(&fingerprints)
                    .filter(|fp| !carried.contains(*fp))
                    .cloned()
                    .collect()
            } else {
                vec![]
            },
        };
        let mut fingerprints = fingerprints;
        fingerprints.extend(carried);
        let suppressions = suppress::report(&opts.suppressions, &findings, now);
        let summary = summarise(&inv, &rows, &findings);
        let report = Report {
            schema_version: SCHEMA_VERSION,
            tool: env!("CARGO_PKG_NAME").into(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            generated_at: now,
            source: opts.source.clone(),
            baseline: BaselineInfo {
                name: baseline.name.clone(),
                title: baseline.title.clone(),
                date: baseline.date.clone(),
                source: baseline.source.clone(),
            },
            summary,
            clusters: rows,
            findings,
            coverage: inv.coverage.clone(),
            changes,
            suppressions,
            role_checks,
            output_errors: vec![],
        };
        let history = prev.advance(observed_all, fingerprints, now, opts.history_days);
        Outcome { report, history }
    }

    /// The worst unsuppressed severity, if any.
    pub fn worst(&self) -> Option<Severity> {
        self.findings
            .iter()
            .filter(|f| f.suppressed.is_none())
            .map(|f| f.severity)
            .max()
    }
}

/// Is an earlier finding's fingerprint (`rule|cluster|identity|subject`) about a
/// check that did not run this time?
fn still_open(
    fp: &str,
    not_evaluated: &HashMap<String, evaluated::Checks>,
    gaps: &[crate::inventory::Gap],
) -> bool {
    let mut parts = fp.splitn(3, '|');
    let (Some(rule), Some(cluster)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Ok(rule) = rule.parse::<RuleId>() else {
        return false;
    };
    if let Some(k) = not_evaluated.get(cluster) {
        return !k.get(evaluated::Family::of(rule)).is_evaluated();
    }
    let sub = crate::inventory::ids::subscription_of(cluster).unwrap_or("");
    gaps.iter()
        .any(|g| evaluated::gap_covers(g, "clusters", sub))
}

fn row(
    ctx: &ClusterCtx,
    idx: &Index,
    mine: &[Finding],
    owner: owner::Owner,
    checks: evaluated::Checks,
) -> ClusterRow {
    let c = ctx.cluster;
    let active: Vec<&Finding> = mine.iter().filter(|f| f.suppressed.is_none()).collect();
    ClusterRow {
        subscription_id: c.subscription_id.clone(),
        subscription_name: idx
            .subscription(&c.subscription_id)
            .map(|s| s.name.clone())
            .unwrap_or_default(),
        resource_group: c.resource_group.clone(),
        cluster_name: c.name.clone(),
        cluster_id: c.id.clone(),
        location: c.location.clone(),
        control_plane_identity: history::mode_of(c).to_string(),
        kubelet_identity: classify::kubelet_identity(c).as_str().to_string(),
        migration_status: ctx.status,
        pools_pending_upgrade: if ctx.status == MigrationStatus::Pending {
            ctx.status_pools.len()
        } else {
            0
        },
        pending_pools: if ctx.status == MigrationStatus::Pending {
            ctx.status_pools.clone()
        } else {
            vec![]
        },
        owner: owner.address,
        owner_source: owner.source,
        findings: active.len(),
        worst_severity: active.iter().map(|f| f.severity).max(),
        node_resource_group: c.node_resource_group.clone().unwrap_or_default(),
        kubernetes_version: c.kubernetes_version.clone().unwrap_or_default(),
        migration_observed_at: ctx.observed.migration.as_ref().map(|m| m.observed_at),
        checks,
    }
}

fn summarise(inv: &Inventory, rows: &[ClusterRow], findings: &[Finding]) -> Summary {
    let mut s = Summary {
        clusters: rows.len(),
        subscriptions: rows
            .iter()
            .map(|r| r.subscription_id.to_ascii_lowercase())
            .collect::<BTreeSet<_>>()
            .len()
            .max(inv.subscriptions.len()),
        skipped_rows: inv.coverage.skipped_rows.len(),
        gaps: inv.coverage.gaps.len(),
        ..Default::default()
    };
    for r in rows {
        *s.control_plane
            .entry(r.control_plane_identity.clone())
            .or_default() += 1;
        *s.kubelet.entry(r.kubelet_identity.clone()).or_default() += 1;
        *s.migration
            .entry(r.migration_status.as_str().to_string())
            .or_default() += 1;
        if r.migration_status == MigrationStatus::Pending {
            s.kubelet_on_sp += 1;
            s.pools_pending_upgrade += r.pools_pending_upgrade;
        }
    }
    let on_mi = rows
        .iter()
        .filter(|r| r.control_plane_identity != "service_principal")
        .count();
    s.managed_identity_percent = if rows.is_empty() {
        0.0
    } else {
        (on_mi as f64 * 1000.0 / rows.len() as f64).round() / 10.0
    };
    for r in rows {
        if r.checks.all_evaluated() {
            s.fully_evaluated += 1;
        }
        for f in evaluated::Family::ALL {
            if !r.checks.get(f).is_evaluated() {
                *s.not_evaluated.entry(f.as_str().to_string()).or_default() += 1;
            }
        }
    }
    for sev in Severity::ALL {
        s.findings.insert(sev.as_str().to_string(), 0);
    }
    for f in findings {
        if f.suppressed.is_some() {
            s.suppressed += 1;
        } else {
            *s.findings
                .entry(f.severity.as_str().to_string())
                .or_default() += 1;
        }
    }
    s
}
