#!/usr/bin/env bash
# Golden outputs: what the binary prints for a fixed set of commands on the bundled examples,
# so a refactor that must not change behaviour can be checked byte for byte.
#
#   scripts/golden.sh record DIR [BINARY]   write the outputs into DIR
#   scripts/golden.sh check DIR [BINARY]    record into a temporary folder and diff against DIR
#
# One worker thread (so findings come in one order); timings (seconds, MiB/s, elapsed_secs,
# JUnit's time) are replaced by `T` before comparing; everything else must be identical.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?record or check}
dir=${2:?output folder}
bin=${3:-target/release/cisleuth}

record() {
  local out=$1
  mkdir -p "$out"
  local n=0
  run() {
    # One command: stdout, stderr and the exit code, each in its own file.
    n=$((n + 1))
    local name
    name=$(printf '%02d' "$n")
    printf '%s\n' "$*" > "$out/$name.cmd"
    set +e
    "$@" > "$out/$name.out" 2> "$out/$name.err"
    echo $? > "$out/$name.rc"
    set -e
    sed -i -E 's/[0-9]+\.[0-9]+ s \([0-9.]+ MiB\/s\)/T s (T MiB\/s)/g; s/"elapsed_secs": ?[0-9.e-]+/"elapsed_secs":T/g; s/"mib_per_sec": ?[0-9.e-]+/"mib_per_sec":T/g; s/ time="[0-9.]+"/ time="T"/g' \
      "$out/$name.out" "$out/$name.err"
  }
  for f in jsonl json sarif csv junit human; do
    run "$bin" scan path examples --format "$f" --no-repo-config -j 1
  done
  run "$bin" scan path examples --format jsonl --show-secrets --no-repo-config -j 1
  run "$bin" scan path examples --format jsonl --min-confidence low --no-repo-config -j 1
  run "$bin" scan - --format jsonl --no-repo-config < examples/build-log.txt
  run "$bin" scan - --format jsonl --no-repo-config < examples/step-output.json
  run "$bin" scan - --format jsonl --no-repo-config < examples/test-results.xml.gz
  run "$bin" rules list --json
  run "$bin" rules list
  run "$bin" rules check
  run "$bin" --help
  for c in scan rules baseline report triage; do
    run "$bin" "$c" --help
  done
  for c in "scan path" "scan -" "scan circleci" "rules list" "rules check" "baseline create"; do
    # shellcheck disable=SC2086
    run "$bin" $c --help
  done
}

case "$mode" in
  record) rm -rf "$dir"; record "$dir"; echo "recorded $(ls "$dir" | grep -c '\.cmd$') commands in $dir" ;;
  check)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    record "$tmp"
    if diff -r "$dir" "$tmp"; then echo "golden outputs identical"; else echo "golden outputs differ"; exit 1; fi
    ;;
  *) echo "usage: $0 record|check DIR [BINARY]" >&2; exit 2 ;;
esac
