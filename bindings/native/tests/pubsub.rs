//! In-process publish/subscribe on `Db`: fan-out across threads, queue groups, request/reply
//! (reply, no responders, timeout), slow-consumer bound, unsubscribe-after-N, typed errors.
use std::thread;
use std::time::{Duration, Instant};
use strata::{BrokerConfig, Db, MessagingError, Options, RecvError, RequestError, SubjectError};

fn open(options: Options) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), options).unwrap();
    (dir, db)
}

#[test]
fn threads_publish_and_every_subscriber_gets_everything_in_order() {
    let (_d, db) = open(Options::default());
    const PUBLISHERS: usize = 4;
    const EACH: usize = 2000;
    let subs: Vec<_> = (0..3).map(|_| db.subscribe("t.>").unwrap()).collect();
    let other = db.subscribe("u.*").unwrap();
    let readers: Vec<_> = subs
        .into_iter()
        .map(|mut s| {
            thread::spawn(move || {
                let mut next = [0usize; PUBLISHERS];
                for _ in 0..PUBLISHERS * EACH {
                    let m = s.recv_timeout(Duration::from_secs(20)).expect("message");
                    let p: usize = m.subject.rsplit('.').next().unwrap().parse().unwrap();
                    let n: usize = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
                    assert_eq!(n, next[p], "per-publisher order");
                    next[p] += 1;
                }
                assert_eq!(s.try_recv(), Err(RecvError::Empty));
            })
        })
        .collect();
    let writers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let db = db.clone();
            thread::spawn(move || {
                for i in 0..EACH {
                    let out = db.publish(&format!("t.pub.{p}"), i.to_string()).unwrap();
                    assert_eq!(out.matched, 3);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    for r in readers {
        r.join().unwrap();
    }
    let mut other = other;
    assert_eq!(other.try_recv().unwrap_err(), RecvError::Empty);
    assert_eq!(db.broker_stats().dropped, 0);
}

#[test]
fn queue_group_delivers_each_message_once_spread_over_members() {
    let (_d, db) = open(Options::default());
    const N: usize = 3000;
    let members: Vec<_> = (0..3).map(|_| db.queue_subscribe("jobs.*", "workers").unwrap()).collect();
    let mut plain = db.subscribe("jobs.>").unwrap();
    for i in 0..N {
        let out = db.publish("jobs.run", i.to_string()).unwrap();
        assert_eq!(out.matched, 2, "the plain subscriber and one group member");
    }
    let mut seen = vec![false; N];
    let mut per_member = Vec::new();
    for mut m in members {
        let mut count = 0;
        while let Ok(msg) = m.try_recv() {
            let i: usize = std::str::from_utf8(&msg.payload).unwrap().parse().unwrap();
            assert!(!seen[i], "message {i} delivered twice in the group");
            seen[i] = true;
            count += 1;
        }
        per_member.push(count);
    }
    assert!(seen.iter().all(|&s| s), "every message reached the group");
    for &c in &per_member {
        assert!(c >= N / 3 - N / 10, "fair share: {per_member:?}");
    }
    let mut plain_count = 0;
    while plain.try_recv().is_ok() {
        plain_count += 1;
    }
    assert_eq!(plain_count, N);
}

#[test]
fn request_reply_no_responders_and_timeout() {
    let (_d, db) = open(Options::default());
    let mut svc = db.subscribe("svc.echo").unwrap();
    let responder_db = db.clone();
    let responder = thread::spawn(move || {
        for _ in 0..3 {
            let m = svc.recv().unwrap();
            let reply = m.reply.as_deref().expect("a request has a reply subject");
            let mut answer = b"echo:".to_vec();
            answer.extend_from_slice(&m.payload);
            responder_db.publish(reply, answer).unwrap();
        }
    });
    for i in 0..3 {
        let r = db.request("svc.echo", format!("hi{i}"), Duration::from_secs(10)).unwrap();
        assert_eq!(&*r.payload, format!("echo:hi{i}").as_bytes());
    }
    responder.join().unwrap();

    // Nobody listens: answered at once, not after the timeout.
    let t = Instant::now();
    assert_eq!(db.request("svc.nobody", "x", Duration::from_secs(30)), Err(RequestError::NoResponders));
    assert!(t.elapsed() < Duration::from_secs(5));

    // Somebody listens but never answers: times out.
    let _silent = db.subscribe("svc.silent").unwrap();
    let t = Instant::now();
    let r = db.request("svc.silent", "x", Duration::from_millis(150));
    assert_eq!(r, Err(RequestError::TimedOut { timeout: Duration::from_millis(150) }));
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert!(t.elapsed() < Duration::from_secs(10));

    let bad = db.request("svc.*", "x", Duration::from_secs(1));
    assert!(matches!(bad, Err(RequestError::Rejected(MessagingError::InvalidSubject(SubjectError::WildcardInSubject { .. })))));
    // Requests leave nothing behind.
    assert_eq!(db.broker_stats().subscriptions, 1, "only the silent subscriber");
}

#[test]
fn slow_consumer_is_bounded_and_told_what_it_missed() {
    let broker = BrokerConfig { max_pending_msgs: 10, ..Options::default().broker };
    let (_d, db) = open(Options::default().broker(broker));
    let mut slow = db.subscribe("feed").unwrap();
    for i in 0..100u32 {
        db.publish("feed", i.to_le_bytes()).unwrap();
    }
    assert_eq!(db.broker_stats().dropped, 90);
    assert_eq!(slow.try_recv(), Err(RecvError::Lagged { missed: 90 }));
    for i in 0..10u32 {
        assert_eq!(&*slow.try_recv().unwrap().payload, &i.to_le_bytes());
    }
    assert_eq!(slow.try_recv(), Err(RecvError::Empty));
    // Caught up: it takes messages again, and a later episode is reported again.
    for i in 0..15u32 {
        db.publish("feed", i.to_le_bytes()).unwrap();
    }
    assert_eq!(slow.recv(), Err(RecvError::Lagged { missed: 5 }));
    assert_eq!(slow.by_ref().take(10).filter(|r| r.is_ok()).count(), 10);
}

#[test]
fn unsubscribe_after_n_then_closed() {
    let (_d, db) = open(Options::default());
    let mut sub = db.subscribe("n.*").unwrap();
    db.publish("n.a", "0").unwrap();
    sub.unsubscribe_after(3);
    for i in 1..6 {
        db.publish("n.a", i.to_string()).unwrap();
    }
    let got: Vec<_> = sub.by_ref().map(|m| String::from_utf8(m.unwrap().payload.to_vec()).unwrap()).collect();
    assert_eq!(got, ["0", "1", "2"]);
    assert_eq!(sub.recv(), Err(RecvError::Closed));
    assert_eq!(db.publish("n.a", "x").unwrap().matched, 0);
}

#[test]
fn drop_unsubscribes_and_close_ends_receivers() {
    let (_d, db) = open(Options::default());
    let sub = db.subscribe("a.b").unwrap();
    assert_eq!(db.publish("a.b", "x").unwrap().matched, 1);
    drop(sub);
    assert_eq!(db.publish("a.b", "x").unwrap().matched, 0);
    let mut sub = db.subscribe("a.b").unwrap();
    let waiter = thread::spawn(move || sub.recv());
    thread::sleep(Duration::from_millis(50));
    db.close().unwrap();
    assert_eq!(waiter.join().unwrap(), Err(RecvError::Closed));
}

#[test]
fn typed_errors() {
    let (_d, db) = open(Options::default());
    assert_eq!(
        db.publish("a..b", "x").unwrap_err(),
        MessagingError::InvalidSubject(SubjectError::EmptyToken { token: 1, offset: 2 })
    );
    assert!(matches!(db.publish("a.*", "x"), Err(MessagingError::InvalidSubject(SubjectError::WildcardInSubject { .. }))));
    assert!(matches!(db.publish_with_reply("a", "r.>", "x"), Err(MessagingError::InvalidReply(_))));
    assert!(matches!(db.subscribe("a.>.b"), Err(MessagingError::InvalidPattern(SubjectError::FullWildcardNotLast { .. }))));
    assert!(matches!(db.subscribe("a b"), Err(MessagingError::InvalidPattern(SubjectError::Whitespace { .. }))));
    assert_eq!(db.queue_subscribe("a", "").unwrap_err(), MessagingError::InvalidQueue);
    let big = vec![0u8; Options::default().broker.max_payload_bytes + 1];
    assert!(matches!(db.publish("a", &big), Err(MessagingError::PayloadTooLarge { .. })));
    let e = db.publish("a..b", "x").unwrap_err().to_string();
    assert!(e.contains("empty token 1 at byte 2"), "{e}");
    assert_eq!(db.broker_stats().subscriptions, 0);
    assert_eq!(db.broker_stats().published, 0, "refused publishes are not counted");
}
