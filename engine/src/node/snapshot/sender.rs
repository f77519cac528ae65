//! The leader's side: a pinned set of the store's tables ([`Export`]) served as the snapshot
//! stream, chunk by chunk, from the offsets Raft asks for.
use super::format::{FileEntry, FramePlan, Layout, SnapshotError, SnapshotHeader, FORMAT_VERSION};
use crate::lsm::io::{FileName, IoRequest};
use crate::lsm::store::TableSet;
use alloc::vec::Vec;
use strata_raft::{Index, NodeId, Term};

/// The store's tables at one applied index, pinned while followers are sent them.
#[derive(Debug)]
pub struct Export {
    /// The Raft index the tables are at.
    pub index: Index,
    /// Its term.
    pub term: Term,
    /// Holding it keeps the files on disk.
    set: TableSet,
    files: Vec<(u64, u64)>,
    layout: Layout,
    /// Ticks since a chunk was last read (the pin is released after a while).
    pub idle_ticks: u32,
}

impl Export {
    /// Pins `set` (at Raft index `set.applied_mark`, of `term`) for region `region`, laid out
    /// in frames that fit chunks of `chunk_bytes`.
    pub fn new(region: u64, set: TableSet, term: Term, chunk_bytes: u64) -> Export {
        let files: Vec<(u64, u64)> = set.tables().map(|(_, m)| (m.number, m.file_len)).collect();
        let header = SnapshotHeader {
            format: FORMAT_VERSION,
            region,
            index: set.applied_mark,
            term: term.0,
            files: set.tables().map(|(l, m)| FileEntry { level: l as u8, len: m.file_len }).collect(),
        };
        let frame_data = chunk_bytes.saturating_sub(super::format::DATA_FRAME_OVERHEAD);
        Export { index: Index(set.applied_mark), term, layout: Layout::new(&header, frame_data), files, set, idle_ticks: 0 }
    }

    /// Bytes of the whole stream.
    pub fn total_len(&self) -> u64 {
        self.layout.total_len()
    }

    /// Files in the set.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// The applied mark of the pinned set.
    pub fn applied_mark(&self) -> u64 {
        self.set.applied_mark
    }

    /// Starts the chunk at `offset` of at most `max_bytes` (whole frames, at least one): the
    /// reads it needs, to be fed to [`ChunkRead::supply`].
    pub fn chunk(&self, to: NodeId, offset: u64, max_bytes: u64) -> Result<(ChunkRead, Vec<IoRequest>), SnapshotError> {
        let (frames, last) = self.layout.frames_at(offset, max_bytes)?;
        let mut reads = Vec::new();
        for f in &frames {
            if let FramePlan::Data { file, offset, len } = *f {
                let number = self.files.get(file as usize).map_or(0, |x| x.0);
                reads.push(IoRequest::Read { file: FileName::table(number), offset, len });
            }
        }
        let data = alloc::vec![None; reads.len()];
        Ok((ChunkRead { to, index: self.index, offset, frames, last, data }, reads))
    }

    /// The chunk's bytes once every read is in.
    pub fn assemble(&self, c: &ChunkRead) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut k = 0;
        for f in &c.frames {
            match f {
                FramePlan::Data { len, .. } => {
                    let d = c.data.get(k)?.as_ref()?;
                    if d.len() as u64 != *len {
                        return None;
                    }
                    self.layout.encode(*f, d, &mut out);
                    k += 1;
                }
                _ => self.layout.encode(*f, &[], &mut out),
            }
        }
        Some(out)
    }
}

/// A chunk being read from the store's disk.
#[derive(Debug)]
pub struct ChunkRead {
    /// The follower.
    pub to: NodeId,
    /// The snapshot.
    pub index: Index,
    /// The chunk's stream offset.
    pub offset: u64,
    frames: Vec<FramePlan>,
    /// Whether the chunk ends the stream.
    pub last: bool,
    data: Vec<Option<Vec<u8>>>,
}

impl ChunkRead {
    /// Feeds read `part`'s bytes.
    pub fn supply(&mut self, part: usize, bytes: Vec<u8>) {
        if let Some(slot) = self.data.get_mut(part) {
            *slot = Some(bytes);
        }
    }

    /// True once every read is in.
    pub fn is_complete(&self) -> bool {
        self.data.iter().all(Option::is_some)
    }
}
