//! The follower's side: the chunks of an incoming snapshot decoded and written to the store's
//! disk as new table files ([`Staging`]), ready for `Store::install_tables`.
use super::format::{Decoded, Decoder, SnapshotError};
use crate::lsm::io::{FileName, IoRequest};
use crate::lsm::store::{IncomingTable, Store};
use alloc::vec::Vec;
use strata_raft::{Index, Term};

/// An incoming snapshot being written to the store's disk.
#[derive(Debug)]
pub struct Staging {
    /// The snapshot's Raft index.
    pub index: Index,
    /// Its term.
    pub term: Term,
    decoder: Decoder,
    tables: Vec<IncomingTable>,
    /// Writes issued and not yet completed.
    pub writes_in_flight: usize,
    /// Why staging failed (a write error, or bytes that do not decode).
    pub failed: Option<alloc::string::String>,
}

impl Staging {
    /// A staging area for the snapshot at `index` of `term`.
    pub fn new(index: Index, term: Term) -> Staging {
        Staging { index, term, decoder: Decoder::new(Some(index.0)), tables: Vec::new(), writes_in_flight: 0, failed: None }
    }

    /// The stream offset expected next.
    pub fn position(&self) -> u64 {
        self.decoder.position()
    }

    /// Whether `data` at `offset` would decode (without changing anything): a chunk for this
    /// snapshot at the current position, or the start of a new one.
    pub fn check(current: Option<&Staging>, index: Index, offset: u64, data: &[u8], last: bool) -> Result<(), SnapshotError> {
        let mut d = match current {
            _ if offset == 0 => Decoder::new(Some(index.0)),
            Some(s) if s.index == index && s.position() == offset && s.failed.is_none() => s.decoder.clone(),
            // Not the next chunk: Raft answers with the offset it expects, nothing is staged.
            _ => return Ok(()),
        };
        d.push(data)?;
        if last && !d.is_complete() {
            return Err(SnapshotError::Corrupt { offset: offset + data.len() as u64, reason: "the last chunk does not end the stream" });
        }
        Ok(())
    }

    /// Decodes the next chunk and returns the writes to carry out on the store's disk (file
    /// numbers are reserved from `store` when the header arrives).
    pub fn push(&mut self, store: &mut Store, data: &[u8]) -> Vec<IoRequest> {
        let mut io = Vec::new();
        if self.failed.is_some() {
            return io;
        }
        let decoded = match self.decoder.push(data) {
            Ok(d) => d,
            Err(e) => {
                self.failed = Some(alloc::format!("{e}"));
                return io;
            }
        };
        for d in decoded {
            match d {
                Decoded::Header(h) => {
                    let first = store.reserve_file_numbers(h.files.len() as u64);
                    self.tables = h
                        .files
                        .iter()
                        .enumerate()
                        .map(|(i, f)| IncomingTable { number: first + i as u64, level: f.level, file_len: f.len })
                        .collect();
                }
                Decoded::Data { file, offset, bytes } => {
                    let Some(t) = self.tables.get(file as usize).copied() else { continue };
                    let done = offset + bytes.len() as u64 == t.file_len;
                    io.push(IoRequest::Append { file: FileName::table(t.number), data: bytes });
                    if done {
                        io.push(IoRequest::Sync { file: FileName::table(t.number) });
                    }
                }
                Decoded::End => {}
            }
        }
        self.writes_in_flight += io.len();
        io
    }

    /// A write finished (`ok` false: it failed).
    pub fn write_done(&mut self, ok: bool) {
        self.writes_in_flight = self.writes_in_flight.saturating_sub(1);
        if !ok && self.failed.is_none() {
            self.failed = Some("a write of a staged table failed".into());
        }
    }

    /// True once every chunk is decoded and every write done.
    pub fn is_ready(&self) -> bool {
        self.decoder.is_complete() && self.writes_in_flight == 0
    }

    /// The staged tables.
    pub fn tables(&self) -> Vec<IncomingTable> {
        self.tables.clone()
    }

    /// Deletes of the staged files (when the staging is abandoned).
    pub fn abandon(&self) -> Vec<IoRequest> {
        self.tables.iter().map(|t| IoRequest::Delete { file: FileName::table(t.number) }).collect()
    }
}
