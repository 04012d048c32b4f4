#!/usr/bin/env bash
# Regenerates the README's screenshots in docs/ with headless Chromium, and measures
# the report of the demo and of a generated 2,000-cluster tenant: HTML size and the
# page count of the print-to-PDF (A4/Letter as Chromium's default paper).
#
#   scripts/screenshots.sh            # writes docs/*.png and docs/report-numbers.md
#
# Needs chromium (scripts/setup-test-tools.sh installs it). Uses the debug build
# (the numbers are sizes and pages, not times). The generated tenant: 40 subscriptions,
# 2,000 clusters, 20,000 role assignments, seed 42 (`emulator generate`, as
# scripts/bench.sh does at larger sizes).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v chromium >/dev/null || { echo "chromium missing: run scripts/setup-test-tools.sh" >&2; exit 2; }
cargo build --quiet
bin=${CARGO_TARGET_DIR:-$PWD/target}/debug/aks-identity-audit
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
docs=$PWD/docs

shot() { # page width height out [extra flags]
  local page=$1 w=$2 h=$3 out=$4; shift 4
  chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
    --user-data-dir="$work/profile" --window-size="$w,$h" --screenshot="$out" "$@" \
    "file://$page" 2>/dev/null
}
pdf() { # page out
  chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --no-pdf-header-footer \
    --user-data-dir="$work/profile" --print-to-pdf="$2" "file://$1" 2>/dev/null
}
pages() { python3 -c 'import re,sys; print(len(re.findall(rb"/Type\s*/Page[^s]", open(sys.argv[1],"rb").read())))' "$1"; }

echo "demo report" >&2
"$bin" run --demo --out "$work/demo" >/dev/null 2>&1 || [ $? -eq 1 ]
demo=$work/demo/report.html
shot "$demo" 1200 1800 "$docs/report.png"
shot "$demo" 390 1400 "$docs/report-phone.png"
# The print stylesheet as the PDF applies it, drawn as one long page (A4 width).
sed 's/@media print {/@media all {/' "$demo" >"$work/print.html"
shot "$work/print.html" 794 2200 "$docs/report-print.png"
pdf "$demo" "$work/demo.pdf"
# One owner's mail, the HTML part of the first message in the outbox.
python3 - "$work/demo/outbox" "$work/mail.html" <<'EOF'
import email, pathlib, sys
from email import policy
eml = sorted(pathlib.Path(sys.argv[1]).glob("*.eml"))[0]
msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
pathlib.Path(sys.argv[2]).write_text(msg.get_body(preferencelist=("html",)).get_content())
EOF
shot "$work/mail.html" 390 1400 "$docs/email-phone.png"

echo "generated tenant: 2,000 clusters" >&2
"$bin" emulator generate --subscriptions 40 --clusters 2000 --role-assignments 20000 \
  --seed 42 --out "$work/t2000" >/dev/null
"$bin" run --inventory "$work/t2000" --out "$work/r2000" --no-email >/dev/null 2>&1 || [ $? -eq 1 ]
pdf "$work/r2000/report.html" "$work/r2000.pdf"
detailed=$(grep -c '<tr class="detail">' "$work/r2000/report.html" || true)

{
  echo "| report | clusters | with findings (detailed) | report.html | PDF pages |"
  echo "|---|---:|---:|---:|---:|"
  for n in demo r2000; do
    clusters=$(($(wc -l <"$work/$n/clusters.csv") - 1))
    d=$(grep -c '<tr class="detail">' "$work/$n/report.html" || true)
    size=$(python3 -c "import os,sys; print(f'{os.path.getsize(sys.argv[1])/1e6:.2f} MB')" "$work/$n/report.html")
    label=$([ "$n" = demo ] && echo "demo (\`run --demo\`)" || echo "generated, seed 42")
    echo "| $label | $clusters | $d | $size | $(pages "$work/$n.pdf") |"
  done
} | tee "$docs/report-numbers.md"
echo "wrote docs/report.png, docs/report-phone.png, docs/report-print.png, docs/email-phone.png, docs/report-numbers.md ($detailed clusters detailed at 2,000)" >&2
