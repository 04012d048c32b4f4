//! aks-identity-audit: audits the identities of AKS clusters.
//!
//! Shape of a run: a source (inventory folder, Resource Graph, the emulator
//! crate `azure_emulator` with the default feature `emulator`) produces a
//! typed [`inventory::Inventory`]; [`rules::Report::generate`] turns it into findings
//! without I/O; renderers in [`report`] return strings; [`run`] writes and sends.
pub mod azure;
pub mod cli;
pub mod config;
pub mod delivery_queue;
pub mod exit;
pub mod history;
pub mod i18n;
pub mod inventory;
pub mod log_analytics;
pub mod logfmt;
pub mod mail;
pub mod memory;
pub mod named;
pub mod redact;
pub mod report;
pub mod retention;
pub mod rules;
pub mod run;
pub mod schedule;
pub mod secure_fs;
pub mod state;
pub mod upload;
pub mod webhook;
