//! The fixed-length footer at the end of every SST.
//!
//! ```text
//! footer := filter: handle | index: handle | props: handle | version: u32 LE
//!           | crc32(the 40 bytes before): u32 LE | magic: "STRATSST"
//! handle := offset: u64 LE | len: u32 LE
//! ```
//!
//! The filter, index and props blocks are contiguous and end where the footer begins, so a
//! reader fetches the footer, then [`Footer::meta_range`] in one read, then opens the table.
use super::BlockHandle;
use crate::lsm::error::Error;
use crate::lsm::io::FileName;
use alloc::vec::Vec;

/// Bytes of the footer.
pub const FOOTER_LEN: u64 = 52;

/// Magic at the very end of every SST.
pub const SST_MAGIC: [u8; 8] = *b"STRATSST";

/// The SST format version.
pub const SST_VERSION: u32 = 1;

/// Where a table's metadata blocks are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footer {
    /// The bloom filter block.
    pub filter: BlockHandle,
    /// The index block.
    pub index: BlockHandle,
    /// The props block.
    pub props: BlockHandle,
}

impl Footer {
    /// Appends the encoded footer.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        for h in [self.filter, self.index, self.props] {
            out.extend_from_slice(&h.offset.to_le_bytes());
            out.extend_from_slice(&h.len.to_le_bytes());
        }
        out.extend_from_slice(&SST_VERSION.to_le_bytes());
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&SST_MAGIC);
    }

    /// Decodes the footer of a `file_len`-byte table from `bytes`, its last [`FOOTER_LEN`]
    /// bytes (a longer slice is read from its end). Checks the magic, crc and version, and that
    /// the three blocks are contiguous, non-empty and end where the footer begins. Errors are
    /// [`Error::Corruption`] at the footer's offset.
    pub fn decode(file: FileName, file_len: u64, bytes: &[u8]) -> Result<Footer, Error> {
        let at = file_len.saturating_sub(FOOTER_LEN);
        Self::decode_inner(file_len, bytes).map_err(|reason| Error::Corruption { file, offset: at, reason })
    }

    fn decode_inner(file_len: u64, bytes: &[u8]) -> Result<Footer, &'static str> {
        let n = FOOTER_LEN as usize;
        if file_len < FOOTER_LEN || bytes.len() < n {
            return Err("table shorter than its footer");
        }
        let f = &bytes[bytes.len() - n..];
        if f[44..] != SST_MAGIC {
            return Err("table footer has the wrong magic");
        }
        if f[40..44] != crc32fast::hash(&f[..40]).to_le_bytes() {
            return Err("table footer checksum mismatch");
        }
        if f[36..40] != SST_VERSION.to_le_bytes() {
            return Err("table has an unsupported format version");
        }
        let handle = |i: usize| {
            let mut o = [0u8; 8];
            o.copy_from_slice(&f[12 * i..12 * i + 8]);
            let mut l = [0u8; 4];
            l.copy_from_slice(&f[12 * i + 8..12 * i + 12]);
            BlockHandle { offset: u64::from_le_bytes(o), len: u32::from_le_bytes(l) }
        };
        let footer = Footer { filter: handle(0), index: handle(1), props: handle(2) };
        let trailer = super::BLOCK_TRAILER_LEN as u32;
        let end = |h: BlockHandle| h.offset.checked_add(u64::from(h.len));
        let contiguous = footer.filter.offset > 0
            && [footer.filter, footer.index, footer.props].iter().all(|h| h.len >= trailer)
            && end(footer.filter) == Some(footer.index.offset)
            && end(footer.index) == Some(footer.props.offset)
            && end(footer.props) == Some(file_len - FOOTER_LEN);
        if !contiguous {
            return Err("table footer handles do not tile the file");
        }
        Ok(footer)
    }

    /// `(offset, len)` of the filter, index and props blocks together.
    pub fn meta_range(&self) -> (u64, u64) {
        let end = self.props.offset + u64::from(self.props.len);
        (self.filter.offset, end - self.filter.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const FILE: FileName = FileName { kind: crate::lsm::io::FileKind::Table, number: 9 };

    fn sample() -> (Footer, Vec<u8>, u64) {
        let f = Footer {
            filter: BlockHandle { offset: 1000, len: 70 },
            index: BlockHandle { offset: 1070, len: 30 },
            props: BlockHandle { offset: 1100, len: 50 },
        };
        let mut out = Vec::new();
        f.encode(&mut out);
        (f, out, 1150 + FOOTER_LEN)
    }

    #[test]
    fn round_trip() {
        let (f, bytes, len) = sample();
        assert_eq!(bytes.len() as u64, FOOTER_LEN);
        assert_eq!(Footer::decode(FILE, len, &bytes), Ok(f));
        assert_eq!(f.meta_range(), (1000, 150));
        let mut longer = vec![1, 2, 3];
        longer.extend_from_slice(&bytes);
        assert_eq!(Footer::decode(FILE, len, &longer), Ok(f));
    }

    #[test]
    fn damage_is_corruption_at_the_footer() {
        let (_, bytes, len) = sample();
        let expect_err = |b: &[u8], l: u64| match Footer::decode(FILE, l, b) {
            Err(Error::Corruption { file, offset, .. }) => {
                assert_eq!((file, offset), (FILE, l.saturating_sub(FOOTER_LEN)));
            }
            other => panic!("expected corruption, got {other:?}"),
        };
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                expect_err(&b, len);
            }
        }
        expect_err(&bytes[1..], len);
        expect_err(&bytes, len + 1); // handles no longer end at the footer
        expect_err(&bytes, 10);
    }

    #[test]
    fn handles_must_tile() {
        let bad = [
            Footer {
                filter: BlockHandle { offset: 0, len: 70 },
                index: BlockHandle { offset: 70, len: 30 },
                props: BlockHandle { offset: 100, len: 50 },
            },
            Footer {
                filter: BlockHandle { offset: 1000, len: 2 },
                index: BlockHandle { offset: 1002, len: 98 },
                props: BlockHandle { offset: 1100, len: 50 },
            },
            Footer {
                filter: BlockHandle { offset: u64::MAX - 3, len: 70 },
                index: BlockHandle { offset: 1070, len: 30 },
                props: BlockHandle { offset: 1100, len: 50 },
            },
        ];
        for f in bad {
            let mut b = Vec::new();
            f.encode(&mut b);
            let end = f.props.offset.wrapping_add(u64::from(f.props.len));
            assert!(Footer::decode(FILE, end.wrapping_add(FOOTER_LEN), &b).is_err(), "{f:?}");
        }
    }
}
