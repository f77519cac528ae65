#!/usr/bin/env bash
# Subject routing side by side with NATS's sublist on this machine: runs our criterion bench
# (benches/benches/subject.rs) and NATS's own Go benchmarks (sublist_test.go, Debian's
# golang-github-nats-io-nats-server-dev) in RUNS rounds (default 3), each round ours then
# NATS's, so both sides see the same machine load; then rewrites the `## Subjects` section of
# benches/RESULTS.md with the median of each figure, the ratios and their range over the
# rounds. About 4 minutes a round.
#
# Needs: apt-get install -y golang-go golang-github-nats-io-nats-server-dev
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-3}
tgt="${CARGO_TARGET_DIR:-$(pwd)/target}"
out="$tgt/subject-vs-nats"
rm -rf "$out" && mkdir -p "$out"
echo "before: $(cat /proc/loadavg)" > "$out/load.txt"
cargo bench -p strata-benches --bench subject --no-run 2>/dev/null
for r in $(seq "$runs"); do
    mkdir -p "$out/run$r"
    cargo bench -p strata-benches --bench subject -- --noplot 2>"$out/run$r/ours.stderr" | tee "$out/run$r/ours.txt"
    cp -r "$tgt/criterion/subject" "$out/run$r/criterion"
    grep 'subject memory' "$out/run$r/ours.stderr" > "$out/memory.txt"
    echo "round $r between: $(cat /proc/loadavg)" >> "$out/load.txt"
    (
        export GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS=
        cd /usr/share/gocode/src/github.com/nats-io/nats-server/server
        go version
        go test -run XXX -bench Sublist -benchtime 200ms .
    ) | tee "$out/run$r/nats.txt"
    echo "round $r after: $(cat /proc/loadavg)" >> "$out/load.txt"
done
python3 benches/subject_report.py "$out" benches/RESULTS.md
