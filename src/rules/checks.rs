//! Identity-mode checks: service principals, migration state, inconsistencies,
//! tenants, regions, add-ons without identity, pod identity.
use super::baseline::Baseline;
use super::classify::{self, KubeletIdentity};
use super::index::Index;
use super::remedy;
use super::{ClusterCtx, Finding, IdentityKey, RuleId};
use crate::inventory::{Addon, IdentityType};

/// A finding with the catalogue's severity.
pub fn new_finding(
    ctx: &ClusterCtx,
    rule: RuleId,
    identity: IdentityKey,
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
        identity,
        message,
        remediation,
        subject: subject.to_string(),
        suppressed: None,
        first_seen: None,
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

/// AKSMI005's verdict on a credential's nearest expiry: critical with "expired N days
/// ago (date)" (or "expired today"), high with "expires in N days (date)" within 30
/// days, nothing later.
pub(super) fn credential_expiry(
    expiry: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<(crate::rules::Severity, String)> {
    let days = (expiry - now).num_days();
    let date = expiry.format("%Y-%m-%d");
    if expiry <= now {
        let ago = match -days {
            0 => "expired today".to_string(),
            1 => "expired 1 day ago".to_string(),
            n => format!("expired {n} days ago"),
        };
        Some((crate::rules::Severity::Critical, format!("{ago} ({date})")))
    } else if days <= 30 {
        let left = match days {
            0 => "expires today".to_string(),
            1 => "expires in 1 day".to_string(),
            n => format!("expires in {n} days"),
        };
        Some((crate::rules::Severity::High, format!("{left} ({date})")))
    } else {
        None
    }
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
    let Some((severity, when)) = credential_expiry(expiry, ctx.now) else {
        return vec![];
    };
    let name = &cred.app_display_name;
    let message = if severity == crate::rules::Severity::Critical {
        format!("the credential of service principal `{sp}` ({name}) {when}; the cluster can no longer authenticate to Azure")
    } else {
        format!("the credential of service principal `{sp}` ({name}) {when}")
    };
    let fix = format!(
        "{}\n{}",
        remedy::renew_sp_credential(c, sp),
        remedy::enable_managed_identity(c)
    );
    let mut f = new_finding(
        ctx,
        RuleId::SecretExpiry,
        IdentityKey::ControlPlane,
        "",
        message,
        fix,
    );
    f.severity = severity;
    vec![f]
}

const CP_UNSUPPORTED: &[&str] = &["usdodcentral", "usdodeast", "usgoviowa"];
const KUBELET_UNSUPPORTED: &[&str] = &["chinaeast", "chinanorth"];

/// The identity-mode rules (AKSMI001–004, 030, 031, 040, 041), in report order.
pub fn identity_findings(ctx: &ClusterCtx, idx: &Index) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(control_plane_mode(ctx));
    out.extend(sp_client_id_with_identity(ctx));
    out.extend(managed_without_kubelet(ctx));
    out.extend(own_kubelet_with_system_assigned(ctx));
    out.extend(super::situational::system_assigned_with_feature(ctx));
    out.extend(kubelet_migration(ctx));
    out.extend(tenant_mismatch(ctx, idx));
    out.extend(unsupported_regions(ctx));
    out.extend(pod_identity(ctx));
    out.extend(retired_features(ctx));
    out
}

/// HTTP application routing: retired on this day.
const HTTP_APP_ROUTING_RETIRED: (i32, u32, u32) = (2025, 3, 3);
/// The pod identity managed add-on: supported through September 2025.
const POD_IDENTITY_SUPPORT_ENDED: (i32, u32, u32) = (2025, 9, 30);
/// Container Insights' legacy (Monitoring Metrics Publisher) authentication retires.
const CI_LEGACY_AUTH_RETIRES: (i32, u32, u32) = (2026, 9, 30);

/// AKSMI050: a retired or retiring feature, with its date: medium from the date on,
/// low before it.
fn retired_features(ctx: &ClusterCtx) -> Vec<Finding> {
    let c = ctx.cluster;
    let mut out = Vec::new();
    let dated = |(y, m, d): (i32, u32, u32)| {
        let day = chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
        let past = ctx.now.date_naive() >= day;
        (day.format("%Y-%m-%d").to_string(), past)
    };
    if c.pod_identity.as_ref().is_some_and(|p| p.enabled) {
        // use-azure-ad-pod-identity.md (ccbb339b) L29: "AKS Pod Identity Managed
        // add-on is patched and supported through September 2025".
        let (day, past) = dated(POD_IDENTITY_SUPPORT_ENDED);
        let when = if past { "ended on" } else { "ends on" };
        let mut f = new_finding(
            ctx,
            RuleId::RetiredFeature,
            IdentityKey::ControlPlane,
            "podIdentityProfile",
            format!("the pod identity managed add-on's support {when} {day}; move to Microsoft Entra Workload ID"),
            remedy::move_to_workload_identity(c),
        );
        if !past {
            f.severity = super::Severity::Low;
        }
        out.push(f);
    }
    for a in c.addons.iter().filter(|a| a.enabled) {
        let key = a.key.to_ascii_lowercase();
        let (what, (day, past), fix) = if key == "httpapplicationrouting" {
            (
                "HTTP application routing",
                dated(HTTP_APP_ROUTING_RETIRED),
                remedy::leave_http_application_routing(c),
            )
        } else if key == "omsagent"
            && !a.config.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("useAADAuth") && v.eq_ignore_ascii_case("true")
            })
        {
            (
                "Container Insights with legacy authentication (Monitoring Metrics Publisher)",
                dated(CI_LEGACY_AUTH_RETIRES),
                remedy::monitoring_msi_auth(c),
            )
        } else {
            continue;
        };
        let when = if past { "was retired on" } else { "retires on" };
        let mut f = new_finding(
            ctx,
            RuleId::RetiredFeature,
            IdentityKey::Addon(a.key.clone()),
            &a.key,
            format!("{what} {when} {day}"),
            fix,
        );
        if !past {
            f.severity = super::Severity::Low;
        }
        out.push(f);
    }
    out
}

/// AKSMI001: the control plane runs on a service principal; AKSMI004 instead when
/// its client id says `msi` though there is no managed identity.
fn control_plane_mode(ctx: &ClusterCtx) -> Option<Finding> {
    let c = ctx.cluster;
    if classify::is_managed(c) {
        return None;
    }
    if classify::is_msi(c.sp_client_id.as_deref()) {
        return Some(new_finding(ctx, RuleId::InconsistentIdentity, IdentityKey::ControlPlane, "clientId-msi-without-identity",
            format!("`servicePrincipalProfile.clientId` is `msi` but the cluster has no managed identity block ({}); the identity state is half-updated", c.name),
            remedy::show_identity(c)));
    }
    let sp = c.sp_client_id.as_deref().unwrap_or("unknown");
    let mut fix = vec![remedy::enable_managed_identity(c)];
    fix.extend(c.pools.iter().map(|p| remedy::reimage_pool(c, &p.name)));
    Some(new_finding(ctx, RuleId::ServicePrincipal, IdentityKey::ControlPlane, "",
        format!("control plane uses service principal `{sp}`; its secret must be rotated by hand and the cluster breaks when it expires"),
        fix.join("\n")))
}

/// AKSMI004: a managed identity, yet a service principal's client id.
fn sp_client_id_with_identity(ctx: &ClusterCtx) -> Option<Finding> {
    let c = ctx.cluster;
    let sp = c.sp_client_id.as_deref().filter(|id| !id.is_empty())?;
    if !classify::is_managed(c) || classify::is_msi(Some(sp)) {
        return None;
    }
    Some(new_finding(
        ctx,
        RuleId::InconsistentIdentity,
        IdentityKey::ControlPlane,
        "identity-with-sp-client-id",
        format!("`identity` is set but `servicePrincipalProfile.clientId` is `{sp}`, not `msi`"),
        remedy::show_identity(c),
    ))
}

/// AKSMI004: a managed-identity cluster done updating, without a kubelet identity.
fn managed_without_kubelet(ctx: &ClusterCtx) -> Option<Finding> {
    let c = ctx.cluster;
    let succeeded = c
        .provisioning_state
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("Succeeded"));
    if !classify::is_managed(c)
        || classify::kubelet_identity(c) != KubeletIdentity::Missing
        || !succeeded
    {
        return None;
    }
    Some(new_finding(ctx, RuleId::InconsistentIdentity, IdentityKey::Kubelet, "mi-without-kubelet",
        "managed-identity cluster in state Succeeded has no kubelet identity (`identityProfile.kubeletidentity`)".into(),
        remedy::show_identity(c)))
}

/// AKSMI004: its own kubelet identity needs a user-assigned control plane.
fn own_kubelet_with_system_assigned(ctx: &ClusterCtx) -> Option<Finding> {
    let c = ctx.cluster;
    let cp_kind = c.identity.as_ref().map(|i| i.kind);
    if classify::kubelet_identity(c) != KubeletIdentity::UserAssigned
        || cp_kind != Some(IdentityType::SystemAssigned)
    {
        return None;
    }
    // The current overview (managed-identity-overview.md @ 6fc34f7a, 2026-07-31) gives
    // Managed Identity Operator to the control plane "whether system-assigned or
    // user-assigned"; az CLI 2.91 still refuses --assign-kubelet-identity without a
    // user-assigned control plane. An unusual combination to verify, not a broken one.
    let mut f = new_finding(ctx, RuleId::InconsistentIdentity, IdentityKey::Kubelet, "own-kubelet-with-system-assigned",
        "cluster brings its own kubelet identity with a system-assigned control plane: current docs allow it when the control plane holds Managed Identity Operator over the kubelet identity (AKSMI021 checks that grant), older docs and the az CLI require a user-assigned control plane; verify".into(),
        remedy::show_identity(c));
    f.severity = super::Severity::Low;
    Some(f)
}

/// AKSMI002 / AKSMI003: the kubelet trap (decision table in [`super::migration`]).
fn kubelet_migration(ctx: &ClusterCtx) -> Vec<Finding> {
    super::migration::findings(ctx)
}

/// AKSMI030: the managed identity's tenant is not the subscription's home tenant (not
/// the tenant `az account list` signed in to: a managing tenant through Azure Lighthouse).
fn tenant_mismatch(ctx: &ClusterCtx, idx: &Index) -> Option<Finding> {
    let c = ctx.cluster;
    let itenant = c.identity.as_ref()?.tenant_id.as_deref()?;
    let stenant = idx.subscription(&c.subscription_id)?.home_tenant()?;
    if itenant.eq_ignore_ascii_case(stenant) {
        return None;
    }
    Some(new_finding(ctx, RuleId::TenantMismatch, IdentityKey::ControlPlane, "",
        format!("managed identity tenant `{itenant}` differs from the subscription's home tenant `{stenant}`: managed-identity clusters cannot move tenants"),
        remedy::show_identity(c)))
}

/// AKSMI031: own control-plane or kubelet identities where they are not supported.
fn unsupported_regions(ctx: &ClusterCtx) -> Vec<Finding> {
    let c = ctx.cluster;
    let loc = classify::norm_location(&c.location);
    let mut out = Vec::new();
    let cp_kind = c.identity.as_ref().map(|i| i.kind);
    if cp_kind == Some(IdentityType::UserAssigned) && CP_UNSUPPORTED.contains(&loc.as_str()) {
        out.push(new_finding(
            ctx,
            RuleId::UnsupportedRegion,
            IdentityKey::ControlPlane,
            "",
            format!(
                "own control-plane managed identity is not supported in {}",
                c.location
            ),
            remedy::enable_managed_identity(c),
        ));
    }
    if classify::kubelet_identity(c) == KubeletIdentity::UserAssigned
        && KUBELET_UNSUPPORTED.contains(&loc.as_str())
    {
        out.push(new_finding(
            ctx,
            RuleId::UnsupportedRegion,
            IdentityKey::Kubelet,
            "",
            format!(
                "own kubelet managed identity is not supported in {}",
                c.location
            ),
            remedy::show_identity(c),
        ));
    }
    out
}

/// AKSMI040 (pod identity in use) and AKSMI041 (without the kube-system exception).
fn pod_identity(ctx: &ClusterCtx) -> Vec<Finding> {
    let c = ctx.cluster;
    let Some(pi) = c.pod_identity.as_ref().filter(|p| p.enabled) else {
        return vec![];
    };
    let ended = chrono::NaiveDate::from_ymd_opt(2025, 9, 30).unwrap_or_default();
    let unsupported = ctx.now.date_naive() > ended;
    let mut f = new_finding(
        ctx,
        RuleId::PodIdentity,
        IdentityKey::ControlPlane,
        "",
        format!(
            "pod identity is enabled: the managed add-on {} 2025-09-30 (use-azure-ad-pod-identity.md); move to Microsoft Entra Workload ID",
            if unsupported { "has been unsupported since its support ended on" } else { "is supported until" }
        ),
        remedy::move_to_workload_identity(c),
    );
    if unsupported {
        f.severity = super::Severity::High;
    }
    let mut out = vec![f];
    let has_exception = pi.exceptions.iter().any(|e| {
        e.namespace.eq_ignore_ascii_case("kube-system")
            && e.pod_labels.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("kubernetes.azure.com/managedby")
                    && v.eq_ignore_ascii_case("aks")
            })
    });
    if !has_exception {
        // The managed add-on adds `aks-addon-exception` in kube-system itself
        // (use-azure-ad-pod-identity.md); ARM may not list it. Verify, do not alarm.
        out.push(new_finding(ctx, RuleId::PodIdentityException, IdentityKey::ControlPlane, "",
            "pod identity is enabled and ARM lists no exception for kube-system pods labelled kubernetes.azure.com/managedby: aks; the managed add-on normally adds `aks-addon-exception` itself: verify it exists, or AKS add-ons can fail".into(),
            format!("# inspect only: kubectl get azurepodidentityexception -n kube-system\n{}", remedy::pod_identity_exception(c))));
    }
    out
}

/// AKSMI013 and AKSMI090: add-ons against the baseline, add-on by add-on.
pub fn addon_findings(ctx: &ClusterCtx, idx: &Index, baseline: &Baseline) -> Vec<Finding> {
    let mut out = Vec::new();
    for a in ctx.cluster.addons.iter().filter(|a| a.enabled) {
        out.extend(addon_without_identity(ctx, a, baseline));
        out.extend(unknown_addon(ctx, idx, a, baseline));
    }
    out
}

/// AKSMI013: on a managed-identity cluster, an add-on the baseline gives an identity
/// has none.
fn addon_without_identity(ctx: &ClusterCtx, a: &Addon, baseline: &Baseline) -> Option<Finding> {
    let c = ctx.cluster;
    if !addon_needs_identity_here(a, baseline) || !classify::is_managed(c) || a.identity.is_some() {
        return None;
    }
    Some(new_finding(
        ctx,
        RuleId::AddonWithoutIdentity,
        IdentityKey::addon(&a.key),
        "",
        format!("add-on `{}` is enabled but has no identity", a.key),
        remedy::reenable_addon(c, &a.key),
    ))
}

/// Whether the baseline gives this add-on an identity under its config: it lists the
/// add-on, and some listed role applies (or it lists none). Container Insights with
/// managed-identity authentication (`useAADAuth: "true"`) needs no Monitoring Metrics
/// Publisher (managed-identity-overview.md @ 6fc34f7a L94, L106) and often shows
/// `identity: null`: no AKSMI013.
pub(super) fn addon_needs_identity_here(a: &Addon, baseline: &Baseline) -> bool {
    if !baseline.addon_needs_identity(&a.key) {
        return false;
    }
    let roles = baseline.roles_of(&IdentityKey::addon(&a.key));
    roles.is_empty() || roles.iter().any(|r| r.applies(&a.config))
}

/// AKSMI090: an add-on identity the baseline documents no roles for; its roles are
/// listed, not judged.
fn unknown_addon(ctx: &ClusterCtx, idx: &Index, a: &Addon, baseline: &Baseline) -> Option<Finding> {
    if !baseline.addon_undocumented(&a.key) {
        return None;
    }
    let principal = a.identity.as_ref()?.object_id.as_deref()?;
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
    Some(new_finding(
        ctx,
        RuleId::UnknownAddon,
        IdentityKey::addon(&a.key),
        "",
        format!(
            "add-on `{}` has an identity the baseline `{}` documents no roles for; it holds {held}",
            a.key, baseline.name
        ),
        format!(
            "az role assignment list --assignee {} --all -o table",
            remedy::q(principal)
        ),
    ))
}
