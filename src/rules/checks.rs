//! Identity-mode checks: service principals, migration state, inconsistencies,
//! tenants, regions, add-ons without identity, pod identity.
use super::baseline::Baseline;
use super::classify::{self, KubeletIdentity};
use super::index::Index;
use super::remedy;
use super::{ClusterCtx, Finding, RuleId};
use crate::inventory::IdentityType;

/// A finding with the catalogue's severity.
pub fn new_finding(
    ctx: &ClusterCtx,
    rule: RuleId,
    identity: &str,
    subject: &str,
    message: String,
    remediation: String,
) -> Finding {
    let c = ctx.cluster;
    Finding {
        cluster_id: c.id.clone(),
        cluster_name: c.name.clone(),
        subscription_id: c.subscription_id.clone(),
        rule_id: rule,
        severity: rule.info().severity,
        identity: identity.to_string(),
        message,
        remediation,
        subject: subject.to_string(),
        suppressed: None,
    }
}

/// Service-principal credentials by lower-cased client id, built once per report.
pub fn sp_credential_index(
    creds: &[crate::inventory::SpCredential],
) -> std::collections::HashMap<String, &crate::inventory::SpCredential> {
    creds
        .iter()
        .map(|c| (c.client_id.to_ascii_lowercase(), c))
        .collect()
}

/// AKSMI005: the control plane's service principal credential has expired (critical)
/// or expires within 30 days (high). Only with Graph data (`--graph`).
pub fn secret_expiry_findings(
    ctx: &ClusterCtx,
    creds: &std::collections::HashMap<String, &crate::inventory::SpCredential>,
) -> Vec<Finding> {
    let c = ctx.cluster;
    if classify::is_managed(c) {
        // A migrated cluster whose kubelet still uses the old service principal.
        return super::migration::old_sp_secret_findings(ctx, creds);
    }
    let Some(sp) = c
        .sp_client_id
        .as_deref()
        .filter(|s| !s.is_empty() && !classify::is_msi(Some(s)))
    else {
        return vec![];
    };
    let Some(cred) = creds.get(&sp.to_ascii_lowercase()) else {
        return vec![];
    };
    let Some(expiry) = cred.nearest_expiry else {
        return vec![];
    };
    let days = (expiry - ctx.now).num_days();
    let (severity, message) = if expiry <= ctx.now {
        (crate::rules::Severity::Critical, format!("the credential of service principal `{sp}` ({}) expired {} days ago ({}); the cluster can no longer authenticate to Azure", cred.app_display_name, -days, expiry.format("%Y-%m-%d")))
    } else if days <= 30 {
        (
            crate::rules::Severity::High,
            format!(
                "the credential of service principal `{sp}` ({}) expires in {days} days ({})",
                cred.app_display_name,
                expiry.format("%Y-%m-%d")
            ),
        )
    } else {
        return vec![];
    };
    let fix = format!(
        "{}\n{}",
        remedy::renew_sp_credential(c, sp),
        remedy::enable_managed_identity(c)
    );
    let mut f = new_finding(ctx, RuleId::SecretExpiry, "control_plane", "", message, fix);
    f.severity = severity;
    vec![f]
}

const CP_UNSUPPORTED: &[&str] = &["usdodcentral", "usdodeast", "usgoviowa"];
const KUBELET_UNSUPPORTED: &[&str] = &["chinaeast", "chinanorth"];

pub fn identity_findings(ctx: &ClusterCtx, idx: &Index) -> Vec<Finding> {
    let c = ctx.cluster;
    let mut out = Vec::new();
    let managed = classify::is_managed(c);
    let msi = classify::is_msi(c.sp_client_id.as_deref());
    let kubelet = classify::kubelet_identity(c);

    // AKSMI001 / AKSMI004: the control plane.
    if !managed && msi {
        out.push(new_finding(ctx, RuleId::InconsistentIdentity, "control_plane", "clientId-msi-without-identity",
            format!("`servicePrincipalProfile.clientId` is `msi` but the cluster has no managed identity block ({}); the identity state is half-updated", c.name),
            remedy::show_identity(c)));
    } else if !managed {
        let sp = c.sp_client_id.as_deref().unwrap_or("unknown");
        let mut fix = vec![remedy::enable_managed_identity(c)];
        fix.extend(c.pools.iter().map(|p| remedy::reimage_pool(c, &p.name)));
        out.push(new_finding(ctx, RuleId::ServicePrincipal, "control_plane", "",
            format!("control plane uses service principal `{sp}`; its secret must be rotated by hand and the cluster breaks when it expires"),
            fix.join("\n")));
    }
    if managed && c.sp_client_id.as_deref().is_some_and(|id| !id.is_empty()) && !msi {
        out.push(new_finding(
            ctx,
            RuleId::InconsistentIdentity,
            "control_plane",
            "identity-with-sp-client-id",
            format!(
                "`identity` is set but `servicePrincipalProfile.clientId` is `{}`, not `msi`",
                c.sp_client_id.as_deref().unwrap_or_default()
            ),
            remedy::show_identity(c),
        ));
    }
    if managed
        && kubelet == KubeletIdentity::Missing
        && c.provisioning_state
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("Succeeded"))
    {
        out.push(new_finding(ctx, RuleId::InconsistentIdentity, "kubelet", "mi-without-kubelet",
            "managed-identity cluster in state Succeeded has no kubelet identity (`identityProfile.kubeletidentity`)".into(),
            remedy::show_identity(c)));
    }
    let cp_kind = c.identity.as_ref().map(|i| i.kind);
    if kubelet == KubeletIdentity::UserAssigned && cp_kind == Some(IdentityType::SystemAssigned) {
        out.push(new_finding(ctx, RuleId::InconsistentIdentity, "kubelet", "own-kubelet-with-system-assigned",
            "cluster brings its own kubelet identity but its control plane is system-assigned; a pre-created kubelet identity requires a user-assigned control plane".into(),
            remedy::show_identity(c)));
    }

    // AKSMI002 / AKSMI003: the kubelet trap (decision table in `migration`).
    out.extend(super::migration::findings(ctx));

    // AKSMI030: tenant. The subscription's home tenant, not the tenant `az account
    // list` signed in to (a managing tenant through Azure Lighthouse).
    if let (Some(itenant), Some(sub)) = (
        c.identity.as_ref().and_then(|i| i.tenant_id.as_deref()),
        idx.subscription(&c.subscription_id),
    ) {
        if let Some(stenant) = sub.home_tenant() {
            if !itenant.eq_ignore_ascii_case(stenant) {
                out.push(new_finding(ctx, RuleId::TenantMismatch, "control_plane", "",
                    format!("managed identity tenant `{itenant}` differs from the subscription's home tenant `{stenant}`: managed-identity clusters cannot move tenants"),
                    remedy::show_identity(c)));
            }
        }
    }

    // AKSMI031: regions.
    let loc = classify::norm_location(&c.location);
    if cp_kind == Some(IdentityType::UserAssigned) && CP_UNSUPPORTED.contains(&loc.as_str()) {
        out.push(new_finding(
            ctx,
            RuleId::UnsupportedRegion,
            "control_plane",
            "",
            format!(
                "own control-plane managed identity is not supported in {}",
                c.location
            ),
            remedy::enable_managed_identity(c),
        ));
    }
    if kubelet == KubeletIdentity::UserAssigned && KUBELET_UNSUPPORTED.contains(&loc.as_str()) {
        out.push(new_finding(
            ctx,
            RuleId::UnsupportedRegion,
            "kubelet",
            "",
            format!(
                "own kubelet managed identity is not supported in {}",
                c.location
            ),
            remedy::show_identity(c),
        ));
    }

    // AKSMI040 / AKSMI041: pod identity.
    if let Some(pi) = c.pod_identity.as_ref().filter(|p| p.enabled) {
        out.push(new_finding(ctx, RuleId::PodIdentity, "control_plane", "",
            "pod identity (preview) is enabled: it is deprecated, move to Microsoft Entra Workload ID".into(),
            remedy::move_to_workload_identity(c)));
        let has_exception = pi.exceptions.iter().any(|e| {
            e.namespace.eq_ignore_ascii_case("kube-system")
                && e.pod_labels.iter().any(|(k, v)| {
                    k.eq_ignore_ascii_case("kubernetes.azure.com/managedby")
                        && v.eq_ignore_ascii_case("aks")
                })
        });
        if !has_exception {
            out.push(new_finding(ctx, RuleId::PodIdentityException, "control_plane", "",
                "pod identity is enabled without an exception for kube-system pods labelled kubernetes.azure.com/managedby: aks; AKS add-ons can fail".into(),
                remedy::pod_identity_exception(c)));
        }
    }
    out
}

/// AKSMI013 and AKSMI090: add-ons against the baseline.
pub fn addon_findings(ctx: &ClusterCtx, idx: &Index, baseline: &Baseline) -> Vec<Finding> {
    let c = ctx.cluster;
    let mut out = Vec::new();
    for a in c.addons.iter().filter(|a| a.enabled) {
        let key = format!("addon:{}", a.key);
        let known = baseline.addon_needs_identity(&a.key);
        if known && classify::is_managed(c) && a.identity.is_none() {
            out.push(new_finding(
                ctx,
                RuleId::AddonWithoutIdentity,
                &key,
                "",
                format!("add-on `{}` is enabled but has no identity", a.key),
                remedy::reenable_addon(c, &a.key),
            ));
        }
        let documented_none = baseline
            .no_identity_addons
            .iter()
            .any(|k| k.eq_ignore_ascii_case(&a.key));
        if !known && !documented_none {
            if let Some(principal) = a.identity.as_ref().and_then(|i| i.object_id.as_deref()) {
                let roles: Vec<String> = idx
                    .assignments(principal)
                    .iter()
                    .map(|r| {
                        format!(
                            "{} at {}",
                            super::baseline::role_display(&r.role_guid, r.role_name.as_deref()),
                            r.scope
                        )
                    })
                    .collect();
                let held = if roles.is_empty() {
                    "no roles".to_string()
                } else {
                    roles.join("; ")
                };
                out.push(new_finding(ctx, RuleId::UnknownAddon, &key, "",
                    format!("add-on `{}` has an identity the baseline `{}` documents no roles for; it holds {held}", a.key, baseline.name),
                    format!("az role assignment list --assignee {} --all -o table", remedy::q(principal))));
            }
        }
    }
    out
}
