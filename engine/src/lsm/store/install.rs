//! Tables in and out as a whole: a consistent set of SSTs to send elsewhere
//! ([`Store::table_set`]), and a set of SSTs received from elsewhere installed as the store's
//! entire contents in one manifest edit ([`Store::install_tables`]). The replicated node
//! sends and receives Raft snapshots this way (`node::snapshot`).
//!
//! **Export.** A [`TableSet`] holds the current version (an `Arc`: while it is held, none of
//! its files is deleted, whatever compactions install meanwhile) and the store's durable
//! mark. In [`Durability::External`](crate::lsm::config::Durability) the version's files hold
//! exactly the batches whose applied mark is at or below that mark (flushes install in
//! memtable order and carry the largest mark they hold; compactions change no data), so the
//! set is the store's state as of that mark.
//!
//! **Import.** The caller writes and syncs each table under a number from
//! [`Store::reserve_file_numbers`], then submits them with [`Store::install_tables`]. The store
//! opens each (footer and metadata blocks, checksums checked), checks that the levels hold
//! together, waits until no flush, compaction or manifest write is running (starting none
//! meanwhile), and appends one edit that removes every current table, adds the new ones and
//! records the new applied mark. Once that edit is durable the memtables are dropped and the
//! reply is `Done`. A crash before that leaves the old state (the new files are orphans,
//! deleted at the next open); after it, the new state. On any error the old state stays, the
//! new files are deleted, and the reply is the error.
use super::{EditPurpose, Pending, Reply, ReqId, Store};
use crate::lsm::config::{Durability, NUM_LEVELS};
use crate::lsm::error::{Error, InvalidArgument};
use crate::lsm::io::{FileName, IoError, IoRequest, IoResult};
use crate::lsm::manifest::{TableMeta, VersionEdit};
use crate::lsm::memtable::Memtable;
use crate::lsm::sstable::{Footer, Table, FOOTER_LEN};
use crate::lsm::version::{TableFile, Version};
use alloc::boxed::Box;
use alloc::string::ToString;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// A consistent set of the store's tables, pinned (see the module docs).
#[derive(Clone, Debug)]
pub struct TableSet {
    /// The tables, level by level. Holding this keeps the files on disk.
    pub version: Arc<Version>,
    /// Every batch with an applied mark at or below this is in the tables, and no other.
    pub applied_mark: u64,
}

impl TableSet {
    /// `(level, table)` for every file, in level order.
    pub fn tables(&self) -> impl Iterator<Item = (usize, &TableMeta)> {
        self.version.files().map(|(l, f)| (l, &f.meta))
    }
}

/// A table written by the caller for [`Store::install_tables`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IncomingTable {
    /// Its number (from [`Store::reserve_file_numbers`]); the file is `FileName::table(number)`.
    pub number: u64,
    /// The level it goes to.
    pub level: u8,
    /// Its length in bytes.
    pub file_len: u64,
}

/// An install in progress.
#[derive(Debug)]
pub(super) struct Install {
    id: ReqId,
    tables: Vec<IncomingTable>,
    mark: u64,
    opened: Vec<(u8, Arc<TableFile>)>,
    stage: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Reading table `i`'s footer.
    Footer(usize),
    /// Reading table `i`'s metadata blocks.
    Meta(usize, Footer),
    /// Every table is open; waiting for background work to stop.
    Quiescing,
    /// The edit is queued or being written.
    Editing,
}

/// What an install edit carries until it is durable.
#[derive(Debug)]
pub(super) struct InstallEdit {
    id: ReqId,
    pub(super) opened: Vec<Arc<TableFile>>,
}

impl Store {
    /// The current tables and the mark they hold (see the module docs). Hold it for as long as
    /// the files must stay.
    pub fn table_set(&self) -> TableSet {
        TableSet { version: self.version.clone(), applied_mark: self.durable_mark }
    }

    /// Reserves `n` file numbers for tables the caller writes itself; returns the first.
    pub fn reserve_file_numbers(&mut self, n: u64) -> u64 {
        let first = self.next_file_number;
        self.next_file_number += n;
        first
    }

    /// True while an install is under way (background jobs wait for it).
    pub fn is_installing(&self) -> bool {
        self.install.is_some()
    }

    /// Replaces the store's whole contents with `tables` (written and synced by the caller),
    /// whose data holds exactly the batches with applied marks up to `applied_mark` (at least
    /// the current durable mark). Replies `Done` once the change is durable; see the module
    /// docs for what a crash or an error leaves. Writes submitted before the reply apply on
    /// top of the new contents; submit none meanwhile.
    pub fn install_tables(&mut self, now_ms: u64, tables: Vec<IncomingTable>, applied_mark: u64) -> ReqId {
        let id = ReqId(self.next_req);
        self.next_req += 1;
        self.jobs_paused = false;
        let refuse = if !self.is_open() {
            Some(Error::NotOpen)
        } else if self.install.is_some() {
            Some(Error::InvalidArgument(InvalidArgument::Other("another install is under way".to_string())))
        } else if applied_mark < self.durable_mark {
            Some(Error::InvalidArgument(InvalidArgument::Other("install below the durable mark".to_string())))
        } else if tables.iter().any(|t| t.number >= self.next_file_number) {
            Some(Error::InvalidArgument(InvalidArgument::Other("table number not reserved".to_string())))
        } else {
            None
        };
        if let Some(e) = refuse {
            self.reply(id, Err(e));
            return id;
        }
        self.install = Some(Install { id, tables, mark: applied_mark, opened: Vec::new(), stage: Stage::Footer(0) });
        self.open_incoming(0);
        self.drive(now_ms);
        id
    }

    /// Reads table `i`'s footer, or moves on once every table is open.
    fn open_incoming(&mut self, i: usize) {
        let Some(inst) = self.install.as_mut() else { return };
        match inst.tables.get(i) {
            Some(t) => {
                inst.stage = Stage::Footer(i);
                let req = IoRequest::Read { file: FileName::table(t.number), offset: t.file_len.saturating_sub(FOOTER_LEN), len: FOOTER_LEN };
                self.emit_io(req, Pending::Install);
            }
            None => match check_levels(&inst.opened) {
                Ok(()) => inst.stage = Stage::Quiescing,
                Err(e) => self.install_failed(e),
            },
        }
    }

    /// Feeds the completion of an install read.
    pub(super) fn install_io(&mut self, result: IoResult) {
        let Some(inst) = self.install.as_mut() else { return };
        let bytes = match result {
            IoResult::Data(b) => b,
            IoResult::Failed(error) => return self.install_failed(Error::Io { file: None, op: "install read", error }),
            other => {
                let error = IoError::Other(alloc::format!("unexpected completion {other:?}"));
                return self.install_failed(Error::Io { file: None, op: "install read", error });
            }
        };
        match inst.stage {
            Stage::Footer(i) => {
                let t = inst.tables[i];
                let file = FileName::table(t.number);
                match Footer::decode(file, t.file_len, &bytes) {
                    Ok(footer) => {
                        inst.stage = Stage::Meta(i, footer);
                        let (offset, len) = footer.meta_range();
                        self.emit_io(IoRequest::Read { file, offset, len }, Pending::Install);
                    }
                    Err(e) => self.install_failed(e),
                }
            }
            Stage::Meta(i, footer) => {
                let t = inst.tables[i];
                let file = FileName::table(t.number);
                match Table::open(file, t.file_len, &footer, &bytes) {
                    Ok(table) => {
                        let meta = TableMeta { number: t.number, file_len: t.file_len, props: table.props().clone() };
                        inst.opened.push((t.level, Arc::new(TableFile { meta, table })));
                        self.open_incoming(i + 1);
                    }
                    Err(e) => self.install_failed(e),
                }
            }
            Stage::Quiescing | Stage::Editing => {}
        }
    }

    /// Queues the install's edit once nothing else changes the version. Called by `drive`.
    pub(super) fn advance_install(&mut self) -> bool {
        let quiet = !self.flush_running
            && !self.compaction_running
            && self.manifest_inflight.is_none()
            && self.manifest_queue.is_empty()
            && self.wal.is_idle();
        let Some(inst) = self.install.as_mut().filter(|i| i.stage == Stage::Quiescing) else { return false };
        if !quiet {
            return false;
        }
        inst.stage = Stage::Editing;
        let mark = inst.mark;
        let id = inst.id;
        let opened = inst.opened.clone();
        let max_seq = opened.iter().map(|(_, f)| f.meta.props.max_seq).max().unwrap_or(0);
        self.last_seq = self.last_seq.max(max_seq);
        // A new WAL segment: everything logged so far belongs to the state being replaced.
        let next_wal = self.alloc_file_number();
        self.wal.rotate(FileName::wal(next_wal));
        if self.config.durability != Durability::External {
            self.wal_segments.insert(next_wal);
        }
        let edit = VersionEdit {
            added: opened.iter().map(|(l, f)| (*l, f.meta.clone())).collect(),
            removed: self.version.files().map(|(l, f)| (l as u8, f.meta.number)).collect(),
            next_file_number: Some(self.next_file_number),
            last_seq: Some(self.last_seq),
            log_number: Some(next_wal),
            applied_mark: Some(mark),
        };
        let purpose = EditPurpose::Install(Box::new(InstallEdit { id, opened: opened.into_iter().map(|(_, f)| f).collect() }));
        self.manifest_queue.push_back((edit, purpose));
        true
    }

    /// The install's edit is durable and the version installed: drop what the memtables hold.
    pub(super) fn install_done(&mut self, e: InstallEdit) {
        self.install = None;
        let old = core::mem::take(&mut self.mem);
        if self.pins.contains_key(&self.mem_id) {
            self.retired.insert(self.mem_id, Arc::new(old));
        }
        for f in core::mem::take(&mut self.imm) {
            if self.pins.contains_key(&f.id) {
                self.retired.insert(f.id, f.mem);
            }
        }
        self.mem = Memtable::new();
        self.mem_id += 1;
        self.mem_mark = 0;
        self.freeze_wanted = false;
        self.visible_seq = self.last_seq;
        self.cursors = Default::default();
        self.reply(e.id, Ok(Reply::Done));
    }

    /// The install's edit failed: the old state stays; the new files go.
    pub(super) fn install_edit_failed(&mut self, e: InstallEdit, error: Error) {
        self.install = None;
        for f in &e.opened {
            self.delete_file(FileName::table(f.meta.number));
        }
        self.reply(e.id, Err(error));
    }

    fn install_failed(&mut self, e: Error) {
        let Some(inst) = self.install.take() else { return };
        for t in &inst.tables {
            self.delete_file(FileName::table(t.number));
        }
        self.reply(inst.id, Err(e));
    }
}

/// Checks that the incoming tables form a valid version: levels in range, and no overlap
/// within a level below L0.
fn check_levels(opened: &[(u8, Arc<TableFile>)]) -> Result<(), Error> {
    let mut levels: [Vec<&Arc<TableFile>>; NUM_LEVELS] = Default::default();
    for (l, f) in opened {
        let Some(files) = levels.get_mut(usize::from(*l)) else {
            return Err(Error::Corruption { file: FileName::table(f.meta.number), offset: 0, reason: "incoming table has a level out of range" });
        };
        files.push(f);
    }
    for files in levels.iter_mut().skip(1) {
        files.sort_by(|a, b| a.smallest().cmp(b.smallest()));
        for w in files.windows(2) {
            if w[0].largest() >= w[1].smallest() {
                return Err(Error::Corruption { file: FileName::table(w[1].meta.number), offset: 0, reason: "incoming tables overlap within a level" });
            }
        }
    }
    Ok(())
}
