//! A simulated disk: files in memory that remember what is durable, and faults on demand.
//!
//! Each file keeps its bytes and the length known durable (synced). A [`SimDisk::crash`] keeps
//! only durable bytes, optionally plus a random prefix of the unsynced tail (a torn write), and
//! forgets files whose creation was never synced. Faults: a disk that is full, appends that
//! fail after writing a random prefix, and bit flips in stored bytes.
use crate::rng::Rng;
use std::collections::BTreeMap;
use strata_engine::lsm::io::{FileName, IoError, IoRequest, IoResult};

#[derive(Clone, Debug, Default)]
struct SimFile {
    data: Vec<u8>,
    durable_len: usize,
    durable: bool,
}

/// Injected faults.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Every append and file write fails with `NoSpace` (after writing a random prefix).
    pub disk_full: bool,
    /// Probability that an append or sync fails with an I/O error.
    pub write_error_rate: f64,
}

/// Counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Requests served.
    pub requests: u64,
    /// Syncs served.
    pub syncs: u64,
    /// Bytes appended or written.
    pub bytes_written: u64,
}

/// The simulated disk. Deterministic for a given seed and request sequence.
#[derive(Clone, Debug)]
pub struct SimDisk {
    files: BTreeMap<FileName, SimFile>,
    rng: Rng,
    /// Faults to inject.
    pub faults: Faults,
    /// Counters.
    pub stats: DiskStats,
}

impl SimDisk {
    /// An empty disk.
    pub fn new(seed: u64) -> Self {
        SimDisk { files: BTreeMap::new(), rng: Rng::new(seed), faults: Faults::default(), stats: DiskStats::default() }
    }

    /// Carries out one request.
    pub fn execute(&mut self, req: IoRequest) -> IoResult {
        self.stats.requests += 1;
        match req {
            IoRequest::List => IoResult::Listed(self.files.keys().copied().collect()),
            IoRequest::Read { file, offset, len } => match self.files.get(&file) {
                Some(f) => {
                    let start = (offset as usize).min(f.data.len());
                    let end = start.saturating_add(len as usize).min(f.data.len());
                    IoResult::Data(f.data[start..end].to_vec())
                }
                None => IoResult::Failed(IoError::NotFound),
            },
            IoRequest::ReadAll { file } => match self.files.get(&file) {
                Some(f) => IoResult::Data(f.data.clone()),
                None => IoResult::Failed(IoError::NotFound),
            },
            IoRequest::Append { file, data } => {
                self.stats.bytes_written += data.len() as u64;
                if let Some(e) = self.write_fault() {
                    let keep = self.rng.below(data.len() as u64 + 1) as usize;
                    self.files.entry(file).or_default().data.extend_from_slice(&data[..keep]);
                    return IoResult::Failed(e);
                }
                self.files.entry(file).or_default().data.extend_from_slice(&data);
                IoResult::Done
            }
            IoRequest::Sync { file } => {
                self.stats.syncs += 1;
                if self.faults.write_error_rate > 0.0 && self.rng.chance(self.faults.write_error_rate) {
                    return IoResult::Failed(IoError::Other("injected sync error".into()));
                }
                match self.files.get_mut(&file) {
                    Some(f) => {
                        f.durable_len = f.data.len();
                        f.durable = true;
                        IoResult::Done
                    }
                    None => IoResult::Failed(IoError::NotFound),
                }
            }
            IoRequest::Truncate { file, len } => match self.files.get_mut(&file) {
                Some(f) => {
                    f.data.truncate(len as usize);
                    f.durable_len = f.durable_len.min(len as usize);
                    IoResult::Done
                }
                None => IoResult::Failed(IoError::NotFound),
            },
            IoRequest::Delete { file } => {
                self.files.remove(&file);
                IoResult::Done
            }
        }
    }

    /// Reads `len` bytes at `offset` of `file` without counting a request or injecting a
    /// fault (for inspection outside the simulation). `None` if the file does not exist.
    pub fn peek(&self, file: FileName, offset: u64, len: u64) -> Option<Vec<u8>> {
        let f = self.files.get(&file)?;
        let start = (offset as usize).min(f.data.len());
        let end = start.saturating_add(len as usize).min(f.data.len());
        Some(f.data[start..end].to_vec())
    }

    /// Creates `file` with `data` and syncs it (a job's `WriteFile`).
    pub fn write_file(&mut self, file: FileName, data: &[u8]) -> Result<(), IoError> {
        self.stats.requests += 1;
        self.stats.bytes_written += data.len() as u64;
        if let Some(e) = self.write_fault() {
            let keep = self.rng.below(data.len() as u64 + 1) as usize;
            self.files.insert(file, SimFile { data: data[..keep].to_vec(), durable_len: 0, durable: false });
            return Err(e);
        }
        self.files.insert(file, SimFile { data: data.to_vec(), durable_len: data.len(), durable: true });
        Ok(())
    }

    fn write_fault(&mut self) -> Option<IoError> {
        if self.faults.disk_full {
            return Some(IoError::NoSpace);
        }
        if self.faults.write_error_rate > 0.0 && self.rng.chance(self.faults.write_error_rate) {
            return Some(IoError::Other("injected write error".into()));
        }
        None
    }

    /// Power loss: unsynced bytes are lost, except that with `tear` a random prefix of each
    /// file's unsynced tail survives; files never synced vanish.
    pub fn crash(&mut self, tear: bool) {
        let names: Vec<FileName> = self.files.keys().copied().collect();
        for name in names {
            let keep_extra = {
                let f = &self.files[&name];
                let unsynced = f.data.len() - f.durable_len;
                if tear && unsynced > 0 { self.rng.below(unsynced as u64 + 1) as usize } else { 0 }
            };
            let Some(f) = self.files.get_mut(&name) else { continue };
            if !f.durable && keep_extra == 0 {
                self.files.remove(&name);
                continue;
            }
            let len = f.durable_len + keep_extra;
            f.data.truncate(len);
            f.durable_len = len;
            f.durable = true;
        }
    }

    /// Flips one bit of `file` at `offset` (for corruption tests). False if out of range.
    pub fn flip_bit(&mut self, file: FileName, offset: usize, bit: u8) -> bool {
        match self.files.get_mut(&file).and_then(|f| f.data.get_mut(offset)) {
            Some(b) => {
                *b ^= 1 << (bit & 7);
                true
            }
            None => false,
        }
    }

    /// The files and their current lengths.
    pub fn files(&self) -> Vec<(FileName, usize)> {
        self.files.iter().map(|(n, f)| (*n, f.data.len())).collect()
    }

    /// Total bytes stored.
    pub fn total_bytes(&self) -> usize {
        self.files.values().map(|f| f.data.len()).sum()
    }
}
