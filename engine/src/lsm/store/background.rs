//! Background work: freezing memtables, starting flush and compaction jobs, answering the
//! requests that wait on them, and deleting files no reader holds.
use super::{EditPurpose, Frozen, Output, Pending, RangeState, Reply, Store, L0_STOP, MAX_IMMUTABLE};
use crate::lsm::compaction::{self, Plan};
use crate::lsm::config::{Durability, NUM_LEVELS};
use crate::lsm::io::FileName;
use crate::lsm::job::{Job, JobId};
use crate::lsm::manifest::VersionEdit;
use crate::lsm::wal_writer::WalNext;
use alloc::sync::Arc;

impl Store {

    /// Starts whatever work is due: WAL requests, freezes, flushes, compactions, manifest
    /// edits, deletions.
    pub(super) fn drive(&mut self, now_ms: u64) {
        if !self.is_open() {
            return;
        }
        loop {
            let mut progressed = false;
            if self.freeze_wanted && !self.mem.is_empty() && self.wal.is_idle() && self.imm.len() < MAX_IMMUTABLE {
                self.freeze();
                progressed = true;
            } else if self.freeze_wanted && self.mem.is_empty() {
                self.freeze_wanted = false;
            }
            match self.wal.next_request() {
                WalNext::Io(req) => {
                    self.emit_io(req, Pending::Wal);
                    progressed = true;
                }
                WalNext::Ack(waiters) => {
                    self.acknowledge(waiters);
                    progressed = true;
                }
                WalNext::Idle => {}
            }
            progressed |= self.advance_install();
            progressed |= self.start_manifest_write();
            progressed |= self.start_jobs();
            while self.imm.len() < MAX_IMMUTABLE || self.mem.approx_bytes() < self.config.memtable_bytes {
                let Some((id, batch)) = self.stalled.pop_front() else { break };
                self.write_now(now_ms, id, batch);
                progressed = true;
            }
            let wanted_before = self.freeze_wanted;
            self.answer_waiters();
            progressed |= self.freeze_wanted && !wanted_before;
            if !progressed {
                break;
            }
        }
        self.collect_garbage();
    }

    pub(super) fn freeze(&mut self) {
        self.freeze_wanted = false;
        let next_wal = self.alloc_file_number();
        self.wal.rotate(FileName::wal(next_wal));
        if self.config.durability != Durability::External {
            self.wal_segments.insert(next_wal);
        }
        let mem = core::mem::take(&mut self.mem);
        let mark = core::mem::take(&mut self.mem_mark);
        self.imm.push_back(Frozen { mem: Arc::new(mem), next_wal, id: self.mem_id, mark });
        self.mem_id += 1;
    }

    /// True when no memtable holds a sequence number at or below `target`.
    pub(super) fn flushed_upto(&self, target: u64) -> bool {
        let in_mem = self.mem.min_seq().is_some_and(|m| m <= target);
        !in_mem && !self.imm.iter().any(|f| f.mem.min_seq().is_some_and(|m| m <= target))
    }

    pub(super) fn alloc_file_number(&mut self) -> u64 {
        let n = self.next_file_number;
        self.next_file_number += 1;
        n
    }

    pub(super) fn smallest_snapshot(&self) -> u64 {
        self.snapshots.keys().next().copied().unwrap_or(self.last_seq)
    }

    pub(super) fn start_jobs(&mut self) -> bool {
        if self.jobs_paused || self.install.is_some() {
            return false;
        }
        let mut started = false;
        if !self.flush_running && self.version.levels[0].len() < L0_STOP {
            if let Some(f) = self.imm.front() {
                let mem = f.mem.clone();
                let number = self.alloc_file_number();
                let id = self.alloc_job();
                let job = Job::flush(id, mem, number, self.smallest_snapshot(), self.config.table.clone());
                self.flush_running = true;
                self.outputs.push_back(Output::Job(job));
                started = true;
            }
        }
        if !self.compaction_running && self.manifest_queue.is_empty() && self.manifest_inflight.is_none() {
            let plan = self.next_compaction_plan();
            if let Some(plan) = plan {
                if plan.trivial_move {
                    let mut edit = VersionEdit::default();
                    for (l, f) in &plan.inputs {
                        edit.removed.push((*l as u8, f.meta.number));
                        edit.added.push((plan.output_level as u8, f.meta.clone()));
                    }
                    edit.next_file_number = Some(self.next_file_number);
                    self.compaction_running = true;
                    self.manifest_queue.push_back((edit, EditPurpose::TrivialMove(plan)));
                } else {
                    let input_bytes: u64 = plan.inputs.iter().map(|(_, f)| f.meta.file_len).sum();
                    let n = input_bytes / self.config.target_file_bytes.max(1) * 2 + 8;
                    let first = self.next_file_number;
                    self.next_file_number += n;
                    let id = self.alloc_job();
                    let job = Job::compact(
                        id,
                        plan,
                        first..first + n,
                        self.smallest_snapshot(),
                        self.config.table.clone(),
                        self.config.target_file_bytes,
                    );
                    self.compaction_running = true;
                    self.outputs.push_back(Output::Job(job));
                }
                started = true;
            }
        }
        started
    }

    pub(super) fn next_compaction_plan(&mut self) -> Option<Plan> {
        // Explicit range compactions first, once the writes before them are flushed.
        let ready = self.compact_waiters.first().is_some_and(|w| w.state == RangeState::Flushing && self.flushed_upto(w.target));
        if ready {
            let w = &self.compact_waiters[0];
            let plan = compaction::plan_range(&self.version, &w.lo, &w.hi);
            let needed = !plan.as_ref().is_none_or(range_compacted);
            self.compact_waiters[0].state = if needed { RangeState::Compacting } else { RangeState::Done };
            if needed {
                return plan;
            }
        }
        compaction::pick(&self.version, &self.config, &self.cursors)
    }

    pub(super) fn answer_waiters(&mut self) {
        // Flush waiters: done when no memtable holds a sequence number at or below theirs.
        let mut i = 0;
        while i < self.flush_waiters.len() {
            let (id, target) = self.flush_waiters[i];
            if self.flushed_upto(target) {
                self.flush_waiters.swap_remove(i);
                self.reply(id, Ok(Reply::Done));
            } else {
                self.freeze_wanted |= self.mem.min_seq().is_some_and(|m| m <= target);
                i += 1;
            }
        }
        // Range compactions: flush what they cover, then wait for their one compaction.
        if let Some(w) = self.compact_waiters.first() {
            match w.state {
                RangeState::Done => {
                    let id = self.compact_waiters.remove(0).id;
                    self.reply(id, Ok(Reply::Done));
                }
                RangeState::Flushing => self.freeze_wanted |= self.mem.min_seq().is_some_and(|m| m <= w.target),
                RangeState::Compacting => {}
            }
        }
    }

    pub(super) fn alloc_job(&mut self) -> JobId {
        let id = JobId(self.next_job);
        self.next_job += 1;
        id
    }
}

/// True when a range compaction has nothing left to do: every file it covers is already in
/// the bottom level.
fn range_compacted(p: &Plan) -> bool {
    p.inputs.iter().all(|(l, _)| *l == NUM_LEVELS - 1)
}

