#!/usr/bin/env bash
# Before/after speed of two cisleuth binaries on the same arguments, runs alternating so that
# machine noise hits both alike; prints each run and the medians (wall seconds).
#
#   scripts/ab.sh BEFORE_BIN AFTER_BIN RUNS -- scan path /tmp/corp128 --format jsonl
set -euo pipefail
before=${1:?before binary}
after=${2:?after binary}
runs=${3:?runs}
shift 3
[ "${1:-}" = "--" ] && shift
one() {
  local bin=$1
  shift
  local t0 t1
  t0=$(date +%s.%N)
  "$bin" "$@" > /dev/null 2>&1 || true
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
b=()
a=()
for i in $(seq "$runs"); do
  b+=("$(one "$before" "$@")")
  a+=("$(one "$after" "$@")")
  echo "run $i: before ${b[-1]} s, after ${a[-1]} s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
mb=$(median "${b[@]}")
ma=$(median "${a[@]}")
echo "median: before $mb s, after $ma s, after/before $(echo "scale=4; $ma / $mb" | bc)"
