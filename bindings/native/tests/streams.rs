//! Streams and durable consumers on `strata::Db`: management, durable publishes, reads,
//! purges, limits, consumers (ack policies, redelivery by the real clock, deliver policies),
//! capture of pub/sub publishes, restarts, and typed errors for bad input.
use std::time::{Duration, Instant};
use strata::streams::{AckPolicy, ConsumerConfig, DeliverPolicy, Discard, Purge, StreamConfig};
use strata::{Db, StreamsError};
use strata_engine::stream::{ConsumerError, NameError, PublishError, ReadError, StreamError};

fn open(dir: &std::path::Path) -> Db {
    Db::open(dir).expect("opens")
}

fn orders() -> StreamConfig {
    StreamConfig::new("ORDERS", &["orders.>"])
}

/// Waits until `f` holds (for effects of calls that do not wait, like a plain publish).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn create_info_list_update_delete() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let js = db.streams();
    let info = js.create(orders()).unwrap();
    assert_eq!((info.msgs, info.first_seq, info.last_seq), (0, 1, 0));
    js.create(StreamConfig::new("EVENTS", &["events.*", "audit"])).unwrap();
    assert_eq!(js.names().unwrap(), ["EVENTS", "ORDERS"]);
    assert_eq!(js.list().unwrap().len(), 2);

    let mut cfg = orders();
    cfg.max_msgs = 2;
    let info = js.update(cfg).unwrap();
    assert_eq!(info.config.max_msgs, 2);

    js.delete("EVENTS").unwrap();
    assert_eq!(js.names().unwrap(), ["ORDERS"]);
    assert!(matches!(js.info("EVENTS"), Err(StreamsError::Read(ReadError::UnknownStream(_)))));
    // The deleted stream's subjects are not captured any more.
    assert!(matches!(js.publish("audit", "x"), Err(StreamsError::Publish(PublishError::NoStream(_)))));
}

#[test]
fn bad_input_gets_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let js = db.streams();
    let e = js.create(StreamConfig::new("bad name", &["x"])).unwrap_err();
    assert!(matches!(e, StreamsError::Stream(StreamError::InvalidName(NameError::BadByte { offset: 3 }))), "{e}");
    let e = js.create(StreamConfig::new("", &["x"])).unwrap_err();
    assert!(matches!(e, StreamsError::Stream(StreamError::InvalidName(NameError::Empty))), "{e}");
    let e = js.create(StreamConfig::new("S", &[])).unwrap_err();
    assert!(matches!(e, StreamsError::Stream(StreamError::NoSubjects)), "{e}");
    let e = js.create(StreamConfig::new("S", &["a..b"])).unwrap_err();
    assert!(matches!(e, StreamsError::Stream(StreamError::InvalidSubject { .. })), "{e}");
    js.create(orders()).unwrap();
    let e = js.create(orders()).unwrap_err();
    assert!(matches!(e, StreamsError::Stream(StreamError::Exists(_))), "{e}");
    let e = js.create(StreamConfig::new("OTHER", &["orders.eu.*"])).unwrap_err();
    assert!(matches!(e, StreamsError::Stream(StreamError::Overlap { .. })), "{e}");
    assert!(e.to_string().contains("ORDERS"), "{e}");
    let e = js.update(StreamConfig::new("NOPE", &["x"])).unwrap_err();
    assert!(matches!(e, StreamsError::Stream(StreamError::UnknownStream(_))), "{e}");

    let e = js.publish("orders.*", "x").unwrap_err();
    assert!(matches!(e, StreamsError::Messaging(_)), "wildcard publish: {e}");
    let e = js.publish("nowhere", "x").unwrap_err();
    assert!(matches!(e, StreamsError::Publish(PublishError::NoStream(_))), "{e}");
    let e = js.publish_with_id("orders.1", "", "x").unwrap_err();
    assert!(matches!(e, StreamsError::Publish(PublishError::InvalidMsgId)), "{e}");
    let e = js.get("ORDERS", 1).unwrap_err();
    assert!(matches!(e, StreamsError::Read(ReadError::NotFound { seq: 1 })), "{e}");
    let e = js.last("ORDERS", "orders.1").unwrap_err();
    assert!(matches!(e, StreamsError::Read(ReadError::NoMessageForSubject(_))), "{e}");

    let e = js.add_consumer("NOPE", ConsumerConfig::new("c")).unwrap_err();
    assert!(matches!(e, StreamsError::Consumer(ConsumerError::UnknownStream(_))), "{e}");
    let e = js.add_consumer("ORDERS", ConsumerConfig::new("c.d")).unwrap_err();
    assert!(matches!(e, StreamsError::Consumer(ConsumerError::InvalidName(_))), "{e}");
    let mut cfg = ConsumerConfig::new("c");
    cfg.filter_subject = Some("a.>.b".into());
    let e = js.add_consumer("ORDERS", cfg).unwrap_err();
    assert!(matches!(e, StreamsError::Consumer(ConsumerError::InvalidFilter(_))), "{e}");
    js.add_consumer("ORDERS", ConsumerConfig::new("c")).unwrap();
    let e = js.fetch("ORDERS", "c", 0, Duration::ZERO).unwrap_err();
    assert!(matches!(e, StreamsError::Consumer(ConsumerError::InvalidConfig(_))), "{e}");
    let e = js.fetch("ORDERS", "nobody", 1, Duration::ZERO).unwrap_err();
    assert!(matches!(e, StreamsError::Consumer(ConsumerError::UnknownConsumer(_))), "{e}");
    let e = js.ack("ORDERS", "c", 99).unwrap_err();
    assert!(matches!(e, StreamsError::Consumer(ConsumerError::NotPending { seq: 99 })), "{e}");
}

#[test]
fn publish_get_last_dedup_and_purge() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let js = db.streams();
    let mut cfg = orders();
    cfg.duplicate_window_ms = 60_000;
    js.create(cfg).unwrap();
    let a = js.publish("orders.eu", "1").unwrap();
    assert_eq!((a.stream.as_str(), a.seq, a.duplicate), ("ORDERS", 1, false));
    assert_eq!(js.publish("orders.us", "2").unwrap().seq, 2);
    assert_eq!(js.publish_with_id("orders.eu", "m-3", "3").unwrap().seq, 3);
    let dup = js.publish_with_id("orders.eu", "m-3", "3 again").unwrap();
    assert_eq!((dup.seq, dup.duplicate), (3, true));
    assert_eq!(js.publish("orders.us", "4").unwrap().seq, 4);

    let m = js.get("ORDERS", 2).unwrap();
    assert_eq!((&*m.subject, &*m.payload), ("orders.us", &b"2"[..]));
    assert!(m.ts_ms > 1_600_000_000_000, "wall-clock timestamps: {}", m.ts_ms);
    assert_eq!(js.get("ORDERS", 3).unwrap().msg_id.as_deref(), Some("m-3"));
    assert_eq!(&*js.last("ORDERS", "orders.eu").unwrap().payload, b"3");
    let info = js.info("ORDERS").unwrap();
    assert_eq!((info.msgs, info.first_seq, info.last_seq, info.subjects), (4, 1, 4, 2));

    assert_eq!(js.purge("ORDERS", &Purge { subject: Some("orders.us".into()), below_seq: None }).unwrap(), 2);
    assert_eq!(js.purge("ORDERS", &Purge { subject: None, below_seq: Some(2) }).unwrap(), 1);
    let info = js.info("ORDERS").unwrap();
    assert_eq!((info.msgs, info.first_seq), (1, 3));
    assert_eq!(js.purge("ORDERS", &Purge::default()).unwrap(), 1);
    // Sequence numbers are never reused.
    assert_eq!(js.publish("orders.eu", "5").unwrap().seq, 5);
}

#[test]
fn limits_discard_old_new_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let js = db.streams();
    let mut old = StreamConfig::new("OLD", &["old"]);
    old.max_msgs = 2;
    js.create(old).unwrap();
    for i in 1..=4 {
        js.publish("old", i.to_string()).unwrap();
    }
    let info = js.info("OLD").unwrap();
    assert_eq!((info.msgs, info.first_seq, info.last_seq), (2, 3, 4));

    let mut new = StreamConfig::new("NEW", &["new"]);
    new.max_bytes = 10;
    new.discard = Discard::New;
    js.create(new).unwrap();
    js.publish("new", "12345").unwrap(); // 3 + 5 bytes
    let e = js.publish("new", "12345").unwrap_err();
    assert!(matches!(e, StreamsError::Publish(PublishError::LimitReached { limit: "max_bytes", .. })), "{e}");
    let e = js.publish("new", "12345678901").unwrap_err();
    assert!(matches!(e, StreamsError::Publish(PublishError::MessageTooLarge { .. })), "{e}");

    // Age: the background thread expires messages by the wall clock.
    let mut aged = StreamConfig::new("AGED", &["aged"]);
    aged.max_age_ms = 100;
    js.create(aged).unwrap();
    js.publish("aged", "x").unwrap();
    assert_eq!(js.info("AGED").unwrap().msgs, 1);
    eventually("the message to age out", || js.info("AGED").unwrap().msgs == 0);
}

#[test]
fn explicit_acks_redelivery_nak_term_and_max_deliver() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let js = db.streams();
    js.create(orders()).unwrap();
    for i in 1..=3 {
        js.publish("orders.x", format!("m{i}")).unwrap();
    }
    let mut cfg = ConsumerConfig::new("work");
    cfg.ack_wait_ms = 150;
    cfg.max_deliver = 2;
    js.add_consumer("ORDERS", cfg).unwrap();

    let got = js.fetch("ORDERS", "work", 10, Duration::ZERO).unwrap();
    assert_eq!(got.iter().map(|d| d.message.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(got.iter().all(|d| d.deliveries == 1));
    js.ack("ORDERS", "work", 1).unwrap();
    js.nak("ORDERS", "work", 2).unwrap();
    js.term("ORDERS", "work", 3).unwrap();
    // The nak comes back at once.
    let got = js.fetch("ORDERS", "work", 10, Duration::ZERO).unwrap();
    assert_eq!(got.iter().map(|d| (d.message.seq, d.deliveries)).collect::<Vec<_>>(), [(2, 2)]);
    // Unanswered past the ack wait, and at max_deliver: given up, never delivered again.
    std::thread::sleep(Duration::from_millis(250));
    assert!(js.fetch("ORDERS", "work", 10, Duration::from_millis(100)).unwrap().is_empty());
    eventually("the give-up to be counted", || js.max_deliveries_reached().unwrap() == 1);
    let info = js.consumer_info("ORDERS", "work").unwrap();
    assert_eq!((info.ack_pending, info.num_pending, info.ack_floor), (0, 0, 3));
    assert_eq!(js.consumer_names("ORDERS").unwrap(), ["work"]);
}

#[test]
fn redelivery_after_ack_wait_by_the_real_clock() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let js = db.streams();
    js.create(orders()).unwrap();
    js.publish("orders.x", "once").unwrap();
    let mut cfg = ConsumerConfig::new("slow");
    // Long enough that the zero-wait fetch below comes before it even on a loaded machine.
    cfg.ack_wait_ms = 1000;
    js.add_consumer("ORDERS", cfg).unwrap();
    let first = js.fetch("ORDERS", "slow", 1, Duration::ZERO).unwrap();
    assert_eq!(first.len(), 1);
    assert!(js.fetch("ORDERS", "slow", 1, Duration::ZERO).unwrap().is_empty(), "not before the ack wait");
    // A waiting fetch is filled by the redelivery.
    let t = Instant::now();
    let again = js.fetch("ORDERS", "slow", 1, Duration::from_secs(5)).unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "filled by the redelivery, not the expiry");
    assert_eq!((again[0].message.seq, again[0].deliveries), (1, 2));
    js.ack("ORDERS", "slow", 1).unwrap();
    assert!(js.fetch("ORDERS", "slow", 1, Duration::from_millis(200)).unwrap().is_empty());
}

#[test]
fn ack_policies_max_ack_pending_and_deliver_policies() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let js = db.streams();
    js.create(orders()).unwrap();
    for (i, s) in ["orders.a", "orders.b", "orders.a", "orders.b"].iter().enumerate() {
        js.publish(s, format!("{i}")).unwrap();
    }
    let consumer = |name: &str, ack: AckPolicy, deliver: DeliverPolicy| {
        let mut c = ConsumerConfig::new(name);
        c.ack_policy = ack;
        c.deliver_policy = deliver;
        c
    };
    let seqs = |name: &str| js.fetch("ORDERS", name, 10, Duration::ZERO).unwrap().iter().map(|d| d.message.seq).collect::<Vec<_>>();

    js.add_consumer("ORDERS", consumer("all", AckPolicy::All, DeliverPolicy::All)).unwrap();
    assert_eq!(seqs("all"), [1, 2, 3, 4]);
    js.ack("ORDERS", "all", 3).unwrap();
    assert_eq!(js.consumer_info("ORDERS", "all").unwrap().ack_pending, 1);

    js.add_consumer("ORDERS", consumer("none", AckPolicy::None, DeliverPolicy::Last)).unwrap();
    assert_eq!(seqs("none"), [4]);
    assert!(matches!(js.ack("ORDERS", "none", 4), Err(StreamsError::Consumer(ConsumerError::AckNone))));

    js.add_consumer("ORDERS", consumer("from3", AckPolicy::Explicit, DeliverPolicy::ByStartSequence(3))).unwrap();
    assert_eq!(seqs("from3"), [3, 4]);
    js.add_consumer("ORDERS", consumer("lps", AckPolicy::Explicit, DeliverPolicy::LastPerSubject)).unwrap();
    assert_eq!(seqs("lps"), [3, 4]);
    js.add_consumer("ORDERS", consumer("new", AckPolicy::Explicit, DeliverPolicy::New)).unwrap();
    assert!(seqs("new").is_empty());
    js.publish("orders.c", "5").unwrap();
    assert_eq!(seqs("new"), [5]);

    let mut c = consumer("capped", AckPolicy::Explicit, DeliverPolicy::All);
    c.max_ack_pending = 2;
    c.filter_subject = Some("orders.a".into());
    js.add_consumer("ORDERS", c).unwrap();
    assert_eq!(seqs("capped"), [1, 3]);
    js.delete_consumer("ORDERS", "capped").unwrap();
    let mut c = consumer("capped2", AckPolicy::Explicit, DeliverPolicy::All);
    c.max_ack_pending = 2;
    js.add_consumer("ORDERS", c).unwrap();
    assert_eq!(seqs("capped2"), [1, 2]);
    js.ack("ORDERS", "capped2", 1).unwrap();
    assert_eq!(seqs("capped2"), [3]);
}

#[test]
fn a_waiting_fetch_gets_a_later_publish() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let js = db.streams();
    js.create(orders()).unwrap();
    js.add_consumer("ORDERS", ConsumerConfig::new("w")).unwrap();
    let js2 = js.clone();
    let publisher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        js2.publish("orders.late", "hello").unwrap()
    });
    let t = Instant::now();
    let got = js.fetch("ORDERS", "w", 1, Duration::from_secs(10)).unwrap();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(&*got[0].message.payload, b"hello");
    assert_eq!(publisher.join().unwrap().seq, 1);
    // An expiring fetch returns what it has.
    let t = Instant::now();
    assert!(js.fetch("ORDERS", "w", 5, Duration::from_millis(150)).unwrap().is_empty());
    assert!(t.elapsed() >= Duration::from_millis(150));
}

#[test]
fn pub_sub_publishes_on_captured_subjects_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let js = db.streams();
    js.create(orders()).unwrap();
    let mut sub = db.subscribe("orders.*").unwrap();
    // A plain publish: stored without waiting, and still delivered to subscribers.
    db.publish("orders.1", "plain").unwrap();
    assert_eq!(&*sub.recv_timeout(Duration::from_secs(5)).unwrap().payload, b"plain");
    eventually("the plain publish to be stored", || js.get("ORDERS", 1).is_ok());
    // A durable publish also reaches subscribers.
    js.publish("orders.2", "durable").unwrap();
    assert_eq!(&*sub.recv_timeout(Duration::from_secs(5)).unwrap().payload, b"durable");
    // A request on a captured subject is answered by the stream once durable (JetStream's
    // publish acknowledgement), not with "no responders".
    let reply = db.request("orders.3", "req", Duration::from_secs(5)).unwrap();
    assert_eq!(std::str::from_utf8(&reply.payload).unwrap(), r#"{"stream":"ORDERS","seq":3}"#);
    assert_eq!(&*js.get("ORDERS", 3).unwrap().payload, b"req");
    // Not captured: no responders, as before.
    assert!(db.request("other", "x", Duration::from_secs(1)).is_err());
    // A refused capture answers with an error object.
    let mut small = StreamConfig::new("SMALL", &["small"]);
    small.max_msg_bytes = 2;
    js.create(small).unwrap();
    let reply = db.request("small", "too big", Duration::from_secs(5)).unwrap();
    let text = String::from_utf8_lossy(&reply.payload).into_owned();
    assert!(text.starts_with(r#"{"error":{"code":400"#), "{text}");
}

#[test]
fn streams_and_consumer_state_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        let js = db.streams();
        js.create(orders()).unwrap();
        for i in 1..=5 {
            js.publish("orders.x", format!("{i}")).unwrap();
        }
        js.add_consumer("ORDERS", ConsumerConfig::new("c")).unwrap();
        let got = js.fetch("ORDERS", "c", 3, Duration::ZERO).unwrap();
        for d in &got {
            js.ack("ORDERS", "c", d.message.seq).unwrap();
        }
        db.close().unwrap();
    }
    let db = open(dir.path());
    let js = db.streams();
    let info = js.info("ORDERS").unwrap();
    assert_eq!((info.msgs, info.last_seq, info.consumers), (5, 5, 1));
    let got = js.fetch("ORDERS", "c", 10, Duration::ZERO).unwrap();
    assert_eq!(got.iter().map(|d| d.message.seq).collect::<Vec<_>>(), [4, 5], "acked messages are not delivered again");
    assert_eq!(js.publish("orders.x", "6").unwrap().seq, 6);
    // Captured subjects are registered again after the reopen.
    db.publish("orders.y", "7").unwrap();
    eventually("capture after reopen", || js.get("ORDERS", 7).is_ok());
    // User data and streams coexist.
    db.put("k", "v").unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn concurrent_durable_publishers_get_distinct_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let js = db.streams();
    js.create(orders()).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let js = js.clone();
            std::thread::spawn(move || (0..25).map(|i| js.publish(&format!("orders.{t}"), format!("{t}-{i}")).unwrap().seq).collect::<Vec<_>>())
        })
        .collect();
    let mut seqs: Vec<u64> = threads.into_iter().flat_map(|h| h.join().unwrap()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
    for seq in 1..=100 {
        js.get("ORDERS", seq).unwrap();
    }
}
