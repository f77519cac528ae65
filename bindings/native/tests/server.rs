//! The NATS-protocol server: real sockets, in-process server and the real `strata` binary.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;
use strata::client::{Client, ClientError};
use strata::server::Server;
use strata::{BrokerConfig, Db, Options};

const T: Option<Duration> = Some(Duration::from_secs(10));

fn start(options: Options) -> (tempfile::TempDir, Db, Server) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_with(dir.path(), options).unwrap();
    let server = Server::start(&db, "127.0.0.1:0").unwrap();
    (dir, db, server)
}

#[test]
fn pub_sub_queue_groups_unsub_and_request_over_tcp() {
    let (_d, db, server) = start(Options::default());
    let addr = server.local_addr();
    let mut sub = Client::connect(addr).unwrap();
    assert!(sub.server_info().contains("\"max_payload\":1048576"), "{}", sub.server_info());
    let all = sub.subscribe("orders.>", None).unwrap();
    let q1 = sub.subscribe("orders.*", Some("workers")).unwrap();
    let q2 = sub.subscribe("orders.*", Some("workers")).unwrap();
    let limited = sub.subscribe("orders.eu", None).unwrap();
    sub.unsubscribe(limited, Some(2)).unwrap();
    sub.flush().unwrap();

    // The Db's in-process subscribers and TCP clients share one broker.
    let mut local = db.subscribe("orders.eu").unwrap();
    let mut publisher = Client::connect(addr).unwrap();
    for i in 0..10 {
        publisher.publish("orders.eu", None, format!("m{i}").as_bytes()).unwrap();
    }
    publisher.publish("orders.us", Some("reply.here"), b"with reply").unwrap();
    publisher.flush().unwrap();
    db.publish("orders.eu", "from db").unwrap();

    let (mut n_all, mut n_queue, mut n_limited) = (0, 0, 0);
    let mut last_all = None;
    while n_all < 12 || n_queue < 12 {
        let m = sub.next_msg(T).unwrap();
        if m.sid == all {
            n_all += 1;
            last_all = Some(m.clone());
        } else if m.sid == q1 || m.sid == q2 {
            n_queue += 1;
        } else if m.sid == limited {
            n_limited += 1;
        }
        if m.reply.is_some() {
            assert_eq!((m.subject.as_str(), m.reply.as_deref(), &m.payload[..]), ("orders.us", Some("reply.here"), &b"with reply"[..]));
        }
    }
    assert_eq!(&last_all.unwrap().payload, b"from db");
    assert!(sub.next_msg(Some(Duration::from_millis(100))).is_err_and(|e| matches!(e, ClientError::Timeout)));
    assert_eq!((n_all, n_queue, n_limited), (12, 12, 2), "queue group: one member per message; UNSUB 2");
    assert_eq!(&*local.recv_timeout(Duration::from_secs(5)).unwrap().payload, b"m0");

    // Request/reply between two TCP clients, and from Db to a TCP responder.
    let mut responder = Client::connect(addr).unwrap();
    responder.subscribe("svc.double", None).unwrap();
    responder.flush().unwrap();
    let handle = thread::spawn(move || {
        for _ in 0..2 {
            let m = responder.next_msg(T).unwrap();
            let mut twice = m.payload.clone();
            twice.extend_from_slice(&m.payload);
            responder.publish(m.reply.as_deref().unwrap(), None, &twice).unwrap();
            responder.flush().unwrap();
        }
    });
    let r = publisher.request("svc.double", b"ab", Duration::from_secs(10)).unwrap();
    assert_eq!(r.payload, b"abab");
    let r = db.request("svc.double", "xy", Duration::from_secs(10)).unwrap();
    assert_eq!(&*r.payload, b"xyxy");
    handle.join().unwrap();
    assert!(matches!(publisher.request("svc.none", b"?", Duration::from_millis(100)), Err(ClientError::Timeout)));
    server.shutdown();
}

/// Sends raw bytes and returns what the server answers until it closes or goes quiet.
fn raw(addr: SocketAddr, input: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    s.write_all(input).unwrap();
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn protocol_errors_get_err_with_a_reason() {
    let broker = BrokerConfig { max_payload_bytes: 8, ..Options::default().broker };
    let (_d, _db, server) = start(Options::default().broker(broker));
    let addr = server.local_addr();
    let body = |s: &str| s.split_once("\r\n").map(|(info, rest)| {
        assert!(info.starts_with("INFO {"), "{info}");
        rest.to_owned()
    });

    // Refused operations: -ERR, connection stays open (the PING still gets its PONG).
    let out = raw(addr, b"CONNECT {\"verbose\":true}\r\nSUB a..b 1\r\nPUB a.* 1\r\nx\r\nSUB q 2\r\nPING\r\n");
    assert_eq!(
        body(&out).unwrap(),
        "+OK\r\n-ERR 'Invalid Subscription: invalid pattern: empty token 1 at byte 2'\r\n\
         -ERR 'Invalid Publish: invalid subject: wildcard token 1 at byte 2 in a literal subject'\r\n+OK\r\nPONG\r\n"
    );
    // Fatal ones: -ERR, then the server closes the connection (nothing after is processed).
    let cases: [(&[u8], &str); 5] = [
        (b"FOO bar\r\nPING\r\n", "-ERR 'Unknown Protocol Operation'\r\n"),
        (b"PUB a 9\r\n123456789\r\nPING\r\n", "-ERR 'Maximum Payload Violation (9 bytes, max 8)'\r\n"),
        (b"PUB a 2\r\nabc\r\nPING\r\n", "-ERR 'Payload Not Followed by CRLF'\r\n"),
        (b"SUB a\r\nPING\r\n", "-ERR 'Wrong Number of Arguments for SUB'\r\n"),
        (b"UNSUB x\r\n", "-ERR 'Invalid Number in UNSUB'\r\n"),
    ];
    for (input, want) in cases {
        assert_eq!(body(&raw(addr, input)).unwrap(), want, "{:?}", String::from_utf8_lossy(input));
    }
    let mut long = vec![b'A'; 5000];
    long.extend_from_slice(b"\r\n");
    assert_eq!(body(&raw(addr, &long)).unwrap(), "-ERR 'Maximum Control Line Exceeded (4096 bytes)'\r\n");
    // Byte-by-byte delivery parses the same.
    let mut s = TcpStream::connect(addr).unwrap();
    for b in b"SUB x 1\r\nPUB x 2\r\nhi\r\nPING\r\n" {
        s.write_all(&[*b]).unwrap();
    }
    let mut r = BufReader::new(s);
    let mut lines = Vec::new();
    for _ in 0..4 {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        lines.push(l);
    }
    assert_eq!(lines[1..], ["MSG x 1 2\r\n", "hi\r\n", "PONG\r\n"]);
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn strata() -> Command {
    Command::new(env!("CARGO_BIN_EXE_strata"))
}

/// The first stderr line of `child` (the command's "ready" line).
fn ready_line(child: &mut Child) -> (String, BufReader<std::process::ChildStderr>) {
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    (line, err)
}

#[test]
fn cli_serve_sub_pub_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = Kill(
        strata().arg("--data").arg(dir.path()).args(["serve", "--listen", "127.0.0.1:0"]).stderr(Stdio::piped()).spawn().unwrap(),
    );
    let (line, _keep) = ready_line(&mut serve.0);
    let addr = line.trim().rsplit(' ').nth(3).unwrap().to_owned();
    assert!(line.contains("127.0.0.1:"), "{line}");
    addr.parse::<SocketAddr>().unwrap_or_else(|e| panic!("{line}: {e}"));

    let mut sub = Kill(
        strata()
            .args(["sub", "greet.*", "--count", "2", "--server", &addr])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (line, _keep2) = ready_line(&mut sub.0);
    assert!(line.contains("listening on greet.*"), "{line}");
    for (subject, msg) in [("greet.en", "hello"), ("other", "x"), ("greet.fr", "bonjour")] {
        let out = strata().args(["pub", subject, msg, "--server", &addr]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut stdout = String::new();
    sub.0.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    assert!(sub.0.wait().unwrap().success());
    assert_eq!(stdout, "[#1] greet.en: hello\n[#2] greet.fr: bonjour\n");

    // request: answered by a client, and a timeout when nobody answers.
    let mut responder = Client::connect(addr.as_str()).unwrap();
    responder.subscribe("time.now", None).unwrap();
    responder.flush().unwrap();
    let h = thread::spawn(move || {
        let m = responder.next_msg(T).unwrap();
        responder.publish(m.reply.as_deref().unwrap(), None, b"noon").unwrap();
        responder.flush().unwrap();
    });
    let out = strata().args(["request", "time.now", "?", "--server", &addr]).output().unwrap();
    h.join().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "noon\n");
    let out = strata().args(["request", "nobody", "?", "--timeout", "100", "--server", &addr]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out"));
    let out = strata().args(["pub", "bad..subject", "x", "--server", &addr]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty token"), "{}", String::from_utf8_lossy(&out.stderr));
}
