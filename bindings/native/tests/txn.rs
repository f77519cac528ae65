//! The versioned `Db`: one-phase single-key writes, snapshot-isolation transactions with
//! retries, lock resolution of abandoned transactions, and a kill -9 in the middle of
//! concurrent transactions. Transactions commit in one phase by default; the conflict,
//! counter, bank and kill -9 tests run both that path and Percolator's two phases
//! (`TxnOptions::two_phase`).
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata::{Batch, Db, Options, TxnError, TxnOptions};

fn num(v: Option<Vec<u8>>) -> i64 {
    v.map_or(0, |v| String::from_utf8_lossy(&v).parse().expect("a number"))
}

#[test]
fn a_folder_holds_one_kind_of_data() {
    let raw_dir = tempfile::tempdir().unwrap();
    let raw = strata::raw::Db::open(raw_dir.path()).unwrap();
    raw.put("wombat", "raw bytes").unwrap();
    drop(raw);
    let err = Db::open(raw_dir.path()).unwrap_err();
    assert!(matches!(err, strata::Error::WrongKind { wanted: strata::Kind::Versioned, .. }), "{err}");
    assert!(err.to_string().contains("raw"), "{err}");
    let raw = strata::raw::Db::open(raw_dir.path()).unwrap();
    assert_eq!(raw.get("wombat").unwrap(), Some(b"raw bytes".to_vec()), "the refused open changed nothing");
    drop(raw);

    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.put("k", "v").unwrap();
    drop(db);
    let err = strata::raw::Db::open(dir.path()).unwrap_err();
    assert!(matches!(err, strata::Error::WrongKind { wanted: strata::Kind::Raw, .. }), "{err}");
    assert_eq!(Db::open(dir.path()).unwrap().get("k").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn single_key_writes_reads_and_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.put("a", "1").unwrap();
    db.put("b", "2").unwrap();
    db.put("a", "3").unwrap();
    let mut b = Batch::new();
    b.put(b"c", b"4").delete(b"b").put(b"d", &[7u8; 1000]);
    db.write(b).unwrap();
    assert_eq!(db.get("a").unwrap(), Some(b"3".to_vec()));
    assert_eq!(db.get("b").unwrap(), None);
    assert_eq!(db.get("d").unwrap(), Some(vec![7u8; 1000]));
    let keys: Vec<Vec<u8>> = db.range("a", None).unwrap().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec![b"a".to_vec(), b"c".to_vec(), b"d".to_vec()]);
    assert_eq!(db.range("b", Some(b"d")).unwrap(), vec![(b"c".to_vec(), b"4".to_vec())]);
    db.flush().unwrap();
    db.delete("a").unwrap();
    assert_eq!(db.get("a").unwrap(), None);
    assert_eq!(db.get("c").unwrap(), Some(b"4".to_vec()));
    drop(db);
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.get("c").unwrap(), Some(b"4".to_vec()));
    assert_eq!(db.get("a").unwrap(), None);
    assert!(db.put("", "x").is_err(), "empty keys are refused");
}

/// Options committing transactions in one phase (`false`) or two.
fn phases(two_phase: bool) -> Options {
    Options::default().txn(TxnOptions { two_phase, ..TxnOptions::default() })
}

#[test]
fn snapshot_reads_own_writes_and_conflicts() {
    for two_phase in [false, true] {
        snapshot_reads_own_writes_and_conflicts_in(two_phase);
    }
}

fn snapshot_reads_own_writes_and_conflicts_in(two_phase: bool) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), phases(two_phase)).unwrap();
    db.put("k", "old").unwrap();
    let mut t1 = db.begin().unwrap();
    let mut t2 = db.begin().unwrap();
    db.put("k", "newer").unwrap(); // commits after both started
    assert_eq!(t1.get("k").unwrap(), Some(b"old".to_vec()), "repeatable: the snapshot at begin");
    t1.put("k", "t1").unwrap();
    t1.put("j", "t1").unwrap();
    assert_eq!(t1.get("k").unwrap(), Some(b"t1".to_vec()), "its own write");
    assert_eq!(t1.range("a", None).unwrap().len(), 2);
    match t1.commit() {
        Err(TxnError::WriteConflict { key, conflict_commit_ts }) => {
            assert_eq!(key, b"k");
            assert!(conflict_commit_ts > t1.start_ts());
            assert_eq!(conflict_commit_ts, db.history("k").unwrap()[0].revision, "names the commit that won");
        }
        other => panic!("two_phase {two_phase}: expected a write conflict, got {other:?}"),
    }
    assert!(matches!(t1.commit(), Err(TxnError::Finished)), "a failed commit ends the transaction");
    assert_eq!(db.get("j").unwrap(), None, "nothing of the conflicting transaction is visible");
    t2.put("other", "x").unwrap();
    t2.commit().unwrap();
    assert_eq!(db.get("other").unwrap(), Some(b"x".to_vec()));
    let mut t3 = db.begin().unwrap();
    t3.put("z", "1").unwrap();
    t3.rollback().unwrap();
    assert_eq!(db.get("z").unwrap(), None);
}

#[test]
fn counters_lose_no_update_under_threads() {
    for two_phase in [false, true] {
        counters_lose_no_update_in(two_phase);
    }
}

fn counters_lose_no_update_in(two_phase: bool) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), phases(two_phase).sync_every(Duration::from_millis(2))).unwrap();
    let (threads, per) = (4, 40);
    std::thread::scope(|s| {
        for _ in 0..threads {
            let db = db.clone();
            s.spawn(move || {
                for _ in 0..per {
                    db.transaction(|tx| {
                        let n = num(tx.get("counter")?);
                        tx.put("counter", (n + 1).to_string())
                    })
                    .unwrap();
                }
            });
        }
    });
    assert_eq!(num(db.get("counter").unwrap()), threads * per);
}

#[test]
fn bank_transfers_keep_the_total() {
    for two_phase in [false, true] {
        bank_transfers_keep_the_total_in(two_phase);
    }
}

fn bank_transfers_keep_the_total_in(two_phase: bool) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), phases(two_phase).sync_every(Duration::from_millis(2)).memtable_bytes(16 << 10)).unwrap();
    let accounts = 6;
    for a in 0..accounts {
        db.put(format!("acct{a}"), "100").unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let db = db.clone();
            s.spawn(move || {
                let mut x = t + 1;
                for _ in 0..60 {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let (from, to, amount) = ((x >> 33) % accounts, (x >> 40) % accounts, (x >> 50) % 20);
                    db.transaction(|tx| {
                        let a = num(tx.get(format!("acct{from}"))?);
                        let b = num(tx.get(format!("acct{to}"))?);
                        if from != to {
                            tx.put(format!("acct{from}"), (a - amount as i64).to_string())?;
                            tx.put(format!("acct{to}"), (b + amount as i64).to_string())?;
                        }
                        Ok(())
                    })
                    .unwrap();
                }
            });
        }
        let (db, stop2) = (db.clone(), stop.clone());
        s.spawn(move || {
            // Audits: every snapshot sees the same total.
            let mut audits = 0;
            while !stop2.load(Ordering::Relaxed) && audits < 200 {
                let total: i64 = db.range("acct", Some(b"acct~")).unwrap().into_iter().map(|(_, v)| num(Some(v))).sum();
                assert_eq!(total, 100 * accounts as i64, "audit {audits}");
                audits += 1;
            }
        });
        std::thread::sleep(Duration::from_millis(10));
    });
    stop.store(true, Ordering::Relaxed);
    let total: i64 = (0..accounts).map(|a| num(db.get(format!("acct{a}")).unwrap())).sum();
    assert_eq!(total, 100 * accounts as i64);
}

#[test]
fn abandoned_transactions_are_resolved_after_their_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let ttl = Duration::from_millis(300);
    let db = Db::open_with(dir.path(), Options::default().txn(TxnOptions { lock_ttl: ttl, ..TxnOptions::default() })).unwrap();
    db.put("a", "a0").unwrap();
    db.put("b", "b0").unwrap();

    // Crashed between prewrite and commit: rolled back once the TTL has passed.
    let mut t = db.begin().unwrap();
    t.put("a", "a1").unwrap();
    t.put("b", "b1").unwrap();
    let began = Instant::now();
    t.abandon_after_prewrite().unwrap();
    assert_eq!(db.get("a").unwrap(), Some(b"a0".to_vec()), "a reader passes a live lock (pushing its commit)");
    db.put("b", "b2").unwrap(); // waits for the TTL, then rolls the abandoned transaction back
    assert!(began.elapsed() >= ttl / 2, "the writer waited for the lock's TTL");
    assert_eq!(db.get("b").unwrap(), Some(b"b2".to_vec()));
    assert_eq!(db.get("a").unwrap(), Some(b"a0".to_vec()));

    // Crashed after committing its primary: the secondaries are committed by whoever meets them.
    let mut t = db.begin().unwrap();
    t.put("p", "p1").unwrap();
    t.put("q", "q1").unwrap();
    t.abandon_after_primary_commit().unwrap();
    assert_eq!(db.get("q").unwrap(), Some(b"q1".to_vec()));
    assert_eq!(db.get("p").unwrap(), Some(b"p1".to_vec()));
}

const CHILD: &str = "STRATA_TXN_CRASH_CHILD";
/// Set: the child commits in two phases.
const CHILD_TWO_PHASE: &str = "STRATA_TXN_CRASH_CHILD_2PC";

/// Runs in a child process (see `kill_9_keeps_committed_transactions`): transfers between
/// accounts forever, printing the transfer count each time a transaction that increments it
/// has committed.
#[test]
fn txn_crash_child() {
    let Some(dir) = std::env::var_os(CHILD) else { return };
    // A short lock TTL: the locks a killed predecessor left are rolled back soon.
    let two_phase = std::env::var_os(CHILD_TWO_PHASE).is_some();
    let txn = TxnOptions { lock_ttl: Duration::from_millis(300), two_phase, ..TxnOptions::default() };
    let db = Db::open_with(&dir, Options::default().memtable_bytes(32 << 10).txn(txn)).unwrap();
    std::thread::scope(|s| {
        for t in 0..3u64 {
            let db = db.clone();
            s.spawn(move || {
                let mut x = t + 7;
                loop {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    let (from, to) = ((x >> 33) % 5, (x >> 40) % 5);
                    let n = db
                        .transaction(|tx| {
                            let a = num(tx.get(format!("acct{from}"))?);
                            let b = num(tx.get(format!("acct{to}"))?);
                            let n = num(tx.get("transfers")?) + 1;
                            if from != to {
                                tx.put(format!("acct{from}"), (a - 3).to_string())?;
                                tx.put(format!("acct{to}"), (b + 3).to_string())?;
                            }
                            tx.put("transfers", n.to_string())?;
                            Ok(n)
                        })
                        .unwrap();
                    println!("committed {n}");
                }
            });
        }
    });
}

#[test]
fn kill_9_keeps_committed_transactions() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path()).unwrap();
        let mut b = Batch::new();
        for a in 0..5 {
            b.put(format!("acct{a}").as_bytes(), b"100");
        }
        db.write(b).unwrap();
    }
    // Rounds 0 and 2 commit in one phase (a kill lands in or between one-batch commits: all
    // or nothing by the WAL), round 1 in two (a kill between the phases leaves locks).
    for round in 0..3 {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "txn_crash_child", "--nocapture", "--test-threads", "1"]).env(CHILD, dir.path());
        if round == 1 {
            cmd.env(CHILD_TWO_PHASE, "1");
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acked = 0i64;
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = 0;
        while seen < 60 + round * 40 && Instant::now() < deadline {
            let Some(Ok(line)) = lines.next() else { break };
            if let Some(n) = line.strip_prefix("committed ") {
                acked = acked.max(n.trim().parse().unwrap());
                seen += 1;
            }
        }
        child.kill().unwrap(); // SIGKILL: no destructor, no rollback, locks left behind
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("committed ") {
                acked = acked.max(n.trim().parse().unwrap());
            }
        }
        child.wait().unwrap();
        assert!(acked > 0, "round {round}: the child committed transactions");
        let db = Db::open_with(dir.path(), Options::default().txn(TxnOptions { lock_ttl: Duration::from_secs(5), ..TxnOptions::default() })).unwrap();
        // Reads resolve whatever locks the kill left (waiting out their TTL if needed).
        let n = num(db.get("transfers").unwrap());
        assert!(n >= acked, "round {round}: {acked} transfers acknowledged, {n} found");
        assert!(n <= acked + 3, "round {round}: at most the in-flight transfers beyond the acknowledged ones");
        let total: i64 = (0..5).map(|a| num(db.get(format!("acct{a}")).unwrap())).sum();
        assert_eq!(total, 500, "round {round}: no transfer half applied");
    }
}
