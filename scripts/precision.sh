#!/usr/bin/env bash
# Precision on real CI output: what cisleuth reports on corpora of real logs, per rule, per
# confidence and per 100 MiB, with the line each finding stands on, so that a change to a rule
# or to the evidence model shows its effect on every corpus at once.
#
#   scripts/precision.sh [--labels LABELS.tsv] [--check] [--bin BINARY] PATH...
#
# PATH is a folder, a file or an archive (a .tar.xz is scanned through cisleuth's own archive
# walker). Every confidence is scanned (--min-confidence low); the tables count what the default
# (medium and up) reports and, apart, what only --min-confidence low shows.
# With --labels (the corpus's labels.tsv: file glob, secret or a 12+ character part of it,
# verdict true|false|either), each finding is matched to a label; findings of no label are false
# positives and are listed with their line. --check exits 1 when, at the default confidence, a
# `true` label is missed, a `false` label is reported, or anything unlabelled is reported.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin="$here/../target/release/cisleuth"
labels=""
check=""
while [ $# -gt 0 ]; do
  case "$1" in
    --labels) labels=$2; shift 2 ;;
    --check) check=1; shift ;;
    --bin) bin=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    --) shift; break ;;
    -*) echo "precision.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
[ -x "$bin" ] || { echo "precision.sh: no binary at $bin (cargo build --release)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Builds before the evidence model have no --min-confidence: everything they report counts as shown.
low=(--min-confidence low)
"$bin" scan path --help | grep -q -- --min-confidence || low=()
set +e
"$bin" scan path "$@" --format jsonl --show-secrets "${low[@]}" >"$tmp/findings.jsonl" 2>"$tmp/stderr"
rc=$?
set -e
if [ "$rc" -ge 2 ]; then
  echo "precision.sh: the scan did not complete (exit $rc):" >&2
  cat "$tmp/stderr" >&2
  exit 2
fi
python3 "$here/precision.py" "$tmp/findings.jsonl" "$tmp/stderr" "$labels" "$check"
