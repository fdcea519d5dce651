#!/usr/bin/env python3
"""Recall of a cisleuth JSONL report against gen_ci_corpus.py answers: recall.py ANSWERS.tsv REPORT.jsonl
(the report must be made with --show-secrets)."""
import json,collections,sys
ans=[l.rstrip('\n').split('\t') for l in open(sys.argv[1])]
found=[json.loads(l) for l in open(sys.argv[2])]
by=collections.defaultdict(list)
for f in found: by[(f['location']['path'],f['location']['line'])].append(f)
miss=collections.Counter(); hit=0; matched=set()
for path,line,kind,secret in ans:
    fs=by.get((path,int(line)),[])
    ok=[f for f in fs if f['secret'] in secret]
    if ok: hit+=1; matched.update(id(f) for f in ok)
    else:
        miss[kind]+=1
        if miss[kind]<3: print('MISS',kind,path,line,secret[:80],[(f['rule_id'],f['secret'][:40]) for f in fs])
extra=[f for f in found if id(f) not in matched]
print(f'planted {len(ans)} found {hit} missed {dict(miss)} findings {len(found)} unmatched {len(extra)}')
for f in extra[:5]: print('EXTRA',f['rule_id'],f['location'],f['secret'][:60])
