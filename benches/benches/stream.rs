//! Stream publish throughput with durable acknowledgement: every publish counts only once the
//! stream engine emits `Event::Completed` for it, which (with `Durability::SyncEachWrite`, the
//! default) comes after the store's sync covering its write.
//!
//! Two disks under the same engine and store: the sim disk (memory; measures the engine + store
//! CPU cost of a durable publish) and real files in a temporary folder (a minimal file-backed
//! driver below: `write` + `fdatasync`, so the figure includes the sync). Two shapes: one
//! publish at a time (each waits for its acknowledgement: one sync per message) and 64
//! publishes in flight (they share a group commit). Payloads of 16 bytes and 1 KiB; the stream
//! keeps at most 100,000 messages (discard old), so memory stays bounded. The group
//! `stream_db_publish` measures the same through `strata::Db` (1 and 4 publisher threads);
//! `benches/stream_vs_jetstream.sh` runs JetStream beside it.
use criterion::{BenchmarkId, Criterion, Throughput};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use strata_engine::lsm::config::Config;
use strata_engine::lsm::io::{FileName, IoError, IoRequest, IoResult};
use strata_engine::lsm::job::JobStep;
use strata_engine::lsm::store::{Output, Store};
use strata_engine::stream::{Event, StreamConfig, Streams, StreamsConfig};
use strata_sim::disk::SimDisk;

/// What the driver needs from a disk.
trait Disk {
    fn execute(&mut self, req: IoRequest) -> IoResult;
    fn write_file(&mut self, file: FileName, data: &[u8]) -> Result<(), IoError>;
}

impl Disk for SimDisk {
    fn execute(&mut self, req: IoRequest) -> IoResult {
        SimDisk::execute(self, req)
    }
    fn write_file(&mut self, file: FileName, data: &[u8]) -> Result<(), IoError> {
        SimDisk::write_file(self, file, data)
    }
}

/// Real files in one folder, with open handles kept for appends and syncs.
struct FileDisk {
    dir: PathBuf,
    open: HashMap<FileName, File>,
}

fn io_err(e: std::io::Error) -> IoError {
    IoError::Other(e.to_string())
}

impl FileDisk {
    fn handle(&mut self, file: FileName) -> std::io::Result<&mut File> {
        if !self.open.contains_key(&file) {
            let f = OpenOptions::new().create(true).read(true).append(true).open(self.dir.join(file.to_string()))?;
            self.open.insert(file, f);
        }
        Ok(self.open.get_mut(&file).expect("just opened"))
    }
}

impl Disk for FileDisk {
    fn execute(&mut self, req: IoRequest) -> IoResult {
        let r: std::io::Result<IoResult> = (|| match req {
            IoRequest::List => {
                let mut names: Vec<FileName> = fs::read_dir(&self.dir)?
                    .filter_map(|e| e.ok()?.file_name().to_str().and_then(FileName::parse))
                    .collect();
                names.sort();
                Ok(IoResult::Listed(names))
            }
            IoRequest::Read { file, offset, len } => {
                let f = self.handle(file)?;
                let mut buf = vec![0; len as usize];
                let n = f.read_at(&mut buf, offset)?;
                buf.truncate(n);
                Ok(IoResult::Data(buf))
            }
            IoRequest::ReadAll { file } => Ok(IoResult::Data(fs::read(self.dir.join(file.to_string()))?)),
            IoRequest::Append { file, data } => {
                self.handle(file)?.write_all(&data)?;
                Ok(IoResult::Done)
            }
            IoRequest::Sync { file } => {
                self.handle(file)?.sync_data()?;
                Ok(IoResult::Done)
            }
            IoRequest::Truncate { file, len } => {
                self.handle(file)?.set_len(len)?;
                Ok(IoResult::Done)
            }
            IoRequest::Delete { file } => {
                self.open.remove(&file);
                fs::remove_file(self.dir.join(file.to_string()))?;
                Ok(IoResult::Done)
            }
        })();
        r.unwrap_or_else(|e| IoResult::Failed(io_err(e)))
    }

    fn write_file(&mut self, file: FileName, data: &[u8]) -> Result<(), IoError> {
        let path = self.dir.join(file.to_string());
        let mut f = File::create(&path).map_err(io_err)?;
        f.write_all(data).map_err(io_err)?;
        f.sync_data().map_err(io_err)
    }
}

/// A store and a stream engine over a disk, run until idle after each input.
struct Driver<D: Disk> {
    store: Store,
    streams: Streams,
    disk: D,
    acked: u64,
}

impl<D: Disk> Driver<D> {
    fn open(mut disk: D) -> Self {
        let mut store = Store::open(Config::default());
        run_store(&mut store, &mut disk, &mut |_, _, _| {});
        let streams = Streams::open(StreamsConfig { max_payload_bytes: 1 << 20, ..StreamsConfig::default() }, 0, &mut store);
        let mut d = Driver { store, streams, disk, acked: 0 };
        d.run();
        let mut c = StreamConfig::new("BENCH", &["bench.>"]);
        c.max_msgs = 100_000;
        d.streams.create_stream(0, &mut d.store, c).expect("create");
        d.run();
        d
    }

    fn run(&mut self) {
        let streams = &mut self.streams;
        let mut pending: Vec<(strata_engine::lsm::store::ReqId, Result<_, _>)> = Vec::new();
        loop {
            run_store(&mut self.store, &mut self.disk, &mut |_, id, r| pending.push((id, r)));
            if pending.is_empty() {
                break;
            }
            for (id, r) in pending.drain(..) {
                streams.handle_store_reply(0, &mut self.store, id, &r);
            }
        }
        while let Some(e) = streams.poll() {
            if let Event::Completed { result, .. } = e {
                result.expect("durable write");
                self.acked += 1;
            }
        }
    }

    /// Publishes `n` messages at once and waits until all are acknowledged.
    fn publish(&mut self, n: usize, payload: &[u8]) {
        let target = self.acked + n as u64;
        for _ in 0..n {
            self.streams.publish(0, &mut self.store, "bench.x", None, payload).expect("publish");
        }
        while self.acked < target {
            self.run();
        }
    }
}

type ReplyFn<'a> = dyn FnMut(&mut Store, strata_engine::lsm::store::ReqId, Result<strata_engine::lsm::store::Reply, strata_engine::lsm::error::Error>) + 'a;

fn run_store<D: Disk>(store: &mut Store, disk: &mut D, on_reply: &mut ReplyFn<'_>) {
    while let Some(out) = store.poll() {
        match out {
            Output::Io { id, req } => {
                let r = disk.execute(req);
                store.handle_io(0, id, r);
            }
            Output::Job(mut job) => {
                loop {
                    match job.step() {
                        JobStep::Read { file, offset, len } => {
                            let r = disk.execute(IoRequest::Read { file, offset, len });
                            job.handle_read(match r {
                                IoResult::Data(d) => Ok(d),
                                IoResult::Failed(e) => Err(e),
                                _ => Ok(Vec::new()),
                            });
                        }
                        JobStep::WriteFile { file, data } => {
                            let r = disk.write_file(file, &data);
                            job.handle_write(r);
                        }
                        JobStep::Done => break,
                    }
                }
                store.handle_job(0, job);
            }
            Output::Reply { id, result } => on_reply(store, id, result),
            Output::Opened(r) => r.expect("store opens"),
        }
    }
}

fn bench_disk<D: Disk>(c: &mut Criterion, name: &str, make: &dyn Fn() -> D, sample_ms: u64) {
    let mut g = c.benchmark_group(format!("stream_publish/{name}"));
    g.measurement_time(Duration::from_millis(sample_ms)).warm_up_time(Duration::from_millis(300)).sample_size(10);
    for (label, size) in [("16B", 16usize), ("1KiB", 1024)] {
        let payload = vec![b'x'; size];
        for inflight in [1usize, 64] {
            g.throughput(Throughput::Elements(inflight as u64));
            let mut d = Driver::open(make());
            g.bench_with_input(BenchmarkId::new(label, format!("inflight{inflight}")), &inflight, |b, &n| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        d.publish(n, &payload);
                    }
                    start.elapsed()
                })
            });
        }
    }
    g.finish();
}

/// Durable publishes through `strata::Db`'s streams (the native binding: its driver thread,
/// the broker capture, `Durability::SyncEachWrite`, real files): each publisher thread calls
/// `Streams::publish`, which returns only once the message is durable. 1 and 4 publisher
/// threads, 16-byte payloads; one iteration = one publish per thread.
fn bench_db(c: &mut Criterion) {
    let mut g = c.benchmark_group("stream_db_publish");
    g.measurement_time(Duration::from_millis(3000)).warm_up_time(Duration::from_millis(500)).sample_size(10);
    let dir = tempfile::tempdir().expect("temp dir");
    let db = strata::Db::open(dir.path()).expect("open");
    let mut config = StreamConfig::new("BENCH", &["bench.>"]);
    config.max_msgs = 100_000;
    db.streams().create(config).expect("create");
    let payload = [b'x'; 16];
    for threads in [1usize, 4] {
        g.throughput(Throughput::Elements(threads as u64));
        g.bench_function(BenchmarkId::new("16B", format!("publishers{threads}")), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for t in 0..threads {
                        let (streams, subject) = (db.streams(), format!("bench.p{t}"));
                        s.spawn(move || {
                            for _ in 0..iters {
                                streams.publish(&subject, payload).expect("durable publish");
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_db(&mut c);
    bench_disk(&mut c, "sim", &|| SimDisk::new(1), 2000);
    let root = tempfile::tempdir().expect("temp dir");
    let counter = std::cell::Cell::new(0);
    bench_disk(
        &mut c,
        "file",
        &|| {
            counter.set(counter.get() + 1);
            let dir = root.path().join(format!("s{}", counter.get()));
            fs::create_dir_all(&dir).expect("mkdir");
            FileDisk { dir, open: HashMap::new() }
        },
        3000,
    );
    c.final_summary();
}
