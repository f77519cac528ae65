//! The `strata` binary: one-shot commands, the shell on a pipe, load, and errors.
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn strata(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata")).arg("--data").arg(dir).args(args).output().expect("runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn one_shot_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(strata(d, &["put", "fruit:apple", "red"]).status.success());
    assert!(strata(d, &["put", "fruit:banana", "yellow"]).status.success());
    assert!(strata(d, &["put", "veg:kale", "green"]).status.success());
    let got = strata(d, &["get", "fruit:apple"]);
    assert!(got.status.success());
    assert_eq!(stdout(&got), "red\n");
    let missing = strata(d, &["get", "fruit:cherry"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(stdout(&strata(d, &["scan"])), "fruit:apple = red\nfruit:banana = yellow\nveg:kale = green\n");
    assert_eq!(stdout(&strata(d, &["scan", "fruit:b", "veg"])), "fruit:banana = yellow\n");
    assert_eq!(stdout(&strata(d, &["scan", "--reverse", "--limit", "1"])), "veg:kale = green\n... (limit 1 reached)\n");
    assert_eq!(stdout(&strata(d, &["prefix", "fruit:", "--reverse"])), "fruit:banana = yellow\nfruit:apple = red\n");
    assert!(strata(d, &["del", "fruit:apple"]).status.success());
    assert_eq!(strata(d, &["get", "fruit:apple"]).status.code(), Some(1));
    assert!(strata(d, &["flush"]).status.success());
    let stats = strata(d, &["stats"]);
    assert!(stats.status.success());
    assert!(stdout(&stats).contains("L0"), "{}", stdout(&stats));
    assert!(stdout(&stats).contains("hit rate"), "{}", stdout(&stats));
    assert!(strata(d, &["compact"]).status.success());
    assert_eq!(stdout(&strata(d, &["get", "veg:kale"])), "green\n");
}

#[test]
fn shell_reads_commands_from_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("--data")
        .arg(dir.path())
        .arg("shell")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let script = "put a 1\nput \"b c\" \"x\\x00y\"\nget a\nget \"b c\"\nget zz\n# a comment\nscan\nprefix b\ndel a\nget a\nnope\nput onlykey\nhistory\nquit\nget a\n";
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = stdout(&out);
    let expected = [
        "OK",
        "OK",
        "1",
        "\"x\\x00y\"",
        "(nil)",
        "a = 1",
        "\"b c\" = \"x\\x00y\"",
        "\"b c\" = \"x\\x00y\"",
        "OK",
        "(nil)",
        "(error) unknown command `nope` (try `help`)",
        "(error) wrong number of arguments for `put` (try `help`)",
    ];
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..expected.len()], &expected[..], "{text}");
    assert!(lines[expected.len()].trim_start().starts_with("1  put a 1"), "{text}");
    assert!(text.trim_end().ends_with("history"), "quit stops the shell: {text}");
}

#[test]
fn load_reports_throughput_and_latency() {
    let dir = tempfile::tempdir().unwrap();
    let out = strata(dir.path(), &["load", "--count", "3000", "--value-size", "50", "--threads", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    assert!(text.contains("wrote 3000 keys"), "{text}");
    assert!(text.contains("p50") && text.contains("p99") && text.contains("max"), "{text}");
    let scan = strata(dir.path(), &["scan", "--limit", "0"]);
    assert_eq!(stdout(&scan).lines().count(), 3000);
}

#[test]
fn no_command_runs_the_default_load() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strata")).current_dir(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("wrote 100000 keys"), "{}", stdout(&out));
    assert!(dir.path().join("strata-data").join("LOCK").exists());
}

#[test]
fn a_locked_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = strata::raw::Db::open(dir.path()).unwrap();
    let out = strata(dir.path(), &["get", "k"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("locked"), "{err}");
    drop(db);
    assert_eq!(strata(dir.path(), &["get", "k"]).status.code(), Some(1)); // now just "not found"
}

#[test]
fn stream_and_consumer_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ok = |args: &[&str]| {
        let o = strata(d, args);
        assert!(o.status.success(), "strata {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        stdout(&o)
    };
    let info = ok(&["stream", "add", "ORDERS", "orders.>", "--max-msgs", "100"]);
    assert!(info.contains("stream ORDERS") && info.contains("orders.>") && info.contains("max_msgs 100"), "{info}");
    assert_eq!(ok(&["stream", "pub", "orders.eu", "first"]), "stored in ORDERS as #1\n");
    assert_eq!(ok(&["stream", "pub", "orders.us", "second", "--id", "m2"]), "stored in ORDERS as #2\n");
    assert_eq!(ok(&["stream", "pub", "orders.us", "second", "--id", "m2"]), "stored in ORDERS as #2 (duplicate)\n");
    assert_eq!(ok(&["stream", "pub", "orders.eu", "third"]), "stored in ORDERS as #3\n");
    assert_eq!(ok(&["stream", "ls"]), "ORDERS  orders.>  3 messages, 43 bytes, last seq 3\n");
    assert_eq!(ok(&["stream", "get", "ORDERS", "2"]), "[#2] orders.us (id m2): second\n");
    assert_eq!(ok(&["stream", "get", "ORDERS", "--last", "orders.eu"]), "[#3] orders.eu: third\n");
    assert_eq!(strata(d, &["stream", "get", "ORDERS", "9"]).status.code(), Some(1));
    assert!(ok(&["stream", "info", "ORDERS"]).contains("messages      3"));

    let c = ok(&["consumer", "add", "ORDERS", "work", "--ack-wait", "60000"]);
    assert!(c.contains("consumer work") && c.contains("pending 3"), "{c}");
    assert_eq!(ok(&["consumer", "next", "ORDERS", "work", "--count", "2"]), "[#1] orders.eu: first\n[#2] orders.us (id m2): second\n");
    // Delivery state is durable across processes: #1 and #2 await their acks.
    assert!(ok(&["consumer", "info", "ORDERS", "work"]).contains("ack pending 2"));
    ok(&["consumer", "ack", "ORDERS", "work", "1"]);
    ok(&["consumer", "ack", "ORDERS", "work", "2", "--nak"]);
    assert_eq!(ok(&["consumer", "next", "ORDERS", "work", "--count", "5", "--timeout", "100", "--ack"]), "[#2] orders.us (id m2): second (delivery 2)\n[#3] orders.eu: third\n");
    let none = strata(d, &["consumer", "next", "ORDERS", "work", "--timeout", "50"]);
    assert_eq!(none.status.code(), Some(1));
    assert_eq!(ok(&["consumer", "ls", "ORDERS"]), "work\n");
    let bad = strata(d, &["consumer", "ack", "ORDERS", "work", "1"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not awaiting acknowledgement"), "{}", String::from_utf8_lossy(&bad.stderr));

    assert_eq!(ok(&["stream", "purge", "ORDERS", "--subject", "orders.us"]), "purged 1 messages\n");
    assert_eq!(ok(&["stream", "purge", "ORDERS"]), "purged 2 messages\n");

    // Bad input: clear errors, no panics.
    for args in [
        &["stream", "add", "bad name", "x"][..],
        &["stream", "add", "OTHER", "orders.eu"],
        &["stream", "pub", "nowhere", "x"],
        &["stream", "info", "NOPE"],
        &["consumer", "add", "ORDERS", "c2", "--deliver", "sometimes"],
    ] {
        let o = strata(d, args);
        assert!(!o.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("error") && !err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn stream_commands_refuse_a_raw_folder() {
    let dir = tempfile::tempdir().unwrap();
    assert!(strata(dir.path(), &["put", "k", "v"]).status.success());
    let o = strata(dir.path(), &["stream", "ls"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("raw"), "{}", String::from_utf8_lossy(&o.stderr));
}
