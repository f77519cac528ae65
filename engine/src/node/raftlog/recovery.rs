//! Opening the log: list the folder, read every segment oldest first and replay it, cut a
//! torn tail off the newest one, sync the newest, then report the state. One request is in
//! flight at a time.
//!
//! The sync matters after a restart that followed a failed write or sync (the process
//! stopped, the machine did not): the newest segment may hold bytes that were written but
//! never made durable. Recovery accepts them, so it makes them durable before anything is
//! appended after them — else a later power loss could tear a segment that is no longer the
//! newest, which reads as corruption.
use super::record;
use super::replay::Replay;
use super::{is_segment, LogError, LogOutput, Pending, Phase, RaftLog, Segment};
use crate::lsm::io::{FileName, IoError, IoRequest, IoResult};
use alloc::vec::Vec;
use strata_raft::Index;

/// Recovery progress.
#[derive(Debug, Default)]
pub(super) struct Recovery {
    stage: Stage,
    /// Segment numbers, oldest first.
    numbers: Vec<u64>,
    replay: Replay,
    /// The segments read so far.
    segments: Vec<Segment>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Stage {
    #[default]
    Start,
    Listing,
    Reading(usize),
    /// Cutting the torn tail off the newest segment (its number).
    Truncating(u64),
    /// Deleting a newest segment whose creation never completed.
    Deleting,
    /// Syncing the newest segment.
    Syncing,
}

impl RaftLog {
    /// Advances recovery with the completion of its last request (`None` to start).
    pub(super) fn recovery_step(&mut self, result: Option<IoResult>) {
        let Phase::Recovering(rec) = &mut self.phase else { return };
        let mut rec = core::mem::take(rec);
        match self.recover(&mut rec, result) {
            Ok(true) => self.finish_recovery(*rec),
            Ok(false) => self.phase = Phase::Recovering(rec),
            Err(e) => {
                self.phase = Phase::Failed;
                self.outputs.push_back(LogOutput::Recovered(Err(e)));
            }
        }
    }

    fn rec_io(&mut self, req: IoRequest) {
        self.emit(req, Pending::Recovery);
    }

    /// One step; `Ok(true)` when every segment is read and repaired.
    fn recover(&mut self, rec: &mut Recovery, result: Option<IoResult>) -> Result<bool, LogError> {
        match (rec.stage, result) {
            (Stage::Start, _) => {
                rec.stage = Stage::Listing;
                self.rec_io(IoRequest::List);
                Ok(false)
            }
            (Stage::Listing, Some(IoResult::Listed(files))) => {
                rec.numbers = files.iter().filter(|f| is_segment(f)).map(|f| f.number).collect();
                rec.numbers.sort_unstable();
                rec.numbers.dedup();
                self.next_number = rec.numbers.last().map_or(1, |n| n + 1);
                self.read_segment(rec, 0)
            }
            (Stage::Reading(i), Some(IoResult::Data(bytes))) => {
                let file = FileName::wal(rec.numbers[i]);
                let scan = record::scan(file, &bytes)?;
                let newest = i + 1 == rec.numbers.len();
                if scan.torn && !newest {
                    // Only the newest segment is ever written without a sync after it.
                    return Err(LogError::Corruption { file, offset: scan.valid_len, reason: "torn segment before the newest" });
                }
                let mut max_index = Index(0);
                for (offset, r) in scan.records {
                    if let record::Record::Persist { entries, .. } = &r {
                        if let Some(e) = entries.last() {
                            max_index = max_index.max(e.index);
                        }
                    }
                    rec.replay.apply(file, offset, r)?;
                }
                if scan.torn {
                    if scan.valid_len == 0 {
                        // A creation that never completed: nothing of it was acknowledged.
                        rec.stage = Stage::Deleting;
                        self.rec_io(IoRequest::Delete { file });
                    } else {
                        rec.segments.push(Segment { number: file.number, max_index, durable: true });
                        rec.stage = Stage::Truncating(file.number);
                        self.rec_io(IoRequest::Truncate { file, len: scan.valid_len });
                    }
                    return Ok(false);
                }
                rec.segments.push(Segment { number: file.number, max_index, durable: true });
                if newest {
                    rec.stage = Stage::Syncing;
                    self.rec_io(IoRequest::Sync { file });
                    return Ok(false);
                }
                self.read_segment(rec, i + 1)
            }
            (Stage::Truncating(number), Some(IoResult::Done)) => {
                rec.stage = Stage::Syncing;
                self.rec_io(IoRequest::Sync { file: FileName::wal(number) });
                Ok(false)
            }
            (Stage::Deleting | Stage::Syncing, Some(IoResult::Done)) => Ok(true),
            (_, Some(IoResult::Failed(error))) => {
                let file = match rec.stage {
                    Stage::Reading(i) => rec.numbers.get(i).map(|&n| FileName::wal(n)),
                    _ => None,
                };
                Err(LogError::Io { file, op: "recovery", error })
            }
            (stage, other) => Err(LogError::Io {
                file: None,
                op: "recovery",
                error: IoError::Other(alloc::format!("unexpected completion {other:?} in {stage:?}")),
            }),
        }
    }

    fn read_segment(&mut self, rec: &mut Recovery, i: usize) -> Result<bool, LogError> {
        match rec.numbers.get(i) {
            Some(&n) => {
                rec.stage = Stage::Reading(i);
                self.rec_io(IoRequest::ReadAll { file: FileName::wal(n) });
                Ok(false)
            }
            None => Ok(true),
        }
    }

    fn finish_recovery(&mut self, rec: Recovery) {
        let Recovery { replay, segments, .. } = rec;
        self.hard_state = replay.hard_state;
        self.base = replay.base.clone();
        self.last = replay.last;
        self.durable_base = replay.base.index;
        self.segments = segments.into();
        match replay.finish() {
            Ok(state) => {
                self.phase = Phase::Open;
                self.outputs.push_back(LogOutput::Recovered(Ok(state)));
                self.maybe_delete();
            }
            Err(e) => {
                self.phase = Phase::Failed;
                self.outputs.push_back(LogOutput::Recovered(Err(e)));
            }
        }
    }
}
