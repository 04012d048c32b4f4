#!/usr/bin/env bash
# Benchmark of the full live path: generate a synthetic tenant, serve it from the
# emulator (a separate process, over HTTPS), run the audit against it, print a table.
#
#   scripts/bench.sh [S|M|L|all] [--quota] [--nights=N]
#
#   S: 100 subscriptions,    1,000 clusters,    10,000 role assignments
#   M: 1,000 subscriptions,  10,000 clusters,   100,000 role assignments
#   L: 10,000 subscriptions, 100,000 clusters, 1,000,000 role assignments
#
# Quota off by default (measures the tool); --quota serves Resource Graph's default
# 15 queries per 5 s and compares collection with the floor, Resource Graph requests
# / 3 per second (printed for every run: the least time any client needs at the quota).
# --nights=N runs the audit N times against the same tenant and state folder: the
# second night loads the first night's history, as the nightly job does (rows "L/2").
# Tenants are cached in $BENCH_CACHE (default $CARGO_TARGET_DIR/bench), same seed, reused.
# BENCH_BIN=FILE runs that release binary instead of building this worktree's.
# One default build (feature `emulator`) plays both parts; the audit's code paths are
# the same as in the container image's build without the emulator.
# Per-stage times come from the tool's own `audit finished` log line; peak RSS from
# /usr/bin/time -v (Debian's `time`, installed here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=()
quota=off
nights=1
for a in "$@"; do
  case "$a" in
    S|M|L) sizes+=("$a") ;;
    all) sizes+=(S M L) ;;
    --quota) quota=15/5 ;;
    --nights=[1-9]) nights=${a#--nights=} ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "usage: $0 [S|M|L|all] [--quota] [--nights=N]" >&2; exit 2 ;;
  esac
done
[ ${#sizes[@]} -gt 0 ] || sizes=(S)

if [ ! -x /usr/bin/time ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  echo "installing Debian's time package (for peak RSS)" >&2
  $SUDO apt-get install -y -qq time >/dev/null 2>&1 \
    || { $SUDO apt-get update -qq >/dev/null 2>&1; $SUDO apt-get install -y -qq time >/dev/null; }
fi

target=${CARGO_TARGET_DIR:-$PWD/target}
if [ -n "${BENCH_BIN:-}" ]; then
  bin=$BENCH_BIN   # a saved release binary (another worktree's build may sit in $target)
  [ -x "$bin" ] || { echo "BENCH_BIN=$bin is not an executable" >&2; exit 2; }
else
  echo "building the release binary (first time: ~6 min for polars)" >&2
  cargo build --release --locked --quiet
  bin=$target/release/aks-identity-audit
fi
cache=${BENCH_CACHE:-$target/bench}
seed=${BENCH_SEED:-42}
mkdir -p "$cache"

work=$(mktemp -d)
emu_pid=""
cleanup() {
  if [ -n "$emu_pid" ]; then kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

params() {
  case "$1" in
    S) echo "100 1000 10000" ;;
    M) echo "1000 10000 100000" ;;
    L) echo "10000 100000 1000000" ;;
  esac
}

results=()
for size in "${sizes[@]}"; do
  read -r subs clusters ras < <(params "$size")
  tenant="$cache/tenant-$size-seed$seed"
  if [ ! -f "$tenant/.complete" ]; then
    echo "[$size] generating $subs subscriptions, $clusters clusters, $ras role assignments into $tenant" >&2
    rm -rf "$tenant"
    "$bin" emulator generate --subscriptions "$subs" --clusters "$clusters" \
      --role-assignments "$ras" --seed "$seed" --out "$tenant" >&2
    touch "$tenant/.complete"
  fi

  run_dir="$work/$size"
  mkdir -p "$run_dir"
  echo "[$size] starting the emulator (quota $quota)" >&2
  "$bin" emulator serve --inventory "$tenant" --quota "$quota" \
    --ca-out "$run_dir/ca.pem" >"$run_dir/emu.out" 2>"$run_dir/emu.err" &
  emu_pid=$!
  url=""
  for _ in $(seq 1 600); do
    url=$(sed -n 's/^emulator listening on \(https:[^ ]*\).*/\1/p' "$run_dir/emu.out" || true)
    [ -n "$url" ] && break
    kill -0 "$emu_pid" 2>/dev/null || { cat "$run_dir/emu.err" >&2; exit 1; }
    sleep 0.2
  done
  [ -n "$url" ] || { echo "emulator did not start" >&2; exit 1; }

  state="$run_dir/state"
  for night in $(seq 1 "$nights"); do
  label=$size; [ "$night" -gt 1 ] && label="$size/$night"
  night_dir="$run_dir/night-$night"
  mkdir -p "$night_dir"
  echo "[$label] auditing $url" >&2
  set +e
  env -u AKS_AUDIT_CONFIG -u AZURE_AUTHORITY_HOST \
    AZURE_TENANT_ID=bench-tenant AZURE_CLIENT_ID=bench-client AZURE_CLIENT_SECRET=bench-secret-not-real \
  /usr/bin/time -v -o "$night_dir/time.txt" \
    "$bin" --log-format json run \
      --arm-endpoint "$url" --authority-host "$url" --ca-cert "$run_dir/ca.pem" \
      --auth client-secret --state "$state" --out "$night_dir/report" \
      --allowed-domain contoso.example --admin platform-team@contoso.example \
      >"$night_dir/run.out" 2>"$night_dir/run.log"
  code=$?
  set -e
  if [ "$code" -ne 0 ] && [ "$code" -ne 1 ]; then
    echo "[$label] run exited $code:" >&2; tail -20 "$night_dir/run.log" >&2; exit 1
  fi
  results+=("$label|$clusters|$quota|$night_dir|$(du -sb "$night_dir/report" | cut -f1)")
  done
  kill "$emu_pid" 2>/dev/null || true
  wait "$emu_pid" 2>/dev/null || true
  emu_pid=""
done

python3 - "${results[@]}" <<'EOF'
import json, math, re, sys

rows = []
for arg in sys.argv[1:]:
    size, clusters, quota, run_dir, report_bytes = arg.split("|")
    tables, fin = {}, None
    for line in open(f"{run_dir}/run.log"):
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("message") == "collected":
            tables[ev["table"]] = ev
        elif ev.get("message") == "audit finished":
            fin = ev
    if fin is None:
        sys.exit(f"{size}: no `audit finished` line in {run_dir}/run.log")
    tv = open(f"{run_dir}/time.txt").read()
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", tv).group(1))
    rows.append((size, int(clusters), quota, tables, fin, rss_kb, int(report_bytes)))

for size, clusters, quota, tables, fin, rss_kb, report_bytes in rows:
    print(f"\n== {size}: {clusters:,} clusters, quota {quota}, exit {fin['exit_code']}, "
          f"findings critical {fin['critical']} high {fin['high']} medium {fin['medium']} low {fin['low']}, gaps {fin['gaps']}")
    print(f"{'table':<18} {'rows':>10} {'pages':>7} {'requests':>9} {'ceil(rows/1000)':>16} {'bytes':>14} {'429s':>5}")
    for name, t in sorted(tables.items()):
        print(f"{name:<18} {t['rows']:>10,} {t['pages']:>7,} {t['requests']:>9,} "
              f"{math.ceil(t['rows'] / 1000):>16,} {t['bytes']:>14,} {t['throttled_429']:>5}")
    print(f"{'total':<18} {fin['rows']:>10,} {fin['pages']:>7,} {fin['requests']:>9,} {'':>16} "
          f"{fin['bytes']:>14,} {fin['throttled_429']:>5}")
    print(f"stages ms: collect {fin['collect_ms']:,}  classify {fin['classify_ms']:,}  "
          f"report {fin['report_ms']:,}  mail {fin['mail_ms']:,}  total {fin['total_ms']:,}  "
          f"(classify+report {fin['classify_ms'] + fin['report_ms']:,})")
    print(f"peak RSS {rss_kb / 1024:,.0f} MiB; reports on disk {report_bytes / 1e6:,.1f} MB")
    # Resource Graph's default quota is 15 queries per 5 s: requests / 3 per s is the
    # least time any client needs for them (`arm/subscriptions` is ARM, not counted).
    arg = {n: t for n, t in tables.items() if not n.startswith(("arm/", "graph"))}
    arg_reqs = sum(t["requests"] for t in arg.values())
    floor = arg_reqs / 3
    print("Resource Graph requests: " + ", ".join(f"{n} {t['requests']:,}" for n, t in sorted(arg.items()))
          + f"; total {arg_reqs:,}; floor at the default quota {arg_reqs:,} / 3 per s = {floor:.1f} s")
    if quota != "off":
        actual = fin["collect_ms"] / 1000
        print(f"at the quota: collect {actual:.1f} s = {100 * actual / max(floor, 0.001):.0f}% of the floor")

if len(rows) > 1:
    print("\n== cost per cluster (µs), S→M→L linear when the columns stay flat")
    print(f"{'size':<5} {'clusters':>9} {'collect':>8} {'classify':>9} {'report':>7} {'mail':>6} {'total':>7} {'RSS KiB':>8}")
    for size, clusters, quota, tables, fin, rss_kb, _ in rows:
        per = lambda ms: 1000 * ms / clusters
        print(f"{size:<5} {clusters:>9,} {per(fin['collect_ms']):>8.0f} {per(fin['classify_ms']):>9.0f} "
              f"{per(fin['report_ms']):>7.0f} {per(fin['mail_ms']):>6.0f} {per(fin['total_ms']):>7.0f} "
              f"{rss_kb / clusters:>8.2f}")
EOF
