//! An opened table: its index, filter and props in memory, checked once at open.
//!
//! Opening takes two reads: the footer (the last [`FOOTER_LEN`] bytes), then the metadata
//! blocks ([`Footer::meta_range`]). Data blocks are read on demand by the caller, located with
//! [`Table::seek_block`] / [`Table::block_handle`] and decoded with [`Block::decode`] (usually
//! through the block cache).
use super::block::{check_crc, cmp_target, Block};
use super::bloom::Bloom;
use super::builder::decode_handle;
use super::footer::{Footer, FOOTER_LEN};
use super::{BlockHandle, TableProps};
use crate::lsm::error::Error;
use crate::lsm::io::FileName;
use crate::lsm::key;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

/// An opened table. Immutable; share it behind an `Arc`.
#[derive(Clone, Debug)]
pub struct Table {
    file: FileName,
    file_len: u64,
    props: TableProps,
    filter: Bloom,
    /// Index keys (each data block's last key or a separator ≥ it), concatenated.
    index_keys: Vec<u8>,
    /// End of each index key in `index_keys`.
    index_ends: Vec<u32>,
    /// The first eight bytes of each index key's user key, big-endian and zero-padded: the
    /// binary search compares these and reads a whole key only on a tie, so it touches one
    /// small array instead of two large ones.
    index_prefixes: Vec<u64>,
    handles: Vec<BlockHandle>,
    /// Which data blocks [`decode_block`](Self::decode_block) has walked and found well formed.
    walked: BlockMarks,
}

impl Table {
    /// Opens a table from its footer and the bytes of [`Footer::meta_range`]. Checks every
    /// metadata block's crc and structure, that the data blocks tile the file before the
    /// filter, and that the props agree with the index. Errors are [`Error::Corruption`] at the
    /// offset of the bad block.
    pub fn open(file: FileName, file_len: u64, footer: &Footer, meta: &[u8]) -> Result<Table, Error> {
        let corrupt = |offset: u64, reason: &'static str| Error::Corruption { file, offset, reason };
        let (meta_off, meta_len) = footer.meta_range();
        if meta.len() as u64 != meta_len || meta_off + meta_len + FOOTER_LEN != file_len {
            return Err(corrupt(meta_off, "table metadata length does not match its footer"));
        }
        let slice = |h: BlockHandle| {
            let start = (h.offset - meta_off) as usize;
            &meta[start..start + h.len as usize]
        };

        let filter = check_crc(slice(footer.filter))
            .and_then(Bloom::decode)
            .map_err(|r| corrupt(footer.filter.offset, r))?;

        let at_index = |r| corrupt(footer.index.offset, r);
        let index = Block::decode_checked(Arc::from(slice(footer.index)), footer.index.len, false)
            .map_err(at_index)?;
        let mut index_keys = Vec::new();
        let mut index_ends = Vec::new();
        let mut index_prefixes = Vec::new();
        let mut handles = Vec::new();
        let mut next_offset = 0u64;
        let mut c = index.cursor();
        c.seek_to_first();
        while c.valid() {
            let h = decode_handle(c.value())
                .ok_or_else(|| at_index("index entry is not a block handle"))?;
            // Smallest possible data block: a one-byte-varint entry, an 8-byte key, one restart,
            // the count and the crc.
            if h.offset != next_offset || h.len < 3 + 8 + 4 + 4 + 4 {
                return Err(at_index("index handles do not tile the data blocks"));
            }
            next_offset += u64::from(h.len);
            index_keys.extend_from_slice(c.key());
            index_prefixes.push(prefix64(c.user_key()));
            index_ends.push(u32::try_from(index_keys.len()).map_err(|_| at_index("index too large"))?);
            handles.push(h);
            c.next();
        }
        if next_offset != footer.filter.offset {
            return Err(at_index("data blocks do not end where the filter begins"));
        }

        let props = check_crc(slice(footer.props))
            .and_then(|b| {
                let (props, rest) = postcard::take_from_bytes::<TableProps>(b)
                    .map_err(|_| "table props do not decode")?;
                if !rest.is_empty() {
                    return Err("trailing bytes after table props");
                }
                props.check()?;
                Ok(props)
            })
            .map_err(|r| corrupt(footer.props.offset, r))?;
        let walked = BlockMarks::new(handles.len());
        let table =
            Table { file, file_len, props, filter, index_keys, index_ends, index_prefixes, handles, walked };
        let last = table.index_key(table.handles.len() - 1);
        if table.props.data_blocks != table.handles.len() as u64 || table.props.largest != last {
            return Err(corrupt(footer.props.offset, "table props disagree with the index"));
        }
        Ok(table)
    }

    /// Opens a table from the whole file (for example one just built).
    pub fn open_from_bytes(file: FileName, whole: &[u8]) -> Result<Table, Error> {
        let file_len = whole.len() as u64;
        let footer = Footer::decode(file, file_len, whole)?;
        let (off, len) = footer.meta_range();
        Table::open(file, file_len, &footer, &whole[off as usize..(off + len) as usize])
    }

    /// The table's file.
    pub fn file(&self) -> FileName {
        self.file
    }

    /// The file's length in bytes.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// The table's properties.
    pub fn props(&self) -> &TableProps {
        &self.props
    }

    /// False only when the table certainly holds no entry for `user_key` (bloom filter).
    #[inline]
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        self.filter.may_contain(user_key)
    }

    /// [`may_contain`](Self::may_contain) with a precomputed
    /// [`bloom::key_hash`](super::bloom::key_hash), so one hash serves every table of a lookup.
    #[inline]
    pub fn may_contain_hash(&self, hash: u64) -> bool {
        self.filter.may_contain_hash(hash)
    }

    /// Number of data blocks.
    pub fn block_count(&self) -> usize {
        self.handles.len()
    }

    /// Where data block `i` is. Panics if `i >= block_count()`.
    pub fn block_handle(&self, i: usize) -> BlockHandle {
        self.handles[i]
    }

    /// The index key of data block `i`: an internal key ≥ every key in the block and < every
    /// key in the next. Panics if `i >= block_count()`.
    pub fn index_key(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.index_ends[i - 1] as usize };
        &self.index_keys[start..self.index_ends[i] as usize]
    }

    /// The first data block that may hold internal keys ≥ `(user_key, trailer)`: seek there
    /// with [`BlockCursor::seek`](super::BlockCursor::seek); if the block yields nothing, go on
    /// to the next block. `None` when every key in the table is below the target.
    pub fn seek_block(&self, user_key: &[u8], trailer: u64) -> Option<usize> {
        let i = self.partition(user_key, trailer);
        (i < self.handles.len()).then_some(i)
    }

    /// The data block in which to look for the last internal key ≤ `(user_key, trailer)`: seek
    /// there with [`BlockCursor::seek_for_prev`](super::BlockCursor::seek_for_prev); if the
    /// cursor comes back invalid, the answer is the last entry of block `i - 1` (or there is
    /// none when `i == 0`). Every block is a candidate, so this is never `None` for a valid
    /// table; it returns `Option` for symmetry with [`seek_block`](Self::seek_block).
    pub fn seek_block_for_prev(&self, user_key: &[u8], trailer: u64) -> Option<usize> {
        let i = self.partition(user_key, trailer);
        Some(i.min(self.handles.len() - 1))
    }

    /// The block to look in for the newest version of `user_key` with sequence ≤ `max_seq`
    /// (then call [`Block::get`]); `None` when the table's keys are all below it. Does not
    /// consult the bloom filter.
    pub fn get_block(&self, user_key: &[u8], max_seq: u64) -> Option<usize> {
        self.seek_block(user_key, (max_seq.min(key::MAX_SEQ) << 8) | 0xff)
    }

    /// Bytes of the in-memory filter.
    pub fn filter_bytes(&self) -> usize {
        self.filter.len_bytes()
    }

    /// Bytes of the in-memory index.
    pub fn index_bytes(&self) -> usize {
        self.index_keys.capacity()
            + self.index_ends.capacity() * core::mem::size_of::<u32>()
            + self.index_prefixes.capacity() * core::mem::size_of::<u64>()
            + self.handles.capacity() * core::mem::size_of::<BlockHandle>()
    }

    /// Checks and decodes data block `i`, read into the first `len` bytes of `buf`, like
    /// [`Block::decode_prefix`] — except that the walk over its entries (the costly part of a
    /// check: it runs on every block read from disk) happens only the first time block `i` of
    /// this table is decoded. The file never changes, so a later read whose crc matches holds
    /// the bytes already walked; it gets the crc and bounds checks only. A block that fails is
    /// not marked, so it fails again on every read.
    pub fn decode_block(&self, i: usize, buf: Arc<[u8]>, len: usize) -> Result<Block, Error> {
        let Some(&handle) = self.handles.get(i) else {
            return Err(Error::Corruption { file: self.file, offset: 0, reason: "block index out of range" });
        };
        let walk = !self.walked.get(i);
        let block = Block::decode_prefix_walk(self.file, handle, buf, len, walk)?;
        if walk {
            self.walked.set(i);
        }
        Ok(block)
    }

    /// Reads and decodes data block `i` from the whole file's bytes (for tests, tools and
    /// tables held in memory). Errors as [`Block::decode`].
    pub fn read_block(&self, whole: &[u8], i: usize) -> Result<Block, Error> {
        let h = self.handles[i];
        let raw = usize::try_from(h.offset)
            .ok()
            .and_then(|start| whole.get(start..start.checked_add(h.len as usize)?))
            .ok_or(Error::Corruption { file: self.file, offset: h.offset, reason: "block past end of file" })?;
        Block::decode(self.file, h, raw.to_vec())
    }

    /// Index of the first block whose index key is ≥ the target.
    fn partition(&self, user_key: &[u8], trailer: u64) -> usize {
        let target = prefix64(user_key);
        let (mut lo, mut hi) = (0, self.handles.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let p = self.index_prefixes[mid];
            let greater = if target != p {
                target > p
            } else {
                cmp_target(user_key, trailer, self.index_key(mid)) == Ordering::Greater
            };
            if greater {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// The first eight bytes of `user_key` as a big-endian integer, zero-padded. Unequal prefixes
/// order their keys; equal ones say nothing (`"a"` and `"a\0"` share one).
#[inline]
fn prefix64(user_key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = user_key.len().min(8);
    b[..n].copy_from_slice(&user_key[..n]);
    u64::from_be_bytes(b)
}

/// One bit per data block, settable through a shared reference (tables are shared by every
/// reader). Bits are only ever set; a relaxed load that misses a concurrent set only costs
/// one more walk.
#[derive(Default)]
struct BlockMarks(Vec<AtomicU64>);

impl BlockMarks {
    fn new(blocks: usize) -> Self {
        BlockMarks((0..blocks.div_ceil(64)).map(|_| AtomicU64::new(0)).collect())
    }

    fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w.load(AtomicOrdering::Relaxed) & (1 << (i % 64)) != 0)
    }

    fn set(&self, i: usize) {
        if let Some(w) = self.0.get(i / 64) {
            w.fetch_or(1 << (i % 64), AtomicOrdering::Relaxed);
        }
    }
}

impl Clone for BlockMarks {
    fn clone(&self) -> Self {
        BlockMarks(self.0.iter().map(|w| AtomicU64::new(w.load(AtomicOrdering::Relaxed))).collect())
    }
}

impl core::fmt::Debug for BlockMarks {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let n: u32 = self.0.iter().map(|w| w.load(AtomicOrdering::Relaxed).count_ones()).sum();
        write!(f, "BlockMarks({n} walked)")
    }
}

#[cfg(test)]
mod tests {
    use super::super::builder::TableBuilder;
    use super::super::TableOptions;
    use super::*;
    use crate::lsm::key::{trailer, ValueKind};
    use alloc::collections::BTreeSet;
    use alloc::vec;
    use proptest::prelude::*;

    const FILE: FileName = FileName { kind: crate::lsm::io::FileKind::Table, number: 21 };

    /// Model entries: `(user key, trailer, value)` in internal-key order.
    type Model = Vec<(Vec<u8>, u64, Vec<u8>)>;

    fn ikey(user: &[u8], t: u64) -> Vec<u8> {
        let mut v = Vec::new();
        key::encode_internal(&mut v, user, t);
        v
    }

    fn model(raw: Vec<(Vec<u8>, u64, bool, Vec<u8>)>) -> Model {
        let mut seen = BTreeSet::new();
        let mut m: Model = raw
            .into_iter()
            .filter(|(u, s, _, _)| seen.insert((u.clone(), *s)))
            .map(|(u, s, put, v)| {
                let kind = if put { ValueKind::Put } else { ValueKind::Delete };
                (u, trailer(s, kind), v)
            })
            .collect();
        m.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        m
    }

    fn build(m: &Model, opts: &TableOptions) -> (Vec<u8>, TableProps) {
        let mut b = TableBuilder::new(opts);
        for (u, t, v) in m {
            b.add(u, *t, v);
        }
        assert_eq!(b.len(), m.len() as u64);
        let est = b.estimated_file_len();
        let (bytes, props) = b.finish();
        let len = bytes.len() as u64;
        assert!(est.abs_diff(len) <= len / 20 + 256, "estimate {est} for {len}");
        (bytes, props)
    }

    /// Every entry of the table, read block by block in the given direction.
    fn walk(t: &Table, whole: &[u8], forward: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        let blocks: Vec<usize> = if forward { (0..t.block_count()).collect() } else { (0..t.block_count()).rev().collect() };
        for i in blocks {
            let mut c = t.read_block(whole, i).expect("block").cursor();
            if forward { c.seek_to_first() } else { c.seek_to_last() }
            while c.valid() {
                out.push((c.key().to_vec(), c.value().to_vec()));
                if forward { c.next() } else { c.prev() }
            }
        }
        if !forward {
            out.reverse();
        }
        out
    }

    /// First entry ≥ target, through the index like a table iterator.
    fn seek(t: &Table, whole: &[u8], u: &[u8], tr: u64) -> Option<Vec<u8>> {
        let mut i = t.seek_block(u, tr)?;
        loop {
            let mut c = t.read_block(whole, i).expect("block").cursor();
            c.seek(u, tr);
            if c.valid() {
                return Some(c.key().to_vec());
            }
            i += 1;
            if i == t.block_count() {
                return None;
            }
        }
    }

    /// Last entry ≤ target.
    fn seek_for_prev(t: &Table, whole: &[u8], u: &[u8], tr: u64) -> Option<Vec<u8>> {
        let i = t.seek_block_for_prev(u, tr)?;
        let mut c = t.read_block(whole, i).expect("block").cursor();
        c.seek_for_prev(u, tr);
        if c.valid() {
            return Some(c.key().to_vec());
        }
        let mut c = t.read_block(whole, i.checked_sub(1)?).expect("block").cursor();
        c.seek_to_last();
        Some(c.key().to_vec())
    }

    fn arb_entries() -> impl Strategy<Value = Vec<(Vec<u8>, u64, bool, Vec<u8>)>> {
        let user = prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c', b'x']), 1..8);
        let value = prop::collection::vec(any::<u8>(), 0..40);
        prop::collection::vec((user, 0u64..10, any::<bool>(), value), 1..300)
    }

    fn arb_target() -> impl Strategy<Value = (Vec<u8>, u64)> {
        let user = prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c', b'x', b'y']), 0..9);
        (user, prop_oneof![0u64..(11 << 8), Just(u64::MAX)])
    }

    proptest! {
        #[test]
        fn table_matches_model(
            raw in arb_entries(),
            block_size in 32usize..600,
            restart_interval in 1usize..20,
            targets in prop::collection::vec(arb_target(), 1..30),
        ) {
            let m = model(raw);
            let opts = TableOptions { block_size, restart_interval, bloom_bits_per_key: 10 };
            let (whole, props) = build(&m, &opts);
            let t = Table::open_from_bytes(FILE, &whole).expect("opens");
            prop_assert_eq!(t.props(), &props);
            prop_assert_eq!(t.file(), FILE);
            prop_assert_eq!(t.file_len(), whole.len() as u64);
            prop_assert_eq!(t.block_count() as u64, props.data_blocks);
            let keys: Vec<(Vec<u8>, Vec<u8>)> = m.iter().map(|(u, tr, v)| (ikey(u, *tr), v.clone())).collect();
            prop_assert_eq!(&walk(&t, &whole, true), &keys);
            prop_assert_eq!(&walk(&t, &whole, false), &keys);
            prop_assert_eq!(&props.smallest, &keys[0].0);
            prop_assert_eq!(&props.largest, &keys[keys.len() - 1].0);
            prop_assert_eq!(props.entries, m.len() as u64);
            prop_assert_eq!(props.deletions, m.iter().filter(|e| e.1 & 0xff == 0).count() as u64);
            prop_assert_eq!(props.min_seq, m.iter().map(|e| e.1 >> 8).min().unwrap_or(0));
            prop_assert_eq!(props.max_seq, m.iter().map(|e| e.1 >> 8).max().unwrap_or(0));
            prop_assert_eq!(props.raw_key_bytes, m.iter().map(|e| e.0.len() as u64).sum::<u64>());
            prop_assert_eq!(props.raw_value_bytes, m.iter().map(|e| e.2.len() as u64).sum::<u64>());
            for (u, _, _) in &m {
                prop_assert!(t.may_contain(u));
            }
            for (u, tr) in targets {
                let target = ikey(&u, tr);
                let lower = keys.iter().find(|(k, _)| key::cmp_internal(k, &target) != Ordering::Less).map(|e| e.0.clone());
                prop_assert_eq!(seek(&t, &whole, &u, tr), lower);
                let upper = keys.iter().rev().find(|(k, _)| key::cmp_internal(k, &target) != Ordering::Greater).map(|e| e.0.clone());
                prop_assert_eq!(seek_for_prev(&t, &whole, &u, tr), upper);
                let max_seq = tr >> 8;
                let want = m.iter().find(|(mu, mt, _)| mu == &u && mt >> 8 <= max_seq).map(|(_, mt, v)| (*mt, v.clone()));
                let got = t.get_block(&u, max_seq).and_then(|i| {
                    let b = t.read_block(&whole, i).expect("block");
                    b.get(&u, max_seq).map(|(mt, v)| (mt, v.to_vec()))
                });
                prop_assert_eq!(got, want);
            }
        }
    }

    fn sample() -> Vec<u8> {
        let raw = (0..60u64)
            .map(|i| (alloc::format!("key{:03}", i / 3).into_bytes(), 9 - i % 3, i % 4 != 0, vec![i as u8; (i % 7) as usize]))
            .collect();
        let opts = TableOptions { block_size: 128, restart_interval: 4, bloom_bits_per_key: 10 };
        build(&model(raw), &opts).0
    }

    /// Opens the table and reads every block; the first error, if any.
    fn open_and_read_all(whole: &[u8]) -> Result<(), Error> {
        let t = Table::open_from_bytes(FILE, whole)?;
        for i in 0..t.block_count() {
            t.read_block(whole, i)?;
        }
        Ok(())
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let whole = sample();
        open_and_read_all(&whole).expect("intact table reads");
        assert!(Table::open_from_bytes(FILE, &whole).expect("opens").block_count() > 3);
        for i in 0..whole.len() {
            for bit in 0..8 {
                let mut b = whole.clone();
                b[i] ^= 1 << bit;
                match open_and_read_all(&b) {
                    Err(Error::Corruption { file, offset, .. }) => {
                        assert_eq!(file, FILE);
                        assert!(offset <= i as u64, "flip at {i} reported at {offset}");
                    }
                    other => panic!("flip at {i} bit {bit}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn every_truncation_is_detected() {
        let whole = sample();
        for cut in 0..whole.len() {
            assert!(matches!(Table::open_from_bytes(FILE, &whole[..cut]), Err(Error::Corruption { .. })), "cut {cut}");
        }
    }

    #[test]
    fn open_in_two_reads() {
        let whole = sample();
        let len = whole.len() as u64;
        let footer = Footer::decode(FILE, len, &whole[(len - FOOTER_LEN) as usize..]).expect("footer");
        let (off, meta_len) = footer.meta_range();
        let meta = &whole[off as usize..(off + meta_len) as usize];
        let t = Table::open(FILE, len, &footer, meta).expect("opens");
        let t2 = Table::open_from_bytes(FILE, &whole).expect("opens");
        assert_eq!(t.props(), t2.props());
        assert!(t.filter_bytes() > 0 && t.index_bytes() > 0);
        // The wrong meta slice is rejected.
        assert!(Table::open(FILE, len, &footer, &meta[1..]).is_err());
        assert!(Table::open(FILE, len + 1, &footer, meta).is_err());
    }

    #[test]
    fn one_entry_and_no_filter() {
        let m: Model = vec![(b"only".to_vec(), trailer(3, ValueKind::Delete), vec![])];
        let opts = TableOptions { bloom_bits_per_key: 0, ..TableOptions::default() };
        let (whole, props) = build(&m, &opts);
        let t = Table::open_from_bytes(FILE, &whole).expect("opens");
        assert_eq!((props.entries, props.deletions, props.data_blocks), (1, 1, 1));
        assert!(t.may_contain(b"anything"));
        assert_eq!(t.filter_bytes(), 0);
        assert_eq!(t.seek_block(b"only", u64::MAX), Some(0));
        assert_eq!(t.seek_block(b"only", 0), None);
        assert_eq!(t.seek_block(b"p", u64::MAX), None);
        assert_eq!(t.seek_block_for_prev(b"zzz", 0), Some(0));
        assert_eq!(props.smallest_user_key(), b"only");
        assert_eq!(props.largest_user_key(), b"only");
    }

    #[test]
    fn index_prefix_ties_fall_back_to_whole_keys() {
        let users: [&[u8]; 9] = [b"a", b"a\0", b"a\0\0", b"a\0\0\0\0\0\0\0", b"a\0\0\0\0\0\0\0\0", b"abcdefgh", b"abcdefgh\0", b"abcdefgh\x01", b"b"];
        let mut m: Model = Vec::new();
        for u in users {
            for seq in [9, 5] {
                m.push((u.to_vec(), trailer(seq, ValueKind::Put), vec![seq as u8]));
            }
        }
        let opts = TableOptions { block_size: 1, restart_interval: 1, bloom_bits_per_key: 10 };
        let (whole, _) = build(&m, &opts);
        let t = Table::open_from_bytes(FILE, &whole).expect("opens");
        assert_eq!(t.block_count(), m.len());
        for (i, (u, tr, _)) in m.iter().enumerate() {
            assert_eq!(t.seek_block(u, *tr), Some(i), "{u:?}");
            assert_eq!(seek(&t, &whole, u, *tr), Some(ikey(u, *tr)));
            assert_eq!(t.get_block(u, 7), Some(i + 1 - (i % 2)), "{u:?}");
        }
        // Block 9 ends with "a" + 8 zeros; its separator "a\x01" still covers "a" + 9 zeros.
        assert_eq!(t.seek_block(b"a\0\0\0\0\0\0\0\0\0", u64::MAX), Some(9));
        assert_eq!(t.seek_block(b"c", u64::MAX), None);
    }

    #[test]
    fn bloom_skips_most_absent_keys() {
        let m: Model = (0..20_000u32)
            .map(|i| (alloc::format!("present-{i:08}").into_bytes(), trailer(1, ValueKind::Put), vec![1]))
            .collect();
        let (whole, _) = build(&m, &TableOptions::default());
        let t = Table::open_from_bytes(FILE, &whole).expect("opens");
        let fp = (0..100_000u32).filter(|i| t.may_contain(alloc::format!("absent-{i:08}").as_bytes())).count();
        assert!(fp < 1_500, "{fp} false positives in 100000");
    }

    #[test]
    fn decode_block_walks_each_block_once_and_always_checks_the_crc() {
        let m: Model = (0..400u32)
            .map(|i| (alloc::format!("key-{i:05}").into_bytes(), trailer(3, ValueKind::Put), vec![i as u8; 20]))
            .collect();
        let (whole, _) = build(&m, &TableOptions::default());
        let t = Table::open_from_bytes(FILE, &whole).expect("opens");
        let i = 2;
        let h = t.block_handle(i);
        let good = whole[h.offset as usize..(h.offset + u64::from(h.len)) as usize].to_vec();
        // The same block with its first entry claiming a shared prefix, crc recomputed: only
        // the walk can tell.
        let mut bad = good.clone();
        bad[0] = 1;
        let n = bad.len() - 4;
        let crc = crc32fast::hash(&bad[..n]);
        bad[n..].copy_from_slice(&crc.to_le_bytes());
        let buf = |b: &[u8]| -> Arc<[u8]> { b.iter().copied().chain([0xAB; 50]).collect() };
        let reason = |r: Result<Block, Error>| match r {
            Err(Error::Corruption { file, offset, reason }) => {
                assert_eq!((file, offset), (FILE, h.offset));
                reason
            }
            other => panic!("expected corruption, got {other:?}"),
        };
        // A block that fails its walk is never marked: it fails on every read.
        for _ in 0..2 {
            assert_eq!(reason(t.decode_block(i, buf(&bad), bad.len())), "block restart point has a shared prefix");
        }
        let entries = |b: Block| {
            let mut c = b.cursor();
            c.seek_to_first();
            let mut out = Vec::new();
            while c.valid() {
                out.push((c.key().to_vec(), c.value().to_vec()));
                c.next();
            }
            out
        };
        let first = entries(t.decode_block(i, buf(&good), good.len()).expect("walked and decoded"));
        assert_eq!(first, entries(t.read_block(&whole, i).expect("decodes")));
        assert_eq!(entries(t.decode_block(i, buf(&good), good.len()).expect("decoded again")), first);
        // Once walked, later reads of the block check its crc and bounds only: any damage the
        // crc catches is still an error naming the file and the block's offset.
        for bit in [0, 8 * 17 + 3, 8 * (good.len() - 1)] {
            let mut flipped = good.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(reason(t.decode_block(i, buf(&flipped), flipped.len())), "block checksum mismatch");
        }
        assert_eq!(reason(t.decode_block(i, buf(&good), good.len() - 1)), "block length does not match its handle");
        assert!(t.decode_block(i, buf(&bad), bad.len()).is_ok(), "the walk ran once, for the bytes this crc covers");
        // Other blocks are walked on their first read.
        let j = i + 1;
        let hj = t.block_handle(j);
        let mut bad_j = whole[hj.offset as usize..(hj.offset + u64::from(hj.len)) as usize].to_vec();
        bad_j[0] = 1;
        let n = bad_j.len() - 4;
        let crc = crc32fast::hash(&bad_j[..n]);
        bad_j[n..].copy_from_slice(&crc.to_le_bytes());
        assert!(t.decode_block(j, buf(&bad_j), bad_j.len()).is_err());
        assert!(t.decode_block(t.block_count(), buf(&good), good.len()).is_err());
    }
}
