#!/usr/bin/env bash
# Durable stream publish, side by side: strata::Db's streams (benches/src/bin/stream_pub.rs)
# against NATS JetStream (benches/jetstream_pub/main.go, Debian's nats.go client) with an fsync
# on every write, so both acknowledge a publish only once it is on disk. 1 and 4 publishers,
# 16-byte payloads, RUNS rounds (default 3) that alternate Strata and JetStream so both see the
# same machine load; median per publisher count. Rewrites the "### Side by side with JetStream"
# part of the "## Messaging: stream publish" section of benches/RESULTS.md. About 2 minutes.
#
# Durability on the JetStream side: Debian ships nats-server 2.9.10, whose file store syncs
# on a timer (default every 60 s) and acknowledges before that; `sync_interval: always` came
# with 2.10. So this script builds 2.9.10 from Debian's own sources with a ten-line patch
# (benches/jetstream_pub/nats-server-2.9-sync-always.patch: with NATS_SYNC_ALWAYS=1 every
# message write flushes and fsyncs its block file before the store returns, which is before
# the PubAck, as 2.10's sync_always does). `strace -c` counts the sync calls per publish of
# both servers in a short extra run (when strace is installed), and one run of the unpatched
# behaviour (no NATS_SYNC_ALWAYS: acknowledged before fsync) is shown for reference.
#
# Needs: apt-get install -y golang-go golang-github-nats-io-nats-server-dev golang-github-nats-io-go-nats-dev
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
runs=${RUNS:-3}
secs=${SECS:-5}
tgt="${CARGO_TARGET_DIR:-$root/target}"
out="$tgt/stream-vs-jetstream"
mkdir -p "$out"

if ! [ -d /usr/share/gocode/src/github.com/nats-io/nats-server ] || ! [ -d /usr/share/gocode/src/github.com/nats-io/nats.go ] || ! command -v go >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y golang-go golang-github-nats-io-nats-server-dev golang-github-nats-io-go-nats-dev
fi

# The patched nats-server, built in GOPATH mode from a copy of Debian's sources (its imports
# say .../nats-server/v2/..., which GOPATH mode resolves to this copy first).
# Rebuilt only when the patch is newer than the binary (a build takes 1-3 minutes here).
patchfile="$root/benches/jetstream_pub/nats-server-2.9-sync-always.patch"
export GO111MODULE=off GOFLAGS= GOCACHE="$out/gocache"
if ! [ "$out/nats-server-sync-always" -nt "$patchfile" ]; then
    gopath="$out/gopath"
    src="$gopath/src/github.com/nats-io/nats-server/v2"
    rm -rf "$gopath" && mkdir -p "$(dirname "$src")"
    cp -r /usr/share/gocode/src/github.com/nats-io/nats-server "$src"
    (cd "$src" && patch -p1 --quiet < "$patchfile")
    (cd "$src" && GOPATH="$gopath:/usr/share/gocode" go build -o "$out/nats-server-sync-always" .)
fi
GOPATH=/usr/share/gocode go build -o "$out/jetstream_pub" "$root/benches/jetstream_pub/main.go"
cargo build --release -p strata-benches --bin stream_pub
strata_pub="$tgt/release/stream_pub"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NPID=
DATA=
cleanup() {
    if [ -n "$NPID" ]; then kill "$NPID" 2>/dev/null || true; wait "$NPID" 2>/dev/null || true; fi
    if [ -n "$DATA" ]; then rm -rf "$DATA"; fi
}
trap cleanup EXIT

# Both stores live on the same filesystem (mktemp's).
run_strata() { # SECS [strace]
    DATA=$(mktemp -d)
    if [ "${2:-}" = strace ]; then
        strace -f -c -e trace=fsync,fdatasync,sync_file_range -o "$out/strace-strata.txt" "$strata_pub" "$DATA/db" "$1" 2>/dev/null
    else
        "$strata_pub" "$DATA/db" "$1" 2>/dev/null
    fi
    rm -rf "$DATA"; DATA=
}
run_jetstream() { # SECS SYNC_ALWAYS [strace]
    DATA=$(mktemp -d)
    local port; port=$(free_port)
    if [ "${3:-}" = strace ]; then
        NATS_SYNC_ALWAYS=$2 strace -f -c -e trace=fsync,fdatasync,sync_file_range -o "$out/strace-jetstream.txt" \
            "$out/nats-server-sync-always" -a 127.0.0.1 -p "$port" -js -sd "$DATA" >"$out/nats-server.log" 2>&1 &
    else
        NATS_SYNC_ALWAYS=$2 "$out/nats-server-sync-always" -a 127.0.0.1 -p "$port" -js -sd "$DATA" >"$out/nats-server.log" 2>&1 &
    fi
    NPID=$!
    for _ in $(seq 50); do python3 -c "import socket; socket.create_connection(('127.0.0.1',$port))" 2>/dev/null && break; sleep 0.1; done
    "$out/jetstream_pub" -url "nats://127.0.0.1:$port" -secs "$1"
    # Under strace, stop the server (strace's child), and strace ends with it.
    if [ "${3:-}" = strace ]; then kill -INT "$(pgrep -P "$NPID")"; else kill -INT "$NPID"; fi
    wait "$NPID" 2>/dev/null || true; NPID=
    rm -rf "$DATA"; DATA=
}

echo "load before: $(cat /proc/loadavg)" > "$out/load.txt"
: > "$out/runs.txt"
for r in $(seq "$runs"); do
    run_strata "$secs" | tee -a "$out/runs.txt"
    run_jetstream "$secs" 1 | tee -a "$out/runs.txt"
done
echo "load after: $(cat /proc/loadavg)" >> "$out/load.txt"
# Reference: JetStream as shipped (acknowledges before the fsync).
run_jetstream "$secs" 0 | sed 's/^jetstream/jetstream-nosync/' | tee -a "$out/runs.txt"
# Sync calls per publish, from a short traced run of each (tracing slows both: rates not used).
: > "$out/sync.txt"
if command -v strace >/dev/null; then
    run_strata 2 strace | sed 's/^/traced /' | tee "$out/traced-strata.txt"
    run_jetstream 2 1 strace | sed 's/^/traced /' | tee "$out/traced-jetstream.txt"
fi

python3 - "$out" benches/RESULTS.md "$runs" "$secs" <<'PY'
import sys, re, statistics, os, platform
out, results, runs, secs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rates = {}
for line in open(f"{out}/runs.txt"):
    m = re.match(r"(\S+) publishers=(\d+) msgs=(\d+) secs=([\d.]+) rate=([\d.]+)", line)
    if m:
        rates.setdefault((m.group(1), int(m.group(2))), []).append(float(m.group(5)))
def syncs(side):
    tr, st = f"{out}/traced-{side}.txt", f"{out}/strace-{side}.txt"
    if not (os.path.exists(tr) and os.path.exists(st)):
        return None
    msgs = sum(int(m.group(1)) for m in re.finditer(r"msgs=(\d+)", open(tr).read()))
    calls = 0
    for line in open(st):
        f = line.split()
        if len(f) >= 5 and f[-1] in ("fsync", "fdatasync", "sync_file_range"):
            calls += int(f[3])
    return calls, msgs
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
load = open(f"{out}/load.txt").read().strip().replace("\n", "; ")
rows = []
for p in (1, 4):
    s, j = rates.get(("strata", p), []), rates.get(("jetstream", p), [])
    if not s or not j:
        continue
    sm, jm = statistics.median(s), statistics.median(j)
    ref = rates.get(("jetstream-nosync", p), [])
    rows.append(f"| {p} | {sm:,.0f} | {jm:,.0f} | **{sm/jm:.2f}x** | {', '.join(f'{x:,.0f}' for x in s)} | {', '.join(f'{x:,.0f}' for x in j)} | {', '.join(f'{x:,.0f}' for x in ref) or '-'} |")
sync_lines = []
for side, name in (("strata", "Strata"), ("jetstream", "JetStream (patched, NATS_SYNC_ALWAYS=1)")):
    r = syncs(side)
    if r and r[1]:
        sync_lines.append(f"{name}: {r[0]:,} sync calls for {r[1]:,} acknowledged publishes ({r[0]/r[1]:.2f} per publish)")
section = f"""### Side by side with JetStream

`bash benches/stream_vs_jetstream.sh` (RUNS={runs}, SECS={secs}): Strata's `Streams::publish`
through `strata::Db` (`benches/src/bin/stream_pub.rs`, default `Durability::SyncEachWrite`)
against NATS JetStream 2.9.10 (`benches/jetstream_pub/main.go`, Debian's nats.go 1.22,
`js.Publish` waiting for each PubAck, one connection per publisher). Both: a file-backed stream
`BENCH` on `bench.>` with at most 100,000 messages, publisher *t* publishing 16-byte payloads on
`bench.p<t>` for {secs} s, one publish in flight per publisher; stores on the same filesystem
(the container's overlay on a virtual disk). Runs alternate Strata and JetStream; median
acknowledged publishes per second, ratio = Strata ÷ JetStream (> 1: Strata faster).

**How durability was matched.** Strata acknowledges after the `fdatasync` that covers the write.
Debian's nats-server 2.9.10 acknowledges before syncing (its file store syncs every 60 s by
default; `sync_interval: always` arrived in 2.10), so the script builds 2.9.10 from Debian's
sources with `benches/jetstream_pub/nats-server-2.9-sync-always.patch`: with
`NATS_SYNC_ALWAYS=1`, each message write is flushed and its block file `fsync`ed before the
store returns, and so before the PubAck, as 2.10's `sync_always` does. One difference stays:
Strata's WAL is preallocated, so its sync is an `fdatasync` that need not write file metadata;
JetStream appends to its block files and calls `fsync`. Counted with
`strace -f -c` over a 2-second run of each (1 then 4 publishers):
{chr(10).join('- ' + l for l in sync_lines) or '- (strace not installed: not counted)'}

| publishers | Strata publishes/s | JetStream (fsync always) publishes/s | ratio | Strata runs | JetStream runs | JetStream as shipped (acks before fsync) |
| --- | ---: | ---: | ---: | --- | --- | --- |
""" + "\n".join(rows) + f"""

Machine: {os.cpu_count()} cores ({cpu}), shared with other jobs ({load}).
"""
text = open(results).read()
start = text.find("## Messaging: stream publish")
assert start >= 0, "no Messaging section"
end = text.find("\n## ", start + 1)
end = len(text) if end < 0 else end + 1
body = text[start:end]
sub = body.find("### Side by side with JetStream")
body = (body[:sub] if sub >= 0 else body.rstrip("\n") + "\n\n") + section + "\n"
text = text[:start] + body + text[end:]
open(results, "w").write(text)
print(section)
PY
