#!/usr/bin/env bash
# Subject routing side by side with NATS's sublist on this machine: runs our criterion bench
# (benches/benches/subject.rs) and NATS's own Go benchmarks (sublist_test.go, Debian's
# golang-github-nats-io-nats-server-dev), then rewrites the `## Subjects` section of
# benches/RESULTS.md with both figures and the ratios. About 3 minutes.
#
# Needs: apt-get install -y golang-go golang-github-nats-io-nats-server-dev
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/subject-vs-nats
mkdir -p "$out"
echo "before: $(cat /proc/loadavg)" > "$out/load.txt"

cargo bench -p strata-benches --bench subject -- --noplot 2>"$out/ours.stderr" | tee "$out/ours.txt"
grep 'subject memory' "$out/ours.stderr" | tee "$out/memory.txt"

(
    export GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS=
    cd /usr/share/gocode/src/github.com/nats-io/nats-server/server
    go version
    go test -run XXX -bench Sublist -benchtime 200ms .
) | tee "$out/nats.txt"

echo "after: $(cat /proc/loadavg)" >> "$out/load.txt"
python3 benches/subject_report.py "$out" benches/RESULTS.md
