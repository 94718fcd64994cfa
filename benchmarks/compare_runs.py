"""Same seed, same results: compare two r1kit run directories (e.g. the same recipe run by an old and
a new commit, each from an empty R1KIT_CACHE). Prints every difference in eval rows, completions,
training metrics (timings aside) and token counts; `python benchmarks/compare_runs.py OLD_RUN NEW_RUN`."""
import json, sys
from pathlib import Path

TIMING = {"train_runtime", "train_samples_per_second", "train_steps_per_second", "time", "wall_s", "elapsed",
          "step_time", "steps_per_second", "samples_per_second"}

def load(p): return json.loads(Path(p).read_text())

def metrics(run, stage):
    f = Path(run, "stages", stage, "metrics.jsonl")
    if not f.exists(): return None
    rows = []
    for line in f.read_text().splitlines():
        r = json.loads(line)
        rows.append({k: v for k, v in r.items() if k not in TIMING and "time" not in k and "per_second" not in k})
    return rows

def tokens(run):
    out = {}
    for f in sorted(Path(run, "ledger").glob("*.json")):
        r = load(f)
        out[r["stage"]] = (r.get("train_tokens"), r.get("generated_tokens"))
    return out

a, b = sys.argv[1], sys.argv[2]
bad = 0
ea, eb = load(Path(a, "stages/eval/eval.json")), load(Path(b, "stages/eval/eval.json"))
for key in ("rows", "retention", "comparisons"):
    same = ea[key] == eb[key]
    print(f"eval {key}: {'identical' if same else 'DIFFERENT'} ({len(ea[key])} rows)")
    bad += not same
for m in ea["problems"]:
    pa, pb = ea["problems"][m], eb["problems"].get(m)
    same = pa == pb
    first = pa[0]["completion"] == (pb or [{}])[0].get("completion")
    print(f"completions {m}: {'identical' if same else 'DIFFERENT'} ({len(pa)}); first completion {'identical' if first else 'DIFFERENT'}")
    bad += not same
stages = sorted(p.name for p in Path(a, "stages").iterdir())
for s in stages:
    ma, mb = metrics(a, s), metrics(b, s)
    if ma is None: continue
    same = ma == mb
    print(f"metrics {s}: {'identical' if same else 'DIFFERENT'} ({len(ma)} lines)")
    if not same:
        for x, y in zip(ma, mb or []):
            if x != y:
                print("   first diff:", {k: (x.get(k), y.get(k)) for k in set(x) | set(y) if x.get(k) != y.get(k)}); break
    bad += not same
ta, tb = tokens(a), tokens(b)
print("tokens (train, generated) a:", ta)
print("tokens (train, generated) b:", tb)
bad += ta != tb
print("VERDICT:", "IDENTICAL" if not bad else f"{bad} differences")
