//! Unit tests of the pure parts: a stream's memory and limits, and the consumer's rules.
use super::codec::{self, PendingRecord};
use super::consumer::{Consumer, Expiry};
use super::log::{Msg, StreamState};
use super::types::*;
use crate::lsm::batch::Batch;
use crate::lsm::key::ValueKind;
use alloc::vec::Vec;

fn stream(config: StreamConfig, msgs: &[(&str, u64)]) -> StreamState {
    let mut st = StreamState::new(1, config);
    let mut b = Batch::new();
    for (subject, ts) in msgs {
        let m = Msg { subject: (*subject).into(), ts_ms: 0, msg_id: None, payload: b"x"[..].into() };
        st.append(&mut b, *ts, m);
    }
    st.durable_seq = st.last_seq;
    st
}

fn take(c: &mut Consumer, st: &StreamState, now: u64, max: usize) -> Vec<u64> {
    let mut out = Vec::new();
    let mut gave_up = Vec::new();
    c.take(st, now, max, &mut out, &mut gave_up);
    out.iter().map(|d| d.message.seq).collect()
}

#[test]
fn discard_old_keeps_the_index_on_the_last_message_of_each_subject() {
    let mut c = StreamConfig::new("S", &["a.*"]);
    c.max_msgs = 2;
    let mut st = stream(c, &[("a.x", 0), ("a.y", 0)]);
    let mut b = Batch::new();
    let m = Msg { subject: "a.x".into(), ts_ms: 0, msg_id: None, payload: b"x"[..].into() };
    st.append(&mut b, 0, m);
    assert_eq!(st.enforce_limits(&mut b, 0), 1);
    let ops: Vec<(Vec<u8>, ValueKind)> = b.iter().map(|o| (o.key.to_vec(), o.kind)).collect();
    // The new message and its index entry, then the deletion of seq 1 (a.x's index stays on 3),
    // then the mark.
    assert_eq!(ops[0], (codec::msg_key(1, 3), ValueKind::Put));
    assert_eq!(ops[1], (codec::last_key(1, "a.x"), ValueKind::Put));
    assert_eq!(ops[2], (codec::msg_key(1, 1), ValueKind::Delete));
    assert_eq!(ops[3].0, codec::prefix(codec::TAG_MARK, 1));
    assert_eq!(ops.len(), 4);
    assert_eq!(st.first_seq(), 2);
    st.check_invariants();
}

#[test]
fn age_limit_and_deadline() {
    let mut c = StreamConfig::new("S", &["a"]);
    c.max_age_ms = 10;
    let mut st = stream(c, &[("a", 0), ("a", 5)]);
    assert_eq!(st.age_deadline(), Some(10));
    assert_eq!(st.enforce_limits(&mut Batch::new(), 12), 1);
    assert_eq!(st.age_deadline(), Some(15));
}

#[test]
fn last_per_subject_then_new() {
    let st = stream(StreamConfig::new("S", &[">"]), &[("a", 0), ("b", 0), ("a", 0), ("c", 0), ("b", 0)]);
    let mut cfg = ConsumerConfig::new("c");
    cfg.deliver_policy = DeliverPolicy::LastPerSubject;
    let mut c = Consumer::new(&st, cfg);
    assert_eq!(take(&mut c, &st, 0, 10), [3, 4, 5]);
}

#[test]
fn start_by_time_and_last_with_filter() {
    let st = stream(StreamConfig::new("S", &[">"]), &[("a", 1), ("b", 5), ("a", 9), ("b", 12)]);
    let mut cfg = ConsumerConfig::new("c");
    cfg.deliver_policy = DeliverPolicy::ByStartTime(6);
    assert_eq!(take(&mut Consumer::new(&st, cfg.clone()), &st, 0, 10), [3, 4]);
    cfg.deliver_policy = DeliverPolicy::Last;
    cfg.filter_subject = Some("a".into());
    assert_eq!(take(&mut Consumer::new(&st, cfg), &st, 0, 10), [3]);
}

#[test]
fn only_durable_messages_are_delivered() {
    let mut st = stream(StreamConfig::new("S", &[">"]), &[("a", 0), ("a", 0), ("a", 0)]);
    st.durable_seq = 1;
    let mut c = Consumer::new(&st, ConsumerConfig::new("c"));
    assert_eq!(take(&mut c, &st, 0, 10), [1]);
    st.durable_seq = 3;
    assert_eq!(take(&mut c, &st, 0, 10), [2, 3]);
}

#[test]
fn ack_all_acks_everything_below_and_ack_wait_redelivers() {
    let st = stream(StreamConfig::new("S", &[">"]), &[("a", 0), ("a", 0), ("a", 0)]);
    let mut cfg = ConsumerConfig::new("c");
    cfg.ack_policy = AckPolicy::All;
    cfg.ack_wait_ms = 10;
    cfg.max_deliver = 2;
    let mut c = Consumer::new(&st, cfg);
    assert_eq!(take(&mut c, &st, 0, 10), [1, 2, 3]);
    c.ack(2, AckKind::Ack).unwrap();
    assert_eq!(c.ack_floor(), 2);
    assert_eq!(c.ack(1, AckKind::Ack), Err(super::ConsumerError::NotPending { seq: 1 }));
    assert_eq!(take(&mut c, &st, 9, 10), Vec::<u64>::new());
    assert_eq!(take(&mut c, &st, 10, 10), [3]);
    assert_eq!(c.expire(3, 10), Expiry::Stale);
    assert_eq!(c.expire(3, 20), Expiry::GaveUp);
    assert!(c.pending.is_empty());
}

#[test]
fn consumer_records_round_trip() {
    let st = stream(StreamConfig::new("S", &[">"]), &[("a", 0)]);
    let mut c = Consumer::new(&st, ConsumerConfig::new("c"));
    take(&mut c, &st, 7, 1);
    let rec = c.record();
    assert_eq!(rec.pending, [PendingRecord { seq: 1, deliveries: 1, delivered_ms: 7, nak: false }]);
    let bytes = codec::encode_record(&rec);
    let back: codec::ConsumerRecord = codec::decode_record(&bytes).unwrap();
    assert_eq!(back, rec);
    for cut in 0..bytes.len() {
        let _ = codec::decode_record::<codec::ConsumerRecord>(&bytes[..cut]);
    }
}
