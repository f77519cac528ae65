//! The transaction checker on bank histories: a serial reference passes; torn snapshots, lost
//! updates, missed own writes, aborted reads and circular reads are caught and named.
use strata_sim::rng::Rng;
use strata_sim::txncheck::{Anomaly, BankCheck, CycleKind, Txn, TxnStatus, Val};

const ACCOUNTS: u64 = 5;
const START: i64 = 100;

fn v(balance: i64, writer: u64) -> Val {
    Val { balance, writer }
}

fn txn(id: u64, client: u64, call: u64, ret: u64, reads: Vec<(u64, Val)>, writes: Vec<(u64, i64)>) -> Txn {
    Txn { id, client, call, ret: Some(ret), status: TxnStatus::Committed, reads, writes }
}

/// Serial bank: transfers between two accounts (read both, write both) and snapshot reads of
/// every account, run one after another against a map; clients interleave.
fn serial_bank(seed: u64, n: u64) -> Vec<Txn> {
    let mut rng = Rng::new(seed);
    let mut state: Vec<Val> = (0..ACCOUNTS).map(|_| v(START, 0)).collect();
    let mut out = Vec::new();
    for id in 1..=n {
        let client = 1 + rng.below(4);
        let (call, ret) = (id * 10, id * 10 + 5);
        if rng.chance(0.3) {
            let reads = (0..ACCOUNTS).map(|a| (a, state[a as usize])).collect();
            out.push(txn(id, client, call, ret, reads, vec![]));
            continue;
        }
        let from = rng.below(ACCOUNTS);
        let to = (from + 1 + rng.below(ACCOUNTS - 1)) % ACCOUNTS;
        let amount = rng.below(30) as i64;
        let reads = vec![(from, state[from as usize]), (to, state[to as usize])];
        let (fb, tb) = (state[from as usize].balance - amount, state[to as usize].balance + amount);
        state[from as usize] = v(fb, id);
        state[to as usize] = v(tb, id);
        let status = if rng.chance(0.05) { TxnStatus::Unknown } else { TxnStatus::Committed };
        let mut t = txn(id, client, call, ret, reads, vec![(from, fb), (to, tb)]);
        t.status = status;
        if status == TxnStatus::Unknown {
            t.ret = None;
        }
        out.push(t);
    }
    out
}

#[test]
fn serial_bank_histories_pass() {
    for seed in 0..20 {
        let h = serial_bank(seed, 300);
        let found = BankCheck::new(ACCOUNTS, START).check(&h);
        assert!(found.is_empty(), "seed {seed}: {}", found.iter().map(|a| a.to_string()).collect::<Vec<_>>().join("\n"));
    }
}

#[test]
fn torn_snapshot_breaks_the_total_and_is_read_skew() {
    // t1 moves 10 from 0 to 1; t2 reads 0 after and 1 before the transfer.
    let t1 = txn(1, 1, 0, 5, vec![(0, v(100, 0)), (1, v(100, 0))], vec![(0, 90), (1, 110)]);
    let mut reads = vec![(0, v(90, 1)), (1, v(100, 0))];
    reads.extend((2..ACCOUNTS).map(|a| (a, v(START, 0))));
    let t2 = txn(2, 2, 6, 8, reads, vec![]);
    let found = BankCheck::new(ACCOUNTS, START).check(&[t1, t2]);
    assert!(found.contains(&Anomaly::WrongTotal { txn: 2, total: 490, expected: 500 }), "{found:?}");
    let skew = found.iter().find(|a| matches!(a, Anomaly::Cycle { kind: CycleKind::GSingle, .. }));
    let text = skew.expect("G-single").to_string();
    assert!(text.starts_with("GSingle cycle:") && text.contains("Rw") && text.contains("Wr"), "{text}");
}

#[test]
fn lost_update_is_g2() {
    // Both read account 0 from the initial state and overwrite it.
    let t1 = txn(1, 1, 0, 5, vec![(0, v(100, 0)), (1, v(100, 0))], vec![(0, 90), (1, 110)]);
    let t2 = txn(2, 2, 0, 5, vec![(0, v(100, 0)), (2, v(100, 0))], vec![(0, 80), (2, 120)]);
    let found = BankCheck::new(ACCOUNTS, START).check(&[t1, t2]);
    assert!(found.iter().any(|a| matches!(a, Anomaly::Cycle { kind: CycleKind::G2, .. })), "{found:?}");
}

#[test]
fn missed_own_write() {
    let t1 = txn(1, 7, 0, 5, vec![(0, v(100, 0)), (1, v(100, 0))], vec![(0, 90), (1, 110)]);
    let t2 = txn(2, 7, 10, 12, vec![(0, v(100, 0))], vec![]);
    let found = BankCheck::new(ACCOUNTS, START).check(&[t1.clone(), t2]);
    assert!(
        found.contains(&Anomaly::ReadYourWrites { client: 7, wrote: 1, read: 2, account: 0, saw: 0 }),
        "{found:?}"
    );
    // Another client may read the old version (it is only stale, and concurrent-safe here).
    let t3 = txn(3, 8, 10, 12, vec![(0, v(100, 0))], vec![]);
    let found = BankCheck::new(ACCOUNTS, START).check(&[t1, t3]);
    assert!(!found.iter().any(|a| matches!(a, Anomaly::ReadYourWrites { .. })), "{found:?}");
}

#[test]
fn aborted_and_phantom_reads() {
    let mut t1 = txn(1, 1, 0, 5, vec![(0, v(100, 0))], vec![(0, 50)]);
    t1.status = TxnStatus::Aborted;
    let t2 = txn(2, 2, 6, 8, vec![(0, v(50, 1)), (1, v(7, 9))], vec![]);
    let found = BankCheck::new(ACCOUNTS, START).check(&[t1, t2]);
    assert!(found.contains(&Anomaly::AbortedRead { txn: 2, writer: 1, account: 0 }), "{found:?}");
    assert!(found.contains(&Anomaly::PhantomWriter { txn: 2, writer: 9, account: 1 }), "{found:?}");
}

#[test]
fn circular_information_flow_is_g1c() {
    // Each read what the other wrote.
    let t1 = txn(1, 1, 0, 5, vec![(0, v(100, 0)), (1, v(110, 2))], vec![(0, 90)]);
    let t2 = txn(2, 2, 0, 5, vec![(1, v(100, 0)), (0, v(90, 1))], vec![(1, 110)]);
    let found = BankCheck::new(ACCOUNTS, START).check(&[t1, t2]);
    assert!(found.iter().any(|a| matches!(a, Anomaly::Cycle { kind: CycleKind::G0 | CycleKind::G1c, .. })), "{found:?}");
}

#[test]
fn unknown_transactions_that_were_read_count_as_committed() {
    let mut t1 = txn(1, 1, 0, 5, vec![(0, v(100, 0)), (1, v(100, 0))], vec![(0, 90), (1, 110)]);
    t1.status = TxnStatus::Unknown;
    t1.ret = None;
    let mut reads: Vec<(u64, Val)> = (0..ACCOUNTS).map(|a| (a, v(START, 0))).collect();
    reads[0] = (0, v(90, 1));
    reads[1] = (1, v(110, 1));
    let t2 = txn(2, 2, 6, 8, reads, vec![]);
    assert_eq!(BankCheck::new(ACCOUNTS, START).check(&[t1, t2]), vec![]);
}
