#!/usr/bin/env bash
# Lints, renders and validates the Helm chart with real Helm (helm-python-sdk bundles
# Helm's Go library) and the Kubernetes schemas (kubernetes-validate). Needs only
# python3 (>= 3.11) with venv; everything else is installed into tests/.tools/venv.
#
#   tests/helm/run.sh            # all chart tests
#   tests/helm/run.sh -k schema  # extra arguments go to pytest
#
# The rendered CronJob schedule is checked with the tool's own cron parser when
# AKS_AUDIT_BIN points to the binary (e.g. target/debug/aks-identity-audit); CI sets it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/tests/.tools/venv"
python="${PYTHON:-python3}"

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "run.sh: needs Python >= 3.11 (tomllib; helm-python-sdk needs >= 3.10); set PYTHON=..." >&2
  exit 2
fi

requirements="$here/requirements.txt"
# The venv is shared with scripts/setup-test-tools.sh (tests/requirements.txt): add to
# it, never recreate it. The stamp records which helm requirements are installed.
stamp="$venv/.helm-requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"

if [[ ! -x "$venv/bin/python" ]] || [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "run.sh: installing $(grep -c '==' "$requirements") pinned packages into $venv" >&2
  start=$(date +%s)
  [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$requirements"
  "$venv/bin/python" -m pip check >/dev/null
  echo "$want" > "$stamp"
  echo "run.sh: venv ready in $(( $(date +%s) - start ))s" >&2
fi

cd "$root"
exec "$venv/bin/python" -m pytest -p no:cacheprovider "$here" "$@"
