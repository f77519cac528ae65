//! Fuzzes the snapshot stream decoder (`node::snapshot::format::Decoder`), which reads bytes
//! from a peer: it must never panic, whatever the bytes and however they are cut, and what it
//! accepts must be consistent (data in order, within the header's file lengths).
//!
//! The first input byte picks the mode: even = the rest is a raw stream; odd = a valid stream
//! is built from the rest (file lengths and contents, frame size), a byte of it is flipped
//! when the mode byte is ≥ 2 (at a position the input names), and it must decode to exactly
//! the files when nothing was flipped.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata_engine::node::snapshot::format::{Decoded, Decoder, FileEntry, FramePlan, Layout, SnapshotHeader, FORMAT_VERSION};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let Some((&piece, rest)) = rest.split_first() else { return };
    let piece = usize::from(piece).max(1);
    if mode % 2 == 0 {
        let mut d = Decoder::new(None);
        check(&mut d, rest, piece, None);
        return;
    }
    let Some((&nfiles, rest)) = rest.split_first() else { return };
    let Some((&frame, rest)) = rest.split_first() else { return };
    let nfiles = usize::from(nfiles % 4);
    let lens: Vec<u64> = (0..nfiles).map(|i| u64::from(rest.get(i).copied().unwrap_or(0)) * 7).collect();
    let header = SnapshotHeader {
        format: FORMAT_VERSION,
        region: 1,
        index: 9,
        term: 2,
        files: lens.iter().map(|&len| FileEntry { level: 1, len }).collect(),
    };
    let content = |file: u32, off: u64| rest.get((file as usize * 13 + off as usize) % rest.len().max(1)).copied().unwrap_or(0);
    let layout = Layout::new(&header, u64::from(frame) * 3);
    let mut stream = Vec::new();
    let (frames, last) = layout.frames_at(0, u64::MAX).expect("offset 0 is a frame");
    assert!(last);
    for f in frames {
        let bytes: Vec<u8> = match f {
            FramePlan::Data { file, offset, len } => (offset..offset + len).map(|o| content(file, o)).collect(),
            _ => Vec::new(),
        };
        layout.encode(f, &bytes, &mut stream);
    }
    assert_eq!(stream.len() as u64, layout.total_len());
    let flipped = mode >= 2 && !stream.is_empty();
    if flipped {
        let at = (usize::from(mode) * 31 + rest.len()) % stream.len();
        stream[at] ^= 1 << (mode % 8);
    }
    let mut d = Decoder::new(Some(9));
    let expect = (!flipped).then(|| (0..nfiles).map(|i| (0..lens[i]).map(|o| content(i as u32, o)).collect::<Vec<u8>>()).collect::<Vec<_>>());
    check(&mut d, &stream, piece, expect);
});

/// Pushes `bytes` in pieces of `piece`; checks what is decoded, and (with `expect`) that the
/// stream is accepted whole and holds exactly those files.
fn check(d: &mut Decoder, bytes: &[u8], piece: usize, expect: Option<Vec<Vec<u8>>>) {
    let mut files: Vec<Vec<u8>> = Vec::new();
    let mut lens: Vec<u64> = Vec::new();
    for p in bytes.chunks(piece) {
        let out = match d.push(p) {
            Ok(o) => o,
            Err(_) => {
                assert!(expect.is_none(), "a valid stream was refused");
                return;
            }
        };
        for ev in out {
            match ev {
                Decoded::Header(h) => {
                    lens = h.files.iter().map(|f| f.len).collect();
                    files = vec![Vec::new(); lens.len()];
                }
                Decoded::Data { file, offset, bytes } => {
                    let f = &mut files[file as usize];
                    assert_eq!(f.len() as u64, offset, "data out of order accepted");
                    f.extend_from_slice(&bytes);
                    assert!(f.len() as u64 <= lens[file as usize], "data beyond a file accepted");
                }
                Decoded::End => {
                    for (f, l) in files.iter().zip(&lens) {
                        assert_eq!(f.len() as u64, *l, "end before a file was complete");
                    }
                }
            }
        }
    }
    if let Some(e) = expect {
        assert!(d.is_complete(), "a valid stream did not complete");
        assert_eq!(files, e);
    }
}
