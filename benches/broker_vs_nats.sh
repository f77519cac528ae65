#!/usr/bin/env bash
# End-to-end broker throughput over TCP: `strata serve` vs nats-server 2.9 (Debian), both on
# loopback, driven by the same Rust client (benches/src/bin/broker_tcp.rs): publish → delivery,
# 1 and 10 subscribers, 16-byte and 1 KiB payloads, 3 runs each (median). Rewrites the
# `## Broker end to end` section of benches/RESULTS.md with both figures and the ratios
# (ours ÷ nats, > 1 means Strata delivers more per second). About 1 minute.
#
# Installs nats-server with apt when missing (services are not auto-started). Stops exactly
# the PIDs it started.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out=target/broker-vs-nats
mkdir -p "$out"
if ! command -v nats-server >/dev/null; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get install -y nats-server
fi
cargo build --release -p strata --bin strata -p strata-benches --bin broker_tcp
bin="${CARGO_TARGET_DIR:-$root/target}/release"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

data=$(mktemp -d)
sport=$(free_port)
"$bin/strata" --data "$data" serve --listen "127.0.0.1:$sport" 2>"$out/strata-serve.log" &
SPID=$!
nport=$(free_port)
nats-server -a 127.0.0.1 -p "$nport" >"$out/nats-server.log" 2>&1 &
NPID=$!
cleanup() { kill "$SPID" "$NPID" 2>/dev/null || true; wait "$SPID" "$NPID" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
sleep 1

echo "load before: $(cat /proc/loadavg)" > "$out/load.txt"
: > "$out/runs.tsv"
for cfg in "1 16 500000" "10 16 100000" "1 1024 100000" "10 1024 20000"; do
    for server in strata nats; do
        port=$sport; [ "$server" = nats ] && port=$nport
        for run in 1 2 3; do
            line=$("$bin/broker_tcp" "127.0.0.1:$port" $cfg)
            printf '%s\t%s\n' "$server" "$line" | tee -a "$out/runs.tsv"
        done
    done
done
echo "load after: $(cat /proc/loadavg)" >> "$out/load.txt"
nats_version=$(nats-server --version 2>&1 | head -1)

python3 - "$out" benches/RESULTS.md "$nats_version" <<'PY'
import sys, statistics, platform, subprocess, os
out, results, natsv = sys.argv[1], sys.argv[2], sys.argv[3]
runs = {}
for line in open(f"{out}/runs.tsv"):
    server, subs, size, n, secs, pubrate, delrate, lost = line.split("\t")
    runs.setdefault((int(subs), int(size), int(n)), {}).setdefault(server, []).append((float(delrate), float(pubrate), int(lost)))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
load = open(f"{out}/load.txt").read().strip().replace("\n", "; ")
rows = []
for (subs, size, n), by in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    s = statistics.median(r[0] for r in by["strata"]); nn = statistics.median(r[0] for r in by["nats"])
    sp = statistics.median(r[1] for r in by["strata"]); np_ = statistics.median(r[1] for r in by["nats"])
    lost = sum(r[2] for r in by["strata"]) + sum(r[2] for r in by["nats"])
    rows.append(f"| {subs} | {size} B | {n:,} | {sp/1e3:,.0f}k | {np_/1e3:,.0f}k | {s/1e6:,.2f}M | {nn/1e6:,.2f}M | **{s/nn:.2f}x** | {lost} |")
section = f"""## Broker end to end

Publish → delivery over TCP on loopback: `strata serve` against {natsv} (Debian), the same Rust
client for both (`benches/src/bin/broker_tcp.rs`: one publisher connection flushing with
PING/PONG every 1,000 messages, SUBS subscriber connections on one subject, each receiving every
message; a run ends when every subscriber has every message). Median of 3 runs; ratio = ours ÷
nats on deliveries per second (> 1: Strata faster). Measured with `bash benches/broker_vs_nats.sh`
on {os.cpu_count()} cores ({cpu}), shared with other jobs ({load}).

| subscribers | payload | messages | published/s strata | published/s nats | deliveries/s strata | deliveries/s nats | ratio | lost |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
""" + "\n".join(rows) + """

In-process through `Db` (no sockets): `cargo bench -p strata-benches --bench broker`
(criterion group `broker_inproc`, same subscriber and payload matrix).
"""
text = open(results).read() if os.path.exists(results) else "# Results\n"
start = text.find("## Broker end to end")
if start >= 0:
    nxt = text.find("\n## ", start + 1)
    text = text[:start] + section + (text[nxt + 1:] if nxt >= 0 else "")
else:
    text = text.rstrip("\n") + "\n\n" + section
open(results, "w").write(text)
print(section)
PY
