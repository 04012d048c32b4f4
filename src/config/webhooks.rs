//! Teams / Slack digests: flags `--webhook URL` (repeatable; also env
//! `AKS_AUDIT_WEBHOOKS`, space-separated, e.g. from a Kubernetes Secret),
//! `--webhook-format`, `--report-url`, and the `[webhooks]` table (`urls`, `format`,
//! `report_url`, `timeout_seconds`, `retries`). A webhook URL is a secret: problems
//! name its host, never the URL.
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use super::problem::{in_range, pick, repeated, Names, Problem};
use crate::webhook::{Format, Hook, WebhookSettings};

#[derive(Debug, Clone, Default, Args)]
pub struct WebhooksArgs {
    /// Post one digest per run to this Teams or Slack webhook (repeatable; a secret: never
    /// printed) [env: AKS_AUDIT_WEBHOOKS, space-separated; config: webhooks.urls].
    #[arg(
        long = "webhook",
        value_name = "URL",
        env = "AKS_AUDIT_WEBHOOKS",
        value_delimiter = ' ',
        hide_env_values = true
    )]
    pub webhooks: Vec<String>,
    /// Digest format for every --webhook: teams (Adaptive Card) or slack (Block Kit)
    /// [default: from each URL's host; config: webhooks.format].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub webhook_format: Option<Format>,
    /// Base URL where output folders are served: digests link to <URL>/<run folder>/report.html
    /// [config: webhooks.report_url].
    #[arg(long, value_name = "URL")]
    pub report_url: Option<String>,
}

/// The `[webhooks]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksFile {
    pub urls: Option<Vec<String>>,
    pub format: Option<Format>,
    pub report_url: Option<String>,
    /// Per-request timeout [default: 30].
    pub timeout_seconds: Option<u64>,
    /// Retries after a 429 or 5xx [default: 3].
    pub retries: Option<u32>,
}

const URLS: Names = Names {
    flag: "--webhook",
    key: "webhooks.urls",
};
const FORMAT: Names = Names {
    flag: "--webhook-format",
    key: "webhooks.format",
};
const REPORT_URL: Names = Names {
    flag: "--report-url",
    key: "webhooks.report_url",
};
const TIMEOUT: Names = Names {
    flag: "",
    key: "webhooks.timeout_seconds",
};
const RETRIES: Names = Names {
    flag: "",
    key: "webhooks.retries",
};

/// Flags over the file; each bad value a problem naming its flag or key (and a
/// webhook's host, never its URL).
pub fn resolve(
    args: &WebhooksArgs,
    file: &WebhooksFile,
    out: &mut Vec<Problem>,
) -> Option<WebhookSettings> {
    let before = out.len();
    let format = pick(
        out,
        FORMAT,
        args.webhook_format,
        file.format,
        Ok::<Format, String>,
    )
    .value();
    let hooks = pick(
        out,
        URLS,
        repeated(&args.webhooks)
            .map(|v| {
                v.into_iter()
                    .filter(|u| !u.trim().is_empty())
                    .collect::<Vec<_>>()
            })
            // An empty AKS_AUDIT_WEBHOOKS is no flag: the file's URLs apply.
            .filter(|v| !v.is_empty()),
        file.urls.clone(),
        |urls: Vec<String>| {
            urls.iter()
                .enumerate()
                .map(|(i, u)| Hook::parse(u, format).map_err(|e| format!("webhook {}: {e}", i + 1)))
                .collect::<Result<Vec<Hook>, String>>()
        },
    );
    let report_url = pick(
        out,
        REPORT_URL,
        args.report_url.as_deref(),
        file.report_url.as_deref(),
        |u| {
            let url = url::Url::parse(u).map_err(|e| format!("`{u}` is not a URL ({e})"))?;
            if !matches!(url.scheme(), "https" | "http") {
                return Err(format!("`{u}` must be an http(s) URL"));
            }
            Ok(url)
        },
    );
    let timeout = pick(
        out,
        TIMEOUT,
        None,
        file.timeout_seconds,
        in_range(1..=600, " seconds"),
    );
    let retries = pick(out, RETRIES, None, file.retries, in_range(0..=10, ""));
    if out.len() > before {
        return None;
    }
    Some(WebhookSettings {
        hooks: hooks.value().unwrap_or_default(),
        report_url: report_url.value(),
        timeout: Duration::from_secs(timeout.or(30)),
        retries: retries.or(3),
        backoff: Duration::from_secs(1),
        // The run's `--ca-cert` (`config::settings`).
        ca_cert: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_environment_value_leaves_the_files_urls() {
        let file: WebhooksFile =
            toml::from_str("urls = [\"https://hooks.slack.com/services/T/B/SECRET-E\"]\n").unwrap();
        let args = WebhooksArgs {
            webhooks: vec!["".into()],
            ..Default::default()
        };
        let mut out = vec![];
        let s = resolve(&args, &file, &mut out).unwrap();
        assert_eq!(s.hooks.len(), 1);
    }

    #[test]
    fn urls_formats_and_problems_that_never_show_a_url() {
        let file: WebhooksFile = toml::from_str(
            "urls = [\"https://contoso.webhook.office.com/webhookb2/SECRET-A\"]\nreport_url = \"https://reports.contoso.com/aks/\"\nretries = 1\n",
        )
        .unwrap();
        let mut out = vec![];
        let s = resolve(&WebhooksArgs::default(), &file, &mut out).unwrap();
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(s.hooks.len(), 1);
        assert_eq!(s.hooks[0].format, Format::Teams);
        assert_eq!(s.retries, 1);
        // Flags win; one format for all.
        let args = WebhooksArgs {
            webhooks: vec!["https://hooks.example.com/x/SECRET-B".into()],
            webhook_format: Some(Format::Slack),
            ..Default::default()
        };
        let s = resolve(&args, &file, &mut out).unwrap();
        assert_eq!(s.hooks[0].format, Format::Slack);
        assert_eq!(s.hooks[0].host(), "https://hooks.example.com");
        // An unknown host without a format, and plain http: problems naming the host only.
        let args = WebhooksArgs {
            webhooks: vec!["https://hooks.example.com/x/SECRET-C".into()],
            ..Default::default()
        };
        let file: WebhooksFile = toml::from_str(
            "urls = [\"http://hooks.slack.com/services/SECRET-D\"]\ntimeout_seconds = 0\n",
        )
        .unwrap();
        let mut out = vec![];
        assert!(resolve(&args, &file, &mut out).is_none());
        let keys: Vec<&str> = out.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["webhooks.urls", "--webhook", "webhooks.timeout_seconds"]
        );
        let text = format!("{out:?}");
        assert!(!text.contains("SECRET"), "{text}");
        assert!(
            text.contains("hooks.example.com") && text.contains("--webhook-format"),
            "{text}"
        );
    }
}
