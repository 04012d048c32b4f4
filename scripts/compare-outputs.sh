#!/usr/bin/env bash
# Proves a change leaves the outputs byte-identical: builds BASE (a git ref) and the
# working tree, runs both on the demo tenant and on `emulator generate` S and M
# tenants (offline, fixed clock, no SMTP: owner messages land in the outbox), and
# compares every CSV, report.json and every owner/admin message (minus the headers
# that differ by design: Date, Message-ID and MIME boundaries). Each set is audited
# twice on one state folder, and report.html, state.json and runs.csv are compared too.
#
#   scripts/compare-outputs.sh BASE [demo] [S] [M] [S-live] [M-live] [L-live]   (default: demo S M)
#
# The *-live sets audit the benchmark's tenants (seed 42, cached like scripts/bench.sh
# does in $BENCH_CACHE) through the live path: each build serves the tenant with its
# own `emulator serve` (quota off) and reads it over HTTPS, so a change to the queries
# is compared too (the same files; none of them counts requests).
#
# Environment: BASE_BIN=FILE uses that binary as BASE's build (no checkout, no copy of
# the target folder; BASE is then only a label); NEW_BIN=FILE likewise for the working
# tree's (two worktrees of this repository share their crate's build in one target
# folder: save each binary as it is built); COMPARE_PROFILE=release builds the working
# tree in release (what L-live wants); COMPARE_DIR (default target/compare).
#
# Exit 0 when everything is identical; otherwise the differing files are listed.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: $0 BASE [demo] [S] [M]}
shift
sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(demo S M)

work=${COMPARE_DIR:-target/compare}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
profile=${COMPARE_PROFILE:-debug}
mkdir -p "$work"
emu_pid=""
cleanup() {
  if [ -n "$emu_pid" ]; then kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; fi
  [ -n "${BASE_BIN:-}" ] || git worktree remove --force "$work/base-src" >/dev/null 2>&1 || true
}
trap cleanup EXIT

if [ -n "${BASE_BIN:-}" ]; then
  old=$BASE_BIN
  [ -x "$old" ] || { echo "BASE_BIN=$old is not an executable" >&2; exit 2; }
else
  rm -rf "$work/base-src"
  git worktree remove --force "$work/base-src" 2>/dev/null || true
  git worktree add --detach "$work/base-src" "$base" >/dev/null
  # The base's target folder is seeded from this one so only the crate itself is
  # compiled again (outputs do not depend on the profile).
  base_target="$PWD/$work/base-target"
  if [ ! -d "$base_target/$profile" ] && [ -d "$CARGO_TARGET_DIR/$profile" ]; then
    mkdir -p "$base_target" && cp -a "$CARGO_TARGET_DIR/$profile" "$base_target/"
  fi
  echo "building $base" >&2
  release=(); [ "$profile" = release ] && release=(--release)
  (cd "$work/base-src" && cargo build --quiet --locked "${release[@]}" --target-dir "$base_target")
  old="$base_target/$profile/aks-identity-audit"
fi
if [ -n "${NEW_BIN:-}" ]; then
  new=$NEW_BIN
  [ -x "$new" ] || { echo "NEW_BIN=$new is not an executable" >&2; exit 2; }
else
  echo "building the working tree ($profile)" >&2
  release=(); [ "$profile" = release ] && release=(--release)
  cargo build --quiet --locked "${release[@]}"
  new="$CARGO_TARGET_DIR/$profile/aks-identity-audit"
fi

# Two runs a day apart on one state folder: the second reads the history (state.json)
# the first wrote, so new/resolved findings and the migration checks have a past.
nows=(2026-06-01T06:00:00Z 2026-06-02T06:00:00Z)
tenant() { # name subs clusters ras
  local dir="$work/tenant-$1"
  [ -f "$dir/clusters.json" ] || "$new" emulator generate --subscriptions "$2" --clusters "$3" --role-assignments "$4" --seed 7 --out "$dir" >/dev/null 2>&1
  echo "$dir"
}
audit() { # bin out args...
  # Both builds write to the same folders, then they are renamed: the admin message
  # names the output folder. Run N's output is OUT/N, with the state it left.
  local bin=$1 out=$2 run="$work/run" i; shift 2
  rm -rf "$out" "$run"
  mkdir -p "$run"
  for i in 0 1; do
    env -u AKS_AUDIT_CONFIG -u AKS_AUDIT_RUN_ID "$bin" --log-level error run --out "$run/$((i + 1))" \
      --state "$run/state" --now "${nows[$i]}" --allowed-domain contoso.com --allowed-domain fabrikam.example \
      --admin sec@corp.example.com "$@" >/dev/null 2>&1 || true
    mkdir -p "$run/$((i + 1))/state"
    cp "$run/state/state.json" "$run/state/runs.csv" "$run/$((i + 1))/state/" 2>/dev/null || true
  done
  mv "$run" "$out"
}
bench_tenant() { # size subs clusters ras: scripts/bench.sh's tenant, shared cache
  local gen; gen=$(sha256sum < "$(dirname "$0")/../crates/azure-emulator/src/generate.rs" | cut -c1-10)
  local dir="${BENCH_CACHE:-$CARGO_TARGET_DIR/bench}/tenant-$1-seed42-gen$gen"
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"; mkdir -p "$dir"
    "$new" emulator generate --subscriptions "$2" --clusters "$3" --role-assignments "$4" --seed 42 --out "$dir" >/dev/null 2>&1
    touch "$dir/.complete"
  fi
  echo "$dir"
}
live_audit() { # bin out tenant: the bin's own emulator serves the tenant, the bin audits it
  local bin=$1 out=$2 tenant=$3 url="" emu_dir="$work/emu"
  rm -rf "$emu_dir"; mkdir -p "$emu_dir"
  "$bin" emulator serve --inventory "$tenant" --quota off --ca-out "$emu_dir/ca.pem" >"$emu_dir/out" 2>"$emu_dir/err" &
  emu_pid=$!
  for _ in $(seq 1 900); do
    url=$(sed -n 's/^emulator listening on \(https:[^ ]*\).*/\1/p' "$emu_dir/out" || true)
    [ -n "$url" ] && break
    kill -0 "$emu_pid" 2>/dev/null || { cat "$emu_dir/err" >&2; exit 1; }
    sleep 0.2
  done
  [ -n "$url" ] || { echo "emulator did not start" >&2; exit 1; }
  AZURE_TENANT_ID=compare-tenant AZURE_CLIENT_ID=compare-client AZURE_CLIENT_SECRET=compare-secret-not-real \
    audit "$bin" "$out" --arm-endpoint "$url" --authority-host "$url" --ca-cert "$emu_dir/ca.pem" --auth client-secret
  kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; emu_pid=""
}
normalise() { # strip what differs by design in .eml files (whose lines end in CRLF)
  sed -E -e '/^(Date|Message-ID): /d' -e 's/boundary="[^"]*"/boundary=B/' -e 's/^--[A-Za-z0-9_=.-]{16,}(--)?(\r?)$/--B\1\2/' "$1"
}

status=0
for s in "${sets[@]}"; do
  live=""
  case "$s" in
    demo) args=(--demo) ;;
    S) args=(--inventory "$(tenant S 100 1000 10000)") ;;
    M) args=(--inventory "$(tenant M 1000 10000 100000)") ;;
    S-live) live=$(bench_tenant S 100 1000 10000) ;;
    M-live) live=$(bench_tenant M 1000 10000 100000) ;;
    L-live) live=$(bench_tenant L 10000 100000 1000000) ;;
    *) echo "unknown set $s" >&2; exit 2 ;;
  esac
  if [ -n "$live" ]; then
    live_audit "$old" "$work/$s-old" "$live"
    live_audit "$new" "$work/$s-new" "$live"
  else
    audit "$old" "$work/$s-old" "${args[@]}"
    audit "$new" "$work/$s-new" "${args[@]}"
  fi
  n=0; bad=0
  for f in "$work/$s-old"/[12]/{*.csv,report.json,report.html,outbox/*.eml,state/state.json,state/runs.csv}; do
    [ -e "$f" ] || continue
    rel=${f#"$work/$s-old/"}
    g="$work/$s-new/$rel"
    n=$((n + 1))
    if [ ! -e "$g" ]; then echo "$s: $rel missing in the new output"; bad=$((bad + 1)); continue; fi
    if [[ "$f" == *.eml ]]; then
      cmp -s <(normalise "$f") <(normalise "$g") || { echo "$s: $rel differs"; bad=$((bad + 1)); }
    else
      cmp -s "$f" "$g" || { echo "$s: $rel differs"; bad=$((bad + 1)); }
    fi
  done
  files() { (cd "$1" && find [12] -name '*.csv' -o -name 'report.*' -o -name '*.eml' -o -name state.json | sort); }
  extra=$(comm -13 <(files "$work/$s-old") <(files "$work/$s-new") | wc -l)
  [ "$extra" = 0 ] || { echo "$s: $extra file(s) only in the new output"; bad=$((bad + extra)); }
  echo "$s: $n files compared, $bad different"
  [ "$bad" = 0 ] || status=1
done
exit $status
