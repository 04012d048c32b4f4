//! The audit: pure functions from an inventory (plus baseline, history and clock) to a
//! [`Report`]. No I/O here.
pub mod actions;
pub mod ancestry;
mod audit;
pub mod baseline;
pub mod catalogue;
pub mod checks;
pub mod classify;
pub mod evaluated;
pub mod groups;
pub mod index;
pub mod migration;
pub mod model;
pub mod owner;
pub mod registry_pull;
pub mod remedy;
pub mod roles;
pub mod scope;
pub mod situational;
pub mod suppress;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use baseline::Baseline;
pub use catalogue::{RuleId, Severity};
pub use classify::KubeletIdentity;
pub use model::{ControlPlaneIdentity, IdentityKey, RoleCheckStatus, SeverityCounts};

use crate::history::{ClusterHistory, History, MigrationStatus};
use crate::inventory::{Coverage, Inventory};

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
    pub identity: IdentityKey,
    pub message: String,
    /// Copy-ready `az` command(s), one per line.
    pub remediation: String,
    /// What exactly the finding is about (a role assignment id, a pool, a registry):
    /// with rule, cluster and identity it makes the finding's stable fingerprint.
    pub subject: String,
    pub suppressed: Option<suppress::Applied>,
    /// The first run that found it (from the state, `--state DIR`); this run's time
    /// when the state has not seen it before.
    #[serde(default)]
    pub first_seen: Option<DateTime<Utc>>,
}

impl Finding {
    pub fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.rule_id,
            self.cluster_id.to_ascii_lowercase(),
            self.identity.to_string().to_ascii_lowercase(),
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
    pub control_plane_identity: ControlPlaneIdentity,
    pub kubelet_identity: KubeletIdentity,
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
    /// The first run that saw the cluster (from the state).
    #[serde(default)]
    pub first_seen: Option<DateTime<Utc>>,
    /// The last run that saw it on a service principal, once it left one.
    #[serde(default)]
    pub last_seen_as_sp: Option<DateTime<Utc>>,
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
    pub control_plane: BTreeMap<ControlPlaneIdentity, usize>,
    pub kubelet: BTreeMap<KubeletIdentity, usize>,
    pub migration: BTreeMap<MigrationStatus, usize>,
    /// Clusters whose kubelet still runs on the service principal (pending).
    pub kubelet_on_sp: usize,
    pub pools_pending_upgrade: usize,
    /// Percentage of clusters whose control plane uses a managed identity.
    pub managed_identity_percent: f64,
    /// Unsuppressed findings by severity.
    pub findings: SeverityCounts,
    pub suppressed: usize,
    pub skipped_rows: usize,
    pub gaps: usize,
    /// Clusters per check family (`roles`, `secret_expiry`, ...) whose checks were not
    /// evaluated; only families with at least one.
    #[serde(default)]
    pub not_evaluated: BTreeMap<evaluated::Family, usize>,
    /// Clusters with every check family evaluated.
    #[serde(default)]
    pub fully_evaluated: usize,
    /// Clusters fully evaluated with no unsuppressed finding at or above medium: apart
    /// from `managed_identity_percent`, which counts only the control plane's mode.
    #[serde(default)]
    pub compliant: usize,
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
    pub identity: IdentityKey,
    pub principal_id: Arc<str>,
    pub expected_role: Arc<str>,
    pub expected_scope: Arc<str>,
    pub actual_role: Arc<str>,
    pub actual_scope: Arc<str>,
    pub status: RoleCheckStatus,
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
        let via_groups = groups::expand(&mut inv);
        if via_groups > 0 {
            tracing::debug!(rows = via_groups, "grants held through groups");
        }
        let clusters = std::mem::take(&mut inv.clusters);
        let unread = situational::out_of_scope_gaps(&inv, &clusters, baseline);
        inv.coverage.gaps.extend(unread);
        let mut done = audit::audit_clusters(&inv, clusters, baseline, &mut prev, now, opts);
        // Grown by doubling: up to half of each was spare.
        done.findings.shrink_to_fit();
        done.role_checks.shrink_to_fit();
        audit::sort_findings(&mut done.findings);
        let summary = audit::summarise(&inv, &done.rows, &done.findings);
        // The rest of the inventory (role assignments, registries ...) is freed before
        // the fingerprints are made.
        let Inventory { coverage, .. } = inv;
        let fps = audit::fingerprints(&done.findings);
        let (changes, fingerprints) = audit::changes(
            &prev,
            &done.findings,
            &fps,
            &done.not_evaluated,
            &coverage.gaps,
        );
        let first_seen = audit::first_seen(&prev, &mut done.findings, &fps, &fingerprints, now);
        drop(fps);
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
            suppressions: suppress::report(&opts.suppressions, &done.findings, now),
            clusters: done.rows,
            findings: done.findings,
            coverage,
            changes,
            role_checks: done.role_checks,
            output_errors: vec![],
        };
        let mut history = prev.advance(done.observed, fingerprints, now, opts.history_days);
        history.finding_first_seen = first_seen;
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
