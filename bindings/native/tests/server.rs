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
    // Nobody subscribed: NATS's "no responders" status comes at once (not the timeout).
    let t = std::time::Instant::now();
    assert!(matches!(publisher.request("svc.none", b"?", Duration::from_secs(10)), Err(ClientError::NoResponders)));
    assert!(t.elapsed() < Duration::from_secs(5));
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
    let out = strata().args(["request", "nobody", "?", "--timeout", "10000", "--server", &addr]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no responders"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = strata().args(["pub", "bad..subject", "x", "--server", &addr]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty token"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn headers_and_no_responders_over_tcp() {
    let (_d, _db, server) = start(Options::default());
    let addr = server.local_addr();
    let mut sub = Client::connect(addr).unwrap();
    assert!(sub.server_info().contains("\"headers\":true"), "{}", sub.server_info());
    let sid = sub.subscribe("h.*", None).unwrap();
    sub.flush().unwrap();
    // A client that did not ask for headers gets MSG, without them.
    let mut plain = TcpStream::connect(addr).unwrap();
    plain.write_all(b"CONNECT {}\r\nSUB h.* 5\r\nPING\r\n").unwrap();
    let mut plain = BufReader::new(plain);
    let mut line = String::new();
    while line != "PONG\r\n" {
        line.clear();
        plain.read_line(&mut line).unwrap();
    }

    let mut publisher = Client::connect(addr).unwrap();
    let headers = b"NATS/1.0\r\nX-Trace: 42\r\n\r\n";
    publisher.publish_with_headers("h.1", Some("back"), headers, b"body").unwrap();
    publisher.flush().unwrap();
    let m = sub.next_msg(T).unwrap();
    assert_eq!((m.sid, m.reply.as_deref(), m.headers.as_deref(), &m.payload[..]), (sid, Some("back"), Some(&headers[..]), &b"body"[..]));
    let mut got = String::new();
    for _ in 0..2 {
        plain.read_line(&mut got).unwrap();
    }
    assert_eq!(got, "MSG h.1 5 back 4\r\nbody\r\n");

    // No responders: a raw client that asked for it gets HMSG ... NATS/1.0 503 on its inbox
    // subscription; one that did not ask gets nothing.
    let out = raw(
        addr,
        b"CONNECT {\"headers\":true,\"no_responders\":true}\r\nSUB _INBOX.me.* 9\r\nPUB nobody _INBOX.me.1 1\r\n?\r\nPING\r\n",
    );
    assert!(out.ends_with("HMSG _INBOX.me.1 9 16 16\r\nNATS/1.0 503\r\n\r\n\r\nPONG\r\n"), "{out:?}");
    let out = raw(addr, b"CONNECT {\"headers\":true}\r\nSUB _INBOX.me.* 9\r\nPUB nobody _INBOX.me.1 1\r\n?\r\nPING\r\n");
    assert!(!out.contains("HMSG") && out.ends_with("PONG\r\n"), "{out:?}");
    // Malformed header sizes are protocol errors.
    let out = raw(addr, b"HPUB a 5 3\r\nabc\r\n");
    assert!(out.ends_with("-ERR 'Header Size Over Total Size in HPUB'\r\n"), "{out:?}");
}

#[test]
fn streams_capture_tcp_publishes_and_answer_requests() {
    use strata::streams::StreamConfig;
    let (_d, db, server) = start(Options::default());
    let js = db.streams();
    let mut cfg = StreamConfig::new("ORDERS", &["orders.>"]);
    cfg.duplicate_window_ms = 60_000;
    js.create(cfg).unwrap();
    let mut c = Client::connect(server.local_addr()).unwrap();
    // A request on a captured subject: the stream answers once the message is durable.
    let ack = c.request("orders.1", b"one", Duration::from_secs(10)).unwrap();
    assert_eq!(String::from_utf8_lossy(&ack.payload), r#"{"stream":"ORDERS","seq":1}"#);
    // Nats-Msg-Id in the headers deduplicates, as JetStream's.
    let inbox = "_INBOX.test.*";
    let sid = c.subscribe(inbox, None).unwrap();
    let headers = b"NATS/1.0\r\nNats-Msg-Id: order-2\r\n\r\n";
    c.publish_with_headers("orders.2", Some("_INBOX.test.a"), headers, b"two").unwrap();
    c.publish_with_headers("orders.2", Some("_INBOX.test.b"), headers, b"two again").unwrap();
    // A plain publish is stored without an answer.
    c.publish("orders.3", None, b"three").unwrap();
    c.flush().unwrap();
    let mut acks = [c.next_msg(T).unwrap(), c.next_msg(T).unwrap()];
    acks.sort_by(|a, b| a.subject.cmp(&b.subject));
    assert!(acks.iter().all(|m| m.sid == sid));
    assert_eq!(String::from_utf8_lossy(&acks[0].payload), r#"{"stream":"ORDERS","seq":2}"#);
    assert_eq!(String::from_utf8_lossy(&acks[1].payload), r#"{"stream":"ORDERS","seq":2,"duplicate":true}"#);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while js.get("ORDERS", 3).is_err() {
        assert!(std::time::Instant::now() < deadline, "the plain publish is stored");
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(js.get("ORDERS", 2).unwrap().msg_id.as_deref(), Some("order-2"));
    assert_eq!(js.info("ORDERS").unwrap().msgs, 3);
}

#[test]
fn cli_serve_a_versioned_folder_with_its_streams() {
    let dir = tempfile::tempdir().unwrap();
    let add = strata().arg("--data").arg(dir.path()).args(["stream", "add", "LOG", "log.*"]).output().unwrap();
    assert!(add.status.success(), "{}", String::from_utf8_lossy(&add.stderr));
    let mut serve = Kill(
        strata().arg("--data").arg(dir.path()).args(["serve", "--listen", "127.0.0.1:0"]).stderr(Stdio::piped()).spawn().unwrap(),
    );
    let (first, mut err) = ready_line(&mut serve.0);
    assert!(first.contains("streams: LOG"), "{first}");
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line.trim().rsplit(' ').nth(3).unwrap().to_owned();
    let out = strata().args(["request", "log.a", "hello", "--server", &addr]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "\"{\\\"stream\\\":\\\"LOG\\\",\\\"seq\\\":1}\"\n");
    drop(serve);
    let got = strata().arg("--data").arg(dir.path()).args(["stream", "get", "LOG", "1"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&got.stdout), "[#1] log.a: hello\n");
}

/// The same client against the reference server: `nats-server` (Debian's 2.9) must be on the
/// PATH. Not run in CI: `cargo test -p strata --test server -- --ignored`.
#[test]
#[ignore = "needs nats-server on the PATH"]
fn interop_with_nats_server() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _ns = Kill(Command::new("nats-server").args(["-a", "127.0.0.1", "-p", &port.to_string()]).stderr(Stdio::null()).spawn().expect("nats-server runs"));
    let addr = format!("127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut sub = loop {
        match Client::connect(addr.as_str()) {
            Ok(c) => break c,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert!(sub.server_info().contains("\"headers\":true"), "{}", sub.server_info());
    let sid = sub.subscribe("h.*", None).unwrap();
    sub.flush().unwrap();
    let mut publisher = Client::connect(addr.as_str()).unwrap();
    let headers = b"NATS/1.0\r\nX-Trace: 42\r\n\r\n";
    publisher.publish_with_headers("h.1", None, headers, b"body").unwrap();
    publisher.flush().unwrap();
    let m = sub.next_msg(T).unwrap();
    assert_eq!((m.sid, m.headers.as_deref(), &m.payload[..]), (sid, Some(&headers[..]), &b"body"[..]));
    assert!(matches!(publisher.request("nobody", b"?", Duration::from_secs(5)), Err(ClientError::NoResponders)));
}
