//! Subject and pattern parsing on arbitrary text: never panics; whatever parses as a subject
//! also parses as a pattern; a pattern matches every subject it was parsed from when literal;
//! the index accepts every parsed pattern and matches it against every parsed subject the same
//! way as the pattern matcher.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata_engine::subject::{CacheConfig, IndexConfig, Matches, Pattern, Subject, SubjectIndex};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Split the input into a pattern and a subject at the first NUL, if any.
    let (p, s) = text.split_once('\0').unwrap_or((text, text));
    let pattern = Pattern::parse(p);
    let subject = Subject::parse(s);
    if let Ok(subj) = subject {
        assert!(Pattern::parse(s).is_ok(), "a subject is a pattern");
        assert!(Pattern::parse(s).unwrap().matches(subj), "a literal pattern matches itself");
    }
    if let Err(e) = pattern {
        let _ = e.to_string();
    }
    if let (Ok(p), Ok(s)) = (pattern, subject) {
        for cache in [CacheConfig::DISABLED, CacheConfig::default()] {
            let mut index = SubjectIndex::new(IndexConfig { cache, ..IndexConfig::default() });
            let id = index.insert(p, Some("q"), 1u32);
            let plain = index.insert(p, None, 2u32);
            let mut out = Matches::new();
            for _ in 0..3 {
                index.match_into(s, &mut out);
                let want = p.matches(s);
                assert_eq!(out.plain == [2], want);
                assert_eq!(out.queued == [1], want);
            }
            index.check_invariants();
            assert_eq!(index.remove(id), Some(1));
            assert_eq!(index.remove(plain), Some(2));
            index.check_invariants();
            assert_eq!(index.stats().nodes, 1);
        }
    }
});
