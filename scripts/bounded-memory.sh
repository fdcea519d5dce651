#!/usr/bin/env bash
# Peak RSS of `cisleuth scan -` on generated streams of growing size: it must not grow with
# the input (the scanner streams; nothing holds the whole input).
#
#   scripts/bounded-memory.sh [BIN]      # default target/release/cisleuth
#
# Each stream is CI-log text (the bundled examples' lines, ANSI codes, long and short lines,
# a planted token every 64 MiB) generated on the fly by Python and piped in; the findings
# are counted and must match the number planted.
set -euo pipefail
BIN=${1:-target/release/cisleuth}
gen() { # MiB
  python3 - "$1" <<'PY'
import sys, random
mib = int(sys.argv[1]); r = random.Random(1); out = sys.stdout
B62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
block = []
for i in range(20000):
    k = i % 5
    if k == 0: block.append('\x1b[32m✔\x1b[0m test_%d passed (%dms)' % (i, i % 997))
    elif k == 1: block.append('sha256:%064x: Pull complete' % r.getrandbits(256))
    elif k == 2: block.append('Downloading %d%%\r' % (i % 100) * 20)
    elif k == 3: block.append('x' * (i % 3000))
    else: block.append('npm WARN deprecated pkg@1.%d.0' % (i % 50))
block = ('\n'.join(block) + '\n').encode()
written = 0; planted = 0
while written < mib << 20:
    out.buffer.write(block); written += len(block)
    if written // (64 << 20) > planted:
        planted += 1
        out.buffer.write(('token=ghp_' + ''.join(r.choice(B62) for _ in range(36)) + '\n').encode())
sys.stderr.write('planted %d\n' % planted)
PY
}
printf '%-8s %10s %12s %9s\n' MiB seconds 'peak RSS' findings
for mib in 256 1024 2048; do
  tf=$(mktemp); of=$(mktemp)
  gen "$mib" 2>/dev/null | /usr/bin/time -o "$tf" -f '%e %M' "$BIN" scan - --format jsonl -q > "$of" || true
  read -r secs rss < <(tail -n 1 "$tf")
  printf '%-8s %10s %9.1f MiB %9s\n' "$mib" "$secs" "$(awk -v k="$rss" 'BEGIN{print k/1024}')" "$(wc -l < "$of")"
  rm -f "$tf" "$of"
done
