//! What a role definition allows: `actions` minus `notActions`, with `*` wildcards
//! (Azure RBAC: "`*` ... grants access to all operations that match the string";
//! matched ignoring case). Used to accept least-privilege custom roles where a
//! built-in one is documented (AKSMI020: the subnet join and read actions,
//! `aks-service-permissions.md` "Additional AKS cluster identity permissions").
use crate::inventory::RoleDefinition;

/// The actions a custom subnet needs from the control plane.
pub const SUBNET_ACTIONS: [&str; 2] = [
    "Microsoft.Network/virtualNetworks/subnets/join/action",
    "Microsoft.Network/virtualNetworks/subnets/read",
];

/// Whether `pattern` (with `*` matching any run of characters, `/` included)
/// matches `action`, ignoring ASCII case.
pub fn matches(pattern: &str, action: &str) -> bool {
    let (p, a) = (pattern.as_bytes(), action.as_bytes());
    // Iterative glob with one backtrack point: linear-ish, no recursion.
    let (mut pi, mut ai) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ai < a.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ai;
            pi += 1;
        } else if pi < p.len() && p[pi].eq_ignore_ascii_case(&a[ai]) {
            pi += 1;
            ai += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ai = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Whether the role grants `action`: some permission block lists it in `actions`
/// and does not exclude it in `notActions`.
pub fn grants(def: &RoleDefinition, action: &str) -> bool {
    def.permissions.iter().any(|b| {
        b.actions.iter().any(|p| matches(p, action))
            && !b.not_actions.iter().any(|p| matches(p, action))
    })
}

/// The actions of `needed` the role does not grant.
pub fn lacking<'n>(def: &RoleDefinition, needed: &[&'n str]) -> Vec<&'n str> {
    needed.iter().copied().filter(|a| !grants(def, a)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Permission;

    #[test]
    fn wildcards_match_any_run_ignoring_case() {
        let join = SUBNET_ACTIONS[0];
        assert!(matches("*", join));
        assert!(matches("Microsoft.Network/*", join));
        assert!(matches("microsoft.network/virtualnetworks/subnets/*", join));
        assert!(matches("Microsoft.Network/*/join/action", join));
        assert!(matches(join, &join.to_ascii_uppercase()));
        assert!(!matches(
            "Microsoft.Network/virtualNetworks/subnets/read",
            join
        ));
        assert!(!matches("Microsoft.Compute/*", join));
        assert!(!matches(
            "Microsoft.Network/virtualNetworks/subnets/join",
            join
        ));
        assert!(matches("a*b*c", "axxbyyc") && !matches("a*b*c", "axxbyy"));
    }

    fn role(actions: &[&str], not_actions: &[&str]) -> RoleDefinition {
        RoleDefinition {
            permissions: vec![Permission {
                actions: actions.iter().map(|s| s.to_string()).collect(),
                not_actions: not_actions.iter().map(|s| s.to_string()).collect(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn not_actions_take_away_and_blocks_are_separate() {
        let joiner = role(
            &["Microsoft.Network/virtualNetworks/subnets/*"],
            &["Microsoft.Network/virtualNetworks/subnets/delete"],
        );
        assert!(lacking(&joiner, &SUBNET_ACTIONS).is_empty());
        let no_join = role(
            &["Microsoft.Network/virtualNetworks/subnets/*"],
            &["Microsoft.Network/virtualNetworks/subnets/join/action"],
        );
        assert_eq!(lacking(&no_join, &SUBNET_ACTIONS), vec![SUBNET_ACTIONS[0]]);
        let read_only = role(&["Microsoft.Network/virtualNetworks/subnets/read"], &[]);
        assert_eq!(
            lacking(&read_only, &SUBNET_ACTIONS),
            vec![SUBNET_ACTIONS[0]]
        );
        // A notAction in one block does not take away what another block grants.
        let mut two = no_join.clone();
        two.permissions.push(Permission {
            actions: vec![SUBNET_ACTIONS[0].to_string()],
            not_actions: vec![],
        });
        assert!(lacking(&two, &SUBNET_ACTIONS).is_empty());
    }
}
