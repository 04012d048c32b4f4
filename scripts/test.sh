#!/usr/bin/env bash
# Runs every test the project has, on a fresh machine: installs the test tools
# (Python venv with aiosmtpd/Helm SDK/kubernetes-validate, Chromium), then format,
# lint (with and without the `emulator` feature), unit + integration tests of the
# whole workspace (the audit and crates/azure-emulator), the Helm chart tests, and
# the release build of the container image (without the emulator).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-$PWD/target}
step() { printf '\n==> %s\n' "$*"; }

step "test tools"
scripts/setup-test-tools.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (workspace, default features)"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "cargo clippy --no-default-features (the audit without the emulator: no HTTP server code)"
cargo clippy --locked --no-default-features --all-targets -- -D warnings
server_crates=$(cargo tree --locked --no-default-features -e normal --prefix none \
  | grep -E '^(azure-emulator|axum|axum-server|axum-core|rcgen) ' | sort -u || true)
if [ -n "$server_crates" ]; then
  echo "the build without the emulator feature still depends on:" >&2
  echo "$server_crates" >&2
  exit 1
fi

step "cargo deny (licenses, bans, sources; advisories when the database is reachable)"
scripts/deny.sh

step "cargo test (workspace)"
cargo test --locked --workspace --all-targets

step "helm chart (real Helm via helm-python-sdk, strict Kubernetes schemas)"
cargo build --locked --quiet
AKS_AUDIT_BIN="$target/debug/aks-identity-audit" tests/helm/run.sh -q

step "release build (what the container image builds: no emulator)"
cargo build --release --locked --no-default-features --bin aks-identity-audit

echo
echo "all tests passed"
