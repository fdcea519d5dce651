#!/usr/bin/env bash
# CircleCI source throughput against the fake CircleCI (tests/support/fake_circleci.rs) with
# added latency: wall time and requests/s next to the sequential lower bound
# (requests x latency), the highest number of requests the fake saw in flight, and whether
# every 429 was honoured.
#
#   scripts/bench-circleci.sh [JOBS=2000] [STEPS=4] [LATENCY_MS=50] [CONCURRENCY=16] [RATE_LIMIT_EVERY=0] [ARTIFACTS=0] [OUTPUT_MIB=0] [ARTIFACT_MIB=0]
#
# CISLEUTH=path runs another binary (a before build) instead of target/release/cisleuth.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${1:-2000}; STEPS=${2:-4}; LAT=${3:-50}; CONC=${4:-16}; EVERY=${5:-0}; ART=${6:-0}; OUTMIB=${7:-0}; ARTMIB=${8:-0}
BIN=${CISLEUTH:-target/release/cisleuth}
cargo build --release --quiet --example fake_circleci
cargo build --release --quiet
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkfifo "$tmp/ctl"
target/release/examples/fake_circleci "$JOBS" "$STEPS" "$LAT" "$EVERY" "$ART" "$OUTMIB" "$ARTMIB" < "$tmp/ctl" > "$tmp/fake.out" &
fake=$!
exec 3> "$tmp/ctl"               # hold the fake's stdin open until we are done
while [ ! -s "$tmp/fake.out" ]; do sleep 0.05; done
read -r first < "$tmp/fake.out"
api=$(sed 's/.*api=\([^ ]*\).*/\1/' <<< "$first")
token=$(sed 's/.*token=\([^ ]*\).*/\1/' <<< "$first")
planted=$(sed 's/.*planted=\([^ ]*\).*/\1/' <<< "$first")
start=$(date +%s.%N)
set +e
CIRCLECI_TOKEN=$token /usr/bin/time -f '%U %S %M' -o "$tmp/rss" "$BIN" scan circleci \
  --host "$api" --project gh/acme/svc0 --concurrency "$CONC" --format jsonl -q > "$tmp/found.jsonl" 2> "$tmp/err"
rc=$?
set -e
end=$(date +%s.%N)
exec 3>&-                        # EOF: the fake prints its counters and exits
wait "$fake"
counters=$(tail -n 1 "$tmp/fake.out")
requests=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<< "$counters")
inflight=$(sed 's/.*max_in_flight=\([0-9]*\).*/\1/' <<< "$counters")
r429=$(sed 's/.*status_429=\([0-9]*\).*/\1/' <<< "$counters")
viol=$(sed 's/.*violations=\([0-9]*\).*/\1/' <<< "$counters")
found=$(wc -l < "$tmp/found.jsonl")
awk -v w="$(echo "$end - $start" | bc)" -v n="$requests" -v l="$LAT" -v c="$CONC" -v j="$JOBS" -v s="$STEPS" \
    -v f="$found" -v p="$planted" -v m="$inflight" -v q="$r429" -v v="$viol" -v rc="$rc" -v rss="$(tail -n1 "$tmp/rss" | cut -d' ' -f3)" -v cpu="$(tail -n1 "$tmp/rss" | awk '{print $1+$2}')" 'BEGIN {
  seq = n * l / 1000
  printf "jobs %d x %d steps, latency %d ms, --concurrency %d\n", j, s, l, c
  printf "wall %.1f s, cpu %.1f s, %d requests, %.0f requests/s, peak RSS %.0f MiB, exit %d\n", w, cpu, n, n / w, rss / 1024, rc
  printf "sequential lower bound %.1f s (requests x latency): %.1fx faster\n", seq, seq / w
  printf "max in flight at the fake: %d (limit %d); 429s answered: %d, requests during a 429 pause: %d\n", m, c, q, v
  printf "findings %d of %d planted\n", f, p
}'
grep -v '^$' "$tmp/err" | head -5 || true
