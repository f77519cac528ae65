//! The manifest log: version edits appended and synced one at a time, then installed; a
//! failed edit is cut away before the next one.
use super::{EditPurpose, ManifestStage, Pending, Phase, RangeState, Store};
use crate::lsm::compaction::Plan;
use crate::lsm::error::Error;
use crate::lsm::io::{FileName, IoRequest, IoResult};
use crate::lsm::job::JobKind;
use crate::lsm::manifest::{self, VersionEdit};
use crate::lsm::version::TableFile;
use alloc::sync::Arc;
use alloc::vec::Vec;

impl Store {
    pub(super) fn start_manifest_write(&mut self) -> bool {
        if self.manifest_inflight.is_some() {
            return false;
        }
        if self.manifest_queue.is_empty() && self.manifest_len > self.config.manifest_roll_bytes && !self.manifest_broken {
            return self.start_rollover();
        }
        let Some((edit, purpose)) = self.manifest_queue.pop_front() else { return false };
        let file = self.manifest_file;
        if self.manifest_broken {
            // Cut the failed edit away first; the edit waits for the repair.
            let req = IoRequest::Truncate { file, len: self.manifest_len };
            self.manifest_inflight = Some((edit, purpose, ManifestStage::Repair));
            self.emit_io(req, Pending::Manifest);
            return true;
        }
        let mut data = Vec::new();
        manifest::encode_edit(&mut data, &edit);
        self.manifest_inflight = Some((edit, purpose, ManifestStage::Append(data.len() as u64)));
        self.emit_io(IoRequest::Append { file, data }, Pending::Manifest);
        true
    }

    pub(super) fn manifest_done(&mut self, result: IoResult) {
        let Some((edit, purpose, stage)) = self.manifest_inflight.take() else { return };
        let failed = match result {
            IoResult::Failed(error) => Some(Error::Io { file: Some(self.manifest_file), op: "write", error }),
            _ => None,
        };
        match (stage, failed) {
            (ManifestStage::Repair, None) => {
                self.manifest_broken = false;
                self.manifest_queue.push_front((edit, purpose));
            }
            (ManifestStage::Append(len), None) => {
                let file = match &purpose {
                    EditPurpose::Rollover(file) => *file,
                    _ => {
                        self.manifest_len += len;
                        self.manifest_file
                    }
                };
                self.manifest_inflight = Some((edit, purpose, ManifestStage::Sync(len)));
                self.emit_io(IoRequest::Sync { file }, Pending::Manifest);
            }
            (ManifestStage::Sync(len), None) => match purpose {
                EditPurpose::Rollover(file) => {
                    // The new manifest holds the whole state: switch to it, drop the old one.
                    let old = core::mem::replace(&mut self.manifest_file, file);
                    self.manifest_len = len;
                    self.stats.manifest_rollovers += 1;
                    self.delete_file(old);
                }
                purpose => self.install(edit, purpose),
            },
            (_, Some(e)) if matches!(purpose, EditPurpose::Rollover(_)) => {
                // The old manifest is untouched; the half-written new one goes.
                let _ = e;
                if let EditPurpose::Rollover(file) = purpose {
                    self.delete_file(file);
                }
                self.jobs_paused = true;
            }
            (ManifestStage::Repair | ManifestStage::Append(_), Some(e)) => {
                self.manifest_broken = true;
                self.edit_failed(purpose, e);
            }
            (ManifestStage::Sync(len), Some(e)) => {
                self.manifest_len -= len;
                self.manifest_broken = true;
                self.edit_failed(purpose, e);
            }
        }
    }

    /// Writes a new manifest holding the current version as one edit.
    fn start_rollover(&mut self) -> bool {
        let added = self.version.files().map(|(l, f)| (l as u8, f.meta.clone())).collect();
        let file = FileName::manifest(self.alloc_file_number());
        let edit = VersionEdit {
            added,
            removed: Vec::new(),
            next_file_number: Some(self.next_file_number),
            last_seq: Some(self.last_seq),
            log_number: Some(self.log_number),
            applied_mark: Some(self.durable_mark).filter(|&m| m > 0),
        };
        let mut data = manifest::file_header().to_vec();
        manifest::encode_edit(&mut data, &edit);
        self.manifest_inflight = Some((edit, EditPurpose::Rollover(file), ManifestStage::Append(data.len() as u64)));
        self.emit_io(IoRequest::Append { file, data }, Pending::Manifest);
        true
    }

    pub(super) fn edit_failed(&mut self, purpose: EditPurpose, e: Error) {
        self.jobs_paused = true;
        match purpose {
            EditPurpose::Flush(r) | EditPurpose::Compaction(r) => {
                match r.kind {
                    JobKind::Flush => self.flush_running = false,
                    JobKind::Compaction => self.compaction_running = false,
                }
                for o in &r.outputs {
                    self.delete_file(FileName::table(o.meta.number));
                }
                let waiters = if r.kind == JobKind::Flush {
                    core::mem::take(&mut self.flush_waiters).into_iter().map(|(id, _)| id).collect::<Vec<_>>()
                } else {
                    core::mem::take(&mut self.compact_waiters).into_iter().map(|w| w.id).collect()
                };
                for id in waiters {
                    self.reply(id, Err(e.clone()));
                }
            }
            EditPurpose::TrivialMove(_) => self.compaction_running = false,
            EditPurpose::Rollover(file) => self.delete_file(file),
            EditPurpose::Install(inst) => self.install_edit_failed(*inst, e),
        }
    }

    pub(super) fn install(&mut self, edit: VersionEdit, purpose: EditPurpose) {
        let outputs: Vec<Arc<TableFile>> = match &purpose {
            EditPurpose::Flush(r) | EditPurpose::Compaction(r) => r.outputs.clone(),
            EditPurpose::TrivialMove(_) | EditPurpose::Rollover(_) => Vec::new(),
            EditPurpose::Install(e) => e.opened.clone(),
        };
        let current = self.version.clone();
        let lookup = |n: u64| {
            outputs
                .iter()
                .find(|o| o.meta.number == n)
                .cloned()
                .or_else(|| current.files().find(|(_, f)| f.meta.number == n).map(|(_, f)| f.clone()))
        };
        let Some(next) = self.version.apply(&edit, &lookup) else {
            // Cannot happen for edits the store built itself; refuse further work loudly.
            self.phase = Phase::Failed(Error::Corruption {
                file: self.manifest_file,
                offset: self.manifest_len,
                reason: "store built an edit its own version rejects",
            });
            return;
        };
        next.check_invariants();
        // Files removed and not re-added go to the graveyard until no reader holds them.
        for &(_, n) in &edit.removed {
            if !edit.added.iter().any(|(_, m)| m.number == n) {
                if let Some((_, f)) = self.version.files().find(|(_, f)| f.meta.number == n) {
                    self.graveyard.push(f.clone());
                }
            }
        }
        self.version = Arc::new(next);
        if let Some(n) = edit.log_number {
            self.log_number = n;
            self.delete_wals_below(n);
        }
        if let Some(m) = edit.applied_mark {
            self.durable_mark = self.durable_mark.max(m);
        }
        match purpose {
            EditPurpose::Flush(r) => {
                self.flush_running = false;
                if let Some(f) = self.imm.pop_front() {
                    if self.pins.contains_key(&f.id) {
                        self.retired.insert(f.id, f.mem);
                    }
                }
                self.stats.flushes += 1;
                self.stats.flush_bytes_written += r.bytes_written;
            }
            EditPurpose::Compaction(r) => {
                self.compaction_running = false;
                if let Some(w) = self.compact_waiters.first_mut().filter(|w| w.state == RangeState::Compacting) {
                    w.state = RangeState::Done;
                }
                self.stats.compactions += 1;
                self.stats.compaction_bytes_written += r.bytes_written;
                if let Some(p) = &r.plan {
                    self.advance_cursor(p);
                }
            }
            EditPurpose::TrivialMove(p) => {
                self.compaction_running = false;
                self.advance_cursor(&p);
            }
            // Handled by `manifest_done`; never installed as an edit.
            EditPurpose::Rollover(_) => {}
            EditPurpose::Install(e) => self.install_done(*e),
        }
    }

    pub(super) fn advance_cursor(&mut self, p: &Plan) {
        if let Some(max) = p.inputs.iter().filter(|(l, _)| *l < p.output_level).map(|(_, f)| f.largest()).max() {
            if let Some((l, _)) = p.inputs.first() {
                self.cursors[*l] = max.to_vec();
            }
        }
    }

    pub(super) fn delete_wals_below(&mut self, to: u64) {
        let live = self.wal.file().number;
        let old: Vec<u64> = self.wal_segments.range(..to).copied().filter(|&n| n != live).collect();
        for n in old {
            self.wal_segments.remove(&n);
            self.delete_file(FileName::wal(n));
        }
    }

    pub(super) fn collect_garbage(&mut self) {
        let mut i = 0;
        while i < self.graveyard.len() {
            if Arc::strong_count(&self.graveyard[i]) == 1 {
                let f = self.graveyard.swap_remove(i);
                self.cache.remove_file(f.meta.number);
                self.delete_file(FileName::table(f.meta.number));
            } else {
                i += 1;
            }
        }
    }

    pub(super) fn delete_file(&mut self, file: FileName) {
        self.emit_io(IoRequest::Delete { file }, Pending::Delete);
    }
}
