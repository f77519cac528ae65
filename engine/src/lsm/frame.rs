//! Frames: `len | crc32 | payload`, the unit of every durable log (WAL, manifest).
//!
//! A log file is a 16-byte file header followed by frames:
//!
//! ```text
//! file   := header frame*
//! header := magic: [u8; 8] | version: u32 LE | crc32(magic ++ version): u32 LE
//! frame  := len: u32 LE | crc32(payload): u32 LE | payload: [u8; len]
//! ```
//!
//! [`scan_log`] reads a log back and decides what is durable. Its rules separate a *torn tail*
//! (the unsynced end of the last append, which was never acknowledged and may be cut off) from
//! *corruption* (damage to bytes that were, or may have been, acknowledged), which is reported
//! with the file and offset and never skipped:
//!
//! * An empty file: nothing, not torn. A file shorter than the header, or whose header and all
//!   following bytes are zero: a torn creation (nothing durable, `torn`).
//! * A complete header with the wrong magic, version or crc, or a zero header followed by
//!   non-zero bytes: corruption at offset 0.
//! * A frame cut short by the end of the file, or a zero-filled tail (`len = 0, crc = 0` and only
//!   zeros after it): torn tail; scanning stops there.
//! * A complete frame with a bad crc: a torn tail when nothing but zeros follows it (it is the
//!   last write), corruption otherwise.
//! * A frame whose `len` is over [`MAX_FRAME_LEN`] but fits in the file: corruption (no writer
//!   produces one).
//! * Before declaring a torn tail at a frame that has a non-zero header, the scan checks whether
//!   a single flipped bit in `len` explains it (some one-bit change of `len` gives a frame whose
//!   crc matches); if so the length field was damaged, which is corruption, not a tear.
//!
//! An empty payload encodes as eight zero bytes, which at the end of a file cannot be told from
//! a zero-filled tail; logs should not write empty payloads (the WAL and manifest never do).
use super::error::Error;
use super::io::FileName;
use alloc::vec::Vec;

/// Bytes of a frame header (`len` and `crc32`).
pub const FRAME_HEADER_LEN: usize = 8;

/// Bytes of a log file header.
pub const FILE_HEADER_LEN: usize = 16;

/// The largest payload a frame may carry (1 GiB); a longer `len` is damage.
pub const MAX_FRAME_LEN: usize = 1 << 30;

/// Appends one frame carrying `payload` to `out`.
///
/// Panics if the payload is longer than [`MAX_FRAME_LEN`] (callers bound their records).
pub fn encode(out: &mut Vec<u8>, payload: &[u8]) {
    assert!(payload.len() <= MAX_FRAME_LEN, "frame payload of {} bytes", payload.len());
    out.reserve(FRAME_HEADER_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Starts a frame whose payload the caller appends to `out` directly; returns the frame's start
/// to pass to [`finish`]. Reserves the header with zeros.
pub fn begin(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_LEN]);
    start
}

/// Completes the frame started at `start` by [`begin`]: everything appended since is the payload.
///
/// Panics if `start` did not come from [`begin`] on this buffer or the payload is longer than
/// [`MAX_FRAME_LEN`].
pub fn finish(out: &mut [u8], start: usize) {
    let body = start + FRAME_HEADER_LEN;
    assert!(body <= out.len(), "frame::finish without frame::begin");
    let len = out.len() - body;
    assert!(len <= MAX_FRAME_LEN, "frame payload of {len} bytes");
    let crc = crc32fast::hash(&out[body..]);
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    out[start + 4..body].copy_from_slice(&crc.to_le_bytes());
}

/// The 16-byte header that starts a log file.
pub fn file_header(magic: [u8; 8], version: u32) -> [u8; 16] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..8].copy_from_slice(&magic);
    h[8..12].copy_from_slice(&version.to_le_bytes());
    let crc = crc32fast::hash(&h[..12]);
    h[12..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// What [`scan_log`] found in a log file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogScan<'a> {
    /// The intact frames in order: `(offset of the frame header, payload)`.
    pub payloads: Vec<(u64, &'a [u8])>,
    /// Bytes of the file that hold the header and intact frames; a recovering store truncates the
    /// file to this length before appending again (0 for a torn creation: rewrite the header).
    pub valid_len: u64,
    /// True when bytes after `valid_len` were dropped as a torn tail (or a torn creation).
    pub torn: bool,
}

/// Reads a log file: checks its header against `magic` and `version`, then returns the intact
/// frames. See the module docs for the rules; corruption errors name `file` and the offset of
/// the damaged header or frame.
pub fn scan_log<'a>(
    file: FileName,
    bytes: &'a [u8],
    magic: [u8; 8],
    version: u32,
) -> Result<LogScan<'a>, Error> {
    let corrupt = |offset: usize, reason: &'static str| Error::Corruption {
        file,
        offset: offset as u64,
        reason,
    };
    let mut scan = LogScan { payloads: Vec::new(), valid_len: 0, torn: false };
    if bytes.is_empty() {
        return Ok(scan);
    }
    if bytes.len() < FILE_HEADER_LEN || all_zero(bytes) {
        scan.torn = true;
        return Ok(scan);
    }
    let header = &bytes[..FILE_HEADER_LEN];
    if all_zero(header) {
        return Err(corrupt(0, "zeroed log file header followed by data"));
    }
    if header[12..] != crc32fast::hash(&header[..12]).to_le_bytes() {
        return Err(corrupt(0, "log file header checksum mismatch"));
    }
    if header[..8] != magic {
        return Err(corrupt(0, "log file has the wrong magic"));
    }
    if header[8..12] != version.to_le_bytes() {
        return Err(corrupt(0, "log file has an unsupported format version"));
    }
    let mut pos = FILE_HEADER_LEN;
    loop {
        scan.valid_len = pos as u64;
        let rest = &bytes[pos..];
        if rest.is_empty() {
            return Ok(scan);
        }
        if rest.len() < FRAME_HEADER_LEN || all_zero(rest) {
            scan.torn = true;
            return Ok(scan);
        }
        let len = read_u32(&rest[..4]) as usize;
        let crc = read_u32(&rest[4..8]);
        let room = rest.len() - FRAME_HEADER_LEN;
        if len > room {
            // Cut short by the end of the file: the last append was torn, unless one flipped
            // bit in `len` is the better explanation.
            if len_bit_flip_explains(&rest[FRAME_HEADER_LEN..], len, crc) {
                return Err(corrupt(pos, "frame length field damaged"));
            }
            scan.torn = true;
            return Ok(scan);
        }
        if len > MAX_FRAME_LEN {
            return Err(corrupt(pos, "frame length over the maximum"));
        }
        let payload = &rest[FRAME_HEADER_LEN..FRAME_HEADER_LEN + len];
        if crc32fast::hash(payload) != crc {
            let after = &rest[FRAME_HEADER_LEN + len..];
            if all_zero(after) && !len_bit_flip_explains(&rest[FRAME_HEADER_LEN..], len, crc) {
                scan.torn = true;
                return Ok(scan);
            }
            return Err(corrupt(pos, "frame checksum mismatch"));
        }
        scan.payloads.push((pos as u64, payload));
        pos += FRAME_HEADER_LEN + len;
    }
}

/// True when some `len ^ (1 << bit)` ≠ `len` gives a frame inside `body` whose payload's crc is
/// `crc`: the length field, not the payload, was damaged. One pass over at most `body`.
fn len_bit_flip_explains(body: &[u8], len: usize, crc: u32) -> bool {
    let mut candidates = [0usize; 32];
    let mut n = 0;
    for bit in 0..32 {
        let c = len ^ (1usize << bit);
        if c <= body.len() && c <= MAX_FRAME_LEN {
            candidates[n] = c;
            n += 1;
        }
    }
    let candidates = &mut candidates[..n];
    candidates.sort_unstable();
    let mut hasher = crc32fast::Hasher::new();
    let mut done = 0;
    for &c in candidates.iter() {
        hasher.update(&body[done..c]);
        done = c;
        if hasher.clone().finalize() == crc {
            return true;
        }
    }
    false
}

fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

fn read_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const MAGIC: [u8; 8] = *b"TESTLOG!";
    const FILE: FileName = FileName { kind: crate::lsm::io::FileKind::Wal, number: 3 };

    fn log(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = file_header(MAGIC, 1).to_vec();
        for p in payloads {
            encode(&mut out, p);
        }
        out
    }

    fn scan(bytes: &[u8]) -> Result<LogScan<'_>, Error> {
        scan_log(FILE, bytes, MAGIC, 1)
    }

    fn payloads<'a>(s: &LogScan<'a>) -> Vec<&'a [u8]> {
        s.payloads.iter().map(|&(_, p)| p).collect()
    }

    fn corruption_at(r: Result<LogScan<'_>, Error>) -> u64 {
        match r {
            Err(Error::Corruption { file, offset, .. }) => {
                assert_eq!(file, FILE);
                offset
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn round_trip_and_offsets() {
        let bytes = log(&[b"one", b"", b"three"]);
        let s = scan(&bytes).expect("scans");
        assert_eq!(payloads(&s), vec![&b"one"[..], b"", b"three"]);
        assert_eq!(s.payloads[0].0, 16);
        assert_eq!(s.payloads[1].0, 16 + 8 + 3);
        assert_eq!(s.payloads[2].0, 16 + 8 + 3 + 8);
        assert_eq!(s.valid_len, bytes.len() as u64);
        assert!(!s.torn);
    }

    #[test]
    fn begin_finish_matches_encode() {
        let mut a = vec![9u8; 5];
        let mut b = a.clone();
        encode(&mut a, b"payload bytes");
        let start = begin(&mut b);
        b.extend_from_slice(b"payload ");
        b.extend_from_slice(b"bytes");
        finish(&mut b, start);
        assert_eq!(a, b);
        assert_eq!(a.len(), 5 + FRAME_HEADER_LEN + 13);
    }

    #[test]
    fn empty_file_is_not_torn() {
        let s = scan(&[]).expect("scans");
        assert_eq!((s.payloads.len(), s.valid_len, s.torn), (0, 0, false));
    }

    #[test]
    fn short_or_zero_header_is_torn_creation() {
        let header = file_header(MAGIC, 1);
        for cut in 1..FILE_HEADER_LEN {
            let s = scan(&header[..cut]).expect("scans");
            assert_eq!((s.payloads.len(), s.valid_len, s.torn), (0, 0, true), "cut {cut}");
        }
        for len in [1usize, 15, 16, 17, 100] {
            let zeros = vec![0u8; len];
            let s = scan(&zeros).expect("scans");
            assert_eq!((s.payloads.len(), s.valid_len, s.torn), (0, 0, true), "zeros {len}");
        }
        // A zero header with data after it is not a creation that never happened.
        let mut bytes = vec![0u8; 16];
        encode(&mut bytes, b"x");
        assert_eq!(corruption_at(scan(&bytes)), 0);
    }

    #[test]
    fn bad_header_is_corruption() {
        let good = log(&[b"a"]);
        assert_eq!(corruption_at(scan_log(FILE, &good, *b"OTHERLOG", 1)), 0);
        assert_eq!(corruption_at(scan_log(FILE, &good, MAGIC, 2)), 0);
        let mut bad_crc = good.clone();
        bad_crc[13] ^= 1;
        assert_eq!(corruption_at(scan(&bad_crc)), 0);
        // Only a header: valid, empty.
        let s = scan(&good[..16]).expect("scans");
        assert_eq!((s.payloads.len(), s.valid_len, s.torn), (0, 16, false));
    }

    #[test]
    fn incomplete_final_frame_is_torn() {
        let bytes = log(&[b"first", b"second!"]);
        let second = 16 + 8 + 5;
        for cut in second + 1..bytes.len() {
            let s = scan(&bytes[..cut]).expect("scans");
            assert_eq!(payloads(&s), vec![&b"first"[..]], "cut {cut}");
            assert_eq!(s.valid_len, second as u64);
            assert!(s.torn);
        }
    }

    #[test]
    fn zero_filled_tail_is_torn() {
        let mut bytes = log(&[b"first"]);
        let end = bytes.len() as u64;
        bytes.extend_from_slice(&[0u8; 4096]);
        let s = scan(&bytes).expect("scans");
        assert_eq!((s.payloads.len(), s.valid_len, s.torn), (1, end, true));
        // A torn frame whose header made it but whose payload was zero-filled past its end.
        let mut bytes = log(&[b"first"]);
        bytes.extend_from_slice(&[3, 0, 0, 0, 0xaa, 0xbb, 0xcc, 0xdd]);
        bytes.extend_from_slice(&[0u8; 64]);
        let s = scan(&bytes).expect("scans");
        assert_eq!((s.payloads.len(), s.valid_len, s.torn), (1, end, true));
    }

    #[test]
    fn bad_crc_in_last_frame_is_torn() {
        let mut bytes = log(&[b"first", b"second"]);
        let last = bytes.len() - 1;
        bytes[last] ^= 0x40;
        let s = scan(&bytes).expect("scans");
        assert_eq!(payloads(&s), vec![&b"first"[..]]);
        assert_eq!(s.valid_len, 16 + 8 + 5);
        assert!(s.torn);
    }

    #[test]
    fn bad_crc_in_middle_is_corruption() {
        let mut bytes = log(&[b"first", b"second", b"third"]);
        let second = 16 + 8 + 5;
        bytes[second + 8] ^= 1;
        assert_eq!(corruption_at(scan(&bytes)), second as u64);
        // Garbage (not zeros) after a bad last frame is corruption too.
        let mut bytes = log(&[b"first", b"second"]);
        bytes[second + 9] ^= 1;
        bytes.push(7);
        assert_eq!(corruption_at(scan(&bytes)), second as u64);
    }

    #[test]
    fn oversized_len() {
        // Over the cap and cut short by EOF: torn.
        let mut bytes = log(&[b"first"]);
        let end = bytes.len() as u64;
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7]);
        let s = scan(&bytes).expect("scans");
        assert_eq!((s.payloads.len(), s.valid_len, s.torn), (1, end, true));
    }

    #[test]
    fn damaged_len_in_middle_is_corruption() {
        let bytes = log(&[b"first", b"second", b"third"]);
        let second = 16 + 8 + 5;
        for bit in 0..32 {
            let mut b = bytes.clone();
            b[second + bit / 8] ^= 1 << (bit % 8);
            assert_eq!(corruption_at(scan(&b)), second as u64, "bit {bit}");
        }
    }

    proptest::proptest! {
        /// Whatever is done to a log's bytes (cut, overwritten, zero-filled), a scan returns an
        /// error or a prefix of what was written: never a frame that was not written there.
        #[test]
        fn damage_yields_a_prefix_or_an_error(
            written in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 1..40), 0..8),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
            hits in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 0..3),
            zero_tail in 0usize..20,
        ) {
            let refs: Vec<&[u8]> = written.iter().map(|p| &p[..]).collect();
            let mut bytes = log(&refs);
            let keep = cut.index(bytes.len() + 1);
            bytes.truncate(keep.max(bytes.len() * 3 / 4));
            for (at, v) in &hits {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    bytes[i] = *v;
                }
            }
            bytes.extend(core::iter::repeat_n(0u8, zero_tail));
            if let Ok(s) = scan(&bytes) {
                let got = payloads(&s);
                proptest::prop_assert!(got.len() <= refs.len());
                proptest::prop_assert_eq!(&got[..], &refs[..got.len()]);
                proptest::prop_assert!(s.valid_len <= bytes.len() as u64);
                proptest::prop_assert_eq!(s.torn, s.valid_len != bytes.len() as u64);
            }
        }
    }

    #[test]
    fn every_bit_flip_is_detected_or_torn() {
        let bytes = log(&[b"alpha", b"beta", b"gamma delta"]);
        let last = 16 + 8 + 5 + 8 + 4;
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                match scan(&b) {
                    Err(Error::Corruption { .. }) => {}
                    Ok(s) => {
                        // Only damage to the last frame's crc or payload may pass as a torn tail.
                        assert!(i >= last + 4, "flip at {i} bit {bit} accepted");
                        assert!(s.torn);
                        assert_eq!(s.valid_len, last as u64);
                    }
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
        }
    }
}
