#!/usr/bin/env bash
# cargo-deny: licenses, bans and sources always; advisories when the RustSec database
# can be had — fetched from GitHub, or a local clone given as ADVISORY_DB=/path/to/advisory-db.
set -euo pipefail
cd "$(dirname "$0")/.."
root=tests/.tools/cargo
deny="$root/bin/cargo-deny"
if [ ! -x "$deny" ]; then
  echo "installing cargo-deny 0.20.2 into $root (once; a few minutes)" >&2
  cargo install --locked --quiet cargo-deny@0.20.2 --root "$root"
fi
"$deny" check licenses bans sources
if [ -n "${ADVISORY_DB:-}" ]; then
  db=$(mktemp -d)
  ln -s "$(cd "$ADVISORY_DB" && pwd)" "$db/advisory-db-3157b0e258782691"
  sed "s|^ignore = \[\]|ignore = []\ndb-path = \"$db\"|" deny.toml > "$db/deny.toml"
  "$deny" --offline check advisories --config "$db/deny.toml" 2>/dev/null \
    || "$deny" --offline --config "$db/deny.toml" check advisories
elif git ls-remote --exit-code https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
  "$deny" check advisories
else
  echo "WARNING: advisories NOT checked: GitHub (RustSec advisory-db) unreachable and ADVISORY_DB unset" >&2
fi
