//! KV key ↔ subject mapping: every key encodes to a valid literal subject whose tokens line up
//! with the key's `.`-parts and decodes back to the key; arbitrary text either decodes to a key
//! that encodes back to exactly that text (the mapping is a bijection) or gets a typed error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata_engine::subject::kv::{decode_key, encode_key, key_subject_into, subject_key};
use strata_engine::subject::{Pattern, Subject, MAX_SUBJECT_BYTES_LIMIT};

fuzz_target!(|data: &[u8]| {
    let enc = encode_key(data);
    assert_eq!(decode_key(&enc).as_deref(), Ok(data));
    assert_eq!(enc.split('.').count(), data.split(|&b| b == b'.').count());
    let mut subject = String::new();
    key_subject_into("b", data, &mut subject);
    if subject.len() <= MAX_SUBJECT_BYTES_LIMIT {
        let s = Subject::parse_with_max(&subject, MAX_SUBJECT_BYTES_LIMIT).expect("a valid subject");
        assert!(Pattern::parse("$KV.b.>").unwrap().matches(s));
        assert_eq!(subject_key("b", &subject).as_deref(), Ok(data));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        match decode_key(text) {
            Ok(key) => assert_eq!(encode_key(&key), text),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
});
