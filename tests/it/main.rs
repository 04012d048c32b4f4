//! The integration test binary: one binary, one module per area.
mod audit;
mod emulator;
mod mail;
mod robustness;
mod sdk;
