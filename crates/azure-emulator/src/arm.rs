//! ARM: `GET /subscriptions` (with `nextLink` paging), `GET /subscriptions/{s}`, and
//! agent-pool `upgradeProfiles/default`.
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use serde_json::{json, Value};

use super::server::{arm_error, json_reply, Req, State};
use super::tenant::SubscriptionInfo;
use super::token::{arm_unauthorized, check_bearer};

fn subscription_json(s: &SubscriptionInfo) -> Value {
    json!({
        "id": format!("/subscriptions/{}", s.subscription_id),
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": s.subscription_id,
        "tenantId": s.tenant_id,
        "displayName": s.display_name,
        "state": s.state,
        "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "EnterpriseAgreement_2014-09-01", "spendingLimit": "Off"},
        "tags": s.tags,
    })
}

fn need_api_version(req: &Req) -> Option<Response> {
    match req.query_param("api-version") {
        Some(v) if !v.is_empty() => None,
        _ => Some(arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )),
    }
}

fn forbidden(
    state: &State,
    client: &str,
    sub: &str,
    action: &str,
    scope: &str,
) -> Option<Response> {
    state.faults.is_forbidden(sub).then(|| {
        arm_error(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            &format!("The client '{client}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials."),
        )
    })
}

/// `GET /subscriptions?api-version=...[&$skiptoken=...]`.
pub(crate) fn list_subscriptions(state: &State, req: &Req) -> Response {
    if let Some(r) = need_api_version(req) {
        return r;
    }
    if let Err(e) = check_bearer(state, req) {
        return arm_unauthorized(e);
    }
    let all = state.tenant.subscriptions();
    let start = req
        .query_param("$skiptoken")
        .and_then(|t| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t)
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0)
        .min(all.len());
    let end = (start + state.subs_page).min(all.len());
    let value: Vec<Value> = all[start..end].iter().map(subscription_json).collect();
    let mut body = json!({"value": value});
    if end < all.len() {
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(end.to_string());
        let api = req.query_param("api-version").unwrap_or_default();
        body["nextLink"] = json!(format!(
            "{}/subscriptions?api-version={api}&%24skiptoken={token}",
            req.base_url()
        ));
    }
    json_reply(StatusCode::OK, &body, &[])
}

/// `GET /subscriptions/{s}?api-version=...`.
pub(crate) fn get_subscription(state: &State, req: &Req) -> Response {
    if let Some(r) = need_api_version(req) {
        return r;
    }
    let client = match check_bearer(state, req) {
        Ok(c) => c,
        Err(e) => return arm_unauthorized(e),
    };
    let sub = req.segs.get(1).cloned().unwrap_or_default();
    if let Some(r) = forbidden(
        state,
        &client,
        &sub,
        "Microsoft.Resources/subscriptions/read",
        &format!("/subscriptions/{sub}"),
    ) {
        return r;
    }
    match state
        .tenant
        .subscriptions()
        .iter()
        .find(|s| s.subscription_id == sub)
    {
        Some(s) => json_reply(StatusCode::OK, &subscription_json(s), &[]),
        None => arm_error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            &format!("The subscription '{sub}' could not be found."),
        ),
    }
}

/// AKS RP errors are not wrapped in `error`.
fn aks_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_reply(status, &json!({"code": code, "message": message}), &[])
}

/// `GET .../managedClusters/{c}/agentPools/{p}/upgradeProfiles/default`.
pub(crate) fn upgrade_profile(state: &State, req: &Req) -> Response {
    if let Some(r) = need_api_version(req) {
        return r;
    }
    let client = match check_bearer(state, req) {
        Ok(c) => c,
        Err(e) => return arm_unauthorized(e),
    };
    // Original casing of the path for ids in the reply.
    let parts: Vec<&str> = req
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (Some(sub), Some(rg), Some(cluster), Some(pool)) =
        (parts.get(1), parts.get(3), parts.get(7), parts.get(9))
    else {
        return arm_error(StatusCode::NOT_FOUND, "NotFound", "bad path");
    };
    let cluster_id = format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{cluster}"
    );
    if let Some(r) = forbidden(
        state,
        &client,
        sub,
        "Microsoft.ContainerService/managedClusters/agentPools/upgradeProfiles/read",
        &cluster_id,
    ) {
        return r;
    }
    let row: Option<Value> = state
        .tenant
        .cluster(&cluster_id)
        .and_then(|r| serde_json::from_str(&r.json).ok());
    let Some(row) = row else {
        return arm_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            &format!("The Resource 'Microsoft.ContainerService/managedClusters/{cluster}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"),
        );
    };
    let found = row
        .pointer("/properties/agentPoolProfiles")
        .and_then(Value::as_array)
        .and_then(|pools| {
            pools.iter().find(|p| {
                p.get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(pool))
            })
        })
        .cloned();
    let Some(p) = found else {
        return aks_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("Could not find agent pool '{pool}' in managed cluster '{cluster}' in resource group '{rg}'."),
        );
    };
    let s = |k: &str| {
        p.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let current = s("nodeImageVersion");
    let k8s = if s("currentOrchestratorVersion").is_empty() {
        s("orchestratorVersion")
    } else {
        s("currentOrchestratorVersion")
    };
    json_reply(
        StatusCode::OK,
        &json!({
            "id": format!("/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{cluster}/agentPools/{pool}/upgradeprofiles/default"),
            "name": "default",
            "type": "Microsoft.ContainerService/managedClusters/agentPools/upgradeProfiles",
            "properties": {
                "kubernetesVersion": k8s,
                "osType": if s("osType").is_empty() { "Linux".to_string() } else { s("osType") },
                "upgrades": [],
                "latestNodeImageVersion": state.tenant.latest_node_image(&current),
            }
        }),
        &[],
    )
}
