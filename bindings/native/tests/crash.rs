//! A real crash: `strata load --sync` is killed with SIGKILL mid-run; every write it reported
//! as acknowledged must be there after reopening.
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use strata::raw::Db;

/// Runs `strata load --sync --report-acked` from key `start`, kills it after `acks` reported
/// writes (or `limit`), and returns the acknowledged `(index, key)` pairs.
fn load_and_kill(dir: &std::path::Path, start: u64, acks: usize, extra: &[&str]) -> Vec<(u64, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--data")
        .arg(dir)
        .args(["load", "--count", "10000000", "--sync", "--report-acked", "--threads", "3"])
        .args(["--start", &start.to_string()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("strata runs");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut acked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.len() < acks && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        acked.push(parse(&line));
    }
    child.kill().expect("kill -9"); // SIGKILL on Unix: no destructor, no final sync
    // Lines already printed were acknowledged before the kill: read them to the end.
    for line in lines.map_while(Result::ok) {
        acked.push(parse(&line));
    }
    let status = child.wait().expect("reaped");
    assert!(!status.success(), "the load was killed, not finished");
    assert!(acked.len() >= acks.min(10), "the load made progress before the kill: {}", acked.len());
    acked
}

fn parse(line: &str) -> (u64, String) {
    let mut parts = line.split_whitespace();
    assert_eq!(parts.next(), Some("acked"), "{line}");
    let index = parts.next().and_then(|s| s.parse().ok()).expect("index");
    let key = parts.next().expect("key").to_string();
    (index, key)
}

fn check(dir: &std::path::Path, acked: &[(u64, String)]) {
    let db = Db::open(dir).expect("reopens after kill -9");
    let mut missing = Vec::new();
    for (index, key) in acked {
        match db.get(key).expect("reads") {
            Some(v) => assert_eq!(v.len(), 100, "value of key {index}"),
            None => missing.push(*index),
        }
    }
    assert!(missing.is_empty(), "{} acknowledged keys lost, e.g. {:?}", missing.len(), &missing[..missing.len().min(10)]);
}

#[test]
fn kill_9_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for round in 0..3u64 {
        let acked = load_and_kill(dir.path(), round * 1_000_000, 2000, &[]);
        all.extend(acked);
        check(dir.path(), &all);
    }
}

#[test]
fn kill_9_during_flushes_and_compactions() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for round in 0..3u64 {
        // 16 KiB memtables: a flush every ~120 writes, compactions soon after.
        let acked = load_and_kill(dir.path(), round * 1_000_000, 4000, &["--memtable-bytes", "16384"]);
        all.extend(acked);
        check(dir.path(), &all);
    }
    let db = Db::open(dir.path()).unwrap();
    let s = db.stats();
    assert!(s.table_bytes() > 0, "data reached SSTs: {s:?}");
}
