//! Builds an SST in memory from entries in internal-key order.
//!
//! Entries are written straight into the file buffer as they arrive (no per-entry allocation:
//! the key scratch, the block writer's last key, the bloom hashes and the file buffer are all
//! reused and grow amortized). A data block is cut once it reaches `block_size`; its index
//! entry is written when the next block's first key is known, so the index can hold a short
//! separator instead of the whole last key.
use super::block::{common_prefix, BlockWriter};
use super::bloom;
use super::footer::{Footer, FOOTER_LEN};
use super::{BlockHandle, TableOptions, TableProps, BLOCK_TRAILER_LEN};
use crate::lsm::key::{self, ValueKind};
use crate::lsm::varint;
use alloc::vec::Vec;

/// Builds one table. Call [`add`](Self::add) for each entry in strictly increasing
/// internal-key order, then [`finish`](Self::finish) for the file's bytes.
#[derive(Debug)]
pub struct TableBuilder {
    opts: TableOptions,
    /// The file from offset `base` on: finished data blocks not yet taken and the open one.
    out: Vec<u8>,
    /// Bytes already handed out by [`take_ready`](Self::take_ready).
    base: u64,
    data: BlockWriter,
    index: BlockWriter,
    index_buf: Vec<u8>,
    /// A finished data block whose index entry waits for the next key.
    pending: Option<BlockHandle>,
    /// Scratch: the entry's encoded internal key; the separator; an encoded handle.
    key: Vec<u8>,
    sep: Vec<u8>,
    handle_buf: Vec<u8>,
    /// Bloom hashes of distinct user keys.
    hashes: Vec<u64>,
    props: TableProps,
}

impl TableBuilder {
    /// A builder for one table.
    pub fn new(opts: &TableOptions) -> Self {
        TableBuilder {
            opts: opts.clone(),
            out: Vec::with_capacity(opts.block_size.max(64) * 4),
            base: 0,
            data: BlockWriter::new(opts.restart_interval),
            index: BlockWriter::new(1),
            index_buf: Vec::new(),
            pending: None,
            key: Vec::new(),
            sep: Vec::new(),
            handle_buf: Vec::new(),
            hashes: Vec::new(),
            props: TableProps {
                smallest: Vec::new(),
                largest: Vec::new(),
                min_seq: u64::MAX,
                max_seq: 0,
                entries: 0,
                deletions: 0,
                raw_key_bytes: 0,
                raw_value_bytes: 0,
                data_blocks: 0,
            },
        }
    }

    /// Adds an entry. `trailer` is `seq << 8 | kind` (see [`key::trailer`]); entries must
    /// arrive in strictly increasing internal-key order (checked in debug builds).
    pub fn add(&mut self, user_key: &[u8], trailer: u64, value: &[u8]) {
        debug_assert!(
            self.props.entries == 0
                || key::cmp_parts(user_key, trailer, self.data.last_key())
                    == core::cmp::Ordering::Greater,
            "TableBuilder::add out of order"
        );
        debug_assert!(key::split_trailer(trailer).is_some(), "unknown value kind");
        self.key.clear();
        key::encode_internal(&mut self.key, user_key, trailer);
        if let Some(handle) = self.pending.take() {
            separator(&mut self.sep, self.data.last_key(), &self.key);
            self.add_index_entry(handle);
        }
        let last = self.data.last_key();
        if self.props.entries == 0 || &last[..last.len() - key::TRAILER_LEN] != user_key {
            self.hashes.push(bloom::key_hash(user_key));
        }
        let p = &mut self.props;
        if p.entries == 0 {
            p.smallest.clear();
            p.smallest.extend_from_slice(&self.key);
        }
        let seq = trailer >> 8;
        p.min_seq = p.min_seq.min(seq);
        p.max_seq = p.max_seq.max(seq);
        p.entries += 1;
        if trailer & 0xff == ValueKind::Delete as u64 {
            p.deletions += 1;
        }
        p.raw_key_bytes += user_key.len() as u64;
        p.raw_value_bytes += value.len() as u64;
        self.data.add(&mut self.out, &self.key, value);
        if self.data.estimated_len(&self.out) >= self.opts.block_size {
            self.pending = Some(self.finish_data_block());
        }
    }

    /// Bytes at the front of the file that are final and not yet taken: every finished data
    /// block (the open one is still growing).
    pub fn ready_len(&self) -> usize {
        if self.data.entries() > 0 {
            self.data.block_start()
        } else {
            self.out.len()
        }
    }

    /// Appends the [`ready_len`](Self::ready_len) final bytes to `sink` and drops them from
    /// the builder, so a large table can be written out while it is built instead of held
    /// whole. The file is then everything taken, in order, followed by what
    /// [`finish`](Self::finish) returns. Call it when `ready_len` is worth a write (it moves the
    /// open block's few bytes to the front of the buffer each time).
    pub fn take_ready(&mut self, sink: &mut Vec<u8>) {
        let n = self.ready_len();
        sink.extend_from_slice(&self.out[..n]);
        self.out.drain(..n);
        self.base += n as u64;
        self.data.rebase(n);
    }

    /// Entries added so far.
    pub fn len(&self) -> u64 {
        self.props.entries
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.props.entries == 0
    }

    /// About how long the finished file would be now.
    pub fn estimated_file_len(&self) -> u64 {
        let filter = self.hashes.len() as u64 * u64::from(self.opts.bloom_bits_per_key) / 8 + 74;
        let props = 128 + self.props.smallest.len() as u64 + self.data.last_key().len() as u64;
        self.base
            + (self.out.len() + self.data.trailer_len() + self.index_buf.len() + self.index.trailer_len())
            as u64
            + 32 * (self.pending.is_some() as u64 + 1)
            + filter
            + props
            + FOOTER_LEN
    }

    /// Writes the filter, index, props and footer; returns the file's bytes (all of them, or
    /// those after what [`take_ready`](Self::take_ready) handed out) and its props.
    ///
    /// Panics if no entry was added (an empty table is a caller bug).
    pub fn finish(mut self) -> (Vec<u8>, TableProps) {
        assert!(self.props.entries > 0, "finishing an empty table");
        if self.data.entries() > 0 {
            self.pending = Some(self.finish_data_block());
        }
        self.props.largest.clear();
        self.props.largest.extend_from_slice(self.data.last_key());
        if let Some(handle) = self.pending.take() {
            self.sep.clear();
            self.sep.extend_from_slice(self.data.last_key());
            self.add_index_entry(handle);
        }
        let mut out = self.out;
        let base = self.base;

        let filter = append_block(&mut out, base, |out| {
            bloom::build(&self.hashes, self.opts.bloom_bits_per_key, out);
        });
        let index_handle = self.index.finish(&mut self.index_buf);
        debug_assert_eq!(index_handle.offset, 0);
        let index = BlockHandle { offset: base + out.len() as u64, len: index_handle.len };
        out.extend_from_slice(&self.index_buf);
        let props = append_block(&mut out, base, |out| {
            let buf = core::mem::take(out);
            *out = match postcard::to_extend(&self.props, buf) {
                Ok(buf) => buf,
                Err(_) => panic!("postcard failed to encode TableProps"),
            };
        });
        Footer { filter, index, props }.encode(&mut out);
        (out, self.props)
    }

    /// Ends the open data block; its handle in file offsets.
    fn finish_data_block(&mut self) -> BlockHandle {
        let mut h = self.data.finish(&mut self.out);
        h.offset += self.base;
        self.props.data_blocks += 1;
        h
    }

    /// Adds the index entry `self.sep → handle`.
    fn add_index_entry(&mut self, handle: BlockHandle) {
        self.handle_buf.clear();
        encode_handle(&mut self.handle_buf, handle);
        self.index.add(&mut self.index_buf, &self.sep, &self.handle_buf);
    }
}

/// Appends a block written by `write` plus its crc; returns its handle (`out` starts at file
/// offset `base`).
fn append_block(out: &mut Vec<u8>, base: u64, write: impl FnOnce(&mut Vec<u8>)) -> BlockHandle {
    let start = out.len();
    write(out);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
    let len = u32::try_from(out.len() - start).expect("metadata block over 4 GiB");
    debug_assert!(len as usize >= BLOCK_TRAILER_LEN);
    BlockHandle { offset: base + start as u64, len }
}

/// An index value: `offset: varint | len: varint`.
pub(crate) fn encode_handle(out: &mut Vec<u8>, h: BlockHandle) {
    varint::put(out, h.offset);
    varint::put(out, u64::from(h.len));
}

/// Decodes an index value; `None` unless it is exactly one handle.
pub(crate) fn decode_handle(b: &[u8]) -> Option<BlockHandle> {
    let (offset, n) = varint::get(b)?;
    let (len, m) = varint::get(&b[n..])?;
    if n + m != b.len() {
        return None;
    }
    Some(BlockHandle { offset, len: u32::try_from(len).ok()? })
}

/// Writes into `out` a key `s` with `a ≤ s < b` (internal order) that is short when possible:
/// if the user keys first differ at byte `i` with room between them, `s` is `a`'s user key cut
/// after byte `i`, that byte incremented, with the largest trailer (the first internal key of
/// that user key). Otherwise `s = a`.
pub(crate) fn separator(out: &mut Vec<u8>, a: &[u8], b: &[u8]) {
    out.clear();
    if let (Some((ua, _)), Some((ub, _))) = (key::split_internal(a), key::split_internal(b)) {
        let i = common_prefix(ua, ub);
        if i < ua.len() && i < ub.len() && ua[i] < 0xff && ua[i] + 1 < ub[i] && i + 1 < ua.len() {
            out.extend_from_slice(&ua[..=i]);
            out[i] += 1;
            out.extend_from_slice(&u64::MAX.to_le_bytes());
            return;
        }
    }
    out.extend_from_slice(a);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsm::key::trailer;
    use core::cmp::Ordering;

    fn ik(u: &[u8], seq: u64) -> Vec<u8> {
        let mut v = Vec::new();
        key::encode_internal(&mut v, u, trailer(seq, ValueKind::Put));
        v
    }

    #[test]
    fn separators_are_between_and_short() {
        let cases: [(&[u8], &[u8]); 6] = [
            (b"apple-pie", b"cherry"),
            (b"abc1xyz", b"abc9"),
            (b"abc1", b"abc2"),
            (b"abc", b"abcd"),
            (b"ab\xff\xff", b"ac"),
            (b"same", b"same"),
        ];
        let mut s = Vec::new();
        for (ua, ub) in cases {
            let (a, b) = if ua == ub { (ik(ua, 9), ik(ub, 3)) } else { (ik(ua, 1), ik(ub, 1)) };
            separator(&mut s, &a, &b);
            assert_ne!(key::cmp_internal(&s, &a), Ordering::Less, "{ua:?} {ub:?}");
            assert_eq!(key::cmp_internal(&s, &b), Ordering::Less, "{ua:?} {ub:?}");
            assert!(s.len() <= a.len());
        }
        separator(&mut s, &ik(b"apple-pie", 1), &ik(b"cherry", 1));
        assert_eq!(key::split_internal(&s).map(|(u, _)| u), Some(&b"b"[..]));
    }

    #[test]
    fn taking_ready_bytes_builds_the_same_file() {
        let opts = super::super::TableOptions { block_size: 200, ..Default::default() };
        let entries: Vec<(Vec<u8>, Vec<u8>)> = (0..500u32)
            .map(|i| (alloc::format!("key{i:05}").into_bytes(), alloc::vec![i as u8; (i % 50) as usize]))
            .collect();
        let mut whole = TableBuilder::new(&opts);
        for (k, v) in &entries {
            whole.add(k, trailer(7, ValueKind::Put), v);
        }
        let est = whole.estimated_file_len();
        let (expected, props) = whole.finish();
        for every in [1usize, 3, 17, 100] {
            let mut b = TableBuilder::new(&opts);
            let mut streamed = Vec::new();
            for (i, (k, v)) in entries.iter().enumerate() {
                b.add(k, trailer(7, ValueKind::Put), v);
                if i % every == 0 {
                    let before = streamed.len();
                    let ready = b.ready_len();
                    b.take_ready(&mut streamed);
                    assert_eq!(streamed.len(), before + ready);
                    assert_eq!(b.ready_len(), 0);
                }
            }
            assert_eq!(b.estimated_file_len(), est);
            let (rest, p) = b.finish();
            streamed.extend_from_slice(&rest);
            assert_eq!(streamed, expected, "taking every {every}");
            assert_eq!(p, props);
        }
    }

    #[test]
    fn handles_round_trip() {
        let mut b = Vec::new();
        for h in [BlockHandle { offset: 0, len: 4 }, BlockHandle { offset: 1 << 40, len: u32::MAX }] {
            b.clear();
            encode_handle(&mut b, h);
            assert_eq!(decode_handle(&b), Some(h));
            b.push(0);
            assert_eq!(decode_handle(&b), None);
        }
        assert_eq!(decode_handle(&[0x80]), None);
    }
}
