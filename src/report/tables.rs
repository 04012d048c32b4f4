//! Aggregates for the report with polars: per subscription, per owner, the pivot of
//! identity modes, new/resolved by rule. Classification stays in the rules (plain
//! Rust); this module only counts what they decided.
use std::collections::{BTreeMap, HashMap};

use polars::prelude::*;
use serde::Serialize;

use crate::history::MigrationStatus;
use crate::rules::{ControlPlaneIdentity, Report, Severity};

/// One row of `summary.csv` and of the report's subscription and owner tables.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupRow {
    /// `subscription` or `owner`.
    pub group: &'static str,
    /// Subscription id, or the owner's address.
    pub key: String,
    /// Subscription name, or the owner's address.
    pub name: String,
    pub clusters: i64,
    /// Control plane on a service principal.
    pub on_sp: i64,
    /// Migrated, kubelet still on the service principal.
    pub pending_clusters: i64,
    pub pending_pools: i64,
    /// On a managed identity and not pending.
    pub managed: i64,
    pub critical: i64,
    pub high: i64,
    pub medium: i64,
    pub low: i64,
    pub info: i64,
    /// Every check evaluated and no unsuppressed finding at or above medium.
    pub compliant: i64,
}

impl GroupRow {
    pub fn findings(&self) -> i64 {
        self.critical + self.high + self.medium + self.low + self.info
    }
}

const SEVERITIES: [&str; 5] = ["critical", "high", "medium", "low", "info"];

/// One row per cluster with what the aggregates sum.
fn cluster_frame(r: &Report) -> PolarsResult<DataFrame> {
    let mut per_cluster: HashMap<String, [i64; 5]> = HashMap::new();
    for f in r.findings.iter().filter(|f| f.suppressed.is_none()) {
        let i = Severity::ALL
            .iter()
            .position(|s| *s == f.severity)
            .unwrap_or(4);
        per_cluster
            .entry(f.cluster_id.to_ascii_lowercase())
            .or_default()[i] += 1;
    }
    let n = r.clusters.len();
    let mut sev: Vec<Vec<i64>> = (0..5).map(|_| Vec::with_capacity(n)).collect();
    for c in &r.clusters {
        let counts = per_cluster
            .get(&c.cluster_id.to_ascii_lowercase())
            .copied()
            .unwrap_or_default();
        for (i, v) in counts.into_iter().enumerate() {
            sev[i].push(v);
        }
    }
    let on_sp: Vec<i64> = r
        .clusters
        .iter()
        .map(|c| (c.control_plane_identity == ControlPlaneIdentity::ServicePrincipal) as i64)
        .collect();
    let pending: Vec<i64> = r
        .clusters
        .iter()
        .map(|c| (c.migration_status == MigrationStatus::Pending) as i64)
        .collect();
    let compliant: Vec<i64> = r
        .clusters
        .iter()
        .zip(&sev[0])
        .zip(&sev[1])
        .zip(&sev[2])
        .map(|(((c, crit), high), med)| (c.checks.all_evaluated() && crit + high + med == 0) as i64)
        .collect();
    let managed: Vec<i64> = on_sp
        .iter()
        .zip(&pending)
        .map(|(s, p)| (*s == 0 && *p == 0) as i64)
        .collect();
    let strings =
        |f: fn(&crate::rules::ClusterRow) -> &str| r.clusters.iter().map(f).collect::<Vec<&str>>();
    let mut df = df!(
        "subscription_id" => strings(|c| &c.subscription_id),
        "subscription_name" => strings(|c| &c.subscription_name),
        "owner" => strings(|c| &c.owner),
        "control_plane" => strings(|c| c.control_plane_identity.as_str()),
        "kubelet" => strings(|c| c.kubelet_identity.as_str()),
        "on_sp" => on_sp,
        "pending_clusters" => pending,
        "pending_pools" => r.clusters.iter().map(|c| c.pools_pending_upgrade as i64).collect::<Vec<i64>>(),
        "managed" => managed,
        "compliant" => compliant,
    )?;
    for (name, values) in SEVERITIES.iter().zip(sev) {
        df.with_column(Column::new((*name).into(), values))?;
    }
    Ok(df)
}

fn sums() -> Vec<Expr> {
    let mut v = vec![len().cast(DataType::Int64).alias("clusters")];
    for c in ["on_sp", "pending_clusters", "pending_pools", "managed"]
        .iter()
        .chain(SEVERITIES.iter())
        .chain(["compliant"].iter())
    {
        v.push(col(*c).sum());
    }
    v
}

fn ints(df: &DataFrame, name: &str) -> PolarsResult<Vec<i64>> {
    Ok(df
        .column(name)?
        .i64()?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect())
}

fn strs(df: &DataFrame, name: &str) -> PolarsResult<Vec<String>> {
    Ok(df
        .column(name)?
        .str()?
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect())
}

fn group_rows(
    df: DataFrame,
    group: &'static str,
    key: &str,
    name: &str,
) -> PolarsResult<Vec<GroupRow>> {
    let keys = strs(&df, key)?;
    let names = strs(&df, name)?;
    let cols: Vec<Vec<i64>> = [
        "clusters",
        "on_sp",
        "pending_clusters",
        "pending_pools",
        "managed",
    ]
    .iter()
    .chain(SEVERITIES.iter())
    .chain(["compliant"].iter())
    .map(|c| ints(&df, c))
    .collect::<PolarsResult<_>>()?;
    Ok((0..df.height())
        .map(|i| GroupRow {
            group,
            key: keys[i].clone(),
            name: names[i].clone(),
            clusters: cols[0][i],
            on_sp: cols[1][i],
            pending_clusters: cols[2][i],
            pending_pools: cols[3][i],
            managed: cols[4][i],
            critical: cols[5][i],
            high: cols[6][i],
            medium: cols[7][i],
            low: cols[8][i],
            info: cols[9][i],
            compliant: cols[10][i],
        })
        .collect())
}

/// Per subscription, the least compliant first (most clusters on SP or pending).
pub fn by_subscription(r: &Report) -> anyhow::Result<Vec<GroupRow>> {
    let mut aggs = sums();
    aggs.push(col("subscription_name").first());
    let df = cluster_frame(r)?
        .lazy()
        .group_by([col("subscription_id")])
        .agg(aggs)
        .collect()?;
    let mut rows = group_rows(df, "subscription", "subscription_id", "subscription_name")?;
    rows.iter_mut()
        .filter(|g| g.name.is_empty())
        .for_each(|g| g.name = g.key.clone());
    rows.sort_by(|a, b| {
        let ratio = |g: &GroupRow| (g.clusters - g.managed) as f64 / g.clusters.max(1) as f64;
        ratio(b)
            .total_cmp(&ratio(a))
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(rows)
}

/// Per owner, the owners with most findings first.
pub fn by_owner(r: &Report) -> anyhow::Result<Vec<GroupRow>> {
    let df = cluster_frame(r)?
        .lazy()
        .group_by([col("owner")])
        .agg(sums())
        .with_column(col("owner").alias("owner_name"))
        .collect()?;
    let mut rows = group_rows(df, "owner", "owner", "owner_name")?;
    rows.sort_by(|a, b| {
        (b.critical, b.high, b.findings(), &a.key).cmp(&(a.critical, a.high, a.findings(), &b.key))
    });
    Ok(rows)
}

/// Clusters by control-plane mode (rows) and kubelet identity (columns).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pivot {
    pub columns: Vec<String>,
    pub rows: Vec<PivotRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PivotRow {
    pub mode: String,
    pub cells: Vec<i64>,
    pub total: i64,
}

pub fn identity_modes(r: &Report) -> anyhow::Result<Pivot> {
    let df = cluster_frame(r)?
        .lazy()
        .group_by([col("control_plane"), col("kubelet")])
        .agg([len().cast(DataType::Int64).alias("n")])
        .collect()?;
    let modes = strs(&df, "control_plane")?;
    let kubelets = strs(&df, "kubelet")?;
    let counts = ints(&df, "n")?;
    let mut grid: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let mut columns: Vec<String> = kubelets.clone();
    columns.sort();
    columns.dedup();
    for ((m, k), n) in modes.into_iter().zip(kubelets).zip(counts) {
        grid.entry(m).or_default().insert(k, n);
    }
    let rows = grid
        .into_iter()
        .map(|(mode, cells)| PivotRow {
            total: cells.values().sum(),
            cells: columns
                .iter()
                .map(|c| cells.get(c).copied().unwrap_or(0))
                .collect(),
            mode,
        })
        .collect();
    Ok(Pivot { columns, rows })
}

/// New and resolved findings since the previous run, counted per rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangeCount {
    pub rule: String,
    pub new: i64,
    pub resolved: i64,
}

pub fn changes_by_rule(r: &Report) -> anyhow::Result<Vec<ChangeCount>> {
    let rule = |fp: &String| fp.split('|').next().unwrap_or_default().to_string();
    let rules: Vec<String> = r
        .changes
        .new
        .iter()
        .chain(&r.changes.resolved)
        .map(rule)
        .collect();
    if rules.is_empty() {
        return Ok(vec![]);
    }
    let new: Vec<i64> = r
        .changes
        .new
        .iter()
        .map(|_| 1)
        .chain(r.changes.resolved.iter().map(|_| 0))
        .collect();
    let resolved: Vec<i64> = new.iter().map(|n| 1 - n).collect();
    let df = df!("rule" => rules, "new" => new, "resolved" => resolved)?
        .lazy()
        .group_by([col("rule")])
        .agg([col("new").sum(), col("resolved").sum()])
        .sort(["rule"], SortMultipleOptions::default())
        .collect()?;
    let (rules, new, resolved) = (
        strs(&df, "rule")?,
        ints(&df, "new")?,
        ints(&df, "resolved")?,
    );
    Ok(rules
        .into_iter()
        .zip(new.into_iter().zip(resolved))
        .map(|(rule, (new, resolved))| ChangeCount {
            rule,
            new,
            resolved,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Changes, Finding, RuleId};

    fn report() -> Report {
        let mut r: Report =
            serde_json::from_str(include_str!("testdata/tiny-report.json")).unwrap();
        r.findings.push(Finding {
            cluster_id: r.clusters[0].cluster_id.to_uppercase(),
            cluster_name: "a".into(),
            subscription_id: "s1".into(),
            rule_id: RuleId::ServicePrincipal,
            severity: Severity::High,
            identity: crate::rules::IdentityKey::ControlPlane,
            message: String::new(),
            remediation: String::new(),
            subject: String::new(),
            suppressed: None,
            first_seen: None,
        });
        r
    }

    #[test]
    fn aggregates_per_subscription_and_owner() {
        let r = report();
        let subs = by_subscription(&r).unwrap();
        assert_eq!(subs.len(), 2);
        // s2's only cluster is pending, s1 has one of two on a service principal: least
        // compliant first; a subscription without a name shows its id.
        assert_eq!((subs[0].key.as_str(), subs[0].name.as_str()), ("s2", "s2"));
        assert_eq!(
            (
                subs[0].clusters,
                subs[0].pending_clusters,
                subs[0].pending_pools,
                subs[0].managed
            ),
            (1, 1, 2, 0)
        );
        assert_eq!((subs[1].key.as_str(), subs[1].name.as_str()), ("s1", "one"));
        assert_eq!(
            (
                subs[1].clusters,
                subs[1].on_sp,
                subs[1].high,
                subs[1].managed
            ),
            (2, 1, 1, 1)
        );
        let owners = by_owner(&r).unwrap();
        assert_eq!(
            owners[0].key, "a@example.com",
            "the owner with a high finding first"
        );
        assert_eq!(owners.iter().map(|o| o.clusters).sum::<i64>(), 3);
    }

    #[test]
    fn pivot_counts_every_cluster_once() {
        let p = identity_modes(&report()).unwrap();
        assert_eq!(p.columns, ["aks_managed", "service_principal"]);
        let sp = p
            .rows
            .iter()
            .find(|r| r.mode == "service_principal")
            .unwrap();
        assert_eq!((sp.cells.clone(), sp.total), (vec![0, 1], 1));
        assert_eq!(p.rows.iter().map(|r| r.total).sum::<i64>(), 3);
    }

    #[test]
    fn changes_are_counted_per_rule() {
        let mut r = report();
        assert!(changes_by_rule(&r).unwrap().is_empty());
        r.changes = Changes {
            has_previous: true,
            new: vec![
                "AKSMI001|x|control_plane|".into(),
                "AKSMI011|x|kubelet|a".into(),
            ],
            resolved: vec!["AKSMI011|y|kubelet|b".into()],
        };
        let c = changes_by_rule(&r).unwrap();
        assert_eq!(
            c,
            vec![
                ChangeCount {
                    rule: "AKSMI001".into(),
                    new: 1,
                    resolved: 0
                },
                ChangeCount {
                    rule: "AKSMI011".into(),
                    new: 1,
                    resolved: 1
                },
            ]
        );
    }
}
