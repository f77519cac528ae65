//! The Raft log's segment format: a log file (see [`frame`](crate::lsm::frame)) with magic
//! [`SEGMENT_MAGIC`] whose frames each carry one postcard-encoded [`Record`].
//!
//! ```text
//! segment := file_header("STRATRFT", 1) checkpoint record*
//! record  := Checkpoint { hard_state, base: SnapshotMeta, last: Index }   -- tag 0
//!          | Persist { hard_state, snapshot: Option<SnapshotMeta>, entries: Vec<Entry> } -- tag 1
//!          | Compact { base: SnapshotMeta }                                -- tag 2
//! ```
//!
//! Every segment starts with a `Checkpoint`: the state as of the end of the segment before
//! it (hard state, the snapshot the log starts after, and the last index of the log), so the
//! segments before it can be deleted once their entries are compacted. A `Persist` is one
//! `strata_raft::Persist` (its id is not stored), written as one frame, so it is durable
//! whole or not at all. A `Compact` records that the entries up to `base.index` are no
//! longer needed. [`scan`] reads a segment: the frame rules decide what is torn, and a frame
//! whose crc matches but whose payload is not a record is corruption.
use super::LogError;
use crate::lsm::frame;
use crate::lsm::io::FileName;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};
use strata_raft::{Entry, HardState, Index, SnapshotMeta};

/// Magic at the start of every Raft log segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"STRATRFT";

/// The segment format version.
pub const SEGMENT_VERSION: u32 = 1;

/// The 16-byte header that starts a segment.
pub fn file_header() -> [u8; 16] {
    frame::file_header(SEGMENT_MAGIC, SEGMENT_VERSION)
}

/// One record of a segment, as read back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// The state before the segment's first record: written first in every segment.
    Checkpoint {
        /// The hard state.
        hard_state: HardState,
        /// The snapshot the log starts after (index 0: none).
        base: SnapshotMeta,
        /// The log's last index (`base.index` when it holds no entries).
        last: Index,
    },
    /// One persist request.
    Persist {
        /// The hard state.
        hard_state: HardState,
        /// An installed snapshot: every stored entry is dropped.
        snapshot: Option<SnapshotMeta>,
        /// Entries replacing the stored ones from `entries[0].index` on.
        entries: Vec<Entry>,
    },
    /// Entries up to `base.index` are no longer needed; the log starts after `base`.
    Compact {
        /// The new start of the log.
        base: SnapshotMeta,
    },
}

/// The same records, borrowed, for encoding without copies (encodes exactly like [`Record`]).
#[derive(Clone, Copy, Debug, Serialize)]
pub enum RecordRef<'a> {
    /// See [`Record::Checkpoint`].
    Checkpoint {
        /// The hard state.
        hard_state: &'a HardState,
        /// The snapshot the log starts after.
        base: &'a SnapshotMeta,
        /// The log's last index.
        last: Index,
    },
    /// See [`Record::Persist`].
    Persist {
        /// The hard state.
        hard_state: &'a HardState,
        /// An installed snapshot.
        snapshot: Option<&'a SnapshotMeta>,
        /// New entries.
        entries: &'a [Entry],
    },
    /// See [`Record::Compact`].
    Compact {
        /// The new start of the log.
        base: &'a SnapshotMeta,
    },
}

/// Appends one frame holding `record` to `out`; returns the frame's length, or `None` (and
/// leaves `out` as it was) when the record is longer than a frame may be.
pub fn encode(out: &mut Vec<u8>, record: &RecordRef<'_>) -> Option<usize> {
    let before = out.len();
    let start = frame::begin(out);
    let buf = core::mem::take(out);
    // Serializing into a Vec cannot fail for these types (postcard fails only on sequences of
    // unknown length and full fixed buffers); a failure would be a bug, hence the panic.
    *out = match postcard::to_extend(record, buf) {
        Ok(buf) => buf,
        Err(_) => panic!("postcard failed to encode a Raft log record"),
    };
    if out.len() - start - frame::FRAME_HEADER_LEN > frame::MAX_FRAME_LEN {
        out.truncate(before);
        return None;
    }
    frame::finish(out, start);
    Some(out.len() - before)
}

/// What [`scan`] read from a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentScan {
    /// The intact records in order, with the offset of each one's frame.
    pub records: Vec<(u64, Record)>,
    /// Bytes of the segment holding the header and intact frames.
    pub valid_len: u64,
    /// True when bytes after `valid_len` were dropped as a torn tail (or torn creation).
    pub torn: bool,
}

/// Reads a segment. Errors are [`LogError::Corruption`] naming `file` and the offset of the
/// bad header or frame. Never panics, whatever the bytes.
pub fn scan(file: FileName, bytes: &[u8]) -> Result<SegmentScan, LogError> {
    let log = frame::scan_log(file, bytes, SEGMENT_MAGIC, SEGMENT_VERSION).map_err(LogError::from_store)?;
    let mut records = Vec::with_capacity(log.payloads.len());
    for &(offset, payload) in &log.payloads {
        let record = decode(payload).map_err(|reason| LogError::Corruption { file, offset, reason })?;
        if records.is_empty() && !matches!(record, Record::Checkpoint { .. }) {
            return Err(LogError::Corruption { file, offset, reason: "segment does not start with a checkpoint" });
        }
        records.push((offset, record));
    }
    Ok(SegmentScan { records, valid_len: log.valid_len, torn: log.torn })
}

fn decode(payload: &[u8]) -> Result<Record, &'static str> {
    let (record, rest) =
        postcard::take_from_bytes::<Record>(payload).map_err(|_| "Raft log frame is not a record")?;
    if !rest.is_empty() {
        return Err("trailing bytes after a Raft log record");
    }
    if let Record::Persist { entries, .. } = &record {
        for w in entries.windows(2) {
            if w[1].index != w[0].index.next() {
                return Err("entries of a record are not consecutive");
            }
        }
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsm::io::FileKind;
    use alloc::vec;
    use strata_raft::{Bytes, ConfState, EntryKind, NodeId, Term};

    const FILE: FileName = FileName { kind: FileKind::Wal, number: 4 };

    fn entry(index: u64, term: u64) -> Entry {
        Entry { term: Term(term), index: Index(index), kind: EntryKind::Normal, data: Bytes::from(vec![index as u8; 3]) }
    }

    fn hs(term: u64) -> HardState {
        HardState { term: Term(term), vote: Some(NodeId(2)), commit: Index(1) }
    }

    fn meta(index: u64) -> SnapshotMeta {
        SnapshotMeta { index: Index(index), term: Term(1), conf: ConfState { voters: vec![NodeId(1)], ..ConfState::default() } }
    }

    fn segment() -> (Vec<u8>, Vec<Record>) {
        let mut out = file_header().to_vec();
        let (h, b) = (hs(1), meta(0));
        let es = [entry(1, 1), entry(2, 1)];
        let m = meta(1);
        let refs = [
            RecordRef::Checkpoint { hard_state: &h, base: &b, last: Index(0) },
            RecordRef::Persist { hard_state: &h, snapshot: None, entries: &es },
            RecordRef::Compact { base: &m },
            RecordRef::Persist { hard_state: &h, snapshot: Some(&m), entries: &es[1..] },
        ];
        for r in &refs {
            encode(&mut out, r).expect("fits");
        }
        let owned = vec![
            Record::Checkpoint { hard_state: h, base: b.clone(), last: Index(0) },
            Record::Persist { hard_state: h, snapshot: None, entries: es.to_vec() },
            Record::Compact { base: m.clone() },
            Record::Persist { hard_state: h, snapshot: Some(m), entries: es[1..].to_vec() },
        ];
        (out, owned)
    }

    #[test]
    fn round_trip() {
        let (bytes, want) = segment();
        let s = scan(FILE, &bytes).expect("scans");
        let got: Vec<Record> = s.records.into_iter().map(|(_, r)| r).collect();
        assert_eq!(got, want);
        assert_eq!((s.valid_len, s.torn), (bytes.len() as u64, false));
    }

    #[test]
    fn every_truncation_keeps_a_prefix() {
        let (bytes, want) = segment();
        for cut in 0..bytes.len() {
            let s = scan(FILE, &bytes[..cut]).expect("a cut is a tear");
            let got: Vec<Record> = s.records.into_iter().map(|(_, r)| r).collect();
            assert_eq!(got[..], want[..got.len()], "cut {cut}");
            assert_eq!(s.torn, cut != 0 && s.valid_len != cut as u64);
        }
    }

    #[test]
    fn bad_payloads_are_corruption() {
        let (good, _) = segment();
        // A frame that is not a record, in the middle.
        let mut bytes = good[..].to_vec();
        let at = bytes.len() as u64;
        frame::encode(&mut bytes, b"\x07garbage");
        bytes.extend_from_slice(&good[16..]);
        assert!(matches!(scan(FILE, &bytes), Err(LogError::Corruption { file: FILE, offset, .. }) if offset == at));
        // A segment that does not start with a checkpoint.
        let mut bytes = file_header().to_vec();
        encode(&mut bytes, &RecordRef::Compact { base: &meta(3) }).expect("fits");
        assert!(matches!(scan(FILE, &bytes), Err(LogError::Corruption { offset: 16, .. })));
        // Entries that skip an index.
        let mut bytes = file_header().to_vec();
        let h = hs(1);
        encode(&mut bytes, &RecordRef::Checkpoint { hard_state: &h, base: &meta(0), last: Index(0) }).expect("fits");
        let at = bytes.len() as u64;
        encode(&mut bytes, &RecordRef::Persist { hard_state: &h, snapshot: None, entries: &[entry(1, 1), entry(3, 1)] })
            .expect("fits");
        assert!(matches!(scan(FILE, &bytes), Err(LogError::Corruption { offset, .. }) if offset == at));
        // The LSM's WAL is not a Raft log segment.
        let wal = crate::lsm::wal::file_header();
        assert!(matches!(scan(FILE, &wal), Err(LogError::Corruption { offset: 0, .. })));
    }
}
