//! A small deterministic 64-bit hash for bloom filters and the block cache.
//!
//! No random state: the same bytes hash the same on every run and every platform, as the
//! determinism contract (DESIGN.md §2) and on-disk bloom filters require. The construction is a
//! multiply-fold mix over 16-byte chunks (in the spirit of wyhash); it is fast and spreads bits
//! well, but it is not a defence against hash flooding.
use core::hash::{BuildHasher, Hasher};

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;
const P3: u64 = 0x5899_65cc_7537_4cc3;

/// Hashes `bytes` to 64 bits. Stable: part of the SST filter format.
#[inline]
pub fn hash64(bytes: &[u8]) -> u64 {
    let len = bytes.len() as u64;
    let mut h = P0 ^ len.wrapping_mul(P1);
    let mut chunks = bytes.chunks_exact(16);
    for c in &mut chunks {
        h = mum(read_u64(c, 0) ^ P1, read_u64(c, 8) ^ h ^ P2);
    }
    let tail = chunks.remainder();
    let (a, b) = if tail.len() >= 8 {
        (read_u64(tail, 0), read_partial(&tail[8..]))
    } else {
        (read_partial(tail), 0)
    };
    h = mum(a ^ P1 ^ len, b ^ h ^ P2);
    mum(h ^ P3, P0 ^ len)
}

/// Mixes one 64-bit value (a finalizer; a bijection).
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 32;
    x = x.wrapping_mul(0xd6e8_feb8_6659_fd93);
    x ^= x >> 32;
    x = x.wrapping_mul(0xd6e8_feb8_6659_fd93);
    x ^ (x >> 32)
}

/// A [`BuildHasher`] with no random state, for hash maps whose behaviour must be reproducible.
#[derive(Clone, Copy, Debug, Default)]
pub struct FixedState;

impl BuildHasher for FixedState {
    type Hasher = FixedHasher;
    fn build_hasher(&self) -> FixedHasher {
        FixedHasher(P0)
    }
}

/// The hasher of [`FixedState`]: folds written integers with [`mix64`], bytes with [`hash64`].
#[derive(Clone, Copy, Debug)]
pub struct FixedHasher(u64);

impl Hasher for FixedHasher {
    #[inline]
    fn finish(&self) -> u64 {
        mix64(self.0)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.0 = (self.0 ^ hash64(bytes)).wrapping_mul(P3);
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(P1).rotate_left(29);
    }
    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
}

#[inline]
fn mum(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

#[inline]
fn read_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Up to 8 bytes as a little-endian integer.
#[inline]
fn read_partial(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a[..b.len()].copy_from_slice(b);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;
    use alloc::vec::Vec;

    #[test]
    fn stable_values() {
        // The filter format depends on these; changing the hash changes the format.
        let golden: Vec<u64> = [&b""[..], b"a", b"abcdefgh", b"abcdefghijklmnopq"]
            .iter()
            .map(|b| hash64(b))
            .collect();
        assert_eq!(golden, GOLDEN);
    }

    const GOLDEN: [u64; 4] =
        [1698521573041727085, 12321565071534250124, 10663189563159335604, 13397831508292054587];

    #[test]
    fn no_collisions_on_similar_keys() {
        let mut seen = BTreeSet::new();
        for len in 0..40usize {
            for i in 0..200u32 {
                let mut k = alloc::vec![0u8; len];
                for (j, b) in i.to_le_bytes().iter().enumerate() {
                    if j < len {
                        k[j] = *b;
                    }
                }
                if len < 4 && i >= 1 << (8 * len) {
                    continue;
                }
                assert!(seen.insert(hash64(&k)), "collision at len {len} i {i}");
            }
        }
        // Trailing zeros are not ignored: "a" and "a\0" differ (the length is mixed in).
        assert_ne!(hash64(b"a"), hash64(b"a\0"));
    }

    #[test]
    fn bits_are_balanced() {
        let mut ones = [0u32; 64];
        let n = 20_000u32;
        for i in 0..n {
            let h = hash64(&i.to_be_bytes());
            for (b, o) in ones.iter_mut().enumerate() {
                *o += ((h >> b) & 1) as u32;
            }
        }
        for (b, o) in ones.iter().enumerate() {
            assert!((9_400..10_600).contains(o), "bit {b} set {o} times of {n}");
        }
    }
}
