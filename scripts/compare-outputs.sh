#!/usr/bin/env bash
# Proves a change leaves the outputs byte-identical: builds BASE (a git ref) and the
# working tree, runs both on the demo tenant and on `emulator generate` S and M
# tenants (offline, fixed clock, no SMTP: owner messages land in the outbox), and
# compares every CSV, report.json and every owner/admin message (minus the headers
# that differ by design: Date, Message-ID and MIME boundaries). Each set is audited
# twice on one state folder, and report.html, state.json and runs.csv are compared too.
#
#   scripts/compare-outputs.sh BASE [S] [M] [demo]     (default: demo S M)
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
mkdir -p "$work"
rm -rf "$work/base-src"
git worktree remove --force "$work/base-src" 2>/dev/null || true
git worktree add --detach "$work/base-src" "$base" >/dev/null
trap 'git worktree remove --force "$work/base-src" >/dev/null 2>&1 || true' EXIT

# Debug builds (outputs do not depend on the profile); the base's target folder is
# seeded from this one so only the crate itself is compiled again.
base_target="$PWD/$work/base-target"
if [ ! -d "$base_target/debug" ] && [ -d "$CARGO_TARGET_DIR/debug" ]; then
  mkdir -p "$base_target" && cp -a "$CARGO_TARGET_DIR/debug" "$base_target/"
fi
echo "building $base" >&2
(cd "$work/base-src" && cargo build --quiet --locked --target-dir "$base_target")
echo "building the working tree" >&2
cargo build --quiet --locked
old="$base_target/debug/aks-identity-audit"
new="$CARGO_TARGET_DIR/debug/aks-identity-audit"

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
normalise() { # strip what differs by design in .eml files (whose lines end in CRLF)
  sed -E -e '/^(Date|Message-ID): /d' -e 's/boundary="[^"]*"/boundary=B/' -e 's/^--[A-Za-z0-9_=.-]{16,}(--)?(\r?)$/--B\1\2/' "$1"
}

status=0
for s in "${sets[@]}"; do
  case "$s" in
    demo) args=(--demo) ;;
    S) args=(--inventory "$(tenant S 100 1000 10000)") ;;
    M) args=(--inventory "$(tenant M 1000 10000 100000)") ;;
    *) echo "unknown set $s" >&2; exit 2 ;;
  esac
  audit "$old" "$work/$s-old" "${args[@]}"
  audit "$new" "$work/$s-new" "${args[@]}"
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
