#!/usr/bin/env bash
# Benchmark of one nightly run with every delivery on (issue 14), against local
# stand-ins for Azure: the project's emulator serves Resource Graph, tokens, Microsoft
# Graph sendMail and the Logs Ingestion API; Azurite (HTTPS, OAuth) is Blob Storage;
# tests/webhook/sink.py is a Teams webhook that validates each card.
#
#   scripts/bench-deliveries.sh [S|M|L]      (default M)
#
# Needs the test tools (scripts/setup-test-tools.sh: Azurite, the Python venv) and
# openssl. Prints the run's stage times from its `audit finished` log line and what
# each delivery did. Tenants are cached like scripts/bench.sh's ($BENCH_CACHE).
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-M}
case "$size" in
  S) read -r subs clusters ras <<<"100 1000 10000" ;;
  M) read -r subs clusters ras <<<"1000 10000 100000" ;;
  L) read -r subs clusters ras <<<"10000 100000 1000000" ;;
  *) echo "usage: $0 [S|M|L]" >&2; exit 2 ;;
esac
target=${CARGO_TARGET_DIR:-$PWD/target}
cache=${BENCH_CACHE:-$target/bench}
seed=42
bin=${BENCH_BIN:-$target/release/aks-identity-audit}
if [ -z "${BENCH_BIN:-}" ]; then
  echo "building the release binary (with the emulator)" >&2
  cargo build --release --locked --quiet
fi
azurite=$PWD/tests/.tools/azurite/node_modules/.bin/azurite-blob
py=$PWD/tests/.tools/venv/bin/python
[ -x "$azurite" ] && [ -x "$py" ] || { echo "run scripts/setup-test-tools.sh first" >&2; exit 2; }

gen=$(sha256sum < "$(dirname "$0")/../crates/azure-emulator/src/generate.rs" | cut -c1-10)  # as scripts/bench.sh
tenant="$cache/tenant-$size-seed$seed-gen$gen"
if [ ! -f "$tenant/.complete" ]; then
  rm -rf "$tenant"
  "$bin" emulator generate --subscriptions "$subs" --clusters "$clusters" \
    --role-assignments "$ras" --seed "$seed" --out "$tenant" >&2
  touch "$tenant/.complete"
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A CA and a certificate for 127.0.0.1, for Azurite and the webhook sink.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=bench CA" \
  -keyout "$work/ca.key" -out "$work/ca.pem" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$work/leaf.key" -out "$work/leaf.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$work/ext"
openssl x509 -req -in "$work/leaf.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 1 -extfile "$work/ext" -out "$work/leaf.pem" 2>/dev/null

"$bin" emulator serve --inventory "$tenant" --quota off --ca-out "$work/emu-ca.pem" \
  >"$work/emu.out" 2>"$work/emu.err" &
pids+=($!)
url=""
for _ in $(seq 1 600); do
  url=$(sed -n 's/^emulator listening on \(https:[^ ]*\).*/\1/p' "$work/emu.out" || true)
  [ -n "$url" ] && break
  sleep 0.2
done
[ -n "$url" ] || { echo "emulator did not start" >&2; cat "$work/emu.err" >&2; exit 1; }
cat "$work/emu-ca.pem" "$work/ca.pem" >"$work/bundle.pem"

aport=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$azurite" --blobHost 127.0.0.1 --blobPort "$aport" --location "$work/azurite" \
  --oauth basic --cert "$work/leaf.pem" --key "$work/leaf.key" --silent --disableTelemetry \
  >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do
  (exec 3<>"/dev/tcp/127.0.0.1/$aport") 2>/dev/null && break
  sleep 0.2
done

tenant_id=bench-tenant
token=$(curl -s --cacert "$work/emu-ca.pem" -X POST "$url/$tenant_id/oauth2/v2.0/token" \
  -d grant_type=client_credentials -d client_id=bench-client -d client_secret=bench-secret-not-real \
  --data-urlencode scope=https://storage.azure.com/.default | "$py" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -sf --cacert "$work/ca.pem" -X PUT -H "Authorization: Bearer $token" \
  -H "x-ms-version: 2025-01-05" -H "content-length: 0" \
  "https://127.0.0.1:$aport/devstoreaccount1/reports?restype=container" >/dev/null

mkfifo "$work/sink.in"
"$py" tests/webhook/sink.py --cert "$work/leaf.pem" --key "$work/leaf.key" \
  --schema tests/webhook/adaptive-card-1.5.schema.json --out "$work/posts.jsonl" \
  <"$work/sink.in" >"$work/sink.out" 2>"$work/sink.err" &
pids+=($!)
exec 4>"$work/sink.in"
sport=""
for _ in $(seq 1 300); do
  sport=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$work/sink.out" || true)
  [ -n "$sport" ] && break
  sleep 0.2
done
[ -n "$sport" ] || { echo "webhook sink did not start" >&2; cat "$work/sink.err" >&2; exit 1; }

echo "[$size] auditing with Graph mail, Blob upload, a Teams webhook and Log Analytics" >&2
set +e
env -u AKS_AUDIT_CONFIG -u AZURE_AUTHORITY_HOST \
  AZURE_TENANT_ID=$tenant_id AZURE_CLIENT_ID=bench-client AZURE_CLIENT_SECRET=bench-secret-not-real \
  /usr/bin/time -v -o "$work/time.txt" \
  "$bin" --log-format json run \
    --arm-endpoint "$url" --authority-host "$url" --graph-endpoint "$url" \
    --ca-cert "$work/bundle.pem" --auth client-secret \
    --state "$work/state" --out "$work/report" \
    --allowed-domain contoso.example --admin platform-team@contoso.example \
    --mail-via graph --mail-from aks-audit@contoso.example \
    --upload "https://127.0.0.1:$aport/devstoreaccount1/reports/aks" \
    --upload-base-url "https://reports.contoso.example/" \
    --webhook "https://127.0.0.1:$sport/teams/bench" --webhook-format teams \
    --report-url "https://reports.contoso.example/aks/" \
    --log-analytics "$url" --dcr-id dcr-00112233445566778899aabbccddeeff \
    --stream Custom-AksIdentityAudit \
    >"$work/run.out" 2>"$work/run.log"
code=$?
set -e
if [ "$code" -ne 0 ] && [ "$code" -ne 1 ]; then
  echo "run exited $code:" >&2; tail -20 "$work/run.log" >&2; exit 1
fi
"$py" - "$work/run.log" "$work/time.txt" "$work/posts.jsonl" "$size" "$code" <<'EOF'
import json, sys
log, timef, posts, size, code = sys.argv[1:]
fin = [json.loads(l) for l in open(log) if '"audit finished"' in l][-1]
rss = next(int(l.split()[-1]) for l in open(timef) if "Maximum resident" in l)
hooks = [json.loads(l) for l in open(posts)]
print(f"== {size}: {fin['clusters']:,} clusters, exit {code}")
# report_ms runs from the end of classification to the end of the outbox and history
# commit: it contains the upload (upload_ms), which runs between reports and outbox.
print(f"stages ms: collect {fin['collect_ms']:,}  classify {fin['classify_ms']:,}  "
      f"reports+upload+outbox {fin['report_ms']:,} (upload {fin['upload_ms']:,})  "
      f"mail {fin['mail_ms']:,}  log_analytics {fin['log_analytics_ms']:,}  total {fin['total_ms']:,}")
print(f"mail: sent {fin.get('mail_sent')} undelivered {fin.get('mail_undelivered')}; "
      f"upload: uploaded {fin.get('uploaded')} failed {fin.get('upload_failed')}; "
      f"webhooks: sent {fin.get('webhooks_sent')} failed {fin.get('webhooks_failed')} "
      f"(sink: {sum(h['valid'] for h in hooks)} valid of {len(hooks)}); "
      f"log analytics: rows sent {fin.get('log_analytics_rows_sent')} failed {fin.get('log_analytics_rows_failed')}")
queue = [json.loads(l) for l in open(log) if "delivery queue: this run's" in l]
if queue:
    print(f"delivery queue (digest and Log Analytics batches written to the state folder, "
          f"part of reports+upload+outbox): {queue[-1]['items']} items in {queue[-1]['ms']:,} ms")
print(f"peak RSS {rss // 1024:,} MiB")
EOF
