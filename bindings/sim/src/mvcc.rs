//! Drives a [`Store`](strata_engine::lsm::store::Store) and an MVCC [`Executor`] over a
//! [`SimDisk`]: store replies are routed to the executor, its block reads go to the disk
//! (spending the crash budget like every disk request), and its replies and applied
//! notifications are collected, so a test reads like a sequence of commands.
use crate::disk::SimDisk;
use crate::store::SimStore;
use std::collections::BTreeMap;
use strata_engine::lsm::config::Config;
use strata_engine::mvcc::exec::applied::Applied;
use strata_engine::mvcc::exec::command::{Command, Response};
use strata_engine::mvcc::exec::{CmdId, ExecConfig, ExecError, ExecOutput, Executor};
use strata_engine::mvcc::Ts;

/// A store and an executor on a simulated disk.
#[derive(Debug)]
pub struct SimMvcc {
    /// The store and its disk.
    pub sim: SimStore,
    /// The executor.
    pub exec: Executor,
    replies: BTreeMap<CmdId, Result<Response, ExecError>>,
    /// Every applied notification, in order.
    pub applied: Vec<Applied>,
    /// How opening the executor ended (`None` while it runs, or if the power was cut).
    pub recovered: Option<Result<Ts, ExecError>>,
    digest: u64,
}

impl SimMvcc {
    /// Opens the store on `disk` (recovering it), then the executor (recovering the oracle's
    /// mark). Check [`SimStore::open_result`] and [`SimMvcc::recovered`].
    pub fn open(config: Config, exec_config: ExecConfig, disk: SimDisk) -> SimMvcc {
        Self::open_at(config, exec_config, disk, 0, None)
    }

    /// [`SimMvcc::open`] at virtual time `now_ms`, with a crash budget from the start.
    pub fn open_at(config: Config, exec_config: ExecConfig, disk: SimDisk, now_ms: u64, crash_budget: Option<u64>) -> SimMvcc {
        let mut sim = SimStore::open_with(config, disk, now_ms, crash_budget);
        let exec = Executor::open(exec_config, sim.now_ms, &mut sim.store);
        let mut s = SimMvcc { sim, exec, replies: BTreeMap::new(), applied: Vec::new(), recovered: None, digest: 0xcbf2_9ce4_8422_2325 };
        s.run();
        s
    }

    /// Virtual time.
    pub fn now_ms(&self) -> u64 {
        self.sim.now_ms
    }

    /// Advances virtual time (and fires the store's timer if due).
    pub fn advance(&mut self, ms: u64) {
        self.sim.advance(ms);
        self.run();
    }

    /// Submits without running.
    pub fn submit(&mut self, cmd: Command) -> CmdId {
        let now = self.sim.now_ms;
        self.exec.submit(now, &mut self.sim.store, cmd)
    }

    /// The reply to `id`, if it has arrived.
    pub fn take_reply(&mut self, id: CmdId) -> Option<Result<Response, ExecError>> {
        self.replies.remove(&id)
    }

    /// Submits, runs until idle, and returns the reply (`None` if the power was cut first).
    pub fn call(&mut self, cmd: Command) -> Option<Result<Response, ExecError>> {
        let id = self.submit(cmd);
        self.run();
        self.take_reply(id)
    }

    /// A fresh timestamp (`None` if the power was cut first).
    pub fn timestamp(&mut self) -> Option<Ts> {
        match self.call(Command::Timestamp)? {
            Ok(Response::Timestamp(ts)) => Some(ts),
            other => panic!("timestamp request answered {other:?}"),
        }
    }

    /// True once the crash budget ran out.
    pub fn crashed(&self) -> bool {
        self.sim.crashed()
    }

    /// Cuts the power: the disk as recovery will find it.
    pub fn crash(self, tear: bool) -> SimDisk {
        self.sim.crash(tear)
    }

    /// A digest of the store's and the executor's outputs so far (set
    /// `sim.record_digest` first): equal digests mean equal runs.
    pub fn digest(&self) -> u64 {
        self.digest ^ self.sim.digest().rotate_left(17)
    }

    /// Carries out everything until neither the store nor the executor has work (or the power
    /// is cut).
    pub fn run(&mut self) {
        loop {
            self.sim.run();
            if self.sim.crashed() {
                return;
            }
            let mut progress = false;
            let now = self.sim.now_ms;
            for (id, r) in self.sim.drain_replies() {
                progress = true;
                // Replies to requests of nobody above the store (none here) are dropped.
                let _ = self.exec.handle_store_reply(now, &mut self.sim.store, id, r);
            }
            while let Some(out) = self.exec.poll() {
                progress = true;
                if self.sim.record_digest {
                    self.fold(format!("{out:?}").as_bytes());
                }
                match out {
                    ExecOutput::ReadBlock { file, handle } => {
                        let Some(r) = self.sim.read_block(file, handle) else { return };
                        self.exec.handle_block(now, &mut self.sim.store, file, handle, r);
                    }
                    ExecOutput::Reply { id, result } => {
                        self.replies.insert(id, result);
                    }
                    ExecOutput::Applied(a) => self.applied.push(a),
                    ExecOutput::Recovered(r) => self.recovered = Some(r),
                }
            }
            if self.sim.check_invariants {
                self.exec.check_invariants();
            }
            if !progress {
                return;
            }
        }
    }

    fn fold(&mut self, b: &[u8]) {
        for &x in b {
            self.digest ^= u64::from(x);
            self.digest = self.digest.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
