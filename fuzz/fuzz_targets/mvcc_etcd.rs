//! Fuzzes sequences of the etcd-style commands over `MemStore`: puts (with leases), deletes,
//! compare-and-swap transactions, Percolator prewrites (left locked or committed), lease
//! grant / keep-alive / revoke / expiry, compaction, watchers with tiny buffers, and raw
//! garbage written into the `m` and `e` namespaces. Every command must answer with a result or
//! a typed error, never panic; after each applied batch the store's invariants hold (records
//! decode, etcd fields chain, leased keys have a live lease and an attachment) unless garbage
//! was injected; the watch hub never reports a change twice or out of order.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata_engine::lsm::batch::Batch;
use strata_engine::mvcc::cas::{self, Compare, CompareOp, CompareTarget, TxnOp, TxnRequest};
use strata_engine::mvcc::exec::applied;
use strata_engine::mvcc::lease::{self, Expiry, LeaseChange, LeaseQueue};
use strata_engine::mvcc::reader::MemStore;
use strata_engine::mvcc::revision;
use strata_engine::mvcc::txn::{self, Mutation, PrewriteRequest};
use strata_engine::mvcc::watch::{WatchConfig, WatchHub, WatchId, WatchRequest, WatchResponse, WatchTarget};
use strata_engine::mvcc::{LeaseId, Ts};

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn key(&mut self) -> Option<Vec<u8>> {
        let b = self.byte()?;
        Some(vec![b'a' + b % 5; 1 + usize::from(b / 64)])
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mut s = MemStore::new();
    let mut hub = WatchHub::new(WatchConfig { max_buffered_events: 2 }, Ts(1));
    let mut leases = LeaseQueue::new();
    let mut watchers: Vec<(WatchId, Ts)> = Vec::new();
    let (mut ts, mut now_ms, mut garbage) = (10u64, 0u64, false);
    while let Some(op) = input.byte() {
        ts += 1;
        let (read, commit) = (Ts(ts - 1), Ts(ts));
        let batch: Option<Batch> = match op % 12 {
            0 | 1 => {
                let Some(key) = input.key() else { break };
                let lease = (op & 0x10 != 0).then(|| leases.due(u64::MAX).first().copied()).flatten();
                let value = vec![op; usize::from(input.byte().unwrap_or(0)) * 2];
                cas::put(&s, &key, &value, lease, read, commit).ok().map(|(_, b)| b)
            }
            2 => {
                let (Some(a), Some(b), Some(v)) = (input.key(), input.key(), input.byte()) else { break };
                let target = match v % 5 {
                    0 => CompareTarget::Version(u64::from(v / 5)),
                    1 => CompareTarget::CreateRevision(Ts(u64::from(v))),
                    2 => CompareTarget::ModRevision(Ts(u64::from(v))),
                    3 => CompareTarget::Value(vec![v]),
                    _ => CompareTarget::Lease(Some(LeaseId(u64::from(v % 3)))),
                };
                let ops = [CompareOp::Equal, CompareOp::NotEqual, CompareOp::Less, CompareOp::Greater];
                let req = TxnRequest {
                    compares: vec![Compare { key: a.clone(), range_end: (v & 1 == 1).then(|| b.clone()), op: ops[usize::from(v >> 6)], target }],
                    success: vec![TxnOp::Put { key: a.clone(), value: vec![v], lease: None }, TxnOp::Range { from: a.clone(), upper: None, limit: 3 }],
                    failure: vec![TxnOp::DeleteRange { from: a, upper: Some(b.clone()) }, TxnOp::Get { key: b }],
                };
                cas::txn(&s, &req, read, commit).ok().map(|(_, b)| b)
            }
            3 => {
                let Some(key) = input.key() else { break };
                let req = PrewriteRequest::new(key.clone(), read, 50).with(Mutation::Put(key.clone(), vec![op]));
                let pw = txn::prewrite(&s, &req).ok();
                if let Some(pw) = pw {
                    s.apply(&pw);
                    if op & 0x20 == 0 {
                        txn::commit(&s, &[key], read, commit).ok()
                    } else {
                        None // left locked: later commands must answer KeyIsLocked
                    }
                } else {
                    None
                }
            }
            4 => {
                let ttl = u64::from(input.byte().unwrap_or(1));
                match lease::grant(&s, leases.next_id(), ttl, now_ms) {
                    Ok((l, b)) => {
                        s.apply(&b);
                        leases.apply(&LeaseChange::Upsert(l));
                    }
                    Err(_) => {}
                }
                None
            }
            5 => {
                let id = LeaseId(u64::from(input.byte().unwrap_or(0) % 4));
                if let Ok((l, b)) = lease::keep_alive(&s, id, now_ms) {
                    s.apply(&b);
                    leases.apply(&LeaseChange::Upsert(l));
                }
                match lease::revoke(&s, id, commit) {
                    Ok((r, b)) if op & 0x40 != 0 => {
                        leases.apply(&r.change);
                        Some(b)
                    }
                    _ => None,
                }
            }
            6 => {
                now_ms += u64::from(input.byte().unwrap_or(0));
                let due = leases.due(now_ms);
                let mut out = None;
                if let Some(&id) = due.first() {
                    if let Ok((Expiry::Expired(r), b)) = lease::expire(&s, id, now_ms, commit) {
                        leases.apply(&r.change);
                        out = Some(b);
                    }
                }
                out
            }
            7 => {
                let rev = Ts(ts - u64::from(input.byte().unwrap_or(0) % 16).min(ts - 1));
                if let Ok(b) = revision::compact(&s, rev.min(hub.resolved().prev()), Ts(ts - 1)) {
                    s.apply(&b);
                }
                if let Ok(step) = revision::compaction_step(&s, b"", 100) {
                    s.apply(&step.batch);
                }
                None
            }
            8 => {
                let key = input.key().unwrap_or_default();
                let start = Ts(u64::from(input.byte().unwrap_or(0)));
                let target = if op & 0x10 != 0 { WatchTarget::Key(key) } else { WatchTarget::Prefix(key.get(..1).unwrap_or(&[]).to_vec()) };
                if let Ok(id) = hub.watch(&s, WatchRequest { target, start_revision: Some(start) }) {
                    watchers.push((id, Ts::ZERO));
                }
                None
            }
            9 => {
                let _ = hub.sync(&s);
                for (id, last) in &mut watchers {
                    for _ in 0..(op >> 4) {
                        match hub.poll(*id) {
                            Some(WatchResponse::Events { revision, .. }) => {
                                assert!(revision > *last, "revisions out of order or repeated");
                                *last = revision;
                            }
                            Some(WatchResponse::Compacted { .. }) | None => break,
                        }
                    }
                }
                None
            }
            10 => {
                // Garbage in the raw namespaces: reads must fail with typed errors.
                let (Some(a), Some(b)) = (input.byte(), input.byte()) else { break };
                let mut g = Batch::new();
                let key = match a % 3 {
                    0 => revision::COMPACTION_MARK_KEY.to_vec(),
                    1 => lease::lease_key(LeaseId(u64::from(b % 4))),
                    _ => vec![b'e', b'k', 0, 0, 0, 0, 0, 0, 0, b % 4, b],
                };
                g.put(&key, &[a, b][..usize::from(b % 3)]);
                s.apply(&g);
                garbage = true;
                let _ = LeaseQueue::recover(&s);
                None
            }
            _ => {
                let Some(key) = input.key() else { break };
                let _ = revision::get_at(&s, &key, Ts(ts - 1));
                let _ = revision::history(&s, &key, Ts::MAX, 4);
                let _ = revision::range_at(&s, b"", None, Ts(ts - 1), 10);
                None
            }
        };
        if let Some(b) = batch {
            s.apply(&b);
            if let Ok(all) = applied::extract(&s, &b) {
                for a in all {
                    let _ = hub.handle_applied(&a);
                }
            }
        }
        let _ = hub.handle_resolved(&s, Ts(ts + 1));
        if !garbage {
            s.check_invariants();
            lease::check_invariants(&s);
        }
    }
});
