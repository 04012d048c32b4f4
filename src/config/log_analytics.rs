//! Log Analytics through the Logs Ingestion API: flags `--log-analytics DCE_URL`,
//! `--dcr-id ID`, `--stream NAME`, and the `[log_analytics]` table (`endpoint`,
//! `dcr_id`, `stream`, `retries`). The three names go together: one without the
//! others is a problem.
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use super::problem::{in_range, pick, Names, Problem};
use crate::log_analytics::{LogAnalyticsSettings, MAX_REQUEST_BYTES, TEST_BATCH_BYTES_ENV};

#[derive(Debug, Clone, Default, Args)]
pub struct LogAnalyticsArgs {
    /// Send findings and clusters to Log Analytics through this data collection endpoint
    /// (Logs Ingestion API; with --dcr-id and --stream) [config: log_analytics.endpoint].
    #[arg(long = "log-analytics", value_name = "DCE_URL")]
    pub endpoint: Option<String>,
    /// The data collection rule's immutable id (dcr-<32 hex digits>)
    /// [config: log_analytics.dcr_id].
    #[arg(long, value_name = "ID")]
    pub dcr_id: Option<String>,
    /// The rule's input stream (Custom-...) [config: log_analytics.stream].
    #[arg(long, value_name = "NAME")]
    pub stream: Option<String>,
}

/// The `[log_analytics]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogAnalyticsFile {
    pub endpoint: Option<String>,
    pub dcr_id: Option<String>,
    pub stream: Option<String>,
    /// Retries of a batch after a 429, 5xx or dropped connection [default: 4].
    pub retries: Option<u32>,
}

const ENDPOINT: Names = Names {
    flag: "--log-analytics",
    key: "log_analytics.endpoint",
};
const DCR_ID: Names = Names {
    flag: "--dcr-id",
    key: "log_analytics.dcr_id",
};
const STREAM: Names = Names {
    flag: "--stream",
    key: "log_analytics.stream",
};
const RETRIES: Names = Names {
    flag: "",
    key: "log_analytics.retries",
};

/// `dcr-` and 32 hexadecimal digits, as Azure shows a rule's immutable id.
pub fn check_dcr_id(s: &str) -> Result<String, String> {
    let s = s.trim();
    let ok = s
        .strip_prefix("dcr-")
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not a data collection rule's immutable id (dcr- and 32 hex digits, as on the rule's JSON view: properties.immutableId; not its resource id or name)"
        ))
    }
}

/// `Custom-` and a name of letters, digits, `_` and `-` (a custom stream the DCR
/// declares in `streamDeclarations`).
pub fn check_stream(s: &str) -> Result<String, String> {
    let s = s.trim();
    let ok = s.strip_prefix("Custom-").is_some_and(|n| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!(
            "`{s}` is not a custom stream name: Custom- and letters, digits, _ or - (the DCR's streamDeclarations key, e.g. Custom-AksIdentityAudit)"
        ))
    }
}

/// Flags over the file. `Ok(None)`: not configured.
pub fn resolve(
    args: &LogAnalyticsArgs,
    file: &LogAnalyticsFile,
    out: &mut Vec<Problem>,
) -> Option<Option<LogAnalyticsSettings>> {
    let before = out.len();
    let endpoint = pick(
        out,
        ENDPOINT,
        args.endpoint.as_deref(),
        file.endpoint.as_deref(),
        |u| {
            let url = crate::azure::parse_endpoint(u)?;
            if url.query().is_some() || url.path() != "/" {
                return Err(format!(
                    "`{u}` must be the endpoint alone (https://NAME.REGION-1.ingest.monitor.azure.com), without a path"
                ));
            }
            Ok(url)
        },
    );
    let dcr = pick(
        out,
        DCR_ID,
        args.dcr_id.as_deref(),
        file.dcr_id.as_deref(),
        check_dcr_id,
    );
    let stream = pick(
        out,
        STREAM,
        args.stream.as_deref(),
        file.stream.as_deref(),
        check_stream,
    );
    let retries = pick(out, RETRIES, None, file.retries, in_range(0..=10, ""));
    let given = [
        (!endpoint.is_absent(), ENDPOINT),
        (!dcr.is_absent(), DCR_ID),
        (!stream.is_absent(), STREAM),
    ];
    if given.iter().any(|(g, _)| *g) {
        for (g, names) in given {
            if !g {
                out.push(Problem::new(
                    names.flag,
                    "Log Analytics needs --log-analytics, --dcr-id and --stream together (or log_analytics.endpoint, dcr_id and stream)",
                ));
            }
        }
    }
    if out.len() > before {
        return None;
    }
    let (Some(endpoint), Some(dcr_id), Some(stream)) =
        (endpoint.value(), dcr.value(), stream.value())
    else {
        return Some(None);
    };
    // Hidden test knob: smaller batches for a small tenant.
    let max_batch_bytes = std::env::var(TEST_BATCH_BYTES_ENV)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n >= 1024)
        .map_or(MAX_REQUEST_BYTES, |n| n.min(MAX_REQUEST_BYTES));
    Some(Some(LogAnalyticsSettings {
        endpoint,
        dcr_id,
        stream,
        retries: retries.or(4),
        backoff: Duration::from_secs(1),
        max_batch_bytes,
        // The run's (`config::settings`).
        azure: Default::default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DCR: &str = "dcr-00112233445566778899aabbccddeeff";

    #[test]
    fn the_three_names_resolve_together_flags_over_file() {
        let file: LogAnalyticsFile = toml::from_str(&format!(
            "endpoint = \"https://dce-1.westeurope-1.ingest.monitor.azure.com\"\ndcr_id = \"{DCR}\"\nstream = \"Custom-AksIdentityAudit\"\nretries = 2\n"
        ))
        .unwrap();
        let mut out = vec![];
        let s = resolve(&LogAnalyticsArgs::default(), &file, &mut out)
            .unwrap()
            .unwrap();
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(s.stream, "Custom-AksIdentityAudit");
        assert_eq!(s.retries, 2);
        assert_eq!(
            s.endpoint.as_str(),
            "https://dce-1.westeurope-1.ingest.monitor.azure.com/"
        );
        let args = LogAnalyticsArgs {
            stream: Some("Custom-Other".into()),
            ..Default::default()
        };
        let s = resolve(&args, &file, &mut out).unwrap().unwrap();
        assert_eq!(s.stream, "Custom-Other");
        // Nothing given: not configured, no problem.
        let none = resolve(&LogAnalyticsArgs::default(), &Default::default(), &mut out);
        assert!(matches!(none, Some(None)) && out.is_empty());
    }

    #[test]
    fn check_config_reads_the_table_with_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.toml");
        std::fs::write(
            &path,
            "[log_analytics]\nendpoint = \"https://dce-1.westeurope-1.ingest.monitor.azure.com\"\ndcr_id = \"aks-audit-rule\"\nstream = \"Custom-AksIdentityAudit\"\nbatch = 5\n",
        )
        .unwrap();
        let text = crate::config::check(&path).render();
        assert!(
            text.contains("log_analytics.dcr_id: `aks-audit-rule` is not a data collection rule's immutable id"),
            "{text}"
        );
        assert!(text.contains("(line 3)"), "{text}");
        assert!(text.contains("batch"), "unknown key reported: {text}");
    }

    #[test]
    fn typed_problems_name_the_setting() {
        let mut out = vec![];
        let args = LogAnalyticsArgs {
            endpoint: Some("https://dce-1.westeurope-1.ingest.monitor.azure.com".into()),
            dcr_id: Some("/subscriptions/x/resourceGroups/rg/providers/Microsoft.Insights/dataCollectionRules/aks".into()),
            stream: Some("AksIdentityAudit_CL".into()),
        };
        assert!(resolve(&args, &Default::default(), &mut out).is_none());
        let keys: Vec<&str> = out.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["--dcr-id", "--stream"]);
        assert!(out[0].reason.contains("immutable id"), "{out:?}");
        assert!(out[1].reason.contains("Custom-"), "{out:?}");
        // One name alone: the missing ones are named.
        let mut out = vec![];
        let args = LogAnalyticsArgs {
            dcr_id: Some(DCR.into()),
            ..Default::default()
        };
        assert!(resolve(&args, &Default::default(), &mut out).is_none());
        let keys: Vec<&str> = out.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["--log-analytics", "--stream"]);
        // Plain http off loopback, a path, and a bad retry count in the file.
        let mut out = vec![];
        let file: LogAnalyticsFile = toml::from_str(&format!(
            "endpoint = \"http://dce.example.com\"\ndcr_id = \"{DCR}\"\nstream = \"Custom-A\"\nretries = 11\n"
        ))
        .unwrap();
        assert!(resolve(&LogAnalyticsArgs::default(), &file, &mut out).is_none());
        let keys: Vec<&str> = out.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["log_analytics.endpoint", "log_analytics.retries"]);
        let mut out = vec![];
        let args = LogAnalyticsArgs {
            endpoint: Some("https://dce.example.com/dataCollectionRules/x".into()),
            dcr_id: Some(DCR.into()),
            stream: Some("Custom-A".into()),
        };
        assert!(resolve(&args, &Default::default(), &mut out).is_none());
        assert_eq!(out[0].key, "--log-analytics");
        assert!(check_dcr_id("dcr-0011223344556677889900aabbccddeeff").is_err());
        assert!(check_dcr_id("DCR-00112233445566778899aabbccddeeff").is_err());
        assert!(check_stream("Custom-").is_err());
        assert!(check_stream("Custom-a/b").is_err());
    }
}
