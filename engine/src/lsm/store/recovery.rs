//! Opening a store: list the folder, replay the newest complete manifest, open its tables,
//! replay the WAL segments it does not cover, then start a fresh manifest and delete what no
//! longer belongs.
//!
//! One request is in flight at a time, so recovery reads like the list above. Any check that
//! fails stops recovery with a typed error and the store stays closed: a store is never opened
//! with acknowledged data missing.
use super::{Output, Pending, Phase, Store};
use crate::lsm::config::NUM_LEVELS;
use crate::lsm::error::Error;
use crate::lsm::io::{FileKind, FileName, IoError, IoRequest, IoResult};
use crate::lsm::manifest::{self, TableMeta, VersionEdit};
use crate::lsm::sstable::{Footer, Table, FOOTER_LEN};
use crate::lsm::version::{TableFile, Version};
use crate::lsm::{batch, frame, wal};
use crate::lsm::wal_writer::WalWriter;
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Recovery progress.
#[derive(Debug, Default)]
pub(super) struct Recovery {
    stage: Stage,
    listed: Vec<FileName>,
    /// Manifest numbers still to try, newest first.
    manifests: Vec<u64>,
    /// The live tables per the manifest, with their levels.
    tables: Vec<(u8, TableMeta)>,
    opened: BTreeMap<u64, Arc<TableFile>>,
    footer: Option<Footer>,
    wals: Vec<u64>,
    next_file_number: u64,
    last_seq: u64,
    log_number: u64,
    applied_mark: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Stage {
    #[default]
    Start,
    Listing,
    ReadingManifest,
    ReadingFooter(usize),
    ReadingMeta(usize),
    ReadingWal(usize),
    TruncatingWal(usize),
    AppendingManifest,
    SyncingManifest,
}

impl Recovery {
    pub(super) fn new() -> Self {
        Recovery::default()
    }
}

impl Store {
    /// Advances recovery with the completion of its last request (`None` to start).
    pub(super) fn recovery_step(&mut self, result: Option<IoResult>) {
        let Phase::Recovering(rec) = &mut self.phase else { return };
        let mut rec = core::mem::take(rec);
        let outcome = self.recover(&mut rec, result);
        match outcome {
            Ok(true) => {
                self.phase = Phase::Open;
                self.outputs.push_back(Output::Opened(Ok(())));
                self.drive(0);
            }
            Ok(false) => self.phase = Phase::Recovering(rec),
            Err(e) => {
                self.phase = Phase::Failed(e.clone());
                self.outputs.push_back(Output::Opened(Err(e)));
            }
        }
    }

    fn rec_io(&mut self, req: IoRequest) {
        self.emit_io(req, Pending::Recovery);
    }

    /// One step; `Ok(true)` when the store is open.
    fn recover(&mut self, rec: &mut Recovery, result: Option<IoResult>) -> Result<bool, Error> {
        match (rec.stage, result) {
            (Stage::Start, _) => {
                rec.stage = Stage::Listing;
                self.rec_io(IoRequest::List);
                Ok(false)
            }
            (Stage::Listing, Some(IoResult::Listed(mut files))) => {
                files.sort();
                rec.listed = files;
                rec.manifests =
                    rec.listed.iter().filter(|f| f.kind == FileKind::Manifest).map(|f| f.number).rev().collect();
                rec.next_file_number = rec.listed.iter().map(|f| f.number + 1).max().unwrap_or(1);
                self.next_manifest_or_fresh(rec)
            }
            (Stage::ReadingManifest, Some(IoResult::Data(bytes))) => {
                let number = rec.manifests[0];
                let file = FileName::manifest(number);
                let scan = manifest::scan(file, &bytes)?;
                if scan.edits.is_empty() {
                    // Never completed its first edit: a crash while it was being created.
                    rec.manifests.remove(0);
                    return self.next_manifest_or_fresh(rec);
                }
                self.replay_edits(rec, &scan.edits, file)?;
                self.open_next_table(rec, 0)
            }
            (Stage::ReadingFooter(i), Some(IoResult::Data(bytes))) => {
                let (_, meta) = &rec.tables[i];
                let file = FileName::table(meta.number);
                if (bytes.len() as u64) < FOOTER_LEN {
                    return Err(Error::Corruption { file, offset: 0, reason: "table shorter than the manifest says" });
                }
                let footer = Footer::decode(file, meta.file_len, &bytes)?;
                let (offset, len) = footer.meta_range();
                rec.footer = Some(footer);
                rec.stage = Stage::ReadingMeta(i);
                self.rec_io(IoRequest::Read { file, offset, len });
                Ok(false)
            }
            (Stage::ReadingMeta(i), Some(IoResult::Data(bytes))) => {
                let (_, meta) = &rec.tables[i];
                let file = FileName::table(meta.number);
                let footer = rec.footer.take().ok_or(Error::NotOpen)?;
                let table = Table::open(file, meta.file_len, &footer, &bytes)?;
                rec.opened.insert(meta.number, Arc::new(TableFile { meta: meta.clone(), table }));
                self.open_next_table(rec, i + 1)
            }
            (Stage::ReadingWal(i), Some(IoResult::Data(bytes))) => {
                // Replayed straight from the file's bytes into the memtable (no per-record
                // copies): a malformed record fails recovery, so partial replay is harmless.
                let file = FileName::wal(rec.wals[i]);
                let log = frame::scan_log(file, &bytes, wal::WAL_MAGIC, wal::WAL_VERSION)?;
                for &(offset, payload) in &log.payloads {
                    let mem = &mut self.mem;
                    let (first_seq, count) = batch::for_each_op(payload, |seq, op| mem.insert(op.key, seq, op.kind, op.value))
                        .map_err(|reason| Error::Corruption { file, offset, reason })?;
                    rec.last_seq = rec.last_seq.max(first_seq + u64::from(count).saturating_sub(1));
                }
                if log.torn {
                    rec.stage = Stage::TruncatingWal(i);
                    self.rec_io(IoRequest::Truncate { file, len: log.valid_len });
                    return Ok(false);
                }
                self.read_next_wal(rec, i + 1)
            }
            (Stage::TruncatingWal(i), Some(IoResult::Done)) => self.read_next_wal(rec, i + 1),
            (Stage::AppendingManifest, Some(IoResult::Done)) => {
                rec.stage = Stage::SyncingManifest;
                self.rec_io(IoRequest::Sync { file: self.manifest_file });
                Ok(false)
            }
            (Stage::SyncingManifest, Some(IoResult::Done)) => {
                self.finish_recovery(rec);
                Ok(true)
            }
            (_, Some(IoResult::Failed(error))) => {
                Err(Error::Io { file: None, op: "recovery", error })
            }
            (stage, other) => Err(Error::Io {
                file: None,
                op: "recovery",
                error: IoError::Other(alloc::format!("unexpected completion {other:?} in {stage:?}")),
            }),
        }
    }

    fn next_manifest_or_fresh(&mut self, rec: &mut Recovery) -> Result<bool, Error> {
        if let Some(&n) = rec.manifests.first() {
            rec.stage = Stage::ReadingManifest;
            self.rec_io(IoRequest::ReadAll { file: FileName::manifest(n) });
            return Ok(false);
        }
        if let Some(f) = rec.listed.iter().find(|f| f.kind != FileKind::Manifest) {
            return Err(Error::Corruption { file: *f, offset: 0, reason: "data files without a complete manifest" });
        }
        // A new store.
        self.write_fresh_manifest(rec)
    }

    fn replay_edits(&mut self, rec: &mut Recovery, edits: &[VersionEdit], file: FileName) -> Result<(), Error> {
        let mut levels: [BTreeMap<u64, TableMeta>; NUM_LEVELS] = Default::default();
        for e in edits {
            for &(l, n) in &e.removed {
                levels.get_mut(usize::from(l)).ok_or(bad_level(file))?.remove(&n);
            }
            for (l, m) in &e.added {
                levels.get_mut(usize::from(*l)).ok_or(bad_level(file))?.insert(m.number, m.clone());
            }
            if let Some(n) = e.next_file_number {
                rec.next_file_number = rec.next_file_number.max(n);
            }
            if let Some(s) = e.last_seq {
                rec.last_seq = rec.last_seq.max(s);
            }
            if let Some(n) = e.log_number {
                rec.log_number = rec.log_number.max(n);
            }
            if let Some(m) = e.applied_mark {
                rec.applied_mark = rec.applied_mark.max(m);
            }
        }
        for (l, files) in levels.into_iter().enumerate() {
            for (_, m) in files {
                let f = FileName::table(m.number);
                if !rec.listed.contains(&f) {
                    return Err(Error::Corruption { file: f, offset: 0, reason: "table named by the manifest is missing" });
                }
                rec.tables.push((l as u8, m));
            }
        }
        rec.wals = rec
            .listed
            .iter()
            .filter(|f| f.kind == FileKind::Wal && f.number >= rec.log_number)
            .map(|f| f.number)
            .collect();
        Ok(())
    }

    fn open_next_table(&mut self, rec: &mut Recovery, i: usize) -> Result<bool, Error> {
        if let Some((_, meta)) = rec.tables.get(i) {
            let file = FileName::table(meta.number);
            rec.stage = Stage::ReadingFooter(i);
            let offset = meta.file_len.saturating_sub(FOOTER_LEN);
            self.rec_io(IoRequest::Read { file, offset, len: FOOTER_LEN });
            return Ok(false);
        }
        let edit = VersionEdit { added: rec.tables.clone(), ..VersionEdit::default() };
        let opened = &rec.opened;
        let version = Version::default()
            .apply(&edit, &|n| opened.get(&n).cloned())
            .ok_or(Error::Corruption { file: self.manifest_file, offset: 0, reason: "manifest levels out of range" })?;
        self.version = Arc::new(version);
        self.read_next_wal(rec, 0)
    }

    fn read_next_wal(&mut self, rec: &mut Recovery, i: usize) -> Result<bool, Error> {
        if let Some(&n) = rec.wals.get(i) {
            rec.stage = Stage::ReadingWal(i);
            self.rec_io(IoRequest::ReadAll { file: FileName::wal(n) });
            return Ok(false);
        }
        self.write_fresh_manifest(rec)
    }

    /// Writes a new manifest holding the whole recovered state as one edit.
    fn write_fresh_manifest(&mut self, rec: &mut Recovery) -> Result<bool, Error> {
        let manifest_number = rec.next_file_number;
        let wal_number = manifest_number + 1;
        self.next_file_number = wal_number + 1;
        self.last_seq = rec.last_seq;
        self.visible_seq = rec.last_seq;
        self.durable_mark = rec.applied_mark;
        // Replayed data still lives only in the old segments: keep them until it is flushed.
        self.log_number = if self.mem.is_empty() { wal_number } else { rec.wals.first().copied().unwrap_or(wal_number) };
        let edit = VersionEdit {
            added: rec.tables.clone(),
            removed: Vec::new(),
            next_file_number: Some(self.next_file_number),
            last_seq: Some(self.last_seq),
            log_number: Some(self.log_number),
            applied_mark: Some(rec.applied_mark).filter(|&m| m > 0),
        };
        let mut data = manifest::file_header().to_vec();
        manifest::encode_edit(&mut data, &edit);
        self.manifest_file = FileName::manifest(manifest_number);
        self.manifest_len = data.len() as u64;
        self.wal = WalWriter::new(self.config.durability, FileName::wal(wal_number), 0, self.config.wal_buffer_bytes);
        self.wal_segments = rec.wals.iter().copied().filter(|&n| n >= self.log_number).collect();
        self.wal_segments.insert(wal_number);
        rec.stage = Stage::AppendingManifest;
        self.rec_io(IoRequest::Append { file: self.manifest_file, data });
        Ok(false)
    }

    /// Deletes old manifests, obsolete WAL segments and orphan tables.
    fn finish_recovery(&mut self, rec: &mut Recovery) {
        let mut doomed = Vec::new();
        for f in &rec.listed {
            let obsolete = match f.kind {
                FileKind::Manifest => f.number != self.manifest_file.number,
                FileKind::Wal => !self.wal_segments.contains(&f.number),
                FileKind::Table => !rec.opened.contains_key(&f.number),
            };
            if obsolete {
                doomed.push(*f);
            }
        }
        for f in doomed {
            self.emit_io(IoRequest::Delete { file: f }, Pending::Delete);
        }
    }
}

fn bad_level(file: FileName) -> Error {
    Error::Corruption { file, offset: 0, reason: "manifest names a level out of range" }
}
