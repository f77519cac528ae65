//! The snapshot stream: the bytes a leader sends in Raft snapshot chunks, and its decoder.
//!
//! ```text
//! stream := frame(Header) frame(Data)* frame(End)
//! frame  := kind: u8 | len: u32 LE | crc32(kind ‖ len ‖ payload): u32 LE | payload[len]
//! Header := postcard SnapshotHeader { format, region, index, term, files: [{ level, len }] }
//! Data   := file: u32 LE | offset: u64 LE | bytes        (files in order, each from offset 0)
//! End    := files: u32 LE | bytes: u64 LE                (the totals, checked again)
//! ```
//!
//! The layout is a pure function of the header and [`FRAME_DATA_BYTES`], so the sender can
//! produce any chunk from its offset alone (a retransmission after a lost chunk reads the same
//! file ranges again), and the chunks it produces are whole frames. The decoder accepts the
//! stream cut anywhere, checks every frame's crc, that the header is for the snapshot Raft
//! announced, and that data comes in exactly the order and amounts the header lists; any
//! failure is a [`SnapshotError`] naming the stream offset, never a panic.
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Most bytes of file data in one data frame (the last frame of a file holds the rest).
pub const FRAME_DATA_BYTES: u64 = 32 << 10;
/// Fewest bytes of file data in one data frame.
pub const MIN_FRAME_DATA_BYTES: u64 = 256;
/// The format version in the header.
pub const FORMAT_VERSION: u32 = 1;
/// Largest frame payload the decoder accepts.
pub const MAX_FRAME_BYTES: u32 = 4 << 20;
/// Most files a snapshot may list.
pub const MAX_FILES: usize = 1 << 16;
/// Bytes before a frame's payload.
pub const FRAME_HEADER_BYTES: u64 = 9;
/// Bytes before the file data in a data frame's payload.
const DATA_PREFIX_BYTES: u64 = 12;

const KIND_HEADER: u8 = 1;
const KIND_DATA: u8 = 2;
const KIND_END: u8 = 3;

/// What a snapshot holds: the state at a Raft index, as a list of SST files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotHeader {
    /// [`FORMAT_VERSION`].
    pub format: u32,
    /// The region.
    pub region: u64,
    /// The Raft index the state is at (the store's applied mark).
    pub index: u64,
    /// The term of that entry.
    pub term: u64,
    /// The files, in the order their data follows.
    pub files: Vec<FileEntry>,
}

/// One SST file of a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The LSM level it belongs to.
    pub level: u8,
    /// Its length in bytes.
    pub len: u64,
}

/// Why snapshot bytes were refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    /// The stream is malformed at this offset.
    Corrupt {
        /// Stream offset of the bad frame.
        offset: u64,
        /// What check failed.
        reason: &'static str,
    },
    /// The sender was asked for a chunk that does not start at a frame.
    NotAFrame {
        /// The offset asked for.
        offset: u64,
    },
}

impl core::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SnapshotError::Corrupt { offset, reason } => write!(f, "snapshot stream corrupt at offset {offset}: {reason}"),
            SnapshotError::NotAFrame { offset } => write!(f, "no snapshot frame starts at offset {offset}"),
        }
    }
}

/// One frame of the stream as the sender lays it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FramePlan {
    /// The header frame.
    Header,
    /// `len` bytes of file `file` from `offset`.
    Data {
        /// Index into the header's files.
        file: u32,
        /// Offset in the file.
        offset: u64,
        /// Bytes.
        len: u64,
    },
    /// The end frame.
    End,
}

/// Bytes a data frame adds to the file data it carries.
pub const DATA_FRAME_OVERHEAD: u64 = FRAME_HEADER_BYTES + DATA_PREFIX_BYTES;

/// The stream's layout: where each frame starts.
#[derive(Clone, Debug)]
pub struct Layout {
    header: Vec<u8>,
    frames: Vec<(u64, FramePlan)>,
    total: u64,
    files: u32,
    file_bytes: u64,
}

impl Layout {
    /// The layout of the stream for `header`, with data frames of at most `frame_data`
    /// bytes of file data (clamped to [`MIN_FRAME_DATA_BYTES`]..=[`FRAME_DATA_BYTES`]).
    pub fn new(header: &SnapshotHeader, frame_data: u64) -> Layout {
        let frame_data = frame_data.clamp(MIN_FRAME_DATA_BYTES, FRAME_DATA_BYTES);
        let header_bytes = encode_frame(KIND_HEADER, &crate::node::wire::encode(header));
        let mut frames = Vec::new();
        let mut at = header_bytes.len() as u64;
        frames.push((0, FramePlan::Header));
        let mut file_bytes = 0;
        for (i, f) in header.files.iter().enumerate() {
            let mut off = 0;
            while off < f.len {
                let len = (f.len - off).min(frame_data);
                frames.push((at, FramePlan::Data { file: i as u32, offset: off, len }));
                at += FRAME_HEADER_BYTES + DATA_PREFIX_BYTES + len;
                off += len;
            }
            file_bytes += f.len;
        }
        frames.push((at, FramePlan::End));
        at += FRAME_HEADER_BYTES + DATA_PREFIX_BYTES;
        Layout { header: header_bytes, frames, total: at, files: header.files.len() as u32, file_bytes }
    }

    /// The stream's length in bytes.
    pub fn total_len(&self) -> u64 {
        self.total
    }

    /// The whole frames from `offset` whose bytes fit in `max_bytes` (at least one frame).
    /// Returns the frames and whether the last one ends the stream.
    pub fn frames_at(&self, offset: u64, max_bytes: u64) -> Result<(Vec<FramePlan>, bool), SnapshotError> {
        let first = self.frames.binary_search_by_key(&offset, |(s, _)| *s).map_err(|_| SnapshotError::NotAFrame { offset })?;
        let mut out = Vec::new();
        let mut end = offset;
        for (k, (_, plan)) in self.frames.iter().enumerate().skip(first) {
            let next = self.frames.get(k + 1).map_or(self.total, |(s, _)| *s);
            if !out.is_empty() && next - offset > max_bytes {
                break;
            }
            out.push(*plan);
            end = next;
        }
        Ok((out, end == self.total))
    }

    /// Appends the bytes of `plan` to `out`; `data` is the file range of a data frame.
    pub fn encode(&self, plan: FramePlan, data: &[u8], out: &mut Vec<u8>) {
        match plan {
            FramePlan::Header => out.extend_from_slice(&self.header),
            FramePlan::Data { file, offset, .. } => {
                let mut payload = Vec::with_capacity(DATA_PREFIX_BYTES as usize + data.len());
                payload.extend_from_slice(&file.to_le_bytes());
                payload.extend_from_slice(&offset.to_le_bytes());
                payload.extend_from_slice(data);
                out.extend_from_slice(&encode_frame(KIND_DATA, &payload));
            }
            FramePlan::End => {
                let mut payload = Vec::with_capacity(DATA_PREFIX_BYTES as usize);
                payload.extend_from_slice(&self.files.to_le_bytes());
                payload.extend_from_slice(&self.file_bytes.to_le_bytes());
                out.extend_from_slice(&encode_frame(KIND_END, &payload));
            }
        }
    }
}

fn encode_frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER_BYTES as usize + payload.len());
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&out[..5]);
    h.update(payload);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// What the decoder found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The header (first).
    Header(SnapshotHeader),
    /// Bytes of file `file` at `offset`.
    Data {
        /// Index into the header's files.
        file: u32,
        /// Offset in the file.
        offset: u64,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The end: every file is complete.
    End,
}

/// Decodes a snapshot stream pushed in pieces of any size. See the module docs.
#[derive(Clone, Debug)]
pub struct Decoder {
    /// The Raft index the stream must be for (`None`: any).
    expect_index: Option<u64>,
    /// Stream offset of `buf[0]`.
    offset: u64,
    buf: Vec<u8>,
    header: Option<SnapshotHeader>,
    /// The next data expected: (file, offset in it).
    next: (u32, u64),
    done: bool,
}

impl Decoder {
    /// A decoder for the snapshot at Raft index `expect_index` (`None`: any).
    pub fn new(expect_index: Option<u64>) -> Decoder {
        Decoder { expect_index, offset: 0, buf: Vec::new(), header: None, next: (0, 0), done: false }
    }

    /// The header, once decoded.
    pub fn header(&self) -> Option<&SnapshotHeader> {
        self.header.as_ref()
    }

    /// True once the end frame is decoded (every file complete).
    pub fn is_complete(&self) -> bool {
        self.done
    }

    /// Stream bytes consumed so far (whole frames and the partial one buffered).
    pub fn position(&self) -> u64 {
        self.offset + self.buf.len() as u64
    }

    /// Feeds the next bytes of the stream; returns what whole frames they completed. After an
    /// error the decoder is spent (start a new one).
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Decoded>, SnapshotError> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            if self.buf.len() < FRAME_HEADER_BYTES as usize {
                break;
            }
            let at = self.offset;
            let corrupt = move |reason| SnapshotError::Corrupt { offset: at, reason };
            if self.done {
                return Err(corrupt("bytes after the end frame"));
            }
            let kind = self.buf[0];
            let len = u32::from_le_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
            if len > MAX_FRAME_BYTES {
                return Err(corrupt("frame longer than the limit"));
            }
            let whole = FRAME_HEADER_BYTES as usize + len as usize;
            if self.buf.len() < whole {
                break;
            }
            let crc = u32::from_le_bytes([self.buf[5], self.buf[6], self.buf[7], self.buf[8]]);
            let mut h = crc32fast::Hasher::new();
            h.update(&self.buf[..5]);
            h.update(&self.buf[FRAME_HEADER_BYTES as usize..whole]);
            if h.finalize() != crc {
                return Err(corrupt("frame checksum mismatch"));
            }
            let frame: Vec<u8> = self.buf.drain(..whole).collect();
            let d = self.frame(kind, &frame[FRAME_HEADER_BYTES as usize..]).map_err(corrupt)?;
            out.push(d);
            self.offset += whole as u64;
        }
        Ok(out)
    }

    fn frame(&mut self, kind: u8, payload: &[u8]) -> Result<Decoded, &'static str> {
        match (kind, &self.header) {
            (KIND_HEADER, None) => {
                let h: SnapshotHeader = postcard::from_bytes(payload).map_err(|_| "header does not decode")?;
                if h.format != FORMAT_VERSION {
                    return Err("unsupported snapshot format");
                }
                if self.expect_index.is_some_and(|i| i != h.index) {
                    return Err("header is for another snapshot");
                }
                if h.files.len() > MAX_FILES {
                    return Err("too many files");
                }
                if h.files.iter().try_fold(0u64, |acc, f| acc.checked_add(f.len)).is_none() {
                    return Err("file lengths overflow");
                }
                self.header = Some(h.clone());
                self.skip_empty_files();
                Ok(Decoded::Header(h))
            }
            (KIND_HEADER, Some(_)) => Err("a second header"),
            (_, None) => Err("data before the header"),
            (KIND_DATA, Some(h)) => {
                if payload.len() < DATA_PREFIX_BYTES as usize {
                    return Err("data frame too short");
                }
                let file = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
                let mut o = [0u8; 8];
                o.copy_from_slice(&payload[4..12]);
                let offset = u64::from_le_bytes(o);
                if (file, offset) != self.next {
                    return Err("data out of order");
                }
                let bytes = &payload[DATA_PREFIX_BYTES as usize..];
                let len = h.files.get(file as usize).map(|f| f.len).ok_or("data for no file")?;
                if bytes.is_empty() || offset + bytes.len() as u64 > len {
                    return Err("data beyond the file's length");
                }
                self.next.1 += bytes.len() as u64;
                if self.next.1 == len {
                    self.next = (file + 1, 0);
                    self.skip_empty_files();
                }
                Ok(Decoded::Data { file, offset, bytes: bytes.to_vec() })
            }
            (KIND_END, Some(h)) => {
                if self.next.0 as usize != h.files.len() {
                    return Err("end before every file is complete");
                }
                let files = h.files.len() as u32;
                let total: u64 = h.files.iter().map(|f| f.len).sum();
                let mut expect = Vec::with_capacity(12);
                expect.extend_from_slice(&files.to_le_bytes());
                expect.extend_from_slice(&total.to_le_bytes());
                if payload != expect.as_slice() {
                    return Err("end frame totals disagree with the header");
                }
                self.done = true;
                Ok(Decoded::End)
            }
            _ => Err("unknown frame kind"),
        }
    }

    fn skip_empty_files(&mut self) {
        if let Some(h) = &self.header {
            while h.files.get(self.next.0 as usize).is_some_and(|f| f.len == 0) {
                self.next = (self.next.0 + 1, 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn header(lens: &[u64]) -> SnapshotHeader {
        SnapshotHeader { format: FORMAT_VERSION, region: 1, index: 42, term: 3, files: lens.iter().map(|&len| FileEntry { level: 1, len }).collect() }
    }

    fn file_byte(file: u32, off: u64) -> u8 {
        (file as u64 * 31 + off * 7) as u8
    }

    /// The whole stream, built chunk by chunk as a sender does.
    fn stream(h: &SnapshotHeader, max: u64) -> Vec<Vec<u8>> {
        let layout = Layout::new(h, 1000);
        let mut chunks = Vec::new();
        let mut at = 0;
        loop {
            let (frames, last) = layout.frames_at(at, max).expect("frame boundary");
            let mut out = Vec::new();
            for f in frames {
                let data: Vec<u8> = match f {
                    FramePlan::Data { file, offset, len } => (offset..offset + len).map(|o| file_byte(file, o)).collect(),
                    _ => Vec::new(),
                };
                layout.encode(f, &data, &mut out);
            }
            at += out.len() as u64;
            chunks.push(out);
            if last {
                assert_eq!(at, layout.total_len());
                return chunks;
            }
        }
    }

    #[test]
    fn round_trip_in_any_pieces() {
        let h = header(&[100_000, 0, 5, 1000]);
        for max in [1, 1000, 70_000, 1 << 20] {
            let chunks = stream(&h, max);
            let whole: Vec<u8> = chunks.concat();
            for piece in [1usize, 7, 4096, whole.len()] {
                let mut d = Decoder::new(Some(42));
                let mut files = vec![Vec::new(); 4];
                let mut got_header = false;
                for p in whole.chunks(piece) {
                    for ev in d.push(p).expect("valid stream") {
                        match ev {
                            Decoded::Header(x) => {
                                assert_eq!(x, h);
                                got_header = true;
                            }
                            Decoded::Data { file, offset, bytes } => {
                                assert_eq!(files[file as usize].len() as u64, offset);
                                files[file as usize].extend_from_slice(&bytes);
                            }
                            Decoded::End => {}
                        }
                    }
                }
                assert!(got_header && d.is_complete());
                for (i, f) in files.iter().enumerate() {
                    let expect: Vec<u8> = (0..h.files[i].len).map(|o| file_byte(i as u32, o)).collect();
                    assert_eq!(f, &expect);
                }
            }
        }
    }

    #[test]
    fn damage_is_refused() {
        let h = header(&[3000, 10]);
        let whole: Vec<u8> = stream(&h, 1 << 20).concat();
        for i in 0..whole.len() {
            let mut bad = whole.clone();
            bad[i] ^= 0x10;
            let mut d = Decoder::new(Some(42));
            let r = d.push(&bad);
            assert!(r.is_err() || !d.is_complete(), "flipped byte {i} accepted");
        }
        // Another snapshot's stream, truncation, reordering.
        assert!(Decoder::new(Some(41)).push(&whole).is_err());
        let mut d = Decoder::new(Some(42));
        assert!(d.push(&whole[..whole.len() - 1]).is_ok() && !d.is_complete());
        let chunks = stream(&h, 1);
        let mut swapped = chunks.clone();
        swapped.swap(1, 2);
        assert!(Decoder::new(Some(42)).push(&swapped.concat()).is_err());
        let mut extra = whole.clone();
        extra.extend_from_slice(&whole[..20]);
        assert!(Decoder::new(Some(42)).push(&extra).is_err());
    }

    #[test]
    fn chunks_start_at_frames() {
        let h = header(&[100]);
        let layout = Layout::new(&h, 0);
        assert_eq!(layout.frames_at(1, 100), Err(SnapshotError::NotAFrame { offset: 1 }));
        let (frames, last) = layout.frames_at(0, u64::MAX).expect("start");
        assert!(last);
        assert_eq!(frames.len(), 3);
    }
}
