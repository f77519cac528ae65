//! Fuzzes Raft log recovery: `raftlog::record::scan` and the replay of what it accepts must
//! never panic, and every record it accepts must re-encode into a segment that scans back to
//! the same records.
//!
//! The first input byte picks the mode: even = the rest is a raw segment; odd = the rest is
//! split into payloads that are framed with correct crcs (so the record decoder and the
//! replay are reached), then the file is cut short when the mode byte is ≥ 2.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata_engine::lsm::{frame, io::FileName};
use strata_engine::node::raftlog::record::{self, Record, RecordRef};
use strata_engine::node::raftlog::replay::Replay;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let bytes = if mode % 2 == 0 { rest.to_vec() } else { framed(rest, mode / 2) };
    let file = FileName::wal(1);
    let Ok(scan) = record::scan(file, &bytes) else { return };
    assert!(scan.valid_len <= bytes.len() as u64);
    assert_eq!(scan.torn, scan.valid_len != bytes.len() as u64);
    let mut again = record::file_header().to_vec();
    for (_, r) in &scan.records {
        let rr = match r {
            Record::Checkpoint { hard_state, base, last } => RecordRef::Checkpoint { hard_state, base, last: *last },
            Record::Persist { hard_state, snapshot, entries } => {
                RecordRef::Persist { hard_state, snapshot: snapshot.as_ref(), entries }
            }
            Record::Compact { base } => RecordRef::Compact { base },
        };
        record::encode(&mut again, &rr).expect("a record read back fits in a frame");
    }
    let back = record::scan(file, &again).expect("re-encoded records scan");
    let a: Vec<&Record> = scan.records.iter().map(|(_, r)| r).collect();
    let b: Vec<&Record> = back.records.iter().map(|(_, r)| r).collect();
    assert_eq!(a, b);
    let mut replay = Replay::default();
    for (offset, r) in scan.records {
        if replay.apply(file, offset, r).is_err() {
            return;
        }
    }
    let _ = replay.finish();
});

/// A segment whose frames carry chunks of `rest` (each chunk's length is the byte before it),
/// cut to `cut / 128` of its length when `cut` is non-zero.
fn framed(rest: &[u8], cut: u8) -> Vec<u8> {
    let mut out = record::file_header().to_vec();
    let mut r = rest;
    while let Some((&n, tail)) = r.split_first() {
        let n = (n as usize).min(tail.len());
        frame::encode(&mut out, &tail[..n]);
        r = &tail[n..];
    }
    if cut != 0 {
        out.truncate(out.len() * cut as usize / 128);
    }
    out
}
