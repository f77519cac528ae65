//! The write-ahead log: a log file (see [`frame`](super::frame)) whose frames each carry one
//! write batch as encoded by [`Batch::encode_record`]: `first_seq: u64 LE | count: u32 LE | ops`.
//!
//! Recovery reads a segment with [`scan`]: intact records in order, the length to truncate the
//! file to, and whether a torn tail was dropped. A frame whose crc matches but whose payload is
//! not a well-formed batch is corruption (the writer never produces one).
use super::batch::Batch;
use super::error::Error;
use super::frame;
use super::io::FileName;
use alloc::vec::Vec;

/// Magic at the start of every WAL segment.
pub const WAL_MAGIC: [u8; 8] = *b"STRATWAL";

/// The WAL format version.
pub const WAL_VERSION: u32 = 1;

/// The 16-byte header that starts a WAL segment.
pub fn file_header() -> [u8; 16] {
    frame::file_header(WAL_MAGIC, WAL_VERSION)
}

/// Appends one frame holding `batch` with sequence numbers from `first_seq`. The batch is
/// written straight into `out` (no intermediate copy).
pub fn encode_record(out: &mut Vec<u8>, first_seq: u64, batch: &Batch) {
    out.reserve(frame::FRAME_HEADER_LEN + super::batch::RECORD_HEADER_LEN + batch.encoded_len());
    let start = frame::begin(out);
    batch.encode_record(first_seq, out);
    frame::finish(out, start);
}

/// What [`scan`] recovered from a WAL segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalScan {
    /// The intact records in order: `(first_seq, batch)`.
    pub records: Vec<(u64, Batch)>,
    /// Length of the intact prefix; truncate the segment to it before appending again.
    pub valid_len: u64,
    /// True when a torn tail (or torn creation) was dropped.
    pub torn: bool,
}

/// Reads a WAL segment. Errors are [`Error::Corruption`] naming `file` and the offset of the bad
/// header or frame.
pub fn scan(file: FileName, bytes: &[u8]) -> Result<WalScan, Error> {
    let log = frame::scan_log(file, bytes, WAL_MAGIC, WAL_VERSION)?;
    let mut records = Vec::with_capacity(log.payloads.len());
    for &(offset, payload) in &log.payloads {
        let (first_seq, batch) = Batch::decode_record(payload)
            .map_err(|reason| Error::Corruption { file, offset, reason })?;
        records.push((first_seq, batch));
    }
    Ok(WalScan { records, valid_len: log.valid_len, torn: log.torn })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const FILE: FileName = FileName { kind: super::super::io::FileKind::Wal, number: 12 };

    fn batch(i: u32) -> Batch {
        let mut b = Batch::new();
        for j in 0..i % 4 + 1 {
            b.put(alloc::format!("key{i}-{j}").as_bytes(), &vec![i as u8; (i * 7 % 50) as usize]);
        }
        if i % 3 == 0 {
            b.delete(b"gone");
        }
        b
    }

    fn segment(n: u32) -> (Vec<u8>, Vec<(u64, Batch)>) {
        let mut bytes = file_header().to_vec();
        let mut model = Vec::new();
        let mut seq = 1;
        for i in 0..n {
            let b = batch(i);
            encode_record(&mut bytes, seq, &b);
            model.push((seq, b.clone()));
            seq += u64::from(b.len());
        }
        (bytes, model)
    }

    #[test]
    fn round_trip() {
        let (bytes, model) = segment(20);
        let s = scan(FILE, &bytes).expect("scans");
        assert_eq!(s.records, model);
        assert_eq!(s.valid_len, bytes.len() as u64);
        assert!(!s.torn);
    }

    #[test]
    fn every_truncation_keeps_a_prefix() {
        let (bytes, model) = segment(5);
        for cut in 0..bytes.len() {
            let s = scan(FILE, &bytes[..cut]).expect("scans");
            assert!(s.records.len() <= model.len());
            assert_eq!(s.records[..], model[..s.records.len()]);
            assert!(s.valid_len <= cut as u64);
            assert_eq!(s.torn, cut != 0 && s.valid_len != cut as u64, "cut {cut}");
        }
    }

    #[test]
    fn good_crc_bad_payload_is_corruption() {
        let mut bytes = file_header().to_vec();
        encode_record(&mut bytes, 1, &batch(1));
        let offset = bytes.len() as u64;
        frame::encode(&mut bytes, b"not a batch");
        encode_record(&mut bytes, 9, &batch(2));
        match scan(FILE, &bytes) {
            Err(Error::Corruption { file, offset: o, .. }) => assert_eq!((file, o), (FILE, offset)),
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn wrong_magic_is_corruption() {
        let mut bytes = frame::file_header(*b"STRATMAN", 1).to_vec();
        encode_record(&mut bytes, 1, &batch(1));
        assert!(matches!(scan(FILE, &bytes), Err(Error::Corruption { offset: 0, .. })));
    }

    /// The native binding zero-fills WAL segments ahead of the data (`bindings/native`'s
    /// preallocation) so that a sync never changes the file's size; a crash or a clean close
    /// leaves the records followed by zeros.
    #[test]
    fn a_preallocated_zero_tail_is_a_clean_end() {
        let (bytes, model) = segment(7);
        let frames = frame::scan_log(FILE, &bytes, WAL_MAGIC, WAL_VERSION).expect("scans").payloads;
        let zeros = |b: &[u8]| {
            let mut v = b.to_vec();
            v.resize(b.len() + 64 * 1024, 0);
            v
        };
        // Every record, then zeros: all recovered; the zeros are cut off, not an error.
        let s = scan(FILE, &zeros(&bytes)).expect("zeros after the records are a clean end");
        assert_eq!(s.records, model);
        assert_eq!(s.valid_len, bytes.len() as u64);
        assert!(s.torn);
        // The last record torn anywhere (its unsynced bytes never reached the disk), zeros
        // after it: the records before it are kept, the torn one is dropped.
        let last = frames[frames.len() - 1].0 as usize;
        for cut in last + 1..bytes.len() {
            let s = scan(FILE, &zeros(&bytes[..cut])).expect("a torn last record is a torn tail");
            assert_eq!(s.records[..], model[..model.len() - 1], "cut {cut}");
            assert_eq!(s.valid_len, last as u64);
            assert!(s.torn);
        }
        // An earlier record damaged, zeros after the end: corruption at that record, never a
        // clean end.
        for (i, &(offset, _)) in frames.iter().enumerate().take(frames.len() - 1) {
            let mut b = zeros(&bytes);
            b[offset as usize + frame::FRAME_HEADER_LEN + 1] ^= 0x10;
            match scan(FILE, &b) {
                Err(Error::Corruption { file, offset: o, .. }) => assert_eq!((file, o), (FILE, offset), "record {i}"),
                other => panic!("record {i}: expected corruption, got {other:?}"),
            }
        }
    }

    #[test]
    fn every_bit_flip_is_detected_or_torn() {
        let (bytes, model) = segment(4);
        let last = {
            let s = frame::scan_log(FILE, &bytes, WAL_MAGIC, WAL_VERSION).expect("scans");
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
                        assert_eq!(s.records[..], model[..model.len() - 1]);
                    }
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
        }
    }
}
