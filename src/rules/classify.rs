//! Identity classification of one cluster (DOMAIN.md §2): pure, no history needed.
use super::model::ControlPlaneIdentity;
use crate::inventory::{ids, Cluster, IdentityType};

super::model::named_enum! {
    /// The kubelet identity as ARM reports it (`kubelet_identity` in clusters.csv).
    pub enum KubeletIdentity {
        ServicePrincipal = "service_principal",
        AksManaged = "aks_managed",
        UserAssigned = "user_assigned",
        Missing = "missing",
    }
}

pub fn is_msi(client_id: Option<&str>) -> bool {
    client_id.is_some_and(|c| c.eq_ignore_ascii_case("msi"))
}

pub fn is_managed(c: &Cluster) -> bool {
    c.identity.is_some()
}

/// Whether the kubelet identity is the one AKS creates: `<cluster>-agentpool` in the node RG.
pub fn kubelet_is_aks_created(c: &Cluster) -> bool {
    let (Some(k), Some(node_rg)) = (&c.kubelet, &c.node_resource_group) else {
        return false;
    };
    let Some(rid) = &k.resource_id else {
        return false;
    };
    let rg_ok = ids::resource_group_of(rid).is_some_and(|rg| rg.eq_ignore_ascii_case(node_rg));
    let name_ok =
        ids::name_of(rid).is_some_and(|n| n.eq_ignore_ascii_case(&format!("{}-agentpool", c.name)));
    rg_ok && name_ok
}

pub fn kubelet_identity(c: &Cluster) -> KubeletIdentity {
    match &c.kubelet {
        Some(_) if kubelet_is_aks_created(c) => KubeletIdentity::AksManaged,
        Some(_) => KubeletIdentity::UserAssigned,
        None if !is_managed(c) => KubeletIdentity::ServicePrincipal,
        None => KubeletIdentity::Missing,
    }
}

/// How the control plane authenticates: what clusters.csv shows and history records.
pub fn control_plane_identity(c: &Cluster) -> ControlPlaneIdentity {
    ControlPlaneIdentity::of(c)
}

/// The control plane's principal (object) id, when the cluster has a managed identity.
pub fn control_plane_principal(c: &Cluster) -> Option<String> {
    control_plane_principal_str(c).map(str::to_string)
}

/// [`control_plane_principal`], borrowed.
pub fn control_plane_principal_str(c: &Cluster) -> Option<&str> {
    let i = c.identity.as_ref()?;
    match i.kind {
        IdentityType::SystemAssigned => i.principal_id.as_deref(),
        IdentityType::UserAssigned => i
            .user_assigned
            .iter()
            .find_map(|u| u.principal_id.as_deref())
            .or(i.principal_id.as_deref()),
    }
}

/// The control plane's user-assigned identity resource id, if it brings its own.
pub fn control_plane_resource_id(c: &Cluster) -> Option<&str> {
    let i = c.identity.as_ref()?;
    (i.kind == IdentityType::UserAssigned)
        .then(|| i.user_assigned.first().map(|u| u.resource_id.as_str()))
        .flatten()
}

/// Lower-cased location without spaces: `US DoD Central` → `usdodcentral`.
pub fn norm_location(l: &str) -> String {
    l.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{ClusterIdentity, IdentityRef};

    fn base() -> Cluster {
        Cluster {
            name: "aks1".into(),
            node_resource_group: Some("MC_rg_aks1_eastus".into()),
            ..Default::default()
        }
    }

    #[test]
    fn kubelet_kinds() {
        let mut c = base();
        assert_eq!(kubelet_identity(&c), KubeletIdentity::ServicePrincipal);
        c.identity = Some(ClusterIdentity {
            kind: IdentityType::SystemAssigned,
            principal_id: None,
            tenant_id: None,
            user_assigned: vec![],
        });
        assert_eq!(kubelet_identity(&c), KubeletIdentity::Missing);
        c.kubelet = Some(IdentityRef {
            resource_id: Some("/subscriptions/s/resourcegroups/mc_rg_aks1_eastus/providers/Microsoft.ManagedIdentity/userAssignedIdentities/AKS1-agentpool".into()),
            ..Default::default()
        });
        assert_eq!(kubelet_identity(&c), KubeletIdentity::AksManaged);
        c.kubelet.as_mut().unwrap().resource_id = Some("/subscriptions/s/resourcegroups/ids/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aks1-agentpool".into());
        assert_eq!(kubelet_identity(&c), KubeletIdentity::UserAssigned);
        c.kubelet.as_mut().unwrap().resource_id = Some("/subscriptions/s/resourcegroups/MC_rg_aks1_eastus/providers/Microsoft.ManagedIdentity/userAssignedIdentities/my-kubelet".into());
        assert_eq!(kubelet_identity(&c), KubeletIdentity::UserAssigned);
    }

    #[test]
    fn msi_is_case_insensitive() {
        assert!(is_msi(Some("MSI")));
        assert!(!is_msi(Some("http://clitest000001")));
        assert!(!is_msi(None));
    }

    #[test]
    fn locations() {
        assert_eq!(norm_location("US DoD Central"), "usdodcentral");
    }
}
