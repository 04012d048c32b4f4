//! Optional Microsoft Graph enrichment (`--graph`): each service-principal cluster's
//! application and when its nearest secret or certificate expires (rule AKSMI005).
use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use url::Url;

use super::arg::ArmClient;
use crate::inventory::{ids, Inventory, SpCredential};

#[derive(Debug, Deserialize)]
struct AppList {
    #[serde(default)]
    value: Vec<App>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct App {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    password_credentials: Vec<Cred>,
    #[serde(default)]
    key_credentials: Vec<Cred>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cred {
    #[serde(default)]
    end_date_time: Option<String>,
}

/// The service-principal client ids of clusters without a managed identity.
pub fn sp_client_ids(inv: &Inventory) -> BTreeSet<String> {
    inv.clusters
        .iter()
        .filter(|c| c.identity.is_none())
        .filter_map(|c| c.sp_client_id.as_deref())
        .filter(|id| !id.is_empty() && !id.eq_ignore_ascii_case("msi"))
        .map(str::to_string)
        .collect()
}

/// `GET {graph}/v1.0/applications?$filter=...`: by `appId` for a GUID, by
/// `identifierUris` for a legacy `http://` name.
pub fn lookup_url(graph: &Url, client_id: &str) -> Url {
    let mut u = graph
        .join("v1.0/applications")
        .expect("a fixed relative path joins");
    let filter = if ids::is_guid(client_id) {
        format!("appId eq '{}'", client_id.replace('\'', "''"))
    } else {
        format!(
            "identifierUris/any(x:x eq '{}')",
            client_id.replace('\'', "''")
        )
    };
    u.query_pairs_mut()
        .append_pair("$filter", &filter)
        .append_pair(
            "$select",
            "appId,displayName,passwordCredentials,keyCredentials",
        );
    u
}

/// The expiry that matters: the earliest one still ahead; when all have passed, the
/// latest (how long the application has been without a valid credential).
pub fn nearest_expiry(ends: &[DateTime<Utc>], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    ends.iter()
        .filter(|e| **e > now)
        .min()
        .or_else(|| ends.iter().max())
        .copied()
}

fn parse_app(
    client_id: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<SpCredential>, String> {
    let list: AppList =
        serde_json::from_slice(body).map_err(|e| format!("not a Graph application list: {e}"))?;
    let Some(app) = list.value.into_iter().next() else {
        return Ok(None);
    };
    let ends: Vec<DateTime<Utc>> = app
        .password_credentials
        .iter()
        .chain(&app.key_credentials)
        .filter_map(|c| c.end_date_time.as_deref())
        .filter_map(crate::inventory::json::parse_time)
        .collect();
    Ok(Some(SpCredential {
        client_id: client_id.to_string(),
        app_display_name: app.display_name.unwrap_or_default(),
        nearest_expiry: nearest_expiry(&ends, now),
    }))
}

/// Resolves every service-principal cluster's application, and those of `also` (the
/// service principals migrated clusters left). Without Graph permission (403) it
/// warns once and returns what it has.
pub async fn enrich(
    client: &ArmClient,
    graph: &Url,
    scope: &str,
    inv: &Inventory,
    also: &[String],
    now: DateTime<Utc>,
) -> Vec<SpCredential> {
    let mut out = Vec::new();
    let mut ids = sp_client_ids(inv);
    ids.extend(also.iter().cloned());
    for id in ids {
        match client
            .call(
                "graph",
                Method::GET,
                &lookup_url(graph, &id),
                scope,
                None,
                false,
            )
            .await
        {
            Ok(body) => match parse_app(&id, &body, now) {
                Ok(Some(c)) => out.push(c),
                Ok(None) => {
                    tracing::info!(client_id = %id, "no application found in Microsoft Graph")
                }
                Err(e) => {
                    tracing::warn!(client_id = %id, error = %e, "unreadable Microsoft Graph reply")
                }
            },
            Err(e) if e.status == Some(403) => {
                tracing::warn!(reason = %e.reason, "no permission to read applications in Microsoft Graph (Application.Read.All); secret expiry (AKSMI005) not checked");
                return out;
            }
            Err(e) => tracing::warn!(client_id = %id, error = %e, "Microsoft Graph lookup failed"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn filters_by_app_id_or_identifier_uri() {
        let g = Url::parse("https://graph.microsoft.com").unwrap();
        let u = lookup_url(&g, "2c4e6a8b-0d2f-4b4d-8f6a-8c0e2a4c6e8a");
        let q: Vec<(String, String)> = u.query_pairs().into_owned().collect();
        assert_eq!(u.path(), "/v1.0/applications");
        assert_eq!(
            q[0],
            (
                "$filter".into(),
                "appId eq '2c4e6a8b-0d2f-4b4d-8f6a-8c0e2a4c6e8a'".into()
            )
        );
        let u = lookup_url(&g, "http://legacy-sp");
        let q: Vec<(String, String)> = u.query_pairs().into_owned().collect();
        assert_eq!(q[0].1, "identifierUris/any(x:x eq 'http://legacy-sp')");
    }

    #[test]
    fn nearest_expiry_prefers_the_next_one_ahead() {
        let now = Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap();
        let d = |m, day| Utc.with_ymd_and_hms(2025, m, day, 0, 0, 0).unwrap();
        assert_eq!(
            nearest_expiry(&[d(1, 1), d(7, 1), d(9, 1)], now),
            Some(d(7, 1))
        );
        assert_eq!(nearest_expiry(&[d(1, 1), d(3, 1)], now), Some(d(3, 1)));
        assert_eq!(nearest_expiry(&[], now), None);
    }

    #[test]
    fn parses_graph_application() {
        let now = Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap();
        let body = br#"{"value":[{"appId":"a","displayName":"aks-sp","passwordCredentials":[{"endDateTime":"2025-06-21T00:00:00Z"}],"keyCredentials":[{"endDateTime":"2026-01-01T00:00:00Z"}]}]}"#;
        let c = parse_app("a", body, now).unwrap().unwrap();
        assert_eq!(c.app_display_name, "aks-sp");
        assert_eq!(
            c.nearest_expiry,
            Some(Utc.with_ymd_and_hms(2025, 6, 21, 0, 0, 0).unwrap())
        );
        assert_eq!(parse_app("a", br#"{"value":[]}"#, now).unwrap(), None);
        assert!(parse_app("a", b"nope", now).is_err());
    }
}
