//! The integration test binary: one binary, one module per area.
mod audit;
mod docs;
mod emulator;
mod faults;
mod graph_mail;
mod i18n;
mod live;
mod mail;
mod migration;
mod nightly;
mod report;
mod robustness;
mod sdk;
mod security;
mod support;
mod webhooks;
