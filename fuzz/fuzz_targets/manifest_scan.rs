//! Fuzzes manifest recovery: `manifest::scan` must never panic, and every edit it accepts must
//! survive an encode/scan round trip.
//!
//! The first input byte picks the mode: even = the rest is a raw manifest; odd = the rest is
//! split into payloads framed with correct crcs (so the postcard decoder is reached).
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata_engine::lsm::{frame, io::FileName, manifest};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let bytes = if mode % 2 == 0 { rest.to_vec() } else { framed(rest) };
    let file = FileName::manifest(1);
    let Ok(scan) = manifest::scan(file, &bytes) else { return };
    assert!(scan.valid_len <= bytes.len() as u64);
    assert_eq!(scan.torn, scan.valid_len != bytes.len() as u64);
    let mut again = manifest::file_header().to_vec();
    for edit in &scan.edits {
        manifest::encode_edit(&mut again, edit);
    }
    let rescan = manifest::scan(file, &again).expect("re-encoded manifest scans");
    assert_eq!(rescan.edits, scan.edits);
    assert!(!rescan.torn);
});

fn framed(rest: &[u8]) -> Vec<u8> {
    let mut out = manifest::file_header().to_vec();
    let mut r = rest;
    while let Some((&n, tail)) = r.split_first() {
        let n = (n as usize).min(tail.len());
        frame::encode(&mut out, &tail[..n]);
        r = &tail[n..];
    }
    out
}
