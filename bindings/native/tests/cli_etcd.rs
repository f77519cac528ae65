//! The `strata` binary's etcd commands on a versioned folder: txn, history, watch, lease,
//! revision, compact REV; and the kind rule (a raw folder is refused and left unchanged).
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn strata(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata")).arg("--data").arg(dir).args(args).output().expect("runs")
}

fn txn(dir: &Path, input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--data")
        .arg(dir)
        .arg("txn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The number after "revision " on the last line of a txn's output.
fn revision_of(o: &Output) -> u64 {
    out(o).lines().last().and_then(|l| l.strip_prefix("revision ")).and_then(|r| r.parse().ok()).expect("a revision line")
}

#[test]
fn txn_history_compact_and_watch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Create if absent: the first succeeds, the second fails and reads.
    let create = "version cfg = 0\n\nput cfg v1\n\nget cfg\n";
    let first = txn(d, create);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(out(&first).starts_with("SUCCESS\nOK\n"), "{}", out(&first));
    let r1 = revision_of(&first);
    let second = txn(d, create);
    assert!(out(&second).starts_with("FAILURE\ncfg = v1 (mod="), "{}", out(&second));
    let r2 = revision_of(&txn(d, &format!("mod cfg = {r1}\n\nput cfg v2\n")));
    assert!(r2 > r1);
    let h = out(&strata(d, &["history", "cfg"]));
    let lines: Vec<&str> = h.lines().collect();
    assert_eq!(lines.len(), 2, "{h}");
    assert!(lines[0].starts_with(&format!("{r2} PUT cfg = v2")), "{h}");
    assert!(lines[1].starts_with(&format!("{r1} PUT cfg = v1")), "{h}");
    assert_eq!(strata(d, &["history", "nothing"]).status.code(), Some(1));

    // Watch from the first revision: replays both puts, with the previous value.
    let w = strata(d, &["watch", "cf", "--from", &r1.to_string(), "--count", "2"]);
    assert!(w.status.success());
    assert_eq!(out(&w), format!("{r1} PUT cfg = v1\n{r2} PUT cfg = v2 (prev v1)\n"));

    // Compaction: history below the mark is gone; a watch from before it fails clearly.
    let c = strata(d, &["compact", &r2.to_string()]);
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    let w = strata(d, &["watch", "cf", "--from", &r1.to_string(), "--count", "1"]);
    assert!(!w.status.success());
    assert!(String::from_utf8_lossy(&w.stderr).contains("compacted"), "{}", String::from_utf8_lossy(&w.stderr));
    assert_eq!(out(&strata(d, &["history", "cfg"])).lines().count(), 1);
    let again = strata(d, &["compact", &r1.to_string()]);
    assert!(!again.status.success());

    // A malformed transaction changes nothing.
    let bad = txn(d, "bogus cfg = 1\n\nput cfg v3\n");
    assert_eq!(bad.status.code(), Some(2));
    assert!(out(&txn(d, "\nget cfg\n")).contains("cfg = v2"));
}

#[test]
fn live_watch_sees_a_later_write_and_leases_delete_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let lease: u64 = out(&strata(d, &["lease", "grant", "60000"])).trim().parse().expect("a lease id");
    let put = txn(d, &format!("\nput a/1 x {lease}\nput a/2 y {lease}\n"));
    assert!(out(&put).starts_with("SUCCESS"), "{}", out(&put));
    let rev: u64 = out(&strata(d, &["revision"])).trim().parse().unwrap();
    assert!(strata(d, &["lease", "keepalive", &lease.to_string()]).status.success());
    let revoked = out(&strata(d, &["lease", "revoke", &lease.to_string()]));
    assert!(revoked.starts_with(&format!("lease {lease} revoked at revision")), "{revoked}");
    // Both keys were deleted at one revision.
    let w = out(&strata(d, &["watch", "a/", "--from", &(rev + 1).to_string(), "--count", "2"]));
    let lines: Vec<&str> = w.lines().collect();
    assert_eq!(lines.len(), 2, "{w}");
    let revs: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(revs[0], revs[1], "{w}");
    assert!(lines[0].contains("DELETE a/1 (prev x)") && lines[1].contains("DELETE a/2 (prev y)"), "{w}");
    assert!(!strata(d, &["lease", "revoke", &lease.to_string()]).status.success());
}

#[test]
fn etcd_commands_refuse_a_raw_folder_and_raw_commands_a_versioned_one() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    assert!(strata(&raw, &["put", "k", "v"]).status.success());
    for args in [&["history", "k"][..], &["revision"], &["compact", "5"], &["lease", "grant", "100"]] {
        let o = strata(&raw, args);
        assert!(!o.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("raw"), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(out(&strata(&raw, &["get", "k"])), "v\n", "unchanged");
    let versioned = dir.path().join("v");
    assert!(strata(&versioned, &["revision"]).status.success());
    assert!(!strata(&versioned, &["put", "k", "v"]).status.success());
    assert!(!strata(&versioned, &["compact"]).status.success());
}
