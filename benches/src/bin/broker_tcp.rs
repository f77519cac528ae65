//! One end-to-end TCP broker run, the same client code against any NATS-protocol server
//! (`strata serve` or `nats-server`): `broker_tcp ADDR SUBS PAYLOAD MESSAGES`.
//!
//! SUBS subscriber connections subscribe to `bench.tcp`; one publisher connection publishes
//! MESSAGES payloads of PAYLOAD bytes (flushing with PING/PONG every 1,000 messages, so the
//! server is never more than one window behind); the run ends when every subscriber has
//! received every message. Prints one tab-separated line: subs, payload, messages, seconds,
//! published messages per second, deliveries per second, and messages lost (a subscriber that
//! went 10 s without a message stops counting).
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};
use strata::client::{Client, ClientError};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, subs, payload, messages] = &args[..] else {
        eprintln!("usage: broker_tcp ADDR SUBS PAYLOAD MESSAGES");
        std::process::exit(2);
    };
    let (subs, size, n): (usize, usize, u64) =
        (subs.parse().expect("SUBS"), payload.parse().expect("PAYLOAD"), messages.parse().expect("MESSAGES"));
    let ready = Arc::new(Barrier::new(subs + 1));
    let readers: Vec<_> = (0..subs)
        .map(|_| {
            let (addr, ready) = (addr.clone(), ready.clone());
            thread::spawn(move || {
                let mut c = Client::connect(addr.as_str()).expect("connect");
                c.subscribe("bench.tcp", None).expect("sub");
                c.flush().expect("flush");
                ready.wait();
                let mut got = 0u64;
                while got < n {
                    match c.recv_batch(Some(Duration::from_secs(10)), &mut |_| {}) {
                        Ok(k) => got += k as u64,
                        Err(ClientError::Timeout) => break,
                        Err(e) => panic!("subscriber: {e}"),
                    }
                }
                (got, Instant::now())
            })
        })
        .collect();
    let mut p = Client::connect(addr.as_str()).expect("connect");
    let body = vec![b'x'; size];
    ready.wait();
    let start = Instant::now();
    for i in 0..n {
        p.publish("bench.tcp", None, &body).expect("publish");
        if i % 1000 == 999 {
            p.flush().expect("flush");
        }
    }
    p.flush().expect("flush");
    let mut end = start;
    let mut delivered = 0;
    for r in readers {
        let (got, at) = r.join().expect("subscriber thread");
        delivered += got;
        end = end.max(at);
    }
    let secs = end.duration_since(start).as_secs_f64();
    let lost = n * subs as u64 - delivered;
    println!("{subs}\t{size}\t{n}\t{secs:.4}\t{:.0}\t{:.0}\t{lost}", n as f64 / secs, delivered as f64 / secs);
}
