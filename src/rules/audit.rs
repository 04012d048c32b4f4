//! The steps of [`super::Report::generate`]: each cluster audited in turn (its
//! checks' statuses, history, findings, role checks and row), then the findings
//! sorted, compared with the previous run's, and summarised.
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::index::{self, Index};
use super::{
    checks, classify, evaluated, owner, roles, suppress, Baseline, Changes, ClusterCtx, ClusterRow,
    ControlPlaneIdentity, Finding, Options, RoleCheck, RuleId, Severity, Summary,
};
use crate::history::{self, ClusterHistory, History, MigrationStatus};
use crate::inventory::{Cluster, Gap, Inventory, SpCredential};

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

/// What auditing every cluster produced.
pub(super) struct Audited {
    pub findings: Vec<Finding>,
    pub rows: Vec<ClusterRow>,
    /// The clusters' next history entries.
    pub observed: Vec<ClusterHistory>,
    pub role_checks: Vec<RoleCheck>,
    /// Clusters (lower-cased id) with a family not evaluated: their earlier findings
    /// of that family stay in history.
    pub not_evaluated: HashMap<String, evaluated::Checks>,
}

/// What every cluster's audit shares: the inventory's lookups and the run's inputs.
struct Auditor<'a> {
    idx: Index<'a>,
    sp_creds: HashMap<String, &'a SpCredential>,
    baseline: &'a Baseline,
    opts: &'a Options,
    now: DateTime<Utc>,
    /// Microsoft Graph was asked or answered.
    graph: bool,
    /// The coverage gaps by table and subscription.
    gaps: evaluated::GapIndex<'a>,
}

/// Audits `clusters` (taken from `inv`) one by one, moving each one's previous state
/// out of `prev`. The lookups built here (a large estate's index is ~100 MB) are
/// freed before the caller goes on.
pub(super) fn audit_clusters(
    inv: &Inventory,
    clusters: Vec<Cluster>,
    baseline: &Baseline,
    prev: &mut History,
    now: DateTime<Utc>,
    opts: &Options,
) -> Audited {
    let shared = index::sharing_identities(&clusters);
    let a = Auditor {
        idx: Index::build(inv, &shared),
        sp_creds: checks::sp_credential_index(&inv.sp_credentials),
        baseline,
        opts,
        now,
        graph: opts.graph || !inv.sp_credentials.is_empty(),
        gaps: evaluated::GapIndex::new(&inv.coverage.gaps),
    };
    let mut out = Audited {
        findings: Vec::new(),
        rows: Vec::with_capacity(clusters.len()),
        observed: Vec::with_capacity(clusters.len()),
        role_checks: Vec::new(),
        not_evaluated: HashMap::new(),
    };
    let mut strings = Strings::default();
    for c in clusters {
        a.cluster(c, prev, &mut out, &mut strings);
    }
    out
}

impl Auditor<'_> {
    /// One cluster: its row, findings, role checks and next history into `out`.
    fn cluster(
        &self,
        mut cluster: Cluster,
        prev: &mut History,
        out: &mut Audited,
        strings: &mut Strings,
    ) {
        let c = &cluster;
        let cp_principal = self.idx.control_plane_principal(c);
        let mut checks = self.checks(c, cp_principal.is_some());
        if checks.roles.is_evaluated() {
            let principals = cp_principal.as_deref().into_iter().chain(c.principal_ids());
            if let Some(why) = super::ancestry::unplaced(&self.idx, c, principals) {
                checks.roles = evaluated::Status::NotEvaluated(why);
            }
        }
        let before = prev.take(&c.id);
        let observed = self.observe(
            c,
            before.as_ref(),
            cp_principal.as_deref(),
            checks.roles.is_evaluated(),
        );
        let (status, status_pools) = super::migration::status(c, &observed);
        super::migration::unread_changes_checks(&mut checks, c, status);
        super::migration::old_sp_secret_checks(
            &mut checks,
            status,
            &observed,
            &self.sp_creds,
            self.graph,
        );
        let ctx = ClusterCtx {
            cluster: c,
            observed: &observed,
            status,
            status_pools,
            control_plane_principal: cp_principal,
            now: self.now,
        };
        let mut mine = Vec::new();
        if c.conflict.is_none() {
            let (found, role_checks) = self.findings(&ctx, &checks);
            mine = found;
            out.role_checks
                .extend(role_checks.into_iter().map(|c| strings.share(c)));
        }
        for f in &mut mine {
            f.suppressed = suppress::applies(&self.opts.suppressions, f, self.now);
        }
        let owner = owner::resolve(&self.opts.owners, c, &self.idx);
        if !checks.all_evaluated() {
            out.not_evaluated
                .insert(c.id.to_ascii_lowercase(), checks.clone());
        }
        let mut row = row(&ctx, &self.idx, &mine, owner, checks);
        out.findings.extend(mine);
        let keep_observed = c.conflict.is_none() || before.is_some();
        drop(ctx);
        if keep_observed {
            out.observed.push(observed);
        }
        // The row's strings are the cluster's own, moved rather than copied: the
        // cluster is not needed again.
        row.subscription_id = std::mem::take(&mut cluster.subscription_id);
        row.resource_group = std::mem::take(&mut cluster.resource_group);
        row.cluster_name = std::mem::take(&mut cluster.name);
        row.cluster_id = std::mem::take(&mut cluster.id);
        row.location = std::mem::take(&mut cluster.location);
        row.node_resource_group = cluster.node_resource_group.take().unwrap_or_default();
        row.kubernetes_version = cluster.kubernetes_version.take().unwrap_or_default();
        out.rows.push(row);
    }

    /// Which check families the data allows for `c`.
    fn checks(&self, c: &Cluster, cp_principal_known: bool) -> evaluated::Checks {
        let sp_credentials_read = c
            .sp_client_id
            .as_deref()
            .is_some_and(|sp| self.sp_creds.contains_key(&sp.to_ascii_lowercase()));
        evaluated::for_cluster(
            c,
            &self.gaps,
            cp_principal_known,
            sp_credentials_read,
            self.graph,
        )
    }

    /// The cluster's next history entry. Conflicting duplicate rows teach nothing:
    /// the previous entry, if any, stays as it was.
    fn observe(
        &self,
        c: &Cluster,
        before: Option<&ClusterHistory>,
        cp_principal: Option<&str>,
        roles_read: bool,
    ) -> ClusterHistory {
        if let (Some(_), Some(b)) = (&c.conflict, before) {
            return b.clone();
        }
        // The registries a service principal pulls from, for after its migration.
        let sp_acr: Vec<String> = if classify::is_managed(c) {
            vec![]
        } else {
            cp_principal
                .map(|p| self.idx.acr_pull_registries(p))
                .unwrap_or_default()
        };
        let mut h = history::observe(before, c, self.now, &sp_acr, super::migration::flip_kind(c));
        if !classify::is_managed(c) {
            // Its grants were read: no AcrPull is a fact, not a gap (AKSMI022).
            h.sp_acr_known |= cp_principal.is_some() && roles_read;
        }
        // The kubelet identity and where it pulls, to tell a replaced one (AKSMI022).
        let kubelet_registries = c
            .kubelet
            .as_ref()
            .and_then(|k| k.object_id.as_deref())
            .filter(|_| roles_read)
            .map(|k| super::registry_pull::pull_grant_scopes(self.idx.assignments(k)));
        history::observe_kubelet(&mut h, before, c, self.now, kubelet_registries);
        h
    }

    /// Every rule's findings on one cluster, but those of families not evaluated, and
    /// the role checks when roles were evaluated.
    fn findings(
        &self,
        ctx: &ClusterCtx,
        checks: &evaluated::Checks,
    ) -> (Vec<Finding>, Vec<RoleCheck>) {
        let mut mine = checks::identity_findings(ctx, &self.idx);
        mine.extend(checks::secret_expiry_findings(ctx, &self.sp_creds));
        let mut role_checks = Vec::new();
        if checks.roles.is_evaluated() {
            let (found, listed) = roles::role_findings_and_checks(ctx, &self.idx, self.baseline);
            mine.extend(found);
            role_checks = listed;
        } else {
            mine.extend(checks::addon_findings(ctx, &self.idx, self.baseline));
        }
        mine.retain(|f| checks.get(evaluated::Family::of(f.rule_id)).is_evaluated());
        (mine, role_checks)
    }
}

/// The report's order: most severe first, then rule, cluster, identity and subject.
pub(super) fn sort_findings(findings: &mut [Finding]) {
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
}

/// Each finding's fingerprint ([`Finding::fingerprint`]), in the findings' order: made
/// once and shared by the next history's fingerprints and first-seen dates.
pub(super) fn fingerprints(findings: &[Finding]) -> Vec<Arc<str>> {
    findings
        .iter()
        .map(|f| Arc::from(f.fingerprint()))
        .collect()
}

/// What changed since the previous run, and the fingerprints the next history keeps:
/// this run's unsuppressed findings plus the earlier ones whose checks did not run
/// this time (not evaluated, or the cluster's subscription not read), which are
/// neither resolved nor new again. `fps` are the findings' [`fingerprints`].
pub(super) fn changes(
    prev: &History,
    findings: &[Finding],
    fps: &[Arc<str>],
    not_evaluated: &HashMap<String, evaluated::Checks>,
    gaps: &[Gap],
) -> (Changes, BTreeSet<Arc<str>>) {
    let gaps = evaluated::GapIndex::new(gaps);
    let fingerprints: BTreeSet<Arc<str>> = findings
        .iter()
        .zip(fps)
        .filter(|(f, _)| f.suppressed.is_none())
        .map(|(_, fp)| fp.clone())
        .collect();
    let carried: BTreeSet<Arc<str>> = prev
        .findings
        .iter()
        .filter(|fp| !fingerprints.contains(*fp) && still_open(fp, not_evaluated, &gaps))
        .cloned()
        .collect();
    let has_previous = prev.last_run.is_some();
    let changes = Changes {
        has_previous,
        new: if has_previous {
            fingerprints
                .difference(&prev.findings)
                .map(|fp| fp.to_string())
                .collect()
        } else {
            vec![]
        },
        resolved: if has_previous {
            prev.findings
                .difference(&fingerprints)
                .filter(|fp| !carried.contains(*fp))
                .map(|fp| fp.to_string())
                .collect()
        } else {
            vec![]
        },
    };
    let mut kept = fingerprints;
    kept.extend(carried);
    (changes, kept)
}

/// Sets each finding's `first_seen` from the previous history (this run for one it
/// has not seen) and returns the dates the next history keeps: every finding of this
/// run, suppressed or not, and the earlier ones carried because their check did not run.
/// `fps` are the findings' [`fingerprints`].
pub(super) fn first_seen(
    prev: &History,
    findings: &mut [Finding],
    fps: &[Arc<str>],
    kept: &BTreeSet<Arc<str>>,
    now: DateTime<Utc>,
) -> BTreeMap<Arc<str>, DateTime<Utc>> {
    let mut out = BTreeMap::new();
    for (f, fp) in findings.iter_mut().zip(fps) {
        let seen = prev.finding_seen(fp).unwrap_or(now);
        f.first_seen = Some(seen);
        out.insert(fp.clone(), seen);
    }
    for fp in kept {
        if !out.contains_key(fp) {
            out.insert(fp.clone(), prev.finding_seen(fp).unwrap_or(now));
        }
    }
    out
}

/// Is an earlier finding's fingerprint (`rule|cluster|identity|subject`) about a
/// check that did not run this time?
fn still_open(
    fp: &str,
    not_evaluated: &HashMap<String, evaluated::Checks>,
    gaps: &evaluated::GapIndex,
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
    gaps.covering("clusters", sub).is_some()
}

/// The cluster's row of `clusters.csv`.
fn row(
    ctx: &ClusterCtx,
    idx: &Index,
    mine: &[Finding],
    owner: owner::Owner,
    checks: evaluated::Checks,
) -> ClusterRow {
    let c = ctx.cluster;
    let active: Vec<&Finding> = mine.iter().filter(|f| f.suppressed.is_none()).collect();
    let pending = ctx.status == MigrationStatus::Pending;
    ClusterRow {
        // The cluster's own strings are moved in by the caller.
        subscription_id: String::new(),
        subscription_name: idx
            .subscription(&c.subscription_id)
            .map(|s| s.name.clone())
            .unwrap_or_default(),
        resource_group: String::new(),
        cluster_name: String::new(),
        cluster_id: String::new(),
        location: String::new(),
        control_plane_identity: classify::control_plane_identity(c),
        kubelet_identity: classify::kubelet_identity(c),
        migration_status: ctx.status,
        pools_pending_upgrade: if pending { ctx.status_pools.len() } else { 0 },
        pending_pools: if pending {
            ctx.status_pools.clone()
        } else {
            vec![]
        },
        owner: owner.address,
        owner_source: owner.source,
        findings: active.len(),
        worst_severity: active.iter().map(|f| f.severity).max(),
        node_resource_group: String::new(),
        kubernetes_version: String::new(),
        migration_observed_at: ctx.observed.migration.as_ref().map(|m| m.observed_at),
        checks,
        first_seen: Some(ctx.observed.first_seen),
        last_seen_as_sp: ctx.observed.migration.as_ref().map(|m| m.last_seen_as_sp),
    }
}

/// The report's headline numbers.
pub(super) fn summarise(inv: &Inventory, rows: &[ClusterRow], findings: &[Finding]) -> Summary {
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
        *s.control_plane.entry(r.control_plane_identity).or_default() += 1;
        *s.kubelet.entry(r.kubelet_identity).or_default() += 1;
        *s.migration.entry(r.migration_status).or_default() += 1;
        if r.migration_status == MigrationStatus::Pending {
            s.kubelet_on_sp += 1;
            s.pools_pending_upgrade += r.pools_pending_upgrade;
        }
        if r.checks.all_evaluated() {
            s.fully_evaluated += 1;
        }
        for f in evaluated::Family::ALL {
            if !r.checks.get(f).is_evaluated() {
                *s.not_evaluated.entry(f).or_default() += 1;
            }
        }
    }
    let on_mi = rows
        .iter()
        .filter(|r| r.control_plane_identity != ControlPlaneIdentity::ServicePrincipal)
        .count();
    s.managed_identity_percent = if rows.is_empty() {
        0.0
    } else {
        (on_mi as f64 * 1000.0 / rows.len() as f64).round() / 10.0
    };
    for f in findings {
        if f.suppressed.is_some() {
            s.suppressed += 1;
        } else {
            *s.findings.get_mut(f.severity) += 1;
        }
    }
    let at_risk: HashSet<String> = findings
        .iter()
        .filter(|f| f.suppressed.is_none() && f.severity >= Severity::Medium)
        .map(|f| f.cluster_id.to_ascii_lowercase())
        .collect();
    s.compliant = rows
        .iter()
        .filter(|r| {
            r.checks.all_evaluated() && !at_risk.contains(&r.cluster_id.to_ascii_lowercase())
        })
        .count();
    s
}
