#!/usr/bin/env bash
# Runs every test the project has, on a fresh machine: installs the test tools
# (Python venv with aiosmtpd/Helm SDK/kubernetes-validate, Chromium), then format,
# lint, unit + integration tests, the Helm chart tests, and the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }

step "test tools"
scripts/setup-test-tools.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --locked --all-targets -- -D warnings

step "cargo deny (licenses, bans, sources; advisories when the database is reachable)"
scripts/deny.sh

step "cargo test"
cargo test --locked --all-targets

step "helm chart (real Helm via helm-python-sdk, strict Kubernetes schemas)"
cargo build --locked --quiet
AKS_AUDIT_BIN="$PWD/target/debug/aks-identity-audit" tests/helm/run.sh -q

step "release build (what the container image builds)"
cargo build --release --locked

echo
echo "all tests passed"
