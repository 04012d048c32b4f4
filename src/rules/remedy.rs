//! Copy-ready `az` commands, with every value quoted for a POSIX shell when needed.
use crate::inventory::Cluster;

/// Quotes a value for the shell unless it is made only of safe characters: single
/// quotes, or ANSI-C `$'...'` quoting (bash, zsh, POSIX 2024) when it holds control characters.
pub fn q(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if safe {
        s.to_string()
    } else if s.chars().any(char::is_control) {
        // ANSI-C quoting keeps the command on one line when a value holds CR/LF or tabs.
        let mut out = String::from("$'");
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32 & 0xff)),
                c => out.push(c),
            }
        }
        out.push('\'');
        out
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// AKSMI005's fix: an inspect-only line first (labelled), then a new credential added
/// beside the ones in use (`--append`: nothing that still authenticates is replaced)
/// and handed to the cluster.
pub fn renew_sp_credential(c: &Cluster, sp: &str) -> String {
    format!(
        "# inspect only: az ad sp credential list --id {sp_q} --query \"[].{{keyId:keyId, end:endDateTime}}\" -o table\n\
         az aks update-credentials --resource-group {} --name {} --reset-service-principal --service-principal {sp_q} --client-secret \"$(az ad sp credential reset --id {sp_q} --append --years 1 --query password -o tsv)\"",
        q(&c.resource_group),
        q(&c.name),
        sp_q = q(sp)
    )
}

pub fn enable_managed_identity(c: &Cluster) -> String {
    format!(
        "az aks update --resource-group {} --name {} --enable-managed-identity",
        q(&c.resource_group),
        q(&c.name)
    )
}

pub fn reimage_pool(c: &Cluster, pool: &str) -> String {
    format!(
        "az aks nodepool upgrade --resource-group {} --cluster-name {} --name {} --node-image-only",
        q(&c.resource_group),
        q(&c.name),
        q(pool)
    )
}

pub fn list_pool_images(c: &Cluster) -> String {
    format!(
        "az aks nodepool list --resource-group {} --cluster-name {} --query \"[].{{name:name, nodeImageVersion:nodeImageVersion}}\" -o table",
        q(&c.resource_group),
        q(&c.name)
    )
}

pub fn create_role(principal: &str, role: &str, scope: &str) -> String {
    format!(
        "az role assignment create --assignee-object-id {} --assignee-principal-type ServicePrincipal --role {} --scope {}",
        q(principal),
        q(role),
        q(scope)
    )
}

pub fn delete_role(assignment_id: &str) -> String {
    format!("az role assignment delete --ids {}", q(assignment_id))
}

pub fn attach_acr(c: &Cluster, registry_id: &str) -> String {
    format!(
        "az aks update --resource-group {} --name {} --attach-acr {}",
        q(&c.resource_group),
        q(&c.name),
        q(registry_id)
    )
}

/// The `az aks enable-addons` name of an add-on profile key.
pub fn addon_cli_name(key: &str) -> String {
    match key.to_ascii_lowercase().as_str() {
        "omsagent" => "monitoring".into(),
        "ingressapplicationgateway" => "ingress-appgw".into(),
        "httpapplicationrouting" => "http_application_routing".into(),
        "aciconnectorlinux" => "virtual-node".into(),
        "azurekeyvaultsecretsprovider" => "azure-keyvault-secrets-provider".into(),
        "azurepolicy" => "azure-policy".into(),
        "openservicemesh" => "open-service-mesh".into(),
        _ => key.to_string(),
    }
}

pub fn reenable_addon(c: &Cluster, key: &str) -> String {
    let a = q(&addon_cli_name(key));
    let (g, n) = (q(&c.resource_group), q(&c.name));
    format!(
        "az aks disable-addons --resource-group {g} --name {n} --addons {a}\naz aks enable-addons --resource-group {g} --name {n} --addons {a}"
    )
}

pub fn pod_identity_exception(c: &Cluster) -> String {
    format!(
        "az aks pod-identity exception add --resource-group {} --cluster-name {} --namespace kube-system --name aks-addon-exception --pod-labels kubernetes.azure.com/managedby=aks",
        q(&c.resource_group),
        q(&c.name)
    )
}

pub fn move_to_workload_identity(c: &Cluster) -> String {
    let (g, n) = (q(&c.resource_group), q(&c.name));
    format!(
        "az aks update --resource-group {g} --name {n} --enable-oidc-issuer --enable-workload-identity\naz aks update --resource-group {g} --name {n} --disable-pod-identity"
    )
}

pub fn show_identity(c: &Cluster) -> String {
    format!(
        "az aks show --resource-group {} --name {} --query \"{{identity:identity, servicePrincipalProfile:servicePrincipalProfile, kubelet:identityProfile.kubeletidentity}}\"",
        q(&c.resource_group),
        q(&c.name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(q("rg-1"), "rg-1");
        assert_eq!(
            q("/subscriptions/x/resourceGroups/y"),
            "/subscriptions/x/resourceGroups/y"
        );
        assert_eq!(q("Network Contributor"), "'Network Contributor'");
        assert_eq!(q("a'b; rm -rf /"), r"'a'\''b; rm -rf /'");
        assert_eq!(q("$(x)"), "'$(x)'");
        assert_eq!(q(""), "''");
        assert_eq!(q("a\r\nBcc: x"), r"$'a\r\nBcc: x'");
        assert_eq!(q("it's\n"), r"$'it\'s\n'");
    }
}
