//! Instructions per committed write of a 3-node replicated cluster against the standalone
//! store, for `valgrind --tool=callgrind` (instruction counts are repeatable on a loaded
//! machine; wall time is not). Not a benchmark: `benches/node.rs` is.
//!
//! `node_cost <cluster|cluster1|raw|onepc|etcd> [writes = 20000] [window = 64]`: 16-byte
//! keys, 100-byte values, `window` writes in flight at a time (see `strata_benches::node`);
//! `cluster` submits each window together (`Node::submit_all`), `cluster1` one request at a
//! time (`Node::submit`); `raw`, `onepc` and `etcd` are the standalone store's kinds
//! (`StoreKind`). Prints ns per write,
//! then checks the data (outside the measured function). Per-write instructions:
//!
//! ```text
//! valgrind --tool=callgrind --dump-instr=no --toggle-collect='*node_cost::timed*' \
//!     target/release/examples/node_cost cluster 5000
//! ```
//!
//! divided by `writes` (the `--toggle-collect` total counts only the measured function).
use std::time::Instant;
use strata_benches::data;
use strata_benches::node::{InlineCluster, InlineStore, StoreKind};

#[inline(never)]
fn timed_cluster(c: &mut InlineCluster, pairs: &[(Vec<u8>, Vec<u8>)], window: usize) {
    for w in pairs.chunks(window) {
        c.put_window(w);
    }
}

#[inline(never)]
fn timed_store(s: &mut InlineStore, pairs: &[(Vec<u8>, Vec<u8>)], window: usize) {
    for w in pairs.chunks(window) {
        s.put_window(w);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map_or("cluster", String::as_str);
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let window: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(64);
    let pairs = data::pairs(data::Rng::new(7).next_u64(), n).into_iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect::<Vec<_>>();
    let per_write = |el: std::time::Duration| el.as_nanos() as f64 / n as f64;
    if what == "cluster" || what == "cluster1" {
        let mut c = InlineCluster::new(3, 4 << 20);
        c.one_by_one = what == "cluster1";
        let t = Instant::now();
        timed_cluster(&mut c, &pairs, window);
        let el = t.elapsed();
        c.verify(&pairs);
        println!("{what} of 3: {n} writes, window {window}: {:.0} ns/write (applied {:?}; checked)", per_write(el), c.applied());
    } else {
        let Some(kind) = StoreKind::parse(what) else {
            eprintln!("usage: node_cost <cluster|cluster1|raw|onepc|etcd> [writes] [window]");
            std::process::exit(2);
        };
        let mut s = InlineStore::new(kind, 4 << 20);
        let t = Instant::now();
        timed_store(&mut s, &pairs, window);
        let el = t.elapsed();
        s.verify(&pairs);
        println!("store ({what}): {n} writes, window {window}: {:.0} ns/write (checked)", per_write(el));
    }
}
