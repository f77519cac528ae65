//! Unit tests of the Raft log over the sim disk. The crash loop is in
//! `tests/tests/raftlog_crash.rs`.
use super::*;
use alloc::boxed::Box;
use alloc::vec;
use strata_raft::{Bytes, Entry, EntryKind, NodeId, Term};
use alloc::collections::BTreeMap;

/// A disk in memory (the sim disk's crash behaviour is exercised by the crash loop).
#[derive(Default)]
struct SimDisk {
    files: BTreeMap<FileName, Vec<u8>>,
    full: bool,
}

impl SimDisk {
    fn new(_seed: u64) -> SimDisk {
        SimDisk::default()
    }
    fn execute(&mut self, req: IoRequest) -> IoResult {
        match req {
            IoRequest::List => IoResult::Listed(self.files.keys().copied().collect()),
            IoRequest::ReadAll { file } => match self.files.get(&file) {
                Some(d) => IoResult::Data(d.clone()),
                None => IoResult::Failed(IoError::NotFound),
            },
            IoRequest::Append { file, data } => {
                let f = self.files.entry(file).or_default();
                if self.full {
                    f.extend_from_slice(&data[..data.len() / 2]);
                    return IoResult::Failed(IoError::NoSpace);
                }
                f.extend_from_slice(&data);
                IoResult::Done
            }
            IoRequest::Truncate { file, len } => {
                if let Some(f) = self.files.get_mut(&file) {
                    f.truncate(len as usize);
                }
                IoResult::Done
            }
            IoRequest::Delete { file } => {
                self.files.remove(&file);
                IoResult::Done
            }
            IoRequest::Sync { .. } | IoRequest::Read { .. } => IoResult::Done,
        }
    }
    fn flip_bit(&mut self, file: FileName, offset: usize, bit: u8) -> bool {
        match self.files.get_mut(&file).and_then(|f| f.get_mut(offset)) {
            Some(b) => {
                *b ^= 1 << bit;
                true
            }
            None => false,
        }
    }
    fn files(&self) -> Vec<(FileName, usize)> {
        self.files.iter().map(|(f, d)| (*f, d.len())).collect()
    }
    fn total_bytes(&self) -> usize {
        self.files.values().map(|d| d.len()).sum()
    }
}

fn entry(index: u64, term: u64) -> Entry {
    Entry { term: Term(term), index: Index(index), kind: EntryKind::Normal, data: Bytes::from(vec![index as u8; 40]) }
}

fn persist(id: u64, term: u64, entries: Vec<Entry>) -> Persist {
    let hard_state = HardState { term: Term(term), vote: Some(NodeId(1)), commit: Index(0) };
    Persist { id: PersistId(id), hard_state, snapshot: None, entries }
}

/// Carries out every queued I/O at once; returns the other outputs.
fn run(log: &mut RaftLog, disk: &mut SimDisk) -> Vec<LogOutput> {
    let mut other = Vec::new();
    while let Some(out) = log.poll() {
        match out {
            LogOutput::Io { id, req } => {
                let r = disk.execute(req);
                log.handle_io(id, r);
            }
            o => other.push(o),
        }
    }
    other
}

fn open(cfg: &LogConfig, disk: &mut SimDisk) -> (RaftLog, Recovered) {
    let mut log = RaftLog::open(cfg.clone());
    let outs = run(&mut log, disk);
    match &outs[..] {
        [LogOutput::Recovered(Ok(r))] => {
            let r = r.clone();
            (log, r)
        }
        other => panic!("recovery: {other:?}"),
    }
}

fn persisted(outs: &[LogOutput]) -> Vec<u64> {
    outs.iter()
        .map(|o| match o {
            LogOutput::Persisted(id) => id.0,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[test]
fn a_new_log_recovers_empty_and_reopens_with_what_was_persisted() {
    let cfg = LogConfig::default();
    let mut disk = SimDisk::new(1);
    let (mut log, r) = open(&cfg, &mut disk);
    assert_eq!((r.hard_state, r.snapshot, r.entries, r.applied), (HardState::default(), None, vec![], Index(0)));
    log.persist(&persist(1, 1, vec![entry(1, 1), entry(2, 1)]));
    log.persist(&persist(2, 2, vec![entry(2, 2), entry(3, 2)]));
    assert_eq!(persisted(&run(&mut log, &mut disk)), vec![1, 2]);
    let (_, r) = open(&cfg, &mut disk);
    assert_eq!(r.hard_state.term, Term(2));
    assert_eq!(r.entries, vec![entry(1, 1), entry(2, 2), entry(3, 2)]);
    assert_eq!((r.snapshot, r.applied), (None, Index(0)));
}

#[test]
fn persists_in_flight_share_one_sync() {
    let mut disk = SimDisk::new(2);
    let (mut log, _) = open(&LogConfig::default(), &mut disk);
    log.persist(&persist(1, 1, vec![entry(1, 1)]));
    // The first group is on the disk: the next three wait and go together.
    let first = log.poll();
    assert!(matches!(first, Some(LogOutput::Io { req: IoRequest::Append { .. }, .. })), "{first:?}");
    for i in 2..5 {
        log.persist(&persist(i, 1, vec![entry(i, 1)]));
    }
    let Some(LogOutput::Io { id, req }) = first else { unreachable!() };
    let r = disk.execute(req);
    log.handle_io(id, r);
    let outs = run(&mut log, &mut disk);
    assert_eq!(persisted(&outs), vec![1, 4]);
    let s = log.stats();
    assert_eq!((s.persists, s.syncs, s.appends), (4, 2, 2));
    assert_eq!(s.bytes_written, disk.total_bytes() as u64);
}

#[test]
fn nothing_is_acknowledged_before_its_sync_completes() {
    let mut disk = SimDisk::new(3);
    let (mut log, _) = open(&LogConfig::default(), &mut disk);
    log.persist(&persist(1, 1, vec![entry(1, 1)]));
    let mut syncs = 0;
    while let Some(out) = log.poll() {
        match out {
            LogOutput::Io { id, req } => {
                if matches!(req, IoRequest::Sync { .. }) {
                    syncs += 1;
                    assert!(log.poll().is_none(), "nothing else while the sync is out");
                }
                let r = disk.execute(req);
                log.handle_io(id, r);
            }
            LogOutput::Persisted(id) => {
                assert_eq!((id, syncs), (PersistId(1), 1));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn segments_roll_and_compaction_deletes_the_old_ones() {
    let cfg = LogConfig { segment_bytes: 300 };
    let mut disk = SimDisk::new(4);
    let (mut log, _) = open(&cfg, &mut disk);
    for i in 1..=40 {
        log.persist(&persist(i, 1, vec![entry(i, 1)]));
        run(&mut log, &mut disk);
    }
    let before = log.stats().segments;
    assert!(before >= 5, "{before} segments");
    let base = SnapshotMeta { index: Index(30), term: Term(1), ..SnapshotMeta::default() };
    log.compact(&base);
    run(&mut log, &mut disk);
    let after = log.stats();
    assert!(after.segments < before && after.segments_deleted > 0, "{after:?}");
    assert_eq!(disk.files().len() as u64, after.segments);
    let (_, r) = open(&cfg, &mut disk);
    assert_eq!(r.snapshot, Some(base));
    assert_eq!(r.applied, Index(30));
    assert_eq!(r.entries, (31..=40).map(|i| entry(i, 1)).collect::<Vec<_>>());
}

#[test]
fn an_installed_snapshot_replaces_the_log() {
    let mut disk = SimDisk::new(5);
    let (mut log, _) = open(&LogConfig::default(), &mut disk);
    log.persist(&persist(1, 1, (1..=5).map(|i| entry(i, 1)).collect()));
    let snap = SnapshotMeta { index: Index(9), term: Term(2), ..SnapshotMeta::default() };
    let mut p = persist(2, 2, vec![entry(10, 2)]);
    p.snapshot = Some(Box::new(snap.clone()));
    log.persist(&p);
    assert_eq!(persisted(&run(&mut log, &mut disk)), vec![1, 2]);
    let (_, r) = open(&LogConfig::default(), &mut disk);
    assert_eq!((r.snapshot, r.applied, r.entries), (Some(snap), Index(9), vec![entry(10, 2)]));
}

#[test]
fn calls_before_recovery_and_write_errors_fail_loudly() {
    let mut log = RaftLog::open(LogConfig::default());
    log.persist(&persist(1, 1, vec![entry(1, 1)]));
    let outs: Vec<LogOutput> = core::iter::from_fn(|| log.poll()).collect();
    assert!(outs.iter().any(|o| matches!(o, LogOutput::Failed(LogError::NotOpen))), "{outs:?}");

    let mut disk = SimDisk::new(6);
    let (mut log, _) = open(&LogConfig::default(), &mut disk);
    disk.full = true;
    log.persist(&persist(1, 1, vec![entry(1, 1)]));
    let outs = run(&mut log, &mut disk);
    assert!(matches!(&outs[..], [LogOutput::Failed(LogError::Io { op: "append", .. })]), "{outs:?}");
    assert!(!log.is_open());
    // Reopening cuts the torn bytes away and finds nothing acknowledged missing.
    disk.full = false;
    let (_, r) = open(&LogConfig::default(), &mut disk);
    assert!(r.entries.is_empty() || r.entries == vec![entry(1, 1)]);
}

#[test]
fn a_flipped_bit_before_the_tail_names_the_file_and_offset() {
    let cfg = LogConfig { segment_bytes: 200 };
    let mut disk = SimDisk::new(7);
    let (mut log, _) = open(&cfg, &mut disk);
    for i in 1..=10 {
        log.persist(&persist(i, 1, vec![entry(i, 1)]));
        run(&mut log, &mut disk);
    }
    let (first, _) = disk.files()[0];
    assert!(disk.flip_bit(first, 40, 3));
    let mut log = RaftLog::open(cfg);
    let outs = run(&mut log, &mut disk);
    match &outs[..] {
        [LogOutput::Recovered(Err(LogError::Corruption { file, offset, .. }))] => {
            assert_eq!(*file, first);
            assert!(*offset <= 40);
        }
        other => panic!("{other:?}"),
    }
}
