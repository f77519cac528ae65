//! Durable publish throughput through `strata::Db`'s streams, the Strata side of
//! `benches/stream_vs_jetstream.sh` (its peer is `benches/jetstream_pub/main.go`, which does the
//! same against JetStream): a stream `BENCH` on `bench.>` keeping at most 100,000 messages
//! (discard old), then for P = 1 and 4 publisher threads, each thread publishing 16-byte
//! payloads on `bench.p<t>` for SECS seconds with `Streams::publish`, which returns only once
//! the message is durable (`Durability::SyncEachWrite`, the default: the store's `fdatasync`
//! covers the write before the acknowledgement). Prints one line per publisher count:
//! `strata publishers=P msgs=N secs=S rate=R`.
//!
//! Usage: `stream_pub DIR [SECS]` (DIR: a new or empty directory for the database).
use std::time::{Duration, Instant};
use strata_engine::stream::StreamConfig;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: stream_pub DIR [SECS]");
    let secs: f64 = args.next().map(|s| s.parse().expect("SECS: a number")).unwrap_or(5.0);
    let db = strata::Db::open(&dir).expect("open the database");
    let streams = db.streams();
    let _ = streams.delete("BENCH");
    let mut config = StreamConfig::new("BENCH", &["bench.>"]);
    config.max_msgs = 100_000;
    streams.create(config).expect("create the stream");
    let payload = [0u8; 16];
    for publishers in [1usize, 4] {
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let start = Instant::now();
        let counts: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..publishers)
                .map(|t| {
                    let (streams, subject) = (db.streams(), format!("bench.p{t}"));
                    s.spawn(move || {
                        let mut n = 0u64;
                        while Instant::now() < deadline {
                            let ack = streams.publish(&subject, payload).expect("durable publish");
                            assert!(!ack.duplicate);
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("publisher thread")).collect()
        });
        let el = start.elapsed().as_secs_f64();
        let n: u64 = counts.iter().sum();
        println!("strata publishers={publishers} msgs={n} secs={el:.2} rate={:.1}", n as f64 / el);
    }
    let info = streams.info("BENCH").expect("stream info");
    eprintln!("stream BENCH: {info:?}");
}
