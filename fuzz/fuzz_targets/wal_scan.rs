//! Fuzzes WAL recovery: `wal::scan` must never panic, and whatever it accepts must be exactly
//! the header plus the re-encoded records.
//!
//! The first input byte picks the mode: even = the rest is a raw WAL file; odd = the rest is
//! split into payloads that are framed with correct crcs (so the batch decoder is reached),
//! then the file is cut short when the mode byte is ≥ 2.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata_engine::lsm::{frame, io::FileName, wal};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let bytes = if mode % 2 == 0 { rest.to_vec() } else { framed(rest, mode / 2) };
    let Ok(scan) = wal::scan(FileName::wal(1), &bytes) else { return };
    assert!(scan.valid_len <= bytes.len() as u64);
    assert_eq!(scan.torn, scan.valid_len != bytes.len() as u64);
    if scan.valid_len == 0 {
        assert!(scan.records.is_empty());
        return;
    }
    let mut again = wal::file_header().to_vec();
    for (seq, batch) in &scan.records {
        wal::encode_record(&mut again, *seq, batch);
    }
    assert_eq!(&again[..], &bytes[..scan.valid_len as usize]);
});

/// A WAL whose frames carry chunks of `rest` (each chunk's length is the byte before it), cut
/// to `cut / 128` of its length when `cut` is non-zero.
fn framed(rest: &[u8], cut: u8) -> Vec<u8> {
    let mut out = wal::file_header().to_vec();
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
