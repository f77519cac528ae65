#!/usr/bin/env python3
"""Writes the `## Subjects` section of benches/RESULTS.md from a subject_vs_nats.sh run.

Usage: subject_report.py OUT_DIR RESULTS_MD
"""
import json, os, re, subprocess, sys

out_dir, results = sys.argv[1], sys.argv[2]
runs = sorted(d for d in os.listdir(out_dir) if re.fullmatch(r"run\d+", d))
assert runs, f"no run*/ directories in {out_dir}"

def median(xs):
    xs = sorted(xs)
    k = len(xs)
    return xs[k // 2] if k % 2 else (xs[k // 2 - 1] + xs[k // 2]) / 2

def ours_in(run, name):
    p = os.path.join(out_dir, run, "criterion", name, "new", "estimates.json")
    with open(p) as f:
        return json.load(f)["mean"]["point_estimate"]

def ours(name):
    return median([ours_in(r, name) for r in runs])

def nats_in(run):
    got = {}
    for line in open(os.path.join(out_dir, run, "nats.txt")):
        m = re.match(r"Benchmark_*(\w+?)-\d+\s+\d+\s+([\d.]+) ns/op", line)
        if m:
            got[m.group(1)] = float(m.group(2))
    return got

nats_runs = {r: nats_in(r) for r in runs}
nats = {k: median([nats_runs[r][k] for r in runs if k in nats_runs[r]]) for k in nats_runs[runs[0]]}
go_version = next((l.strip() for l in open(os.path.join(out_dir, runs[0], "nats.txt")) if l.startswith("go version")), "go")
try:
    load = "; ".join(l.strip() for l in open(os.path.join(out_dir, "load.txt")))
except FileNotFoundError:
    load = "not recorded"
memory = open(os.path.join(out_dir, "memory.txt")).read().strip()

# (our bench, NATS bench, what it does)
rows = [
    ("insert", "SublistInsert", "Go's loop: 10 passes of the 37,448-subject fixture into one index (after the first, new subscriptions on existing nodes)"),
    ("insert_no_cache", "SublistInsertNoCache", "the same, no cache"),
    ("insert_fresh", "SublistInsert", "ours: the first pass alone (every insert creates its node); NATS: its loop above"),
    ("match_single_token", "SublistMatchSingleToken", "`synadia`, cache hit"),
    ("match_two_tokens", "SublistMatchTwoTokens", "`synadia.nats`, cache hit"),
    ("match_three_tokens", "SublistMatchThreeTokens", "`synadia.nats.jetstream`, cache hit"),
    ("match_four_tokens", "SublistMatchFourTokens", "`synadia.nats.jetstream.nkeys`, cache hit"),
    ("match_four_tokens_multi_results", "SublistMatchFourTokensMultiResults", "`cloud.nats.component.router` (3 wildcard subs), cache hit"),
    ("miss_on_last_token_of_five", "SublistMissOnLastTokenOfFive", "`synadia.nats.jetstream.nkeys.ZZZZ`, cache hit"),
    ("match_single_token_no_cache", "SublistMatchSingleToken", "ours walks the trie; NATS hits its cache"),
    ("match_four_tokens_no_cache", "SublistMatchFourTokens", "ours walks the trie; NATS hits its cache"),
    ("match_four_tokens_multi_results_no_cache", "SublistMatchFourTokensMultiResults", "ours walks the trie; NATS hits its cache"),
    ("miss_on_last_token_of_five_no_cache", "SublistMissOnLastTokenOfFive", "ours walks the trie; NATS hits its cache"),
    ("match_literal_21_patterns", "SublistMatchLiteral", "one subject against 21 patterns (pattern matcher alone)"),
    ("match_512_subs_no_cache", "SublistMatch10kSubsWithNoCache", "512 subscriptions on `foo`, no cache, all returned"),
    ("remove_1_token_single", "SublistRemove1TokenSingle", "remove subscriptions on `foo` one by one"),
    ("remove_2_tokens_single", "SublistRemove2TokensSingle", "remove `foo.N` one by one"),
    ("remove_1_token_qg_single", "SublistRemove1TokenQGSingle", "remove queue subscriptions on `foo`"),
    ("distinct_misses_with_churn", "SublistCacheContention10M10A10R", "unique subjects + 1 insert + 1 remove per match (NATS: 10 matchers, 10 adders, 10 removers in parallel)"),
    ("distinct_misses_with_churn", "SublistCacheContention1kM1kA1kR", "the same (NATS: 1k goroutines of each)"),
]

def fmt(ns):
    return f"{ns:,.1f}" if ns < 100 else f"{ns:,.0f}"

lines = []
lines.append("## Subjects")
lines.append("")
lines.append("Subject routing (`engine/src/subject`) side by side with NATS 2.9's sublist, running NATS's own Go")
lines.append("benchmarks (`server/sublist_test.go`) and a criterion bench that rebuilds the same fixtures")
lines.append("(`benches/benches/subject.rs`). ns per operation: criterion's mean and Go's ns/op, the median over")
lines.append("rounds that alternate our bench and NATS's; **ratio = ours ÷ NATS, below 1 means Strata is")
lines.append("faster**. Every one of our matches validates the subject (`match_str`: a cache hit is a subject")
lines.append("byte-for-byte equal to one validated before; a miss validates); every insert validates the pattern.")
lines.append("")
lines.append(f"| workload | Strata ns | NATS ns | ratio | ratio per round ({len(runs)}) | what |")
lines.append("|---|---:|---:|---:|---|---|")
for o, n, what in rows:
    try:
        a = ours(o)
        per = [ours_in(r, o) / nats_runs[r][n] for r in runs]
    except (FileNotFoundError, KeyError):
        continue
    b = nats.get(n)
    if b is None:
        continue
    lines.append(f"| `{o}` vs `{n}` | {fmt(a)} | {fmt(b)} | {a / b:.2f} | {', '.join(f'{x:.2f}' for x in per)} | {what} |")
lines.append("")
lines.append("The match cache and many distinct subjects (nats-io/nats-server issue 4341). Our cache only")
lines.append("admits a subject on its second sighting and bypasses itself when it stops hitting, so it must")
lines.append("never make a distinct-subject workload slower than no cache. Same workload, cache on and off:")
lines.append("")
lines.append("| workload | cache on ns | cache off ns | on ÷ off |")
lines.append("|---|---:|---:|---:|")
for on, off, what in [
    ("distinct_misses_with_churn", "distinct_misses_with_churn_no_cache", "unique subjects, 10k subs, 1 insert + 1 remove per match"),
    ("distinct_hits_10k/cache", "distinct_hits_10k/no_cache", "10,000 distinct subjects that all hit (10x the cache), no churn"),
    ("match_four_tokens", "match_four_tokens_no_cache", "one repeated subject (the cache's good case)"),
]:
    try:
        a, b = ours(on), ours(off)
    except FileNotFoundError:
        continue
    lines.append(f"| {what} | {fmt(a)} | {fmt(b)} | {a / b:.2f} |")
lines.append("")
lines.append(f"Memory: {memory.replace('subject memory: ', '')} (the fixture, no cache; measured by a counting allocator).")
lines.append("")
lines.append("Notes: NATS's contention benches run goroutines in parallel on both cores; ours is one thread")
lines.append("(the index is a single-owner state machine), so those rows compare one core against two.")
lines.append("NATS's `Insert` bench re-inserts the same subscription objects after the first 37,448 (a map")
lines.append("overwrite); ours adds new subscriptions. The fixture is generated depth first, so consecutive")
lines.append("patterns share leading tokens, which our insert reuses from the previous insert's path (NATS's")
lines.append("walks every level). NATS's remove batch variants, multi-reader benches and")
lines.append("`SublistMatchLiteral`'s cousins have no counterpart here.")
lines.append("")
lines.append("Run: `benches/subject_vs_nats.sh` (our side alone: `cargo bench -p strata-benches --bench subject`;")
lines.append("NATS alone: `export GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS=; cd")
lines.append("/usr/share/gocode/src/github.com/nats-io/nats-server/server && go test -run XXX -bench Sublist")
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
lines.append(f"-benchtime 200ms .`). Machine: 2 cores ({cpu}), shared with other builds; {go_version}; {rustc}.")
lines.append(f"Load average (/proc/loadavg) around the run: {load}. Figures taken under load swing by 2x and")
lines.append("more between runs; compare ratios from one round, not figures across runs.")
section = "\n".join(lines) + "\n"

text = open(results).read()
m = re.search(r"^## Subjects\n.*?(?=^## |\Z)", text, flags=re.S | re.M)
if m:
    text = text[: m.start()] + section + ("\n" if m.end() < len(text) else "") + text[m.end():]
else:
    text = text.rstrip("\n") + "\n\n" + section
open(results, "w").write(text)
print(section)
