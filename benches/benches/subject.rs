//! Subject routing side by side with NATS's sublist (`server/sublist_test.go`, NATS 2.9): the
//! same fixtures and operations, one criterion bench per Go benchmark it mirrors. Run both with
//! `benches/subject_vs_nats.sh`, which writes the `## Subjects` section of `benches/RESULTS.md`.
//!
//! Fixture (Go `subsInit`): every subject of 1 to 5 tokens over
//! {synadia, nats, jetstream, nkeys, jwt, deny, auth, drain} — 37,448 subscriptions — plus
//! `cloud.>`, `cloud.nats.component.>` and `cloud.*.*.nkeys.*`.
//!
//! Every match validates the subject (`match_str`: a cache hit is a subject byte-for-byte equal
//! to one validated before; a miss validates it); every insert parses the pattern.
use criterion::{black_box, BenchmarkId, Criterion};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::{Duration, Instant};
use strata_engine::subject::{CacheConfig, IndexConfig, Matches, Pattern, SubId, Subject, SubjectIndex};

/// Counts live heap bytes while `COUNTING` is set, to report memory per subscription.
struct Counting;
static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        }
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        }
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        }
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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
    IndexConfig {
        cache: if cache { CacheConfig::default() } else { CacheConfig::DISABLED },
        ..IndexConfig::default()
    }
}

fn bench_index(subjects: &[String], cache: bool) -> SubjectIndex<u32> {
    let mut s = SubjectIndex::new(config(cache));
    for (i, p) in subjects.iter().enumerate() {
        s.insert(Pattern::parse(p).unwrap(), None, i as u32);
    }
    for p in ["cloud.>", "cloud.nats.component.>", "cloud.*.*.nkeys.*"] {
        s.insert(Pattern::parse(p).unwrap(), None, u32::MAX);
    }
    s
}

/// Go's `SublistInsert` loop inserts `b.N` subscriptions into one sublist, cycling through the
/// fixture (at 200 ms of benchtime `b.N` is a few hundred thousand: about ten passes, so most
/// inserts add a subscription to an existing node). `insert` does the same: rounds of ten
/// passes into a fresh index, time per insert averaged over whole rounds. `insert_fresh`
/// times the first pass alone (every insert creates its node), the harder case.
const PASSES: usize = 10;

fn insert(c: &mut Criterion, subjects: &[String]) {
    let mut g = c.benchmark_group("subject");
    for (name, cache) in [("insert", true), ("insert_no_cache", false)] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let per_round = subjects.len() * PASSES;
                let rounds = (iters as usize).div_ceil(per_round).max(1);
                let mut total = Duration::ZERO;
                for _ in 0..rounds {
                    let mut s = SubjectIndex::new(config(cache));
                    let t = Instant::now();
                    for i in 0..per_round {
                        s.insert(Pattern::parse(&subjects[i % subjects.len()]).unwrap(), None, i as u32);
                    }
                    total += t.elapsed();
                    drop(black_box(s));
                }
                total.mul_f64(iters as f64 / (rounds * per_round) as f64)
            })
        });
    }
    g.bench_function("insert_fresh", |b| {
        b.iter_custom(|iters| {
            // Fresh indexes of the whole fixture, as many as needed for `iters` inserts.
            let mut total = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let n = left.min(subjects.len());
                let mut s = SubjectIndex::new(config(true));
                let t = Instant::now();
                for (i, p) in subjects[..n].iter().enumerate() {
                    s.insert(Pattern::parse(p).unwrap(), None, i as u32);
                }
                total += t.elapsed();
                drop(black_box(s));
                left -= n;
            }
            total
        })
    });
    g.finish();
}

fn matching(c: &mut Criterion, subjects: &[String]) {
    let mut g = c.benchmark_group("subject");
    let cases = [
        ("match_single_token", "synadia"),
        ("match_two_tokens", "synadia.nats"),
        ("match_three_tokens", "synadia.nats.jetstream"),
        ("match_four_tokens", "synadia.nats.jetstream.nkeys"),
        ("match_four_tokens_multi_results", "cloud.nats.component.router"),
        ("miss_on_last_token_of_five", "synadia.nats.jetstream.nkeys.ZZZZ"),
    ];
    for cache in [true, false] {
        let mut s = bench_index(subjects, cache);
        let mut out = Matches::new();
        for (name, subj) in cases {
            let id = if cache { name.to_string() } else { format!("{name}_no_cache") };
            g.bench_function(id, |b| {
                b.iter(|| {
                    s.match_str(black_box(subj), &mut out).unwrap();
                    black_box(out.len())
                })
            });
        }
    }
    g.finish();
}

fn match_literal(c: &mut Criterion) {
    let subject = Subject::parse("foo.foo.foo.foo.foo.foo.foo.foo.foo.foo").unwrap();
    let texts: Vec<String> = {
        let mut v = vec!["foo.foo.foo.foo.foo.foo.foo.foo.foo.foo".to_string()];
        for k in (0..10).rev() {
            v.push(format!("{}>", "foo.".repeat(k)));
        }
        for k in 1..=10 {
            let lits = vec!["foo"; 10 - k];
            let stars = vec!["*"; k];
            v.push(lits.into_iter().chain(stars).collect::<Vec<_>>().join("."));
        }
        v
    };
    assert_eq!(texts.len(), 21);
    let patterns: Vec<Pattern<'_>> = texts.iter().map(|t| Pattern::parse(t).unwrap()).collect();
    c.benchmark_group("subject").bench_function("match_literal_21_patterns", |b| {
        b.iter(|| {
            for p in &patterns {
                assert!(black_box(p).matches(subject));
            }
        })
    });
}

fn match_512_subs(c: &mut Criterion) {
    let mut s = SubjectIndex::new(config(false));
    for i in 0..512 {
        s.insert(Pattern::parse("foo").unwrap(), None, i);
    }
    let mut out = Matches::new();
    c.benchmark_group("subject").bench_function("match_512_subs_no_cache", |b| {
        b.iter(|| {
            s.match_into(Subject::parse(black_box("foo")).unwrap(), &mut out);
            assert_eq!(out.plain.len(), 512);
        })
    });
}

fn remove(c: &mut Criterion) {
    let mut g = c.benchmark_group("subject");
    let cases: [(&str, bool, Option<&str>); 3] = [
        ("remove_1_token_single", true, None),
        ("remove_2_tokens_single", false, None),
        ("remove_1_token_qg_single", true, Some("bar")),
    ];
    for (name, single, queue) in cases {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut s = SubjectIndex::new(config(true));
                let texts: Vec<String> =
                    (0..iters).map(|i| if single { "foo".to_string() } else { format!("foo.{i}") }).collect();
                let ids: Vec<SubId> =
                    texts.iter().enumerate().map(|(i, t)| s.insert(Pattern::parse(t).unwrap(), queue, i as u32)).collect();
                let t = Instant::now();
                for id in ids {
                    s.remove(id);
                }
                t.elapsed()
            })
        });
    }
    g.finish();
}

/// NATS's cache contention benches: 10,000 subscriptions `foo.bar.baz.N`, a warm cache, and
/// matches of subjects that are all different (`foo.bar.baz.<unique>`) while subscriptions come
/// and go. Ours is one thread: each iteration is one such match plus, every `churn_every`
/// matches, one insert and one remove.
fn distinct_subjects(c: &mut Criterion) {
    let mut g = c.benchmark_group("subject");
    let names: Vec<String> = (0..100_000u32).map(|i| format!("foo.bar.baz.{:022x}", u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15))).collect();
    for cache in [true, false] {
        let mut s = SubjectIndex::new(config(cache));
        let mut ids: Vec<SubId> = (0..10_000u32)
            .map(|i| s.insert(Pattern::parse(&format!("foo.bar.baz.{i}")).unwrap(), None, i))
            .collect();
        let mut out = Matches::new();
        for i in 0..1024 {
            s.match_into(Subject::parse(&format!("foo.bar.baz.{i}")).unwrap(), &mut out);
        }
        let suffix = if cache { "" } else { "_no_cache" };
        // Misses: every subject unique, with churn (one add and one remove per match).
        let mut k = 0usize;
        let mut next = 10_000u32;
        g.bench_function(format!("distinct_misses_with_churn{suffix}"), |b| {
            b.iter(|| {
                k = (k + 1) % names.len();
                s.match_into(Subject::parse(&names[k]).unwrap(), &mut out);
                let id = s.insert(Pattern::parse(&names[(k + 7) % names.len()]).unwrap(), None, next);
                next = next.wrapping_add(1);
                ids.push(id);
                let victim = ids.swap_remove(k % ids.len());
                s.remove(victim);
                black_box(out.len())
            })
        });
        // Hits spread over 10,000 distinct subjects (ten times the cache), no churn.
        let subjects: Vec<String> = (0..10_000u32).map(|i| format!("foo.bar.baz.{}", (i * 7919) % 10_000)).collect();
        let mut fresh = SubjectIndex::new(config(cache));
        for i in 0..10_000u32 {
            fresh.insert(Pattern::parse(&format!("foo.bar.baz.{i}")).unwrap(), None, i);
        }
        g.bench_function(BenchmarkId::new("distinct_hits_10k", if cache { "cache" } else { "no_cache" }), |b| {
            b.iter(|| {
                k = (k + 1) % subjects.len();
                fresh.match_into(Subject::parse(&subjects[k]).unwrap(), &mut out);
                black_box(out.len())
            })
        });
    }
    g.finish();
}

fn memory_report(subjects: &[String]) {
    LIVE.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let s = bench_index(subjects, false);
    COUNTING.store(false, Ordering::SeqCst);
    let bytes = LIVE.load(Ordering::SeqCst);
    eprintln!(
        "subject memory: {} subscriptions, {} nodes, {} bytes, {:.1} bytes per subscription",
        s.len(),
        s.stats().nodes,
        bytes,
        bytes as f64 / s.len() as f64
    );
    drop(s);
}

fn main() {
    let subjects = fixture();
    assert_eq!(subjects.len(), 37_448);
    memory_report(&subjects);
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200))
        .sample_size(20)
        .configure_from_args();
    insert(&mut c, &subjects);
    matching(&mut c, &subjects);
    match_literal(&mut c);
    match_512_subs(&mut c);
    remove(&mut c);
    distinct_subjects(&mut c);
    c.final_summary();
}
