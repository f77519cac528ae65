//! Unit tests of the watch hub over `MemStore`.
use super::*;
use crate::lsm::batch::Batch;
use crate::mvcc::cas::{self, TxnOp, TxnRequest};
use crate::mvcc::exec::applied;
use crate::mvcc::lease;
use crate::mvcc::reader::MemStore;
use crate::mvcc::LeaseId;
use alloc::string::String;
use alloc::vec;

fn k(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

struct World {
    s: MemStore,
    hub: WatchHub,
}

impl World {
    fn new(max: usize) -> World {
        World {
            s: MemStore::new(),
            hub: WatchHub::new(
                WatchConfig {
                    max_buffered_events: max,
                },
                Ts(1),
            ),
        }
    }

    /// Applies `b` (committed at `ts`), feeds the hub and resolves past it.
    fn commit(&mut self, b: Batch, ts: u64) {
        self.s.apply(&b);
        for a in applied::extract(&self.s, &b).unwrap() {
            self.hub.handle_applied(&a).unwrap();
        }
        self.hub.handle_resolved(&self.s, Ts(ts + 1)).unwrap();
    }

    fn put(&mut self, key: &str, v: &str, ts: u64) {
        let (_, b) = cas::put(
            &self.s,
            key.as_bytes(),
            v.as_bytes(),
            None,
            Ts(ts - 1),
            Ts(ts),
        )
        .unwrap();
        self.commit(b, ts);
    }

    fn txn(&mut self, ops: Vec<TxnOp>, ts: u64) {
        let req = TxnRequest {
            success: ops,
            ..TxnRequest::default()
        };
        let (_, b) = cas::txn(&self.s, &req, Ts(ts - 1), Ts(ts)).unwrap();
        self.commit(b, ts);
    }

    fn watch(&mut self, target: WatchTarget, start: Option<u64>) -> WatchId {
        self.hub
            .watch(
                &self.s,
                WatchRequest {
                    target,
                    start_revision: start.map(Ts),
                },
            )
            .unwrap()
    }

    fn sync(&mut self) {
        while self.hub.needs_sync() {
            self.hub.sync(&self.s).unwrap();
        }
    }

    /// Drains `id`: one line per response.
    fn drain(&mut self, id: WatchId) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(r) = self.hub.poll(id) {
            out.push(show(&r));
        }
        out
    }
}

fn show(r: &WatchResponse) -> String {
    match r {
        WatchResponse::Events { revision, events } => {
            let mut s = alloc::format!("@{revision}");
            for e in events {
                let key = String::from_utf8_lossy(&e.kv.key);
                let prev = e.prev.as_ref().map_or(String::from("-"), |p| {
                    String::from_utf8_lossy(&p.value).into()
                });
                match e.kind {
                    EventKind::Put => {
                        s += &alloc::format!(
                            " put {key}={} v{} prev={prev}",
                            String::from_utf8_lossy(&e.kv.value),
                            e.kv.version
                        )
                    }
                    EventKind::Delete => s += &alloc::format!(" del {key} prev={prev}"),
                }
            }
            s
        }
        WatchResponse::Compacted {
            requested,
            compacted,
        } => alloc::format!("compacted {requested} < {compacted}"),
    }
}

#[test]
fn live_events_carry_previous_values() {
    let mut w = World::new(100);
    let key = w.watch(WatchTarget::Key(k("a")), None);
    let pre = w.watch(WatchTarget::Prefix(k("a")), None);
    w.put("a", "1", 10);
    w.put("ab", "x", 11);
    w.put("a", "2", 12);
    w.txn(
        vec![
            TxnOp::Delete { key: k("a") },
            TxnOp::Put {
                key: k("b"),
                value: k("y"),
                lease: None,
            },
        ],
        13,
    );
    assert_eq!(
        w.drain(key),
        vec![
            "@10 put a=1 v1 prev=-",
            "@12 put a=2 v2 prev=1",
            "@13 del a prev=2"
        ]
    );
    assert_eq!(
        w.drain(pre),
        vec![
            "@10 put a=1 v1 prev=-",
            "@11 put ab=x v1 prev=-",
            "@12 put a=2 v2 prev=1",
            "@13 del a prev=2"
        ]
    );
}

#[test]
fn a_watch_from_the_past_replays_history_then_goes_live_without_duplicates() {
    let mut w = World::new(100);
    w.put("a", "1", 10);
    w.put("b", "1", 11);
    w.txn(
        vec![
            TxnOp::Put {
                key: k("a"),
                value: k("2"),
                lease: None,
            },
            TxnOp::Put {
                key: k("b"),
                value: k("2"),
                lease: None,
            },
        ],
        12,
    );
    let id = w.watch(WatchTarget::Range(k("a"), None), Some(11));
    assert!(w.hub.needs_sync());
    w.sync();
    w.put("a", "3", 20);
    assert_eq!(
        w.drain(id),
        vec![
            "@11 put b=1 v1 prev=-",
            "@12 put a=2 v2 prev=1 put b=2 v2 prev=1",
            "@20 put a=3 v3 prev=2"
        ]
    );
}

#[test]
fn a_slow_watcher_is_moved_to_catch_up_and_misses_nothing() {
    let mut w = World::new(2);
    let id = w.watch(WatchTarget::Prefix(k("")), None);
    for i in 0..6 {
        w.put("a", &alloc::format!("{i}"), 10 + i);
    }
    // Two fit; the third revision found the buffer full.
    assert_eq!(w.drain(id).len(), 2);
    assert!(w.hub.needs_sync());
    w.sync();
    assert_eq!(
        w.drain(id),
        vec!["@12 put a=2 v3 prev=1", "@13 put a=3 v4 prev=2"]
    );
    w.sync();
    w.put("a", "6", 16);
    assert_eq!(
        w.drain(id),
        vec!["@14 put a=4 v5 prev=3", "@15 put a=5 v6 prev=4"]
    );
    w.sync();
    assert!(!w.hub.needs_sync());
    assert_eq!(w.drain(id), vec!["@16 put a=6 v7 prev=5"]);
    w.put("a", "7", 17);
    assert_eq!(w.drain(id), vec!["@17 put a=7 v8 prev=6"]);
}

#[test]
fn a_revision_bigger_than_the_buffer_is_delivered_whole() {
    let mut w = World::new(1);
    let id = w.watch(WatchTarget::Prefix(k("")), None);
    w.txn(
        (0..3)
            .map(|i| TxnOp::Put {
                key: alloc::vec![b'a' + i],
                value: k("v"),
                lease: None,
            })
            .collect(),
        10,
    );
    assert_eq!(
        w.drain(id),
        vec!["@10 put a=v v1 prev=- put b=v v1 prev=- put c=v v1 prev=-"]
    );
}

#[test]
fn compaction_ends_a_lagging_watcher_and_refuses_old_starts() {
    let mut w = World::new(1);
    let id = w.watch(WatchTarget::Key(k("a")), None);
    for i in 0..4 {
        w.put("a", "v", 10 + i);
    }
    assert_eq!(w.drain(id).len(), 1);
    let b = revision::compact(&w.s, Ts(12), Ts(13)).unwrap();
    w.s.apply(&b);
    w.sync();
    assert_eq!(w.drain(id), vec!["compacted 11 < 12"]);
    assert_eq!(w.hub.len(), 0, "ended and drained: gone");
    let err = w.hub.watch(
        &w.s,
        WatchRequest {
            target: WatchTarget::Key(k("a")),
            start_revision: Some(Ts(12)),
        },
    );
    assert_eq!(
        err,
        Err(EtcdError::Compacted {
            requested: Ts(12),
            compacted: Ts(12)
        })
    );
    let ok = w.watch(WatchTarget::Key(k("a")), Some(13));
    w.sync();
    assert_eq!(w.drain(ok), vec!["@13 put a=v v4 prev=v"]);
}

#[test]
fn commits_reported_out_of_order_are_delivered_in_revision_order() {
    let mut w = World::new(10);
    let id = w.watch(WatchTarget::Prefix(k("")), None);
    let (_, b1) = cas::put(&w.s, b"x", b"1", None, Ts(9), Ts(20)).unwrap();
    let (_, b2) = cas::put(&w.s, b"y", b"1", None, Ts(9), Ts(15)).unwrap();
    for b in [&b1, &b2] {
        w.s.apply(b);
        for a in applied::extract(&w.s, b).unwrap() {
            w.hub.handle_applied(&a).unwrap();
        }
    }
    w.hub.handle_resolved(&w.s, Ts(18)).unwrap();
    assert_eq!(w.drain(id), vec!["@15 put y=1 v1 prev=-"]);
    w.hub.handle_resolved(&w.s, Ts(21)).unwrap();
    assert_eq!(w.drain(id), vec!["@20 put x=1 v1 prev=-"]);
    let late = applied::Applied {
        commit_ts: Ts(19),
        changes: vec![],
    };
    assert_eq!(
        w.hub.handle_applied(&late),
        Err(WatchError::BelowResolved {
            commit_ts: Ts(19),
            resolved: Ts(21)
        })
    );
}

#[test]
fn a_lease_expiry_is_one_revision_for_the_watcher() {
    let mut w = World::new(10);
    let (l, b) = lease::grant(&w.s, LeaseId(1), 100, 0).unwrap();
    w.s.apply(&b);
    for (i, key) in ["s/a", "s/b"].iter().enumerate() {
        let (_, b) = cas::put(
            &w.s,
            key.as_bytes(),
            b"on",
            Some(l.id),
            Ts(9 + i as u64),
            Ts(10 + i as u64),
        )
        .unwrap();
        w.commit(b, 10 + i as u64);
    }
    let id = w.watch(WatchTarget::Prefix(k("s/")), None);
    let (_, b) = lease::expire(&w.s, l.id, 100, Ts(20)).unwrap();
    w.commit(b, 20);
    assert_eq!(w.drain(id), vec!["@20 del s/a prev=on del s/b prev=on"]);
}

#[test]
fn cancel_and_pending_reads() {
    let mut w = World::new(10);
    let id = w.watch(WatchTarget::Key(k("a")), None);
    w.put("a", "1", 10);
    assert!(w.hub.cancel(id));
    assert!(!w.hub.cancel(id));
    assert_eq!(w.hub.poll(id), None);
    assert_eq!(prefix_end(b"a\xff\xff"), Some(k("b")));
    assert_eq!(prefix_end(b"\xff"), None);
    assert_eq!(prefix_end(b""), None);
}
