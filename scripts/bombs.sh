#!/usr/bin/env bash
# The full-size resource bombs of issue 12, built here (small files that expand to GiBs or
# TiBs), each run through cisleuth with /usr/bin/time: wall time, peak RSS, exit code, and
# the first refusal or error line. The tests build the same bombs scaled down; this runs them
# at full size.
#
#   scripts/bombs.sh [TIMEOUT_S=120]
#
# CISLEUTH=path runs another binary (a before build) instead of target/release/cisleuth.
# A run that hits the timeout is reported as such (before the fixes, several ran for hours).
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=${1:-120}
BIN=${CISLEUTH:-target/release/cisleuth}
[ -n "${CISLEUTH:-}" ] || cargo build --release --quiet
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

python3 - "$tmp" <<'PY'
import bz2, gzip, io, os, sys, tarfile, base64, json
d = sys.argv[1]
MiB, GiB = 1 << 20, 1 << 30

def tar_header(name, size, kind):
    t = tarfile.TarInfo(name); t.size = size; t.type = kind
    return t.tobuf(format=tarfile.GNU_FORMAT)[-512:]  # the entry's own header block

def pad(n):
    return b"\0" * ((-n) % 512)

# Concatenated compressed streams: gzip and bzip2 readers read them as one, so a bomb of
# GiBs is built from one compressed block repeated, in seconds.
def gz(b): return gzip.compress(b, 1)
def bz(b): return bz2.compress(b, 9)

# 1. A GNU long name of 2 GiB (tar.gz): the name itself is the bomb.
block = gz(b"n" * (64 * MiB))
with open(f"{d}/longname.tar.gz", "wb") as f:
    f.write(gz(tar_header("././@LongLink", 2 * GiB, tarfile.GNUTYPE_LONGNAME)))
    for _ in range(32): f.write(block)
    f.write(gz(pad(2 * GiB) + tar_header("x.log", 5, tarfile.REGTYPE) + b"hello" + pad(5) + b"\0" * 1024))

# 2. A PAX header of 1 GiB (tar.gz).
with open(f"{d}/pax.tar.gz", "wb") as f:
    f.write(gz(tar_header("pax", GiB, tarfile.XHDTYPE)))
    for _ in range(16): f.write(block)
    f.write(gz(pad(GiB) + tar_header("x.log", 5, tarfile.REGTYPE) + b"hello" + pad(5) + b"\0" * 1024))

# 3. A directory entry declaring 1 TiB of data (tar.bz2).
zeros = bz(b"\0" * (45 * MiB))
n = (1 << 40) // (45 * MiB)
with open(f"{d}/dir1tib.tar.bz2", "wb") as f:
    f.write(bz(tar_header("dir/", n * 45 * MiB, tarfile.DIRTYPE)))
    for _ in range(n): f.write(zeros)
    f.write(bz(b"\0" * 1024))

# 4. Nested: a tar.gz holding a 2 GiB tar (one member of zeros), read whole before.
zblock = gz(b"\0" * (64 * MiB))
with open(f"{d}/nested.tar.gz", "wb") as f:
    inner = 512 + 2 * GiB + 1024
    f.write(gz(tar_header("inner.tar", inner, tarfile.REGTYPE) + tar_header("zeros.bin", 2 * GiB, tarfile.REGTYPE)))
    for _ in range(32): f.write(zblock)
    f.write(gz(b"\0" * 1024 + pad(inner) + b"\0" * 1024))

# 5. bzip2 on stdin: a few KB -> 1 GiB.
with open(f"{d}/stdin.bz2", "wb") as f:
    for _ in range(GiB // (45 * MiB) + 1): f.write(zeros)

# 6. A 32 MiB base64 line of random bytes (every `/` may start a run).
with open(f"{d}/b64line.log", "w") as f:
    f.write("x " + base64.b64encode(os.urandom(24 * MiB)).decode() + "\n")

# 7. CircleCI step output: one message of 50 MB on one line, then a secret.
msg = ("word " * (10 * MiB)) + "token ghp_Zq3kYb8TfW2mN5rXc7vH1jL9pD4sGa0t7Hkq\r\n"
with open(f"{d}/step.json", "w") as f:
    json.dump([{"message": msg, "time": "2023-01-04T00:00:00Z", "type": "out"}], f)
PY

run() {  # name, then the command's arguments; stdin from $STDIN if set
  local name=$1; shift
  local input=${STDIN:-${!#}}
  [ -f "$input" ] || input=${@: -3:1}
  local size; size=$(stat -c %s "$input" 2>/dev/null || echo -)
  set +e
  if [ -n "${STDIN:-}" ]; then
    /usr/bin/time -f '%e %M' -o "$tmp/t" timeout "$LIMIT" "$BIN" "$@" < "$STDIN" > /dev/null 2> "$tmp/err"
  else
    /usr/bin/time -f '%e %M' -o "$tmp/t" timeout "$LIMIT" "$BIN" "$@" > /dev/null 2> "$tmp/err"
  fi
  local rc=$?
  set -e
  local line; line=$(grep -m1 -E 'refused|error|not opened|skipped' "$tmp/err" | cut -c1-110 || true)
  if [ "$rc" -eq 124 ]; then
    printf '%-28s %10s  timed out after %s s\n' "$name" "$size" "$LIMIT"
  else
    printf '%-28s %10s  %6.1f s  %6.0f MiB  exit %d  %s\n' "$name" "$size" \
      "$(tail -n1 "$tmp/t" | cut -d' ' -f1)" "$(echo "$(tail -n1 "$tmp/t" | cut -d' ' -f2) / 1024" | bc -l)" "$rc" "$line"
  fi
}
printf '%-28s %10s  %s\n' bomb bytes 'wall, peak RSS, exit, first refusal'
run "2 GiB GNU long name"  scan path "$tmp/longname.tar.gz" --format jsonl
run "1 GiB PAX header"     scan path "$tmp/pax.tar.gz" --format jsonl
run "1 TiB directory entry" scan path "$tmp/dir1tib.tar.bz2" --format jsonl
run "2 GiB nested tar"     scan path "$tmp/nested.tar.gz" --format jsonl
STDIN="$tmp/stdin.bz2" run "bzip2 -> 1 GiB on stdin" scan - --format jsonl
run "32 MiB base64 line"   scan path "$tmp/b64line.log" --format jsonl
run "50 MB step message"   scan path "$tmp/step.json" --format jsonl
# 10 GiB of gzip on stdin, compressed as it is read.
set +e
start=$(date +%s.%N)
head -c 10G /dev/zero | gzip -1 | /usr/bin/time -f '%e %M' -o "$tmp/t" timeout "$LIMIT" "$BIN" scan - --format jsonl > /dev/null 2> "$tmp/err"
rc=${PIPESTATUS[2]}
set -e
if [ "$rc" -eq 124 ]; then
  printf '%-28s %10s  timed out after %s s\n' "10 GiB gzip on stdin" "-" "$LIMIT"
else
  printf '%-28s %10s  %6.1f s  %6.0f MiB  exit %d  %s\n' "10 GiB gzip on stdin" "-" \
    "$(tail -n1 "$tmp/t" | cut -d' ' -f1)" "$(echo "$(tail -n1 "$tmp/t" | cut -d' ' -f2) / 1024" | bc -l)" "$rc" \
    "$(grep -m1 -E 'refused|error' "$tmp/err" | cut -c1-110 || true)"
fi
