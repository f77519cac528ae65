//! Unit tests of apply: the write ops, commit timestamps, sessions, determinism, recovery.
use super::apply::AppliedWrite;
use super::state::{ApplyState, APPLY_STATE_KEY};
use super::testing::{put, write_entry, Files, Rig};
use super::wire::{ClientError, ClientId, ClientReply, Epoch, WriteOp};
use super::command::{LogCommand, WriteCommand};
use crate::mvcc::Ts;
use alloc::vec;
use alloc::vec::Vec;
use strata_raft::{Bytes, Entry, EntryKind, Index, Term};

fn result_of(rig: &Rig, index: u64) -> Result<ClientReply, ClientError> {
    let (_, w) = rig.applied.iter().find(|(i, _)| i.0 == index).expect("applied");
    w.as_ref().expect("a write").result.clone()
}

fn cas(key: &[u8], expected: Option<&[u8]>, new: Option<&[u8]>) -> WriteOp {
    WriteOp::Cas { key: key.to_vec(), expected: expected.map(<[u8]>::to_vec), new: new.map(<[u8]>::to_vec) }
}

#[test]
fn put_delete_and_cas_on_value_and_absence() {
    let mut rig = Rig::open(Files::new());
    rig.apply(vec![
        write_entry(1, 10, 1, 1, put(b"k", b"v1")),
        write_entry(2, 10, 1, 2, cas(b"k", None, Some(b"x"))),
        write_entry(3, 10, 1, 3, cas(b"k", Some(b"v1"), Some(b"v2"))),
        write_entry(4, 10, 1, 4, cas(b"fresh", None, Some(b"new"))),
        write_entry(5, 10, 1, 5, WriteOp::Delete { key: b"k".to_vec() }),
        write_entry(6, 10, 1, 6, cas(b"k", None, Some(b"again"))),
        write_entry(7, 10, 1, 7, cas(b"fresh", Some(b"new"), None)),
    ]);
    let t = |logical| Ts::compose(10, logical).0;
    assert_eq!(result_of(&rig, 1), Ok(ClientReply::Written { revision: t(0) }));
    assert_eq!(result_of(&rig, 2), Ok(ClientReply::Swapped { swapped: false, revision: t(0) }));
    assert_eq!(result_of(&rig, 3), Ok(ClientReply::Swapped { swapped: true, revision: t(2) }));
    assert_eq!(result_of(&rig, 4), Ok(ClientReply::Swapped { swapped: true, revision: t(3) }));
    assert_eq!(result_of(&rig, 5), Ok(ClientReply::Written { revision: t(4) }));
    assert_eq!(result_of(&rig, 6), Ok(ClientReply::Swapped { swapped: true, revision: t(5) }));
    assert_eq!(result_of(&rig, 7), Ok(ClientReply::Swapped { swapped: true, revision: t(6) }));
    assert_eq!(rig.get(b"k"), Some(b"again".to_vec()));
    assert_eq!(rig.get(b"fresh"), None);
    assert_eq!(rig.applier.applied(), Index(7));
    assert_eq!(rig.applier.last_ts(), Ts(t(6)));
}

#[test]
fn commit_ts_follows_the_leaders_clock_and_never_goes_back() {
    let mut rig = Rig::open(Files::new());
    // The clock jumps forward, then back (a new leader with a slower clock).
    rig.apply(vec![
        write_entry(1, 100, 1, 1, put(b"a", b"1")),
        write_entry(2, 500, 1, 2, put(b"a", b"2")),
        write_entry(3, 200, 1, 3, put(b"a", b"3")),
    ]);
    assert_eq!(result_of(&rig, 1), Ok(ClientReply::Written { revision: Ts::compose(100, 0).0 }));
    assert_eq!(result_of(&rig, 2), Ok(ClientReply::Written { revision: Ts::compose(500, 0).0 }));
    assert_eq!(result_of(&rig, 3), Ok(ClientReply::Written { revision: Ts::compose(500, 1).0 }));
}

#[test]
fn a_retried_write_applies_at_most_once() {
    let mut rig = Rig::open(Files::new());
    rig.apply(vec![
        write_entry(1, 10, 7, 1, cas(b"k", None, Some(b"first"))),
        // The same write again (a client retry proposed by a new leader): the recorded answer.
        write_entry(2, 11, 7, 1, cas(b"k", None, Some(b"first"))),
        // Another client's write in between, then the retry once more.
        write_entry(3, 12, 8, 1, put(b"k", b"other")),
        write_entry(4, 13, 7, 1, cas(b"k", None, Some(b"first"))),
        write_entry(5, 14, 7, 2, put(b"j", b"x")),
        // An old duplicate after the session moved on.
        write_entry(6, 15, 7, 1, cas(b"k", None, Some(b"first"))),
    ]);
    let first = Ok(ClientReply::Swapped { swapped: true, revision: Ts::compose(10, 0).0 });
    assert_eq!(result_of(&rig, 1), first);
    assert_eq!(result_of(&rig, 2), first);
    assert_eq!(result_of(&rig, 4), first);
    assert_eq!(result_of(&rig, 6), Err(ClientError::SessionStale { last_seq: 2 }));
    assert_eq!(rig.get(b"k"), Some(b"other".to_vec()));
    assert_eq!(rig.applier.stats().deduplicated, 2);
    // Nothing written by the duplicates: the commit ts moved only for entries 1, 3 and 5.
    assert_eq!(rig.applier.last_ts(), Ts::compose(14, 0));
    let w = rig.applied.iter().find(|(i, _)| i.0 == 2).and_then(|(_, w)| w.clone());
    assert_eq!(w, Some(AppliedWrite { client: ClientId(7), seq: 1, result: first }));
}

#[test]
fn other_entries_apply_as_no_ops() {
    let mut rig = Rig::open(Files::new());
    let noop = Entry { term: Term(2), index: Index(1), kind: EntryKind::Normal, data: Bytes::new() };
    let garbage = Entry { term: Term(2), index: Index(2), kind: EntryKind::Normal, data: Bytes::from_static(b"\xff\xff\xff") };
    let wrong_epoch = LogCommand::Write(WriteCommand {
        epoch: Epoch { conf_ver: 9, version: 9 },
        clock_ms: 5,
        client: ClientId(1),
        seq: 1,
        op: put(b"k", b"v"),
    });
    let wrong_epoch = Entry { term: Term(2), index: Index(3), kind: EntryKind::Normal, data: Bytes::from(wrong_epoch.encode()) };
    rig.apply(vec![noop, garbage, wrong_epoch]);
    assert_eq!(rig.applied.len(), 3);
    assert_eq!(rig.applied[0], (Index(1), None));
    assert_eq!(rig.applied[1], (Index(2), None));
    assert_eq!(result_of(&rig, 3), Err(ClientError::EpochMismatch { current: Epoch::INITIAL }));
    assert_eq!(rig.get(b"k"), None);
    assert!(rig.dump().is_empty(), "no-ops wrote nothing");
    // Replays of applied entries are skipped.
    rig.apply(vec![write_entry(3, 5, 1, 1, put(b"k", b"v"))]);
    assert_eq!(rig.applied.len(), 3);
}

fn workload(n: u64) -> Vec<Entry> {
    (1..=n)
        .map(|i| {
            let key = [b'a' + (i % 7) as u8];
            let op = match i % 4 {
                0 => put(&key, &i.to_be_bytes()),
                1 => cas(&key, None, Some(b"fresh")),
                2 => cas(&key, Some(b"fresh"), Some(&[i as u8; 40])),
                _ => WriteOp::Delete { key: key.to_vec() },
            };
            write_entry(i, 1000 + i / 3, i % 5, i / 5 + 1, op)
        })
        .collect()
}

#[test]
fn replicas_applying_the_same_entries_write_the_same_data() {
    let entries = workload(400);
    let mut a = Rig::open(Files::new());
    a.apply(entries.clone());
    // The other replica flushes in the middle, so its writes read SST blocks.
    let mut b = Rig::open(Files::new());
    b.apply(entries[..150].to_vec());
    b.flush();
    b.apply(entries[150..].to_vec());
    assert!(b.block_reads > 0, "the second replica read blocks");
    assert_eq!(a.dump(), b.dump());
    let replies = |r: &Rig| r.applied.iter().map(|(_, w)| w.clone()).collect::<Vec<_>>();
    assert_eq!(replies(&a), replies(&b));
}

#[test]
fn recovery_reads_the_apply_state_back_and_skips_what_is_stored() {
    let entries = workload(60);
    let mut a = Rig::open(Files::new());
    a.apply(entries[..40].to_vec());
    a.flush();
    let stored = ApplyState { index: 40, last_ts: a.applier.last_ts().0, term: 1 };
    assert_eq!(a.applier.state(), stored);
    // Each batch carries its entry's index: the flush made the store durable up to 40.
    assert_eq!(a.store.durable_mark(), 40);
    let before = a.dump();
    // Reopen from the flushed files: the apply state comes back, and a replay from the
    // start of the log changes nothing it already holds.
    let mut b = Rig::open(a.files.clone());
    assert_eq!(b.store.durable_mark(), 40);
    assert_eq!(b.applier.state(), stored);
    assert_eq!(b.applier.applied(), Index(40));
    b.apply(entries[..40].to_vec());
    assert!(b.applied.is_empty());
    assert_eq!(b.dump(), before);
    b.apply(entries[40..].to_vec());
    a.apply(entries[40..].to_vec());
    assert_eq!(a.dump(), b.dump());
    assert!(a.dump().iter().any(|(k, _)| k == APPLY_STATE_KEY));
}

#[test]
fn entries_pushed_while_one_waits_for_a_block_queue_behind_it() {
    // Found by the cluster simulation: an entry pushed while the previous one was running
    // (waiting for an SST block) was taken for a gap.
    let entries = workload(80);
    let mut rig = Rig::open(Files::new());
    rig.apply(entries[..40].to_vec());
    rig.flush();
    // Entry 41 needs a block; push it alone, then the rest before its block arrives.
    rig.applier.push(entries[40].clone());
    rig.applier.drive(0, &mut rig.store);
    for e in &entries[41..] {
        rig.applier.push(e.clone());
    }
    rig.run();
    assert_eq!(rig.applier.applied(), Index(80));
    let mut other = Rig::open(Files::new());
    other.apply(entries);
    assert_eq!(rig.dump(), other.dump());
}

#[test]
fn without_a_wal_a_reopened_store_holds_the_flushed_batches_and_replay_restores_the_rest() {
    let entries = workload(60);
    let mut a = Rig::open(Files::new());
    a.apply(entries[..40].to_vec());
    a.flush();
    let flushed = a.dump();
    a.apply(entries[40..].to_vec());
    assert_eq!(a.store.durable_mark(), 40);
    // The store writes no WAL: reopening its files (a crash) finds exactly the flushed batches.
    let mut b = Rig::open(a.files.clone());
    assert_eq!(b.store.durable_mark(), 40);
    assert_eq!(b.applier.applied(), Index(40));
    assert_eq!(b.dump(), flushed);
    // The Raft log replays what was lost, from the durable mark on: the same data and answers.
    b.apply(entries.clone());
    assert_eq!(b.dump(), a.dump());
    let answers = |r: &Rig| r.applied.iter().filter(|(i, _)| i.0 > 40).cloned().collect::<Vec<_>>();
    assert_eq!(answers(&b), answers(&a));
}

#[test]
fn a_transaction_applies_atomically_and_its_compares_pick_the_branch() {
    use super::txn::{CompareKind, KeyValue, StepResult, TxnCompare, TxnReply, TxnSpec, TxnStep, TxnTarget};
    let get = |k: &[u8]| TxnStep::Get { key: k.to_vec() };
    let putv = |k: &[u8], v: &[u8]| TxnStep::Put { key: k.to_vec(), value: v.to_vec() };
    let modrev = |k: &[u8], r: u64| TxnCompare { key: k.to_vec(), op: CompareKind::Equal, target: TxnTarget::ModRevision(r) };
    let t = |logical| Ts::compose(10, logical).0;
    let mut rig = Rig::open(Files::new());
    rig.apply(vec![
        write_entry(1, 10, 1, 1, WriteOp::Txn(TxnSpec { success: vec![putv(b"a", b"50"), putv(b"b", b"50")], ..TxnSpec::default() })),
        write_entry(2, 10, 1, 2, WriteOp::Txn(TxnSpec { success: vec![get(b"a"), get(b"b"), get(b"c")], ..TxnSpec::default() })),
        // A transfer that saw the revisions of entry 1: commits both writes at one revision.
        write_entry(3, 10, 2, 1, WriteOp::Txn(TxnSpec {
            compares: vec![modrev(b"a", t(0)), modrev(b"b", t(0))],
            success: vec![putv(b"a", b"40"), putv(b"b", b"60")],
            failure: vec![get(b"a")],
        })),
        // The same transfer again, on stale revisions: the failure branch runs, nothing is written.
        write_entry(4, 10, 3, 1, WriteOp::Txn(TxnSpec {
            compares: vec![modrev(b"a", t(0)), modrev(b"b", t(0))],
            success: vec![putv(b"a", b"30"), putv(b"b", b"70")],
            failure: vec![get(b"a")],
        })),
        // A key written twice in one branch is refused (deterministically, on every replica).
        write_entry(5, 10, 3, 2, WriteOp::Txn(TxnSpec { success: vec![putv(b"a", b"1"), putv(b"a", b"2")], ..TxnSpec::default() })),
    ]);
    let kv = |v: &[u8], r: u64, version: u64| KeyValue { value: v.to_vec(), mod_revision: r, create_revision: t(0), version };
    assert_eq!(result_of(&rig, 1), Ok(ClientReply::Txn(TxnReply { succeeded: true, revision: t(0), results: vec![StepResult::Put, StepResult::Put] })));
    assert_eq!(
        result_of(&rig, 2),
        Ok(ClientReply::Txn(TxnReply {
            succeeded: true,
            revision: t(0),
            results: vec![StepResult::Get(Some(kv(b"50", t(0), 1))), StepResult::Get(Some(kv(b"50", t(0), 1))), StepResult::Get(None)],
        }))
    );
    assert_eq!(result_of(&rig, 3), Ok(ClientReply::Txn(TxnReply { succeeded: true, revision: t(2), results: vec![StepResult::Put, StepResult::Put] })));
    assert_eq!(
        result_of(&rig, 4),
        Ok(ClientReply::Txn(TxnReply { succeeded: false, revision: t(2), results: vec![StepResult::Get(Some(kv(b"40", t(2), 2)))] }))
    );
    assert!(matches!(result_of(&rig, 5), Err(ClientError::Invalid(_))));
    assert_eq!((rig.get(b"a"), rig.get(b"b")), (Some(b"40".to_vec()), Some(b"60".to_vec())));
    // A retry of the committed transfer gets the recorded answer and writes nothing.
    rig.applied.clear();
    rig.apply(vec![write_entry(6, 10, 2, 1, WriteOp::Txn(TxnSpec::default()))]);
    assert_eq!(result_of(&rig, 6), Ok(ClientReply::Txn(TxnReply { succeeded: true, revision: t(2), results: vec![StepResult::Put, StepResult::Put] })));
}

fn conf_entry(index: u64, cc: &strata_raft::ConfChange) -> Entry {
    let data = postcard::to_allocvec(cc).expect("encodes");
    Entry { term: Term(2), index: Index(index), kind: EntryKind::ConfChange, data: Bytes::from(data) }
}

#[test]
fn conf_entries_write_the_membership_record_in_their_batch_and_recover() {
    use super::apply::ApplyConfig;
    use super::state::{ConfRecord, CONF_KEY};
    use strata_raft::{ConfChange, ConfChangeStep::*, NodeId};
    let n = NodeId;
    let config = ApplyConfig { initial_conf: ConfRecord::initial(&[n(1), n(2), n(3)], &[], 1), ..ApplyConfig::default() };
    let entries = vec![
        write_entry(1, 10, 1, 1, put(b"a", b"1")),
        conf_entry(2, &ConfChange::Single(AddLearner(n(4)))),
        write_entry(3, 10, 1, 2, put(b"a", b"2")),
        conf_entry(4, &ConfChange::Single(AddVoter(n(4)))),
        // Invalid (not joint): Raft skips it, and so does apply.
        conf_entry(5, &ConfChange::LeaveJoint),
        conf_entry(6, &ConfChange::Single(RemoveNode(n(2)))),
        write_entry(7, 10, 1, 3, put(b"a", b"3")),
    ];
    let mut a = Rig::open_with(Files::new(), config.clone());
    a.apply(entries[..4].to_vec());
    a.flush();
    a.apply(entries[4..].to_vec());
    let at: Vec<u64> = a.confs.iter().map(|(i, _)| i.0).collect();
    assert_eq!(at, [2, 4, 6]);
    let conf = a.applier.conf().clone();
    assert_eq!(conf.conf.voters, [n(1), n(3), n(4)]);
    assert_eq!((conf.index, conf.conf_ver, conf.removed.clone()), (6, 4, vec![n(2)]));
    assert_eq!(a.applied.len(), 7);
    // The record went to the store in the entry's batch: the apply state names the entry.
    let stored = a.dump();
    let find = |d: &[(Vec<u8>, Vec<u8>)], k: &[u8]| d.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(find(&stored, CONF_KEY).map(|v| ConfRecord::decode(&v)), Some(Ok(conf.clone())));
    assert_eq!(ApplyState::decode(&find(&stored, APPLY_STATE_KEY).expect("state")).map(|s| s.index), Ok(7));
    // A crash after the flush at 4: the store holds the record of entry 4, and the replay
    // of 5..7 makes the same membership again.
    let mut b = Rig::open_with(a.files.clone(), config.clone());
    assert_eq!(b.store.durable_mark(), 4);
    assert_eq!(b.applier.conf().index, 4);
    assert!(b.applier.conf().conf.voters.contains(&n(4)) && b.applier.conf().conf.learners.is_empty());
    b.apply(entries.clone());
    assert_eq!(b.applier.conf(), &conf);
    assert_eq!(b.dump(), a.dump());
    // A store without a record (a new region) starts from the initial membership.
    let c = Rig::open_with(Files::new(), config);
    assert_eq!(c.applier.conf(), &ConfRecord::initial(&[n(1), n(2), n(3)], &[], 1));
}
