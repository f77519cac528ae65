//! Fuzzes the SST readers: `Footer::decode`, `Table::open`, `Block::decode` and block cursors
//! must never panic on any bytes, and a block that decodes must iterate consistently.
//!
//! The first input byte picks the mode:
//! * 0 mod 3: the rest is a whole SST file: footer, open, then every block, walked both ways.
//! * 1 mod 3: the rest is block contents; a correct crc is appended so structure checks are
//!   reached; the block is walked both ways and every key is sought.
//! * 2 mod 3: the rest describes entries; a table is built from them, opened and compared with
//!   them, then one byte chosen by the input is flipped and the result must still not panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata_engine::lsm::io::FileName;
use strata_engine::lsm::key::{self, ValueKind};
use strata_engine::lsm::sstable::{Block, BlockHandle, Footer, Table, TableBuilder, TableOptions, FOOTER_LEN};

const FILE: FileName = FileName { kind: strata_engine::lsm::io::FileKind::Table, number: 7 };

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 3 {
        0 => {
            let _ = read_table(rest);
        }
        1 => {
            let mut raw = rest.to_vec();
            raw.extend_from_slice(&crc32(rest).to_le_bytes());
            let handle = BlockHandle { offset: 0, len: raw.len() as u32 };
            if let Ok(block) = Block::decode(FILE, handle, raw) {
                check_block(&block);
            }
        }
        _ => build_and_damage(rest, mode),
    }
});

/// Opens `whole` in two reads, as the store does, and walks every block; the entries in order.
fn read_table(whole: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let len = whole.len() as u64;
    let tail = &whole[whole.len().saturating_sub(FOOTER_LEN as usize)..];
    let footer = Footer::decode(FILE, len, tail).ok()?;
    let (off, meta_len) = footer.meta_range();
    let meta = whole.get(off as usize..(off + meta_len) as usize)?;
    let table = Table::open(FILE, len, &footer, meta).ok()?;
    let mut entries = Vec::new();
    for i in 0..table.block_count() {
        let block = table.read_block(whole, i).ok()?;
        let keys = check_block(&block);
        let mut c = block.cursor();
        c.seek_to_first();
        while c.valid() {
            entries.push((c.key().to_vec(), c.value().to_vec()));
            c.next();
        }
        // The index points at this block for its own keys.
        for k in &keys {
            let (u, t) = key::split_internal(k).expect("decoded keys are internal keys");
            assert_eq!(table.seek_block(u, t), Some(i));
        }
    }
    for w in entries.windows(2) {
        assert_eq!(key::cmp_internal(&w[0].0, &w[1].0), core::cmp::Ordering::Less);
    }
    Some(entries)
}

/// Walks a decoded block both ways and seeks every key; returns the keys.
fn check_block(block: &Block) -> Vec<Vec<u8>> {
    let mut c = block.cursor();
    let mut fwd = Vec::new();
    c.seek_to_first();
    while c.valid() {
        fwd.push((c.key().to_vec(), c.value().to_vec()));
        c.next();
    }
    let mut back = Vec::new();
    c.seek_to_last();
    while c.valid() {
        back.push((c.key().to_vec(), c.value().to_vec()));
        c.prev();
    }
    back.reverse();
    assert_eq!(fwd, back);
    assert!(!fwd.is_empty());
    for w in fwd.windows(2) {
        assert_eq!(key::cmp_internal(&w[0].0, &w[1].0), core::cmp::Ordering::Less);
    }
    for (k, v) in &fwd {
        let (u, t) = key::split_internal(k).expect("decoded keys are internal keys");
        c.seek(u, t);
        assert_eq!((c.key(), c.value()), (&k[..], &v[..]));
        c.seek_for_prev(u, t);
        assert_eq!(c.key(), &k[..]);
        let (found_t, value) = block.get(u, t >> 8).expect("a key finds itself");
        assert!(found_t >= t || found_t >> 8 == t >> 8);
        let _ = value;
    }
    fwd.into_iter().map(|(k, _)| k).collect()
}

/// Builds a table from entries described by `rest`, checks it reads back, then flips a byte.
fn build_and_damage(rest: &[u8], mode: u8) {
    let mut entries: Vec<(Vec<u8>, u64, Vec<u8>)> = Vec::new();
    let mut r = rest;
    while r.len() >= 3 {
        let (klen, vlen, seq) = ((r[0] % 12) as usize, (r[1] % 40) as usize, u64::from(r[2]));
        r = &r[3..];
        let kind = if seq % 5 == 0 { ValueKind::Delete } else { ValueKind::Put };
        let k = r[..klen.min(r.len())].to_vec();
        r = &r[k.len()..];
        let v = r[..vlen.min(r.len())].to_vec();
        r = &r[v.len()..];
        entries.push((k, key::trailer(seq, kind), v));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    entries.dedup_by(|a, b| a.0 == b.0 && a.1 >> 8 == b.1 >> 8);
    if entries.is_empty() {
        return;
    }
    let opts = TableOptions {
        block_size: 16 + (mode as usize) * 4,
        restart_interval: 1 + (mode as usize % 7),
        bloom_bits_per_key: u32::from(mode % 12),
    };
    let mut b = TableBuilder::new(&opts);
    for (k, t, v) in &entries {
        b.add(k, *t, v);
    }
    let (mut whole, props) = b.finish();
    let got = read_table(&whole).expect("a built table reads back");
    let want: Vec<(Vec<u8>, Vec<u8>)> = entries
        .iter()
        .map(|(k, t, v)| {
            let mut ik = Vec::new();
            key::encode_internal(&mut ik, k, *t);
            (ik, v.clone())
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(props.entries, entries.len() as u64);
    let table = Table::open_from_bytes(FILE, &whole).expect("opens");
    for (k, _, _) in &entries {
        assert!(table.may_contain(k));
    }
    let at = (rest.len().wrapping_mul(31) + mode as usize) % whole.len();
    whole[at] ^= 1 << (mode % 8);
    assert!(read_table(&whole).is_none(), "flip at {at} went unnoticed");
}

fn crc32(b: &[u8]) -> u32 {
    // A bitwise CRC-32 (IEEE), to avoid another dependency here.
    let mut crc = !0u32;
    for &byte in b {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}
