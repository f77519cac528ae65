//! Fuzzes the MVCC decoders: keys, lock records and write records must decode to a typed error
//! or to a value that re-encodes to something decoding to the same value (keys: to the same
//! bytes), never panic. Also checks that the key encoding preserves order on arbitrary pairs.
#![no_main]
use libfuzzer_sys::fuzz_target;
use strata_engine::mvcc::codec;
use strata_engine::mvcc::record::{Lock, Write};

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = codec::decode_key(data) {
        assert_eq!(key.encode(), data);
    }
    if let Ok((user_key, used)) = codec::decode_bytes(data) {
        let mut again = Vec::new();
        codec::encode_bytes(&user_key, &mut again);
        assert_eq!(&again[..], &data[..used]);
    }
    if let Ok(lock) = Lock::decode(data) {
        assert_eq!(Lock::decode(&lock.encode()), Ok(lock));
    }
    if let Ok(write) = Write::decode(data) {
        assert_eq!(Write::decode(&write.encode()), Ok(write));
    }
    // Order preservation: split the input in two user keys.
    let mid = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let (a, b) = data.split_at(mid);
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    codec::encode_bytes(a, &mut ea);
    codec::encode_bytes(b, &mut eb);
    assert_eq!(a.cmp(b), ea.cmp(&eb));
});
