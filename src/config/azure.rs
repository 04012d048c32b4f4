//! The live source: flags (`--auth`, `--cloud`, `--subscription`, ...) and the
//! `[azure]` table, resolved into [`AzureSettings`]. Each flag's key is its name with
//! `_` for `-`, except `--subscription` (`subscriptions`) and `--management-group`
//! (`management_groups`); `concurrency` is a key only.
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;
use url::Url;

use super::problem::{in_range, pick, repeated, Names, Pick, Problem};
use crate::azure::{
    parse_endpoint, scope_of, AuthMode, AzureSettings, Cloud, Scope, CONCURRENCY,
    DEFAULT_CONCURRENCY, DEFAULT_MAX_ATTEMPTS, DEFAULT_REQUEST_TIMEOUT_SECS, MAX_ATTEMPTS,
    REQUEST_TIMEOUT_SECS,
};

/// Flags of the live source (flattened into `run`).
#[derive(Debug, Clone, Default, Args)]
pub struct AzureArgs {
    /// Credential: auto tries workload identity, managed identity, client secret, Azure CLI [default: auto].
    #[arg(long, value_enum, value_name = "MODE")]
    pub auth: Option<AuthMode>,
    /// Azure cloud, for default endpoints [default: public].
    #[arg(long, value_enum, value_name = "CLOUD")]
    pub cloud: Option<Cloud>,
    /// ARM / Resource Graph endpoint [default: per cloud].
    #[arg(long, value_name = "URL")]
    pub arm_endpoint: Option<String>,
    /// Entra ID authority host, https only [default: per cloud].
    #[arg(long, value_name = "URL", env = "AZURE_AUTHORITY_HOST")]
    pub authority_host: Option<String>,
    /// Microsoft Graph endpoint for --graph [default: per cloud].
    #[arg(long, value_name = "URL")]
    pub graph_endpoint: Option<String>,
    /// Extra trusted root certificate (PEM) for ARM, Graph, token endpoints and webhooks.
    #[arg(long, value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
    /// Audit this subscription (repeatable) [default: every visible subscription].
    #[arg(
        long = "subscription",
        value_name = "ID",
        conflicts_with = "management_groups"
    )]
    pub subscriptions: Vec<String>,
    /// Audit this management group (repeatable).
    #[arg(long = "management-group", value_name = "ID")]
    pub management_groups: Vec<String>,
    /// Tenant of the credential [default: AZURE_TENANT_ID].
    #[arg(long, value_name = "GUID")]
    pub tenant_id: Option<String>,
    /// Resolve service principals in Microsoft Graph and check secret expiry (AKSMI005).
    #[arg(long)]
    pub graph: bool,
    /// Also write what was collected as an inventory folder (replay with --inventory).
    #[arg(long, value_name = "DIR")]
    pub save_inventory: Option<PathBuf>,
    /// Per-request timeout in seconds [default: 60].
    #[arg(long, value_name = "SECONDS")]
    pub request_timeout: Option<u64>,
    /// Attempts per request before the scope becomes a gap [default: 6].
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
}

/// The `[azure]` table: the same keys as the flags.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureFile {
    pub auth: Option<AuthMode>,
    pub cloud: Option<Cloud>,
    pub arm_endpoint: Option<String>,
    pub authority_host: Option<String>,
    pub graph_endpoint: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub subscriptions: Option<Vec<String>>,
    pub management_groups: Option<Vec<String>>,
    pub tenant_id: Option<String>,
    pub graph: Option<bool>,
    pub save_inventory: Option<PathBuf>,
    pub request_timeout: Option<u64>,
    pub max_attempts: Option<u32>,
    /// Queries in flight at once (pacing is global regardless) [default: 4].
    pub concurrency: Option<usize>,
}

const ARM_ENDPOINT: Names = Names {
    flag: "--arm-endpoint",
    key: "azure.arm_endpoint",
};
const GRAPH_ENDPOINT: Names = Names {
    flag: "--graph-endpoint",
    key: "azure.graph_endpoint",
};
const AUTHORITY_HOST: Names = Names {
    flag: "--authority-host",
    key: "azure.authority_host",
};
const SUBSCRIPTIONS: Names = Names {
    flag: "--subscription",
    key: "azure.subscriptions",
};
const MANAGEMENT_GROUPS: Names = Names {
    flag: "--management-group",
    key: "azure.management_groups",
};
const MAX_ATTEMPTS_NAMES: Names = Names {
    flag: "--max-attempts",
    key: "azure.max_attempts",
};
const REQUEST_TIMEOUT: Names = Names {
    flag: "--request-timeout",
    key: "azure.request_timeout",
};
const CONCURRENCY_NAMES: Names = Names {
    flag: "",
    key: "azure.concurrency",
};

/// Flags over the file over defaults; every value given is checked, each problem
/// naming the flag or key it came from. `None` when there is a problem.
pub fn resolve(
    args: &AzureArgs,
    file: &AzureFile,
    out: &mut Vec<Problem>,
) -> Option<AzureSettings> {
    let before = out.len();
    let cloud = args.cloud.or(file.cloud).unwrap_or_default();
    let arm_endpoint = pick(
        out,
        ARM_ENDPOINT,
        args.arm_endpoint.as_deref(),
        file.arm_endpoint.as_deref(),
        parse_endpoint,
    );
    let graph_endpoint = pick(
        out,
        GRAPH_ENDPOINT,
        args.graph_endpoint.as_deref(),
        file.graph_endpoint.as_deref(),
        parse_endpoint,
    );
    let authority_host = pick(
        out,
        AUTHORITY_HOST,
        args.authority_host.as_deref(),
        file.authority_host.as_deref(),
        |a| {
            let u = Url::parse(a).map_err(|e| format!("`{a}` is not a URL ({e})"))?;
            if u.scheme() != "https" {
                return Err(format!(
                    "`{a}` must use https (azure_identity refuses anything else)"
                ));
            }
            Ok(a.to_string())
        },
    );
    let subscriptions = pick(
        out,
        SUBSCRIPTIONS,
        repeated(&args.subscriptions),
        file.subscriptions.clone(),
        |subs| match subs.iter().find(|s| !crate::inventory::ids::is_guid(s)) {
            Some(s) => Err(format!("`{s}` is not a subscription id (a GUID)")),
            None => Ok(subs),
        },
    );
    let management_groups = pick(
        out,
        MANAGEMENT_GROUPS,
        repeated(&args.management_groups),
        file.management_groups.clone(),
        Ok::<_, String>,
    );
    let scope = match (subscriptions, management_groups) {
        (Pick::Set(s, _), Pick::Set(_, via)) if !s.is_empty() => {
            out.push(Problem::new(
                via,
                "give subscriptions or management groups, not both",
            ));
            Scope::AllVisible
        }
        (Pick::Set(s, _), _) if !s.is_empty() => Scope::Subscriptions(s),
        (_, Pick::Set(m, _)) if !m.is_empty() => Scope::ManagementGroups(m),
        _ => Scope::AllVisible,
    };
    let max_attempts = pick(
        out,
        MAX_ATTEMPTS_NAMES,
        args.max_attempts,
        file.max_attempts,
        in_range(MAX_ATTEMPTS, ""),
    );
    let timeout = pick(
        out,
        REQUEST_TIMEOUT,
        args.request_timeout,
        file.request_timeout,
        in_range(REQUEST_TIMEOUT_SECS, " seconds"),
    );
    let concurrency = pick(
        out,
        CONCURRENCY_NAMES,
        None,
        file.concurrency,
        in_range(CONCURRENCY, ""),
    );
    if out.len() > before {
        return None;
    }
    Some(AzureSettings {
        auth: args.auth.or(file.auth).unwrap_or_default(),
        cloud,
        arm_endpoint: arm_endpoint
            .value()
            .unwrap_or_else(|| parse_endpoint(cloud.arm_endpoint()).expect("constant URL")),
        authority_host: authority_host.value(),
        graph_endpoint: graph_endpoint
            .value()
            .unwrap_or_else(|| parse_endpoint(cloud.graph_endpoint()).expect("constant URL")),
        arm_scope: scope_of(cloud.arm_endpoint()),
        graph_scope: scope_of(cloud.graph_endpoint()),
        ca_cert: args.ca_cert.clone().or_else(|| file.ca_cert.clone()),
        ca_pem: None,
        scope,
        tenant_id: args.tenant_id.clone().or_else(|| file.tenant_id.clone()),
        graph: args.graph || file.graph.unwrap_or(false),
        save_inventory: args
            .save_inventory
            .clone()
            .or_else(|| file.save_inventory.clone()),
        request_timeout: Duration::from_secs(timeout.or(DEFAULT_REQUEST_TIMEOUT_SECS)),
        max_attempts: max_attempts.or(DEFAULT_MAX_ATTEMPTS),
        concurrency: concurrency.or(DEFAULT_CONCURRENCY),
        explicit_secret: None,
    })
}

/// What a run finds out only when it connects (`check-config`): the CA file named in
/// the file holds a PEM certificate.
pub fn check_files(file: &AzureFile, out: &mut Vec<Problem>) {
    if let Some(p) = &file.ca_cert {
        match std::fs::read_to_string(p) {
            Ok(t) if t.contains("-----BEGIN CERTIFICATE-----") => {}
            Ok(_) => out.push(Problem::new(
                "azure.ca_cert",
                format!("{} holds no PEM certificate", p.display()),
            )),
            Err(e) => out.push(Problem::new(
                "azure.ca_cert",
                format!("{}: {e}", p.display()),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> AzureFile {
        toml::from_str(text).unwrap()
    }

    fn resolved(args: &AzureArgs, text: &str) -> Result<AzureSettings, Vec<Problem>> {
        let mut out = vec![];
        resolve(args, &file(text), &mut out).ok_or(out)
    }

    fn keys(args: &AzureArgs, text: &str) -> Vec<String> {
        resolved(args, text)
            .unwrap_err()
            .into_iter()
            .map(|p| p.key)
            .collect()
    }

    #[test]
    fn defaults_equal_the_settings_default() {
        let s = resolved(&AzureArgs::default(), "").unwrap();
        let d = AzureSettings::default();
        assert_eq!(format!("{s:?}"), format!("{d:?}"));
    }

    #[test]
    fn flags_over_file_over_defaults() {
        let args = AzureArgs {
            max_attempts: Some(2),
            subscriptions: vec!["6f1c3a52-8b0e-4d7a-9c11-2e5b7f8a9d01".into()],
            ..Default::default()
        };
        let s = resolved(
            &args,
            "cloud = \"usgov\"\nmax_attempts = 3\nconcurrency = 8\n",
        )
        .unwrap();
        assert_eq!(
            s.arm_endpoint.as_str(),
            "https://management.usgovcloudapi.net/"
        );
        assert_eq!(s.graph_endpoint.as_str(), "https://graph.microsoft.us/");
        assert_eq!(s.arm_scope, "https://management.usgovcloudapi.net/.default");
        assert_eq!((s.max_attempts, s.concurrency), (2, 8));
        assert!(matches!(s.scope, Scope::Subscriptions(ref v) if v.len() == 1));
        let s = resolved(
            &AzureArgs::default(),
            "auth = \"workload-identity\"\ncloud = \"china\"\nmanagement_groups = [\"mg\"]\n",
        )
        .unwrap();
        assert_eq!(s.auth, AuthMode::WorkloadIdentity);
        assert_eq!(s.scope, Scope::ManagementGroups(vec!["mg".into()]));
        // Plain http to loopback is allowed (a local test server).
        let args = AzureArgs {
            arm_endpoint: Some("http://127.0.0.1:8080".into()),
            ..Default::default()
        };
        assert!(resolved(&args, "").is_ok());
    }

    #[test]
    fn every_bad_value_names_its_flag_or_key() {
        let args = AzureArgs {
            arm_endpoint: Some("http://arm.example.com".into()),
            authority_host: Some("http://127.0.0.1:1".into()),
            subscriptions: vec!["prod".into()],
            max_attempts: Some(0),
            request_timeout: Some(u64::MAX),
            ..Default::default()
        };
        let p = resolved(&args, "").unwrap_err();
        let got: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            got,
            [
                "--arm-endpoint",
                "--authority-host",
                "--subscription",
                "--max-attempts",
                "--request-timeout"
            ]
        );
        assert!(p[0].reason.contains("refusing"), "{p:?}");
        assert!(p[1].reason.contains("https"), "{p:?}");
        assert!(p[2].reason.contains("GUID"), "{p:?}");
        assert_eq!(p[3].reason, "must be 1 to 20, got 0");
        assert_eq!(
            keys(
                &AzureArgs::default(),
                "graph_endpoint = \"ftp://x\"\nmax_attempts = 50\nrequest_timeout = 3601\nconcurrency = 99\n"
            ),
            [
                "azure.graph_endpoint",
                "azure.max_attempts",
                "azure.request_timeout",
                "azure.concurrency"
            ]
        );
        assert_eq!(
            keys(
                &AzureArgs::default(),
                "subscriptions = [\"6f1c3a52-8b0e-4d7a-9c11-2e5b7f8a9d01\"]\nmanagement_groups = [\"mg\"]\n"
            ),
            ["azure.management_groups"]
        );
    }

    #[test]
    fn the_ca_file_is_checked_by_check_config() {
        let mut out = vec![];
        check_files(&file("ca_cert = \"/nonexistent/ca.pem\""), &mut out);
        assert_eq!(out[0].key, "azure.ca_cert");
    }
}
