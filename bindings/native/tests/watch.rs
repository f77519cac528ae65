//! KV watch: writes published on `$KV.<bucket>.<key>`; watches by key pattern; escaping.
use std::time::Duration;
use strata::{Batch, Db, Error, KvEvent, KvOp, MessagingError, Options, RecvError};

const T: Duration = Duration::from_secs(10);

fn put(key: &[u8], value: &[u8]) -> KvEvent {
    KvEvent { key: key.to_vec(), op: KvOp::Put(value.to_vec()) }
}

#[test]
fn puts_deletes_and_batches_reach_matching_watches() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), Options::default().kv_watch("default")).unwrap();
    let mut all = db.watch_subject(">").unwrap();
    let mut users = db.watch_subject("user.*").unwrap();
    let mut raw = db.subscribe("$KV.default.>").unwrap();

    db.put("user.1", "ada").unwrap();
    db.put("config", "x").unwrap();
    db.delete("user.1").unwrap();
    let mut b = Batch::new();
    b.put(b"user.2", b"grace").put(b"user.2.email", b"g@x").delete(b"config");
    db.write(b).unwrap();

    let want_all = [
        put(b"user.1", b"ada"),
        put(b"config", b"x"),
        KvEvent { key: b"user.1".to_vec(), op: KvOp::Delete },
        put(b"user.2", b"grace"),
        put(b"user.2.email", b"g@x"),
        KvEvent { key: b"config".to_vec(), op: KvOp::Delete },
    ];
    for w in &want_all {
        assert_eq!(&all.recv_timeout(T).unwrap(), w);
    }
    for w in [&want_all[0], &want_all[2], &want_all[3]] {
        assert_eq!(&users.recv_timeout(T).unwrap(), w);
    }
    assert_eq!(users.recv_timeout(Duration::from_millis(20)), Err(RecvError::Timeout));
    let m = raw.recv_timeout(T).unwrap();
    assert_eq!((&*m.subject, &*m.payload), ("$KV.default.user.1", &b"+ada"[..]));
    assert_eq!(db.kv_watch_skipped(), 0);
}

#[test]
fn keys_with_reserved_bytes_are_escaped_and_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), Options::default().kv_watch("kv")).unwrap();
    let mut all = db.watch_subject(">").unwrap();
    let mut raw = db.subscribe("$KV.kv.>").unwrap();
    let keys: [&[u8]; 6] = [b"a b", b"x.*", b"..", b"100%", &[0xff, 0x00, b'>'], b"tab\there"];
    for k in keys {
        db.put(k, "v").unwrap();
    }
    let subjects = ["$KV.kv.a%20b", "$KV.kv.x.%2A", "$KV.kv.%.%.%", "$KV.kv.100%25", "$KV.kv.%FF%00%3E", "$KV.kv.tab%09here"];
    for (k, s) in keys.iter().zip(subjects) {
        assert_eq!(all.recv_timeout(T).unwrap(), put(k, b"v"));
        assert_eq!(&*raw.recv_timeout(T).unwrap().subject, s);
    }
    // A literal watch uses the escaped form.
    let mut one = db.watch_subject("100%25").unwrap();
    db.put("100%", "w").unwrap();
    assert_eq!(one.recv_timeout(T).unwrap(), put(b"100%", b"w"));
}

#[test]
fn watch_needs_the_option_and_a_valid_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.watch_subject(">").unwrap_err(), MessagingError::WatchDisabled);
    let mut sub = db.subscribe("$KV.>").unwrap();
    db.put("k", "v").unwrap();
    assert_eq!(sub.try_recv(), Err(RecvError::Empty), "no publishing without the option");
    drop(sub);
    db.close().unwrap();
    for bad in ["a.b", "", "*", "a b"] {
        let e = Db::open_with(dir.path(), Options::default().kv_watch(bad)).unwrap_err();
        assert!(matches!(e, Error::Messaging(MessagingError::InvalidBucket(_))), "{bad}: {e}");
    }
}
