//! In-process tests of the rules core: scenarios built with [`builder`], audited by
//! [`crate::rules::Report::generate`].
mod addon_cases;
mod builder;
mod checks;
mod cli_grant_cases;
mod feature_cases;
mod group_cases;
mod identity_cases;
mod kubelet_cases;
mod management_groups;
mod migration_signals;
mod owner;
mod registry_cases;
mod role_cases;
mod rules;
