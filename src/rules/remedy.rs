//! Copy-ready `az` commands, with every value quoted for a POSIX shell when needed.
use crate::inventory::Cluster;

/// What [`q`] gives for a value holding a NUL character, which no command line can
/// carry (the shell would cut the value there and target another name): an expansion
/// that aborts the command with this message instead of running it.
pub const NUL_REFUSED: &str = "\"${AKS_AUDIT_UNQUOTABLE:?a value holds a NUL character and cannot be given on a command line, not run}\"";

/// Quotes a value for the shell unless it is made only of safe characters: single
/// quotes, or ANSI-C `$'...'` quoting (bash, zsh, POSIX 2024) when it holds control
/// characters (C0, DEL, C1) or invisible bidirectional/line-separator characters. Those
/// are written as `\xHH` for each byte of their UTF-8 encoding, so the argument the
/// shell passes is exactly the value, whatever the locale. A NUL gives [`NUL_REFUSED`].
pub fn q(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if safe {
        s.to_string()
    } else if s.contains('\0') {
        NUL_REFUSED.to_string()
    } else if s.chars().any(crate::logfmt::needs_escape) {
        // ANSI-C quoting keeps the command on one line when a value holds CR/LF or tabs.
        let mut out = String::from("$'");
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if crate::logfmt::needs_escape(c) => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
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

/// Takes a member out of a Microsoft Entra group (and so out of the group's grants).
pub fn leave_group(group: &str, member: &str) -> String {
    format!(
        "az ad group member remove --group {} --member-id {}",
        q(group),
        q(member)
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

/// Out of HTTP application routing without breaking ingress: the replacement first,
/// the removal only once the ingresses moved (labelled, not to run blindly).
pub fn leave_http_application_routing(c: &Cluster) -> String {
    let (g, n) = (q(&c.resource_group), q(&c.name));
    format!(
        "az aks approuting enable --resource-group {g} --name {n}\n\
         # once every ingress uses the application routing add-on (ingressClassName webapprouting.kubernetes.azure.com):\n\
         # az aks disable-addons --resource-group {g} --name {n} --addons http_application_routing"
    )
}

/// Container Insights from legacy to managed identity authentication.
pub fn monitoring_msi_auth(c: &Cluster) -> String {
    format!(
        "az aks enable-addons --resource-group {} --name {} --addons monitoring --enable-msi-auth-for-monitoring",
        q(&c.resource_group),
        q(&c.name)
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
        // C1: the bytes of its UTF-8 encoding, not one byte 0x85 (another name).
        assert_eq!(q("c\u{85}1"), r"$'c\xc2\x851'");
        assert_eq!(q("a\0b"), NUL_REFUSED);
    }

    /// What bash passes to a command for each quoted value is exactly the value; a value
    /// with a NUL aborts the command.
    #[cfg(unix)]
    #[test]
    fn bash_passes_exactly_the_value() {
        let values = [
            "plain",
            "Network Contributor",
            "a'b; rm -rf /",
            "back\\slash $(x) `y` \"z\"",
            "a\r\nBcc: x\tz",
            "esc\u{1b}[31mred\u{7f}",
            "c1\u{85}next\u{9b}2J\u{80}\u{9f}",
            "bidi\u{202e}txt.exe\u{2028}",
            "ümlaut 日本 \u{1}\u{1f}",
        ];
        for v in values {
            let o = std::process::Command::new("bash")
                .arg("-c")
                .arg(format!("printf '%s' {}", q(v)))
                .env("LC_ALL", "C")
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{v:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert_eq!(o.stdout, v.as_bytes(), "{v:?} quoted as {}", q(v));
        }
        let o = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("printf 'RAN:%s' {}", q("victim\0-other")))
            .env_remove("AKS_AUDIT_UNQUOTABLE")
            .output()
            .unwrap();
        assert!(!o.status.success());
        assert!(
            o.stdout.is_empty(),
            "{:?}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(String::from_utf8_lossy(&o.stderr).contains("NUL character"));
    }
}
