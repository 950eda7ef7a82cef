#!/usr/bin/env bash
# Reproduces the figures of BENCHMARKS.md on this machine: builds fhirbox and fhirbench,
# runs a server against a fresh database per data size, and runs every fhirbench
# scenario against it, each next to its ceiling. Not part of CI: it takes about 40
# minutes and wants a quiet machine.
#
#   .ci/bench.sh [outdir]                  (default /tmp/fhirbox-bench)
#   BACKEND=sqlite .ci/bench.sh [outdir]
#
# Environment: BACKEND is postgres (the default) or sqlite. On PostgreSQL, PGURL
# (default postgres://postgres@127.0.0.1:5432) names the server on which the databases
# fhirbox_bench_1k and fhirbox_bench_100k are (re)created; on SQLite they are the files
# outdir/fhirbox_bench_1k.db and outdir/fhirbox_bench_100k.db. Every output file starts
# with the backend's name, so that the runs of both can share outdir.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/fhirbox-bench}
backend=${BACKEND:-postgres}
case $backend in
postgres | sqlite) ;;
*)
  echo "bench.sh: BACKEND=$backend: want postgres or sqlite" >&2
  exit 2
  ;;
esac
pg=${PGURL:-postgres://postgres@127.0.0.1:5432}
mkdir -p "$out"
go build -o "$out/fhirbox" ./cmd/fhirbox
go build -o "$out/fhirbench" ./cmd/fhirbench
# fhirbench derives its data from the repository's Synthea sample (testdata/synthea),
# or from the directory FHIRBOX_SYNTHEA names.
port=18090
secret=bench-admin-secret

# run DB LOADN CONC SCENARIO...: one server per database, scenarios in order. Both the
# server and the ceiling reach PostgreSQL over loopback without TLS, as a server on the
# same host would be configured; on SQLite both open the database file, the ceiling
# beside the server.
run() {
  local db=$1 n=$2 conc=$3
  shift 3
  local url
  if [ "$backend" = sqlite ]; then
    url="sqlite:$out/$db.db"
    if [ "$n" -gt 0 ]; then
      rm -f "$out/$db.db" "$out/$db.db-wal" "$out/$db.db-shm"
    fi
  else
    url="$pg/$db?sslmode=disable"
    if [ "$n" -gt 0 ]; then
      psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    fi
  fi
  local name="$backend-$db"
  FHIRBOX_DATABASE_URL=$url FHIRBOX_ADMIN_SECRET=$secret FHIRBOX_ADDR=127.0.0.1:$port \
    FHIRBOX_BASE_URL=http://127.0.0.1:$port FHIRBOX_LOG_LEVEL=warn "$out/fhirbox" serve >"$out/server-$name.log" 2>&1 &
  local pid=$!
  # Waiting for the server to exit frees the port, and on SQLite the file's lock, for
  # the next run's server.
  trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' RETURN
  for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
  if [ "$n" -gt 0 ]; then
    "$out/fhirbench" -url "http://127.0.0.1:$port" -secret $secret -db "$url" -load "$n" \
      -observations-per-patient 3 -scenario read -d 2s -warmup 1s >"$out/load-$name.txt"
  fi
  for s in "$@"; do
    if [ "$s" = policies ]; then
      # 1,000 more policies, each linked to some other user or client: bearer reads
      # should not slow down (candidates are looked up by link, not scanned).
      for i in $(seq 1 1000); do
        printf '{"resourceType":"AccessPolicy","engine":"matcho","link":[{"reference":"User/other-%d"}],"matcho":{"request-method":"get"}}' "$i" |
          curl -sf -u admin:$secret -X PUT "http://127.0.0.1:$port/AccessPolicy/other-$i" -H 'Content-Type: application/json' --data-binary @- >/dev/null
      done
      echo "$name: $(curl -s -u admin:$secret "http://127.0.0.1:$port/AccessPolicy?_summary=count")"
      continue
    fi
    # SCENARIO@CLIENT measures with another of fhirbench's HTTP clients (-client).
    local scen=${s%@*} client=wire tag=${s%@*}
    if [ "$s" != "$scen" ]; then
      client=${s#*@}
      tag="$scen-${client//\//}"
    fi
    # Reads are the shortest requests, and the ceiling they are held to swings most with
    # the machine's drift: longer runs in more, shorter turns (see BENCHMARKS.md).
    local timing="-d 10s"
    case $scen in read | read-bearer-*) timing="-d 30s -rounds 10" ;; esac
    "$out/fhirbench" -url "http://127.0.0.1:$port" -secret $secret -db "$url" -scenario "$scen" -client "$client" \
      -c "$conc" $timing -warmup 2s >"$out/$name-c$conc-$tag.txt" || true
    echo "$name c=$conc $(tail -n 1 "$out/$name-c$conc-$tag.txt")"
  done
}

# Order matters: create and update add patients, so they come after the 1k searches.
# The @net/http runs measure with Go's HTTP client, as fhirbench did before its own
# (see BENCHMARKS.md).
run fhirbox_bench_1k 1000 16 read read-bearer-opaque read-bearer-jwt read@net/http read-bearer-opaque@net/http \
  policies read-bearer-opaque read-bearer-jwt
# The searches of issue 14 (chain, _has, _include and the same search without it, _text)
# are latency targets: one connection, at both sizes.
issue14="search-chain search-has search-observation-patient search-include search-text"
run fhirbox_bench_1k 0 1 search-family search-family-exact search-birthdate search-identifier search-observation $issue14
run fhirbox_bench_1k 0 16 search-family search-birthdate search-identifier search-observation \
  token-client-credentials introspect token-jwt token-password create update
run fhirbox_bench_100k 100000 1 search-family search-family-exact search-birthdate search-identifier search-observation $issue14
run fhirbox_bench_100k 0 16 read search-family
