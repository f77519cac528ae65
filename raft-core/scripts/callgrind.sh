#!/bin/bash
# Usage: raft-core/scripts/callgrind.sh BIN  -> instructions per committed entry for each case (difference of two runs)
BIN=$1
N1=${N1:-5000}; N2=${N2:-15000}
for w in rawnode-1voter rawnode-2voters cluster3-inflight1 cluster3-inflight256; do
  for imp in strata raft-rs; do
    ir() { RAFT_BENCH_MODE=one RAFT_BENCH_CASE=$imp/$w RAFT_BENCH_N=$1 valgrind --tool=callgrind --callgrind-out-file=/tmp/rt/cg.out $BIN 2>&1 | grep -E "Collected" | awk '{print $4}' | tr -d ,; }
    a=$(ir $N1); b=$(ir $N2)
    echo "$w $imp $(( (b - a) / (N2 - N1) ))"
  done
done
