//! One subject-index workload in a loop, for callgrind / perf (instruction counts are stable on
//! a loaded machine where criterion's times are not).
//!
//! ```sh
//! cargo build --release -p strata-benches --example subject_prof
//! valgrind --tool=callgrind target/release/examples/subject_prof insert_fresh
//! ```
//! Workloads: `insert_fresh` (the NATS fixture into a fresh index), `insert_cycle` (10 passes
//! of the fixture into one index, as NATS's `SublistInsert` loop does), `match_hit` (cached
//! match of `synadia.nats.jetstream.nkeys`), `match_walk` (the same, no cache), `remove`.
use std::hint::black_box;
use strata_engine::subject::{CacheConfig, IndexConfig, Matches, Pattern, SubjectIndex};

const TOKS: [&str; 8] = ["synadia", "nats", "jetstream", "nkeys", "jwt", "deny", "auth", "drain"];

fn fixture() -> Vec<String> {
    fn rec(pre: &str, out: &mut Vec<String>) {
        for t in TOKS {
            let s = if pre.is_empty() { t.to_string() } else { format!("{pre}.{t}") };
            out.push(s.clone());
            if s.split('.').count() < 5 {
                rec(&s, out);
            }
        }
    }
    let mut out = Vec::new();
    rec("", &mut out);
    out
}

fn config(cache: bool) -> IndexConfig {
    IndexConfig { cache: if cache { CacheConfig::default() } else { CacheConfig::DISABLED }, ..IndexConfig::default() }
}

fn main() {
    let what = std::env::args().nth(1).unwrap_or_else(|| "insert_fresh".into());
    let subjects = fixture();
    match what.as_str() {
        "insert_fresh" => {
            for _ in 0..3 {
                let mut s = SubjectIndex::new(config(true));
                for (i, p) in subjects.iter().enumerate() {
                    s.insert(Pattern::parse(p).unwrap(), None, i as u32);
                }
                black_box(s.len());
            }
        }
        "insert_cycle" => {
            let mut s = SubjectIndex::new(config(true));
            for i in 0..subjects.len() * 10 {
                s.insert(Pattern::parse(&subjects[i % subjects.len()]).unwrap(), None, i as u32);
            }
            black_box(s.len());
        }
        "match_hit" | "match_walk" => {
            let mut s = SubjectIndex::new(config(what == "match_hit"));
            for (i, p) in subjects.iter().enumerate() {
                s.insert(Pattern::parse(p).unwrap(), None, i as u32);
            }
            let mut out = Matches::new();
            for _ in 0..1_000_000 {
                s.match_str(black_box("synadia.nats.jetstream.nkeys"), &mut out).unwrap();
                black_box(out.len());
            }
        }
        "remove" => {
            let mut s = SubjectIndex::new(config(true));
            let ids: Vec<_> =
                subjects.iter().enumerate().map(|(i, p)| s.insert(Pattern::parse(p).unwrap(), None, i as u32)).collect();
            for id in ids {
                s.remove(id);
            }
            black_box(s.len());
        }
        other => panic!("unknown workload {other}"),
    }
}
