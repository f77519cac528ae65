//! Drives a [`Store`] over a [`SimDisk`]: every output is carried out in a deterministic order
//! and every reply collected, so a test reads like a sequence of calls.
//!
//! A *crash budget* stops the world after a number of disk requests, the way a power cut
//! stops a machine between any two writes; [`SimStore::crash`] then hands back the disk as
//! it would be found after the cut.
use crate::disk::SimDisk;
use std::collections::BTreeMap;
use strata_engine::lsm::config::Config;
use strata_engine::lsm::error::Error;
use strata_engine::lsm::io::{FileName, IoRequest, IoResult};
use strata_engine::lsm::sstable::{Block, BlockHandle};
use strata_engine::lsm::job::JobStep;
use strata_engine::lsm::store::{Output, ReqId, Reply, Request, Store};

/// A store on a simulated disk.
#[derive(Debug)]
pub struct SimStore {
    /// The state machine.
    pub store: Store,
    /// Its disk.
    pub disk: SimDisk,
    /// Virtual time in milliseconds.
    pub now_ms: u64,
    replies: BTreeMap<ReqId, Result<Reply, Error>>,
    opened: Option<Result<(), Error>>,
    /// Disk requests left before the power is cut (`None`: never).
    pub crash_budget: Option<u64>,
    crashed: bool,
    digest: u64,
    /// Fold every output into [`SimStore::digest`] (slower; for determinism tests).
    pub record_digest: bool,
    /// Print every output to stderr (set `STRATA_TRACE=1`).
    pub trace: bool,
    /// Check the store's invariants after every step (slower).
    pub check_invariants: bool,
}

impl SimStore {
    /// Opens a store on `disk` and runs recovery. Returns the store even when recovery
    /// failed; see [`SimStore::open_result`].
    pub fn open(config: Config, disk: SimDisk) -> SimStore {
        Self::open_with(config, disk, 0, None)
    }

    /// [`SimStore::open`] at virtual time `now_ms`, with a crash budget already set (so the
    /// power can be cut during recovery too).
    pub fn open_with(config: Config, disk: SimDisk, now_ms: u64, crash_budget: Option<u64>) -> SimStore {
        let mut s = SimStore {
            store: Store::open(config),
            disk,
            now_ms,
            replies: BTreeMap::new(),
            opened: None,
            crash_budget,
            crashed: false,
            digest: 0xcbf2_9ce4_8422_2325,
            record_digest: false,
            trace: std::env::var_os("STRATA_TRACE").is_some(),
            check_invariants: true,
        };
        s.run();
        s
    }

    /// How recovery ended (`None` if it has not, e.g. the power was cut during it).
    pub fn open_result(&self) -> Option<&Result<(), Error>> {
        self.opened.as_ref()
    }

    /// True once the crash budget ran out.
    pub fn crashed(&self) -> bool {
        self.crashed
    }

    /// Submits without running.
    pub fn submit(&mut self, req: Request) -> ReqId {
        self.store.submit(self.now_ms, req)
    }

    /// The reply to `id`, if it has arrived.
    pub fn take_reply(&mut self, id: ReqId) -> Option<Result<Reply, Error>> {
        self.replies.remove(&id)
    }

    /// Takes every reply that has arrived, in request order (for drivers that route replies
    /// to several owners).
    pub fn take_replies(&mut self) -> Vec<(ReqId, Result<Reply, Error>)> {
        std::mem::take(&mut self.replies).into_iter().collect()
    }

    /// Submits, runs until idle, and returns the reply (`None` if the power was cut first).
    pub fn call(&mut self, req: Request) -> Option<Result<Reply, Error>> {
        let id = self.submit(req);
        self.run();
        self.take_reply(id)
    }

    /// Takes every reply collected so far, in id order (for a layer above the store that
    /// routes replies to their owners).
    pub fn drain_replies(&mut self) -> Vec<(ReqId, Result<Reply, Error>)> {
        std::mem::take(&mut self.replies).into_iter().collect()
    }

    /// Reads and decodes one SST block for a reader outside the store (a disk request: it
    /// spends the crash budget). `None` when the power was cut first.
    pub fn read_block(&mut self, file: FileName, handle: BlockHandle) -> Option<Result<Block, Error>> {
        if self.crashed || !self.spend() {
            return None;
        }
        let r = self.disk.execute(IoRequest::Read { file, offset: handle.offset, len: u64::from(handle.len) });
        self.fold_result(&r);
        Some(match r {
            IoResult::Data(raw) => Block::decode(file, handle, raw),
            IoResult::Failed(error) => Err(Error::Io { file: Some(file), op: "read", error }),
            other => Err(Error::Io { file: Some(file), op: "read", error: strata_engine::lsm::io::IoError::Other(format!("unexpected completion {other:?}")) }),
        })
    }

    /// Advances virtual time and fires the store's timer if due.
    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
        if self.store.next_deadline().is_some_and(|d| d <= self.now_ms) {
            self.store.handle_timeout(self.now_ms);
        }
        self.run();
    }

    /// Carries out outputs until the store has nothing more to do (or the power is cut).
    pub fn run(&mut self) {
        while !self.crashed {
            let Some(out) = self.store.poll() else { break };
            self.fold(&out);
            if self.trace {
                eprintln!("{}", describe(&out));
            }
            match out {
                Output::Io { id, req } => {
                    if !self.spend() {
                        break;
                    }
                    let r = self.disk.execute(req);
                    self.fold_result(&r);
                    self.store.handle_io(self.now_ms, id, r);
                }
                Output::Job(mut job) => {
                    loop {
                        match job.step() {
                            JobStep::Read { file, offset, len } => {
                                if !self.spend() {
                                    return;
                                }
                                let r = self.disk.execute(strata_engine::lsm::io::IoRequest::Read { file, offset, len });
                                job.handle_read(match r {
                                    IoResult::Data(d) => Ok(d),
                                    IoResult::Failed(e) => Err(e),
                                    _ => Ok(Vec::new()),
                                });
                            }
                            JobStep::WriteFile { file, data } => {
                                if !self.spend() {
                                    return;
                                }
                                let r = self.disk.write_file(file, &data);
                                job.handle_write(r);
                            }
                            JobStep::Done => break,
                        }
                    }
                    self.store.handle_job(self.now_ms, job);
                }
                Output::Reply { id, result } => {
                    self.replies.insert(id, result);
                }
                Output::Opened(r) => self.opened = Some(r),
            }
            if self.check_invariants {
                self.store.check_invariants();
            }
        }
    }

    fn spend(&mut self) -> bool {
        match &mut self.crash_budget {
            Some(0) => {
                self.crashed = true;
                false
            }
            Some(n) => {
                *n -= 1;
                true
            }
            None => true,
        }
    }

    /// Cuts the power: returns the disk as recovery will find it.
    pub fn crash(mut self, tear: bool) -> SimDisk {
        self.disk.crash(tear);
        self.disk
    }

    /// A digest of every output and completion so far: equal digests mean equal runs.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    fn fold(&mut self, out: &Output) {
        if !self.record_digest {
            return;
        }
        let text = match out {
            Output::Job(j) => format!("job {:?}", j.id()),
            other => format!("{other:?}"),
        };
        self.fold_bytes(text.as_bytes());
    }

    fn fold_result(&mut self, r: &IoResult) {
        if !self.record_digest {
            return;
        }
        let text = format!("{r:?}");
        self.fold_bytes(text.as_bytes());
    }

    fn fold_bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.digest ^= u64::from(x);
            self.digest = self.digest.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A one-line description of an output (bytes elided).
pub fn describe(out: &Output) -> String {
    use strata_engine::lsm::io::IoRequest;
    match out {
        Output::Io { id, req: IoRequest::Append { file, data } } => format!("io {} append {file} {} bytes", id.0, data.len()),
        Output::Io { id, req } => format!("io {} {req:?}", id.0),
        Output::Job(j) => format!("job {}", j.id().0),
        Output::Reply { id, result } => format!("reply {} {result:?}", id.0),
        Output::Opened(r) => format!("opened {r:?}"),
    }
}
