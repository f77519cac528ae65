//! The subscription index against a naive matcher: random patterns, subjects, queue groups,
//! inserts and removes, with the cache off, tiny (constant replacement) and default.
use proptest::prelude::*;
use strata_engine::subject::{
    CacheConfig, IndexConfig, Matches, Pattern, SubId, Subject, SubjectIndex,
};

#[derive(Clone, Debug)]
enum Op {
    Insert { pattern: String, queue: Option<u8> },
    Remove(usize),
    Match(String),
}

fn token(wild: bool) -> impl Strategy<Value = String> {
    let lits = prop_oneof![Just("a"), Just("b"), Just("c"), Just("a*"), Just("bb")];
    if wild {
        prop_oneof![3 => lits.prop_map(String::from), 1 => Just("*".to_string())].boxed()
    } else {
        lits.prop_map(String::from).boxed()
    }
}

fn pattern() -> impl Strategy<Value = String> {
    (prop::collection::vec(token(true), 1..5), any::<bool>()).prop_map(|(mut t, rest)| {
        if rest {
            *t.last_mut().unwrap() = ">".to_string();
        }
        t.join(".")
    })
}

fn subject() -> impl Strategy<Value = String> {
    prop::collection::vec(token(false), 1..6).prop_map(|t| t.join("."))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (pattern(), prop::option::of(0u8..3)).prop_map(|(pattern, queue)| Op::Insert { pattern, queue }),
        1 => any::<usize>().prop_map(Op::Remove),
        4 => subject().prop_map(Op::Match),
    ]
}

fn run(ops: &[Op], cache: CacheConfig) {
    let mut index = SubjectIndex::new(IndexConfig { seed: 7, cache, ..IndexConfig::default() });
    // The model: (value, pattern, queue, handle) of live subscriptions.
    let mut live: Vec<(u32, String, Option<u8>, SubId)> = Vec::new();
    let mut next = 0u32;
    let mut out = Matches::new();
    for op in ops {
        match op {
            Op::Insert { pattern, queue } => {
                let q = queue.map(|q| format!("q{q}"));
                let id = index.insert(Pattern::parse(pattern).unwrap(), q.as_deref(), next);
                live.push((next, pattern.clone(), *queue, id));
                next += 1;
            }
            Op::Remove(i) => {
                if live.is_empty() {
                    continue;
                }
                let (v, _, _, id) = live.swap_remove(i % live.len());
                assert_eq!(index.remove(id), Some(v));
                assert_eq!(index.remove(id), None, "a handle removes once");
            }
            Op::Match(s) => {
                // Both entry points: `match_str` asks the cache before validating.
                if s.len() % 2 == 0 {
                    index.match_into(Subject::parse(s).unwrap(), &mut out);
                } else {
                    index.match_str(s, &mut out).unwrap();
                }
                let hits: Vec<_> = live
                    .iter()
                    .filter(|(_, p, _, _)| naive_match(p, s))
                    .collect();
                let mut want_plain: Vec<u32> =
                    hits.iter().filter(|h| h.2.is_none()).map(|h| h.0).collect();
                let mut got_plain = out.plain.clone();
                want_plain.sort();
                got_plain.sort();
                assert_eq!(got_plain, want_plain, "plain subscribers of {s}");
                let mut want_queues: Vec<u8> = hits.iter().filter_map(|h| h.2).collect();
                want_queues.sort();
                want_queues.dedup();
                let mut got_queues: Vec<u8> = out
                    .queued
                    .iter()
                    .map(|v| live.iter().find(|l| l.0 == *v).expect("a live value").2.expect("queued"))
                    .collect();
                got_queues.sort();
                assert_eq!(got_queues, want_queues, "one member per queue group for {s}");
                for v in &out.queued {
                    assert!(hits.iter().any(|h| h.0 == *v), "chosen member {v} matches {s}");
                }
            }
        }
        index.check_invariants();
        assert_eq!(index.len(), live.len());
    }
}

/// The reference: token by token, no cleverness.
fn naive_match(pattern: &str, subject: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let s: Vec<&str> = subject.split('.').collect();
    for (i, t) in p.iter().enumerate() {
        match *t {
            ">" => return s.len() > i,
            "*" if i < s.len() => {}
            lit if i < s.len() && s[i] == lit => {}
            _ => return false,
        }
    }
    p.len() == s.len()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn index_matches_naive_model_without_cache(ops in prop::collection::vec(op(), 1..200)) {
        run(&ops, CacheConfig::DISABLED);
    }

    #[test]
    fn index_matches_naive_model_with_tiny_cache(ops in prop::collection::vec(op(), 1..200)) {
        run(&ops, CacheConfig { slots: 2, max_entry_values: 3 });
    }

    #[test]
    fn index_matches_naive_model_with_cache(ops in prop::collection::vec(op(), 1..200)) {
        run(&ops, CacheConfig::default());
    }

    #[test]
    fn pattern_matches_agrees_with_naive(p in pattern(), s in subject()) {
        let got = Pattern::parse(&p).unwrap().matches(Subject::parse(&s).unwrap());
        prop_assert_eq!(got, naive_match(&p, &s));
    }
}

#[test]
fn queue_groups_are_fair_and_seeded() {
    for cache in [CacheConfig::DISABLED, CacheConfig::default()] {
        let mut index = SubjectIndex::new(IndexConfig { seed: 42, cache, ..IndexConfig::default() });
        // One group spread over three patterns that all match, five members in all.
        for (i, p) in ["jobs.*", "jobs.run", "jobs.>", "jobs.run", "jobs.*"].iter().enumerate() {
            index.insert(Pattern::parse(p).unwrap(), Some("workers"), i as u32);
        }
        index.insert(Pattern::parse("jobs.run").unwrap(), None, 99);
        let mut counts = [0u32; 5];
        let mut out = Matches::new();
        for _ in 0..5000 {
            index.match_into(Subject::parse("jobs.run").unwrap(), &mut out);
            assert_eq!(out.plain, [99]);
            assert_eq!(out.queued.len(), 1);
            counts[out.queued[0] as usize] += 1;
        }
        assert_eq!(counts, [1000; 5], "round-robin gives each member exactly its share");
    }
    // The first choice depends on the seed.
    let first = |seed| {
        let mut index = SubjectIndex::new(IndexConfig { seed, ..IndexConfig::default() });
        for i in 0..16u32 {
            index.insert(Pattern::parse("a").unwrap(), Some("q"), i);
        }
        let mut out = Matches::new();
        index.match_into(Subject::parse("a").unwrap(), &mut out);
        out.queued[0]
    };
    let firsts: std::collections::BTreeSet<u32> = (0..20).map(first).collect();
    assert!(firsts.len() > 3, "seeds change the starting member: {firsts:?}");
    assert_eq!(first(5), first(5));
}

#[test]
fn cache_bypasses_distinct_subjects_and_serves_repeats() {
    let mut index = SubjectIndex::new(IndexConfig::default());
    for i in 0..100 {
        index.insert(Pattern::parse(&format!("foo.bar.{i}")).unwrap(), None, i);
    }
    let mut out = Matches::new();
    for i in 0..100_000u32 {
        index.match_into(Subject::parse(&format!("foo.bar.x{i}")).unwrap(), &mut out);
        assert!(out.is_empty());
    }
    let s = index.stats();
    assert_eq!(s.cache_hits, 0);
    assert!(s.cache_bypassed > 80_000, "{s:?}");
    for _ in 0..10_000 {
        index.match_into(Subject::parse("foo.bar.7").unwrap(), &mut out);
        assert_eq!(out.plain, [7]);
    }
    let s2 = index.stats();
    assert!(s2.cache_hits - s.cache_hits > 8_000, "{s2:?}");
}

#[test]
fn removal_prunes_to_the_root() {
    let mut index = SubjectIndex::new(IndexConfig::default());
    let ids: Vec<_> = ["a.b.c", "a.*.c", "a.>", ">", "a.b.c"]
        .iter()
        .enumerate()
        .map(|(i, p)| index.insert(Pattern::parse(p).unwrap(), if i % 2 == 0 { None } else { Some("g") }, i))
        .collect();
    assert!(index.stats().nodes > 1);
    for id in ids {
        assert!(index.remove(id).is_some());
        index.check_invariants();
    }
    assert_eq!(index.stats().nodes, 1);
    assert!(index.is_empty());
}

/// `match_str` answers a cached subject only within the index's own maximum length, and
/// rejects invalid text whatever the cache holds.
#[test]
fn match_str_validates_what_the_cache_does_not_vouch_for() {
    let mut index = SubjectIndex::new(IndexConfig { max_subject_bytes: 8, ..IndexConfig::default() });
    index.insert(Pattern::parse(">").unwrap(), None, 1u32);
    let mut out = Matches::new();
    let long = "abcdefghij.k";
    for _ in 0..3 {
        // Parsed with the default maximum: it gets cached.
        index.match_into(Subject::parse(long).unwrap(), &mut out);
        assert_eq!(out.plain, [1]);
    }
    assert!(index.stats().cache_hits > 0);
    assert!(index.match_str(long, &mut out).is_err(), "longer than this index's maximum");
    assert!(out.is_empty());
    for bad in ["", "a..b", "a.*", "a b", ".a", "a."] {
        assert!(index.match_str(bad, &mut out).is_err(), "{bad:?}");
    }
    for _ in 0..3 {
        index.match_str("a.b", &mut out).unwrap();
        assert_eq!(out.plain, [1]);
    }
}
