//! The manifest: an append-only log of [`VersionEdit`]s from which the current set of tables is
//! rebuilt on open.
//!
//! A manifest is a log file (see [`frame`](super::frame)) with magic [`MANIFEST_MAGIC`]; each
//! frame's payload is one postcard-encoded [`VersionEdit`]. Recovery reads it with [`scan`]; a
//! frame whose crc matches but whose payload does not decode as an edit (or describes an
//! impossible table) is corruption.
use super::error::Error;
use super::frame;
use super::io::FileName;
use super::sstable::TableProps;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Magic at the start of every manifest.
pub const MANIFEST_MAGIC: [u8; 8] = *b"STRATMAN";

/// The manifest format version.
pub const MANIFEST_VERSION: u32 = 1;

/// A table as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableMeta {
    /// The table's file number.
    pub number: u64,
    /// The file's length in bytes.
    pub file_len: u64,
    /// The table's properties (key and sequence ranges, counts).
    pub props: TableProps,
}

/// One atomic change to the store's file set and counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionEdit {
    /// Tables added, with their level.
    pub added: Vec<(u8, TableMeta)>,
    /// Tables removed: `(level, file number)`.
    pub removed: Vec<(u8, u64)>,
    /// The next unused file number, when it changed.
    pub next_file_number: Option<u64>,
    /// The last sequence number whose effects are in tables or logged, when it changed.
    pub last_seq: Option<u64>,
    /// WAL segments numbered below this are obsolete (their contents are in tables).
    pub log_number: Option<u64>,
    /// The largest applied mark (`Batch::set_applied_mark`) of the flushed data, when it
    /// changed. Edits written before marks existed lack the field and decode with `None`.
    pub applied_mark: Option<u64>,
}

/// A version edit as written before `applied_mark` existed (decoded as a fallback).
#[derive(Deserialize)]
struct VersionEditV1 {
    added: Vec<(u8, TableMeta)>,
    removed: Vec<(u8, u64)>,
    next_file_number: Option<u64>,
    last_seq: Option<u64>,
    log_number: Option<u64>,
}

/// The 16-byte header that starts a manifest.
pub fn file_header() -> [u8; 16] {
    frame::file_header(MANIFEST_MAGIC, MANIFEST_VERSION)
}

/// Appends one frame holding `edit` to `out`.
pub fn encode_edit(out: &mut Vec<u8>, edit: &VersionEdit) {
    let start = frame::begin(out);
    let buf = core::mem::take(out);
    // Serializing these plain structs into a Vec cannot fail (postcard errors only on sequences
    // of unknown length and on full fixed buffers); a failure would be a bug, hence the panic.
    *out = match postcard::to_extend(edit, buf) {
        Ok(buf) => buf,
        Err(_) => panic!("postcard failed to encode a VersionEdit"),
    };
    frame::finish(out, start);
}

/// What [`scan`] recovered from a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestScan {
    /// The intact edits in order.
    pub edits: Vec<VersionEdit>,
    /// Length of the intact prefix; truncate the manifest to it before appending again.
    pub valid_len: u64,
    /// True when a torn tail (or torn creation) was dropped.
    pub torn: bool,
}

/// Reads a manifest. Errors are [`Error::Corruption`] naming `file` and the offset of the bad
/// header or frame.
pub fn scan(file: FileName, bytes: &[u8]) -> Result<ManifestScan, Error> {
    let log = frame::scan_log(file, bytes, MANIFEST_MAGIC, MANIFEST_VERSION)?;
    let mut edits = Vec::with_capacity(log.payloads.len());
    for &(offset, payload) in &log.payloads {
        let edit = decode_edit(payload).map_err(|reason| Error::Corruption { file, offset, reason })?;
        edits.push(edit);
    }
    Ok(ManifestScan { edits, valid_len: log.valid_len, torn: log.torn })
}

fn decode_edit(payload: &[u8]) -> Result<VersionEdit, &'static str> {
    // An edit in the current form, or (its last field missing) one written before marks.
    let edit = match postcard::take_from_bytes::<VersionEdit>(payload) {
        Ok((edit, [])) => edit,
        Ok(_) => return Err("trailing bytes after manifest record"),
        Err(_) => {
            let (old, rest) = postcard::take_from_bytes::<VersionEditV1>(payload)
                .map_err(|_| "manifest record is not a version edit")?;
            if !rest.is_empty() {
                return Err("trailing bytes after manifest record");
            }
            VersionEdit {
                added: old.added,
                removed: old.removed,
                next_file_number: old.next_file_number,
                last_seq: old.last_seq,
                log_number: old.log_number,
                applied_mark: None,
            }
        }
    };
    for (_, meta) in &edit.added {
        meta.props.check()?;
    }
    Ok(edit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsm::key::{self, ValueKind};
    use alloc::vec;

    const FILE: FileName = FileName { kind: super::super::io::FileKind::Manifest, number: 1 };

    fn ikey(user: &[u8], seq: u64) -> Vec<u8> {
        let mut v = Vec::new();
        key::encode_internal(&mut v, user, key::trailer(seq, ValueKind::Put));
        v
    }

    fn meta(number: u64) -> TableMeta {
        TableMeta {
            number,
            file_len: 4096 + number,
            props: TableProps {
                smallest: ikey(b"apple", 7),
                largest: ikey(b"zebra", 3),
                min_seq: 1,
                max_seq: 9,
                entries: 100,
                deletions: 4,
                raw_key_bytes: 900,
                raw_value_bytes: 10_000,
                data_blocks: 3,
            },
        }
    }

    fn edits() -> Vec<VersionEdit> {
        vec![
            VersionEdit {
                next_file_number: Some(2),
                last_seq: Some(0),
                log_number: Some(1),
                ..Default::default()
            },
            VersionEdit {
                added: vec![(0, meta(5)), (0, meta(6))],
                next_file_number: Some(7),
                last_seq: Some(9),
                ..Default::default()
            },
            VersionEdit {
                added: vec![(1, meta(8))],
                removed: vec![(0, 5), (0, 6)],
                applied_mark: Some(42),
                ..Default::default()
            },
        ]
    }

    /// The edit as the format before marks wrote it.
    #[derive(Serialize)]
    struct OldEdit {
        added: Vec<(u8, TableMeta)>,
        removed: Vec<(u8, u64)>,
        next_file_number: Option<u64>,
        last_seq: Option<u64>,
        log_number: Option<u64>,
    }

    #[test]
    fn edits_written_before_marks_decode_with_none() {
        let mut bytes = file_header().to_vec();
        let mut want = Vec::new();
        for e in edits() {
            let old = OldEdit {
                added: e.added.clone(),
                removed: e.removed.clone(),
                next_file_number: e.next_file_number,
                last_seq: e.last_seq,
                log_number: e.log_number,
            };
            frame::encode(&mut bytes, &postcard::to_allocvec(&old).expect("encodes"));
            want.push(VersionEdit { applied_mark: None, ..e });
        }
        let s = scan(FILE, &bytes).expect("scans");
        assert_eq!(s.edits, want);
        // Old and new edits in one manifest (a store upgraded in place).
        encode_edit(&mut bytes, &edits()[2]);
        let s = scan(FILE, &bytes).expect("scans");
        assert_eq!(s.edits.last(), Some(&edits()[2]));
    }

    fn manifest() -> Vec<u8> {
        let mut bytes = file_header().to_vec();
        for e in &edits() {
            encode_edit(&mut bytes, e);
        }
        bytes
    }

    #[test]
    fn round_trip() {
        let bytes = manifest();
        let s = scan(FILE, &bytes).expect("scans");
        assert_eq!(s.edits, edits());
        assert_eq!(s.valid_len, bytes.len() as u64);
        assert!(!s.torn);
        assert_eq!(s.edits[1].added[0].1.props.smallest_user_key(), b"apple");
        assert_eq!(s.edits[1].added[0].1.props.largest_user_key(), b"zebra");
    }

    #[test]
    fn encode_appends_after_existing_bytes() {
        let mut a = vec![1, 2, 3];
        encode_edit(&mut a, &edits()[1]);
        assert_eq!(&a[..3], &[1, 2, 3]);
        let mut b = vec![1, 2, 3];
        frame::encode(&mut b, &postcard::to_allocvec(&edits()[1]).expect("encodes"));
        assert_eq!(a, b);
    }

    #[test]
    fn every_truncation_keeps_a_prefix() {
        let bytes = manifest();
        let all = edits();
        for cut in 0..bytes.len() {
            let s = scan(FILE, &bytes[..cut]).expect("scans");
            assert_eq!(s.edits[..], all[..s.edits.len()]);
            assert_eq!(s.torn, cut != 0 && s.valid_len != cut as u64, "cut {cut}");
        }
    }

    #[test]
    fn good_crc_bad_payload_is_corruption() {
        let mut bytes = file_header().to_vec();
        encode_edit(&mut bytes, &edits()[0]);
        let offset = bytes.len() as u64;
        frame::encode(&mut bytes, &[0xff; 9]);
        match scan(FILE, &bytes) {
            Err(Error::Corruption { file, offset: o, .. }) => assert_eq!((file, o), (FILE, offset)),
            other => panic!("expected corruption, got {other:?}"),
        }
        // Trailing bytes after a valid edit.
        let mut bytes = file_header().to_vec();
        let mut payload = postcard::to_allocvec(&edits()[0]).expect("encodes");
        payload.push(0);
        frame::encode(&mut bytes, &payload);
        assert!(matches!(scan(FILE, &bytes), Err(Error::Corruption { offset: 16, .. })));
        // A table whose props are impossible.
        let mut bad = meta(3);
        bad.props.smallest = vec![1, 2];
        let mut bytes = file_header().to_vec();
        encode_edit(&mut bytes, &VersionEdit { added: vec![(0, bad)], ..Default::default() });
        assert!(matches!(scan(FILE, &bytes), Err(Error::Corruption { offset: 16, .. })));
    }

    #[test]
    fn wal_is_not_a_manifest() {
        let bytes = crate::lsm::wal::file_header();
        assert!(matches!(scan(FILE, &bytes), Err(Error::Corruption { offset: 0, .. })));
    }

    #[test]
    fn every_bit_flip_is_detected_or_torn() {
        let bytes = manifest();
        let all = edits();
        let last = {
            let s = frame::scan_log(FILE, &bytes, MANIFEST_MAGIC, MANIFEST_VERSION).expect("scans");
            s.payloads[s.payloads.len() - 1].0 as usize
        };
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                match scan(FILE, &b) {
                    Err(Error::Corruption { file, .. }) => assert_eq!(file, FILE),
                    Ok(s) => {
                        assert!(i >= last + 4, "flip at {i} bit {bit} accepted");
                        assert!(s.torn);
                        assert_eq!(s.edits[..], all[..all.len() - 1]);
                    }
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
        }
    }
}
