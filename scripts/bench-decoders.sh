#!/usr/bin/env bash
# Whole-engine cost of the decoders: scan the same corpus with --max-decode-depth 0 and with
# the default depth, alternating, and report the best and median wall and CPU time of each.
# Usage: scripts/bench-decoders.sh CORPUS_DIR [RUNS] [BINARY]
set -euo pipefail
corpus=${1:?corpus directory}
runs=${2:-9}
bin=${3:-target/release/cisleuth}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for i in $(seq "$runs"); do
  for depth in 0 3; do
    /usr/bin/time -f "%e %U %S" -o "$tmp/t" "$bin" scan path "$corpus" --format jsonl -q \
      --max-decode-depth "$depth" > "$tmp/out-$depth.jsonl" || [ $? -eq 1 ]
    grep -v '^Command' "$tmp/t" >> "$tmp/depth-$depth"
  done
done
python3 - "$tmp" "$runs" <<'PY'
import statistics, sys
tmp, runs = sys.argv[1], int(sys.argv[2])
res = {}
for d in (0, 3):
    rows = [list(map(float, l.split())) for l in open(f"{tmp}/depth-{d}")]
    wall = [r[0] for r in rows]; cpu = [r[1] + r[2] for r in rows]
    res[d] = (min(wall), statistics.median(wall), min(cpu), statistics.median(cpu))
    n = sum(1 for _ in open(f"{tmp}/out-{d}.jsonl"))
    print(f"depth {d}: wall best {res[d][0]:.2f} s median {res[d][1]:.2f} s; cpu best {res[d][2]:.2f} s median {res[d][3]:.2f} s; {n} findings")
print(f"decoders cost: wall best +{(res[3][0]/res[0][0]-1)*100:.1f}% median +{(res[3][1]/res[0][1]-1)*100:.1f}%; "
      f"cpu best +{(res[3][2]/res[0][2]-1)*100:.1f}% median +{(res[3][3]/res[0][3]-1)*100:.1f}%  ({runs} runs each, alternating)")
PY
