//! LEB128 varints, used inside batches and blocks.

/// Appends `v` as a LEB128 varint.
#[inline]
pub fn put(out: &mut alloc::vec::Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint from the front of `buf`: `(value, bytes used)`, or `None` when truncated or
/// longer than ten bytes.
#[inline]
pub fn get(buf: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut b = alloc::vec::Vec::new();
            super::put(&mut b, v);
            assert_eq!(super::get(&b), Some((v, b.len())));
            assert_eq!(super::get(&b[..b.len() - 1]), None);
        }
    }
}
