//! Suppressions that expire: accepted risks stop shouting but never vanish.
use std::path::Path;

use anyhow::{bail, Context};
use chrono::{DateTime, NaiveDate, Utc};
use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};

use super::{Finding, RuleId};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    suppression: Vec<Raw>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    rule: String,
    /// A cluster id or a glob over cluster ids (case-insensitive).
    cluster: String,
    identity: Option<String>,
    justification: String,
    owner: String,
    expires: NaiveDate,
}

#[derive(Debug, Clone)]
pub struct Suppression {
    pub rule: RuleId,
    pub cluster: String,
    matcher: GlobMatcher,
    pub identity: Option<String>,
    pub justification: String,
    pub owner: String,
    pub expires: NaiveDate,
}

impl Suppression {
    fn matches(&self, f: &Finding) -> bool {
        self.rule == f.rule_id
            && self.matcher.is_match(f.cluster_id.to_ascii_lowercase())
            && self
                .identity
                .as_deref()
                .is_none_or(|i| f.identity.eq_ignore_ascii_case(i))
    }

    /// Active through the whole `expires` day (UTC).
    fn active(&self, now: DateTime<Utc>) -> bool {
        now.date_naive() <= self.expires
    }
}

super::model::named_enum! {
    /// What a suppression entry did this run.
    pub enum EntryState {
        /// Matches findings and suppresses them.
        Active = "active",
        /// Matches findings but no longer suppresses them.
        Expired = "expired",
        /// Matches nothing.
        Stale = "stale",
    }
}

/// What a suppressed finding carries: who accepted it, why, until when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub justification: String,
    pub owner: String,
    pub expires: NaiveDate,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SuppressionReport {
    pub entries: Vec<EntryStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryStatus {
    pub rule: RuleId,
    pub cluster: String,
    pub identity: Option<String>,
    pub owner: String,
    pub justification: String,
    pub expires: NaiveDate,
    pub status: EntryState,
    pub matched: usize,
}

/// Parses a TOML suppressions file (`[[suppression]]` tables).
pub fn parse(text: &str, origin: &str) -> anyhow::Result<Vec<Suppression>> {
    let file: File =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("suppressions {origin}: {e}"))?;
    build(file, origin)
}

/// Parses a YAML suppressions file: a `suppression:` list with the same keys as TOML.
pub fn parse_yaml(text: &str, origin: &str) -> anyhow::Result<Vec<Suppression>> {
    if text.trim().is_empty() {
        return Ok(vec![]);
    }
    // The error's text ends with "at line L column C" when the position is known.
    let file: File =
        serde_norway::from_str(text).map_err(|e| anyhow::anyhow!("suppressions {origin}: {e}"))?;
    build(file, origin)
}

fn build(file: File, origin: &str) -> anyhow::Result<Vec<Suppression>> {
    let mut out = Vec::new();
    for (i, r) in file.suppression.into_iter().enumerate() {
        let at = format!("suppressions {origin}: entry {} (rule {})", i + 1, r.rule);
        let rule: RuleId = r.rule.parse().map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
        if r.justification.trim().is_empty() || r.owner.trim().is_empty() {
            bail!("{at}: `justification` and `owner` must not be empty");
        }
        let matcher = GlobBuilder::new(&r.cluster.to_ascii_lowercase())
            .literal_separator(false)
            .build()
            .with_context(|| format!("{at}: bad cluster glob `{}`", r.cluster))?
            .compile_matcher();
        out.push(Suppression {
            rule,
            cluster: r.cluster,
            matcher,
            identity: r.identity,
            justification: r.justification,
            owner: r.owner,
            expires: r.expires,
        });
    }
    Ok(out)
}

pub fn load(path: &Path) -> anyhow::Result<Vec<Suppression>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading suppressions {}", path.display()))?;
    let origin = path.display().to_string();
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("yaml" | "yml") => parse_yaml(&text, &origin),
        _ => parse(&text, &origin),
    }
}

/// The first active suppression that matches, if any.
pub fn applies(list: &[Suppression], f: &Finding, now: DateTime<Utc>) -> Option<Applied> {
    list.iter()
        .find(|s| s.active(now) && s.matches(f))
        .map(|s| Applied {
            justification: s.justification.clone(),
            owner: s.owner.clone(),
            expires: s.expires,
        })
}

pub fn report(list: &[Suppression], findings: &[Finding], now: DateTime<Utc>) -> SuppressionReport {
    let entries = list
        .iter()
        .map(|s| {
            let matched = findings.iter().filter(|f| s.matches(f)).count();
            let status = if matched == 0 {
                EntryState::Stale
            } else if s.active(now) {
                EntryState::Active
            } else {
                EntryState::Expired
            };
            EntryStatus {
                rule: s.rule,
                cluster: s.cluster.clone(),
                identity: s.identity.clone(),
                owner: s.owner.clone(),
                justification: s.justification.clone(),
                expires: s.expires,
                status,
                matched,
            }
        })
        .collect();
    SuppressionReport { entries }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Severity;

    fn finding(cluster: &str) -> Finding {
        Finding {
            cluster_id: cluster.into(),
            cluster_name: "c".into(),
            subscription_id: "s".into(),
            rule_id: RuleId::ServicePrincipal,
            severity: Severity::High,
            identity: crate::rules::IdentityKey::ControlPlane,
            message: String::new(),
            remediation: String::new(),
            subject: String::new(),
            suppressed: None,
            first_seen: None,
        }
    }

    const FILE: &str = r#"
[[suppression]]
rule = "AKSMI001"
cluster = "/subscriptions/*/resourceGroups/legacy/*"
justification = "decommissioned in Q1"
owner = "alice@example.com"
expires = "2026-12-31"
"#;

    #[test]
    fn glob_matches_and_expires() {
        let s = parse(FILE, "s.toml").unwrap();
        let f = finding("/subscriptions/x/resourcegroups/LEGACY/providers/Microsoft.ContainerService/managedClusters/c");
        let before = DateTime::parse_from_rfc3339("2026-12-31T23:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let after = DateTime::parse_from_rfc3339("2027-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(applies(&s, &f, before).is_some());
        assert!(applies(&s, &f, after).is_none());
        assert_eq!(
            report(&s, std::slice::from_ref(&f), after).entries[0].status,
            "expired"
        );
        assert_eq!(report(&s, &[f], before).entries[0].status, "active");
        let other = finding("/subscriptions/x/resourceGroups/prod/providers/Microsoft.ContainerService/managedClusters/c");
        assert_eq!(report(&s, &[other], before).entries[0].status, "stale");
    }

    const YAML: &str = "suppression:\n  - rule: AKSMI001\n    cluster: \"/subscriptions/*/resourceGroups/legacy/*\"\n    justification: decommissioned in Q1\n    owner: alice@example.com\n    expires: 2026-12-31\n";

    #[test]
    fn yaml_reads_like_toml() {
        let y = parse_yaml(YAML, "s.yaml").unwrap();
        let t = parse(FILE, "s.toml").unwrap();
        assert_eq!(y.len(), 1);
        assert_eq!(
            (y[0].rule, &y[0].cluster, y[0].expires),
            (t[0].rule, &t[0].cluster, t[0].expires)
        );
        assert_eq!(y[0].justification, "decommissioned in Q1");
        assert!(parse_yaml("", "s.yaml").unwrap().is_empty());
    }

    #[test]
    fn malformed_yaml_names_the_line() {
        let bad_type = YAML.replace("expires: 2026-12-31", "expires: [1, 2]");
        let e = parse_yaml(&bad_type, "s.yaml").unwrap_err().to_string();
        assert!(e.contains("s.yaml") && e.contains("line 6"), "{e}");
        let bad_syntax = YAML.replace("    owner:", "\towner:");
        let e = parse_yaml(&bad_syntax, "s.yaml").unwrap_err().to_string();
        assert!(e.contains("s.yaml") && e.contains("line 5"), "{e}");
        let missing = YAML.replace("    owner: alice@example.com\n", "");
        let e = parse_yaml(&missing, "s.yaml").unwrap_err().to_string();
        assert!(e.contains("owner") && e.contains("line 2"), "{e}");
        let unknown_key = YAML.replace("    owner:", "    ownr:");
        let e = parse_yaml(&unknown_key, "s.yaml").unwrap_err().to_string();
        assert!(e.contains("ownr") && e.contains("line"), "{e}");
        let e = parse_yaml(&YAML.replace("AKSMI001", "AKSMI999"), "s.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("AKSMI999"), "{e}");
    }

    #[test]
    fn load_picks_the_format_by_extension() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [("s.yaml", YAML), ("s.yml", YAML), ("s.toml", FILE)] {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            assert_eq!(load(&p).unwrap().len(), 1, "{name}");
        }
        let p = dir.path().join("t.yaml");
        std::fs::write(&p, FILE).unwrap();
        let e = format!("{:#}", load(&p).unwrap_err());
        assert!(
            e.contains("t.yaml") && e.contains("line"),
            "TOML read as YAML must fail clearly: {e}"
        );
    }

    #[test]
    fn malformed_file_names_the_line() {
        let e = parse(
            "[[suppression]]\nrule = \"AKSMI001\"\ncluster = 5\n",
            "s.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("s.toml") && e.contains("line 3"), "{e}");
        let e = parse(&FILE.replace("AKSMI001", "AKSMI999"), "s.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("AKSMI999"), "{e}");
    }
}
