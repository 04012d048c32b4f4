//! The integration test binary: one binary, one module per area.
mod audit;
mod docs;
mod emulator;
mod faults;
mod graph_mail;
mod live;
mod log_analytics;
mod mail;
mod migration;
mod nightly;
mod report;
mod robustness;
mod sdk;
mod security;
mod support;
mod upload;
mod webhooks;
