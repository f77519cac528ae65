//! Serde for the wire types' byte strings as byte strings, not as sequences of `u8`.
//!
//! `#[serde(with = "super::bytes_serde")]` on a `Vec<u8>` field (`bytes_serde::opt` on an
//! `Option<Vec<u8>>`). The postcard encoding is **the same bytes** as a sequence of `u8` (a
//! varint length, then one byte per element: postcard writes a `u8` as itself), so nothing
//! stored or sent changes; but encoding copies the slice at once instead of one serializer call
//! per byte, and decoding takes the slice instead of pushing byte by byte (the per-byte path
//! was ~20% of a replicated write's encode and decode cost). Self-describing formats (JSON) read
//! either shape: a sequence of numbers, or a byte string.
use alloc::vec::Vec;
use core::fmt;
use serde::de::{SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

/// Serializes `v` as a byte string.
pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(v)
}

/// Deserializes a byte string (or a sequence of `u8`).
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    d.deserialize_byte_buf(BytesVisitor)
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        // Bounded by what the input holds, not by what it claims.
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            v.push(b);
        }
        Ok(v)
    }
}

/// The same for `Option<Vec<u8>>`.
pub(crate) mod opt {
    use super::BytesVisitor;
    use alloc::vec::Vec;
    use core::fmt;
    use serde::de::Visitor;
    use serde::{Deserializer, Serialize, Serializer};

    struct AsBytes<'a>(&'a [u8]);

    impl Serialize for AsBytes<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    /// Serializes `v` as an optional byte string.
    pub(crate) fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&AsBytes(b)),
            None => s.serialize_none(),
        }
    }

    /// Deserializes an optional byte string (or sequence of `u8`).
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        d.deserialize_option(OptVisitor)
    }

    struct OptVisitor;

    impl<'de> Visitor<'de> for OptVisitor {
        type Value = Option<Vec<u8>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an optional byte string")
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_byte_buf(BytesVisitor).map(Some)
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Plain {
        a: Vec<u8>,
        b: Option<Vec<u8>>,
        c: Option<Vec<u8>>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct AsBytes {
        #[serde(with = "super")]
        a: Vec<u8>,
        #[serde(with = "super::opt")]
        b: Option<Vec<u8>>,
        #[serde(with = "super::opt")]
        c: Option<Vec<u8>>,
    }

    /// The encoding is byte for byte the one of a plain `Vec<u8>`, both ways.
    #[test]
    fn same_postcard_bytes_as_a_sequence() {
        for len in [0usize, 1, 127, 128, 300] {
            let a: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let plain = Plain { a: a.clone(), b: Some(a.iter().rev().copied().collect()), c: None };
            let bytes = AsBytes { a: plain.a.clone(), b: plain.b.clone(), c: None };
            let enc = postcard::to_allocvec(&plain).unwrap();
            assert_eq!(postcard::to_allocvec(&bytes).unwrap(), enc);
            let back: AsBytes = postcard::from_bytes(&enc).unwrap();
            assert_eq!(back, bytes);
        }
        // A truncated byte string is refused, not read past.
        let enc = postcard::to_allocvec(&AsBytes { a: vec![1; 10], b: None, c: None }).unwrap();
        assert!(postcard::from_bytes::<AsBytes>(&enc[..5]).is_err());
    }
}
