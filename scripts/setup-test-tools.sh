#!/usr/bin/env bash
# Installs everything the test suite needs beyond Rust, idempotently:
#  - a Python venv at tests/.tools/venv with the pinned packages of tests/requirements.txt
#  - Debian's chromium (for rendering the HTML report), when apt-get is available
#  - Azurite (Microsoft's Azure Storage emulator, npm) at tests/.tools/azurite, pinned
#  - a Japanese font (fonts-noto-cjk) when fontconfig knows none, so screenshots of
#    the --lang ja report show text, not empty boxes ("tofu")
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=tests/.tools
mkdir -p "$tools"
py=${PYTHON:-python3}
if [ ! -x "$tools/venv/bin/python" ]; then
  "$py" -m venv "$tools/venv"
fi
req=tests/requirements.txt
stamp="$tools/venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$tools/venv/bin/pip" install --disable-pip-version-check -q -r "$req"
  echo "$want" > "$stamp"
fi
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "warning: chromium missing and apt-get unavailable; browser tests will fail" >&2
  fi
fi
# Azurite for the Blob upload tests (tests/it/upload.rs): pinned, from the npm registry.
azurite_version=3.37.0
azurite_pkg="$tools/azurite/node_modules/azurite/package.json"
if [ ! -f "$azurite_pkg" ] || ! grep -q "\"version\": \"$azurite_version\"" "$azurite_pkg"; then
  if command -v npm >/dev/null 2>&1; then
    mkdir -p "$tools/azurite"
    npm install --silent --no-audit --no-fund --prefix "$tools/azurite" "azurite@$azurite_version" >/dev/null
  else
    echo "warning: npm missing; the Azurite upload tests will fail" >&2
  fi
fi
if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=ja 2>/dev/null)" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends fonts-noto-cjk >/dev/null
  else
    echo "warning: no Japanese font and apt-get unavailable; Japanese screenshots show empty boxes" >&2
  fi
fi
echo "test tools ready: $tools/venv, $(command -v chromium || echo 'no chromium')"
