#!/usr/bin/env python3
"""Tables for scripts/precision.sh: precision.py FINDINGS.jsonl STDERR LABELS|'' CHECK|''.

FINDINGS.jsonl is a `cisleuth scan --format jsonl --show-secrets --min-confidence low` report;
STDERR holds its summary line (for the MiB scanned)."""
import collections, fnmatch, json, os, re, signal, sys, tarfile, zipfile

signal.signal(signal.SIGPIPE, signal.SIG_DFL)

findings_path, stderr_path, labels_path, check = sys.argv[1:5]
findings = [json.loads(l) for l in open(findings_path) if l.strip()]
summary = open(stderr_path, errors="replace").read()
m = re.search(r"\(([0-9.]+) MiB\)", summary)
mib = float(m.group(1)) if m else 0.0
shown_levels = {"medium", "high"}

labels = []
if labels_path:
    for line in open(labels_path):
        if not line.strip() or line.startswith("#"):
            continue
        glob, secret, verdict = line.rstrip("\n").split("\t")[:3]
        labels.append((glob, secret, verdict))


def label_of(f):
    name = os.path.basename(f["location"].get("path", "").split("!/")[-1])
    secret = f.get("secret") or ""
    for i, (glob, lab, verdict) in enumerate(labels):
        if glob != "*" and not fnmatch.fnmatch(name, glob):
            continue
        if secret == lab or (len(lab) >= 12 and lab in secret):
            return i, verdict
    return None, None


_archives = {}


def context(f):
    """The line a finding stands on (of the encoded text, for a decoded finding)."""
    loc = f["location"]
    path, line = loc.get("path"), loc.get("line")
    if not path or not line:
        return ""
    try:
        if "!/" in path:
            outer, member = path.split("!/", 1)
            if outer not in _archives:
                if zipfile.is_zipfile(outer):
                    z = zipfile.ZipFile(outer)
                    _archives[outer] = lambda n, z=z: z.read(n)
                else:
                    t = tarfile.open(outer)
                    _archives[outer] = lambda n, t=t: t.extractfile(n).read()
            data = _archives[outer](member)
        else:
            with open(path, "rb") as fh:
                data = fh.read()
        text = data.decode("utf-8", "replace").split("\n")[line - 1]
    except Exception as e:  # a member in a nested archive, a vanished file: say so
        return f"<no context: {e}>"
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    # Columns count from the last `\r` as on a terminal: show the redraw that holds the secret.
    secret = (f.get("secret") or "")[:12]
    segs = text.split("\r")
    text = next((s for s in segs if secret and secret in s), segs[-1] if segs[-1].strip() else text)
    at = text.find(secret) if secret and secret in text else loc.get("column", 1) - 1
    start = max(0, min(at - 60, len(text) - 160))
    return ("…" if start else "") + text[start:start + 160]


per_rule = collections.defaultdict(lambda: collections.Counter())
hit_labels = set()
unlabelled, false_hits = [], []
for f in findings:
    level = f.get("confidence", "?")
    # Before the evidence model every reported finding was shown, whatever its confidence.
    shown = level in shown_levels or "evidence" not in f
    f["shown"] = shown
    per_rule[f["rule_id"]]["shown" if shown else "low"] += 1
    if labels:
        i, verdict = label_of(f)
        if i is not None and shown:
            hit_labels.add(i)
        if verdict is None:
            per_rule[f["rule_id"]]["fp" if shown else "fp_low"] += 1
            unlabelled.append(f)
        elif verdict == "false":
            per_rule[f["rule_id"]]["fp" if shown else "fp_low"] += 1
            false_hits.append(f)

shown_total = sum(c["shown"] for c in per_rule.values())
low_total = sum(c["low"] for c in per_rule.values())
per100 = lambda n: n / mib * 100 if mib else float("nan")
print(f"scanned {mib:.1f} MiB: {shown_total} findings at medium+ ({per100(shown_total):.1f} per 100 MiB), "
      f"{low_total} more at low ({per100(low_total):.1f} per 100 MiB)")
if labels:
    fp = sum(c["fp"] for c in per_rule.values())
    fpl = sum(c["fp_low"] for c in per_rule.values())
    print(f"false positives (unlabelled or labelled false): {fp} at medium+ ({per100(fp):.1f} per 100 MiB), {fpl} at low")
print()
print(f"{'rule':34} {'medium+':>8} {'per100MiB':>9} {'low':>6}" + (f" {'FP':>5} {'FP low':>6}" if labels else ""))
for rule, c in sorted(per_rule.items(), key=lambda kv: (-kv[1]["shown"], -kv[1]["low"], kv[0])):
    row = f"{rule:34} {c['shown']:8} {per100(c['shown']):9.2f} {c['low']:6}"
    if labels:
        row += f" {c['fp']:5} {c['fp_low']:6}"
    print(row)


def show(title, items):
    if not items:
        return
    print(f"\n{title}:")
    for f in items:
        loc = f["location"]
        where = f"{os.path.basename(loc.get('path', '<stdin>'))}:{loc.get('line')}"
        dec = f" decoded={'/'.join(f['decoded'])}" if f.get("decoded") else ""
        ev = ",".join(f.get("evidence", []))
        print(f"  [{f.get('confidence')}] {f['rule_id']} {f.get('redacted')}{dec} ({ev})\n      {where}\n      {context(f)!r}")


missed = []
if labels:
    show("unlabelled findings (false positives)", [f for f in unlabelled if f["shown"]])
    show("findings of labels marked false", [f for f in false_hits if f["shown"]])
    show("unlabelled findings at low confidence (shown only with --min-confidence low)",
         [f for f in unlabelled + false_hits if not f["shown"]])
    missed = [lab for i, lab in enumerate(labels) if lab[2] == "true" and i not in hit_labels]
    print(f"\nlabels: {sum(1 for l in labels if l[2] == 'true')} true, "
          f"{len([1 for i, l in enumerate(labels) if l[2] == 'true' and i in hit_labels])} found at medium+")
    for glob, secret, _ in missed:
        print(f"  MISSED true label {glob} {secret[:6]}…")
else:
    show("findings at medium+", [f for f in findings if f["shown"]])
    show("findings at low", [f for f in findings if not f["shown"]])

if check:
    bad = (missed or [f for f in unlabelled + false_hits if f["shown"]]) if labels \
        else [f for f in findings if f["shown"]]
    if bad:
        print("\nprecision check FAILED")
        sys.exit(1)
    print("\nprecision check passed")
