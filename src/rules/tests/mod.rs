//! In-process tests of the rules core: scenarios built with [`builder`], audited by
//! [`crate::rules::Report::generate`].
mod builder;
mod checks;
mod cli_grant_cases;
mod feature_cases;
mod identity_cases;
mod management_groups;
mod owner;
mod role_cases;
mod rules;
