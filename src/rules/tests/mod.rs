//! In-process tests of the rules core: scenarios built with [`builder`], audited by
//! [`crate::rules::Report::generate`].
mod addon_cases;
mod builder;
mod checks;
mod identity_cases;
mod kubelet_cases;
mod owner;
mod registry_cases;
mod role_cases;
mod rules;
