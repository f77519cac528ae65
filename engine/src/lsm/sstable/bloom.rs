//! The table's bloom filter over user keys: a cache-local ("blocked") bloom filter.
//!
//! Each key sets `probes` bits inside one 512-bit line chosen by its hash, so a lookup touches
//! one cache line. With 10 bits per key and 6 probes the false-positive rate is about 1%.
//!
//! ```text
//! contents := bits: [u8; 64 × lines] | lines: u32 LE | probes: u8 | kind: u8 (= 1)
//! ```
//!
//! Empty contents mean "no filter": every key may be present. The hash is
//! [`hash64`](crate::lsm::hash::hash64) of the user key: the upper 32 bits pick the line, the
//! lower 32 bits seed the probe sequence (`bit = x >> 23; x *= 0x9e3779b9`).
use crate::lsm::hash::hash64;
use alloc::vec::Vec;

const LINE_BYTES: usize = 64;
const LINE_BITS: u32 = 512;
const KIND_BLOCKED_V1: u8 = 1;
const TRAILER: usize = 6;
const MUL: u32 = 0x9e37_79b9;

/// The hash a filter stores for a user key.
#[inline]
pub fn key_hash(user_key: &[u8]) -> u64 {
    hash64(user_key)
}

/// Appends filter contents for keys with the given [`key_hash`]es to `out`; nothing when
/// `bits_per_key` is 0 or there are no keys.
pub fn build(hashes: &[u64], bits_per_key: u32, out: &mut Vec<u8>) {
    if bits_per_key == 0 || hashes.is_empty() {
        return;
    }
    let probes = probes_for(bits_per_key);
    let total_bits = (hashes.len() as u64).saturating_mul(u64::from(bits_per_key));
    let lines = total_bits.div_ceil(u64::from(LINE_BITS)).clamp(1, u64::from(u32::MAX / 2)) as u32;
    let start = out.len();
    out.resize(start + lines as usize * LINE_BYTES, 0);
    let bits = &mut out[start..];
    for &h in hashes {
        let base = line_of(h, lines) * LINE_BYTES;
        let line: &mut [u8; LINE_BYTES] = match (&mut bits[base..base + LINE_BYTES]).try_into() {
            Ok(line) => line,
            Err(_) => continue, // unreachable: the slice is LINE_BYTES long
        };
        let mut x = h as u32;
        for _ in 0..probes {
            let bit = (x >> 23) as usize; // < 512, so bit / 8 < 64: no bounds check
            line[bit / 8] |= 1 << (bit % 8);
            x = x.wrapping_mul(MUL);
        }
    }
    out.extend_from_slice(&lines.to_le_bytes());
    out.push(probes as u8);
    out.push(KIND_BLOCKED_V1);
}

/// A decoded filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bloom {
    bits: Vec<u8>,
    lines: u32,
    probes: u32,
}

impl Bloom {
    /// Decodes filter contents (already crc-checked).
    pub fn decode(contents: &[u8]) -> Result<Bloom, &'static str> {
        if contents.is_empty() {
            return Ok(Bloom { bits: Vec::new(), lines: 0, probes: 0 });
        }
        if contents.len() < TRAILER {
            return Err("filter block too short");
        }
        let (bits, t) = contents.split_at(contents.len() - TRAILER);
        if t[5] != KIND_BLOCKED_V1 {
            return Err("filter block of an unknown kind");
        }
        let lines = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        let probes = u32::from(t[4]);
        if lines == 0 || bits.len() as u64 != u64::from(lines) * LINE_BYTES as u64 {
            return Err("filter block length does not match its line count");
        }
        if probes == 0 || probes > 30 {
            return Err("filter block probe count out of range");
        }
        Ok(Bloom { bits: bits.to_vec(), lines, probes })
    }

    /// False only when `user_key` is certainly absent.
    #[inline]
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        self.lines == 0 || self.may_contain_hash(key_hash(user_key))
    }

    /// [`may_contain`](Self::may_contain) for a precomputed [`key_hash`].
    #[inline]
    pub fn may_contain_hash(&self, h: u64) -> bool {
        if self.lines == 0 {
            return true;
        }
        let start = line_of(h, self.lines) * LINE_BYTES;
        let Ok(line) = <&[u8; LINE_BYTES]>::try_from(&self.bits[start..start + LINE_BYTES]) else {
            return true; // unreachable: the slice is LINE_BYTES long
        };
        let mut x = h as u32;
        for _ in 0..self.probes {
            let bit = (x >> 23) as usize;
            if line[bit / 8] & (1 << (bit % 8)) == 0 {
                return false;
            }
            x = x.wrapping_mul(MUL);
        }
        true
    }

    /// Bytes held in memory.
    pub fn len_bytes(&self) -> usize {
        self.bits.len()
    }
}

fn probes_for(bits_per_key: u32) -> u32 {
    // About 0.6 × bits per key: a little below the classic ln 2 optimum, which suits
    // cache-local filters.
    ((bits_per_key.min(100) * 6 + 5) / 10).clamp(1, 12)
}

#[inline]
fn line_of(h: u64, lines: u32) -> usize {
    (((h >> 32) * u64::from(lines)) >> 32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    fn filter(n: u32, bits_per_key: u32) -> Bloom {
        let hashes: Vec<u64> = (0..n).map(|i| key_hash(format!("user-key-{i}").as_bytes())).collect();
        let mut out = Vec::new();
        build(&hashes, bits_per_key, &mut out);
        Bloom::decode(&out).expect("decodes")
    }

    fn fp_rate(f: &Bloom, n: u32) -> f64 {
        let tries = 200_000u32;
        let fp = (0..tries).filter(|i| f.may_contain(format!("absent-{}", i + n).as_bytes())).count();
        fp as f64 / f64::from(tries)
    }

    #[test]
    fn no_false_negatives() {
        let f = filter(10_000, 10);
        for i in 0..10_000 {
            assert!(f.may_contain(format!("user-key-{i}").as_bytes()));
        }
    }

    #[test]
    fn false_positive_rate_is_about_one_percent() {
        let f = filter(50_000, 10);
        let rate = fp_rate(&f, 50_000);
        assert!((0.004..0.015).contains(&rate), "false-positive rate {rate}");
        // More bits, fewer false positives.
        let f = filter(50_000, 16);
        assert!(fp_rate(&f, 50_000) < 0.002);
    }

    #[test]
    fn small_and_disabled_filters() {
        let f = filter(1, 10);
        assert!(f.may_contain(b"user-key-0"));
        assert_eq!(f.len_bytes(), 64);
        let mut out = Vec::new();
        build(&[1, 2, 3], 0, &mut out);
        assert!(out.is_empty());
        let none = Bloom::decode(&out).expect("decodes");
        assert!(none.may_contain(b"anything"));
    }

    #[test]
    fn malformed_filters_are_rejected() {
        let mut out = Vec::new();
        build(&[7, 8, 9], 10, &mut out);
        for cut in 1..out.len() {
            assert!(Bloom::decode(&out[..cut]).is_err(), "cut {cut}");
        }
        let n = out.len();
        for (i, v) in [(n - 1, 2u8), (n - 2, 0), (n - 2, 31), (n - 6, 2)] {
            let mut bad = out.clone();
            bad[i] = v;
            assert!(Bloom::decode(&bad).is_err(), "byte {i} = {v}");
        }
    }
}
