#!/usr/bin/env bash
# What a new user gets: clones the committed HEAD into an empty temporary folder
# (nothing but the repository beside it) and runs the README's test command
# there with PostgreSQL unreachable: FHIRBOX_TEST_DATABASE_URL names a closed port on
# 127.0.0.1 and FHIRBOX_TEST_BACKENDS is unset. Passes when the suite passes (its SQLite
# half) and every package with PostgreSQL tests printed the one line saying they were
# skipped. .ci/run calls it after the main suite; it takes a few minutes.
#
# The suite runs under script(1), in a terminal of its own, as a user's would: go test
# ./... hides everything a passing package prints, so testdb writes that line to the
# terminal (see pkg/testdb).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
head=$(git -C "$root" rev-parse HEAD)
log() { echo "fresh-clone: $*"; }

if [ -n "$(git -C "$root" status --porcelain)" ]; then
  log "note: uncommitted changes in $root are not part of the clone"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone -q --no-checkout "$root" "$tmp/fhirbox"
git -C "$tmp/fhirbox" checkout -q --detach "$head"
log "cloned $head into $tmp/fhirbox ($(ls -A "$tmp" | tr '\n' ' '))"

# A port nothing listens on.
port=
for p in 1 9 54329 65432; do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    port=$p
    break
  fi
done
[ -n "$port" ] || { log "no closed port found on 127.0.0.1"; exit 1; }

cd "$tmp/fhirbox"
unset FHIRBOX_TEST_BACKENDS FHIRBOX_SYNTHEA FHIRBOX_TEST_BROWSER
export FHIRBOX_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/test?sslmode=disable"
cmd="go test -count=1 -timeout 30m ./..."
log "FHIRBOX_TEST_DATABASE_URL=$FHIRBOX_TEST_DATABASE_URL, FHIRBOX_TEST_BACKENDS unset: $cmd"
out=$tmp/go-test.log
rc=0
if command -v script >/dev/null 2>&1; then
  script -qefc "$cmd" "$out" </dev/null || rc=$?
else
  # Without a terminal the lines go to stderr, which -v shows.
  log "script(1) not found: running with -v instead of in a terminal"
  go test -count=1 -timeout 30m -v ./... >"$out" 2>&1 || rc=$?
  grep -E '^(ok|FAIL|---|panic)|PostgreSQL tests skipped' "$out" || true
fi
tr -d '\r' <"$out" >"$out.txt"
if [ "$rc" -ne 0 ]; then
  log "FAIL: the suite failed (exit $rc) in a fresh clone without PostgreSQL"
  exit 1
fi

# Every package whose tests use pkg/testdb, and testdb itself, says once that it
# skipped PostgreSQL.
mod=$(go list -m)
want=$( (
  echo "$mod/pkg/testdb"
  go list -f '{{.ImportPath}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}' ./... |
    awk -v t="$mod/pkg/testdb" '{ for (i = 2; i <= NF; i++) if ($i == t) { print $1; break } }'
) | sort -u)
bad=0
for p in $want; do
  n=$(grep -cF "$p: PostgreSQL tests skipped: " "$out.txt" || true)
  if [ "$n" -ne 1 ]; then
    log "FAIL: $p printed the skip line $n times, want once"
    bad=1
  fi
done
[ "$bad" -eq 0 ] || exit 1
log "ok: the suite passed, and the $(echo "$want" | wc -w) packages with PostgreSQL tests each said once that they were skipped"
