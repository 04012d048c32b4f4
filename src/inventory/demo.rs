//! The built-in demo tenant: the inventory folder `examples/demo/`, embedded.
use super::Kind;

pub const FILES: &[(Kind, &str, &str)] = &[
    (Kind::Subscriptions, "subscriptions.json", include_str!("../../examples/demo/subscriptions.json")),
    (Kind::ResourceGroups, "resource-groups.json", include_str!("../../examples/demo/resource-groups.json")),
    (Kind::Registries, "registries.json", include_str!("../../examples/demo/registries.json")),
    (Kind::Clusters, "clusters.json", include_str!("../../examples/demo/clusters.json")),
    (Kind::RoleAssignments, "role-assignments.json", include_str!("../../examples/demo/role-assignments.json")),
];
