//! Blocks: prefix-compressed runs of `(internal key, value)` entries with restart points.
//!
//! ```text
//! block    := contents | crc32(contents): u32 LE
//! contents := entry* | restart: u32 LE × n | n: u32 LE
//! entry    := shared: varint | unshared: varint | value_len: varint | key[shared..] | value
//! ```
//!
//! An entry's key is the previous key's first `shared` bytes followed by its own `unshared`
//! bytes. Every `restart_interval`-th entry is a *restart point*: it stores its whole key
//! (`shared = 0`) and its offset is listed in the restart array, so a reader can binary-search
//! the restart points and walk back by restarting from the previous one, as LevelDB does. Keys
//! are encoded internal keys in strictly increasing [`cmp_internal`](key::cmp_internal) order.
//!
//! [`Block::decode`] checks the crc and walks every entry once, so a decoded block is known to
//! be well formed and its cursors never fail afterwards. A table remembers which of its
//! blocks were walked ([`Table::decode_block`](super::Table::decode_block)): the file is
//! immutable, so a later read of the same block whose crc matches holds the same bytes, and
//! only the crc is checked again.
use super::BlockHandle;
use crate::lsm::error::Error;
use crate::lsm::io::FileName;
use crate::lsm::key;
use crate::lsm::varint;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::ops::Range;

/// A decoded, checksum-verified and fully validated block. Clones share the bytes.
#[derive(Clone)]
pub struct Block {
    /// The block as read: contents followed by the crc, then (in a recycled buffer) unused
    /// bytes up to the buffer's end. (`Arc<[u8]>` keeps the reference count beside the bytes:
    /// one pointer to chase, not two.)
    data: Arc<[u8]>,
    /// Offset of the restart array (= end of the entries).
    restarts_off: usize,
    /// Number of restart points (at least one).
    num_restarts: usize,
}

impl core::fmt::Debug for Block {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Block")
            .field("len", &self.data.len())
            .field("restarts", &self.num_restarts)
            .finish()
    }
}

impl Block {
    /// Checks and decodes a data block read from `file` at `handle`. `raw` must be exactly the
    /// `handle.len` bytes (contents and crc). Errors are [`Error::Corruption`] at `handle.offset`.
    pub fn decode(file: FileName, handle: BlockHandle, raw: Vec<u8>) -> Result<Block, Error> {
        Self::decode_shared(file, handle, Arc::from(raw))
    }

    /// [`decode`](Self::decode) of bytes already in shared memory: the block keeps `raw`
    /// itself, so a binding that reads straight into an `Arc<[u8]>` copies each block once
    /// (from the disk), not twice.
    pub fn decode_shared(file: FileName, handle: BlockHandle, raw: Arc<[u8]>) -> Result<Block, Error> {
        Self::decode_checked(raw, handle.len, true)
            .map_err(|reason| Error::Corruption { file, offset: handle.offset, reason })
    }

    /// [`decode_shared`](Self::decode_shared) of a block occupying the first `len` bytes of a
    /// longer buffer (`buf[len..]` is ignored): lets a binding read into a recycled buffer
    /// (see [`into_buffer`](Self::into_buffer)). Fails like `decode` when `len` does not
    /// match the handle or exceeds the buffer.
    pub fn decode_prefix(file: FileName, handle: BlockHandle, buf: Arc<[u8]>, len: usize) -> Result<Block, Error> {
        Self::decode_prefix_walk(file, handle, buf, len, true)
    }

    /// [`decode_prefix`](Self::decode_prefix) that skips the walk over the entries when `walk`
    /// is false: only the crc and the restart array's bounds are checked. For a block whose
    /// bytes were walked before (see [`Table::decode_block`](super::Table::decode_block)).
    pub(crate) fn decode_prefix_walk(
        file: FileName,
        handle: BlockHandle,
        buf: Arc<[u8]>,
        len: usize,
        walk: bool,
    ) -> Result<Block, Error> {
        let corrupt = |reason| Error::Corruption { file, offset: handle.offset, reason };
        if len != handle.len as usize || len > buf.len() {
            return Err(corrupt("block length does not match its handle"));
        }
        Self::decode_in(buf, len, true, walk).map_err(corrupt)
    }

    /// The block's buffer, when no other clone of the block holds it (for reuse by the next
    /// read: no allocation, no zero-fill, no free). May be longer than the block.
    pub fn into_buffer(self) -> Option<Arc<[u8]>> {
        let mut data = self.data;
        Arc::get_mut(&mut data).is_some().then_some(data)
    }

    /// [`decode`](Self::decode) with a plain reason; `data_block` also requires every trailer to
    /// carry a known value kind (index separators do not).
    pub(crate) fn decode_checked(
        raw: Arc<[u8]>,
        expected_len: u32,
        data_block: bool,
    ) -> Result<Block, &'static str> {
        if raw.len() != expected_len as usize {
            return Err("block length does not match its handle");
        }
        let len = raw.len();
        Self::decode_in(raw, len, data_block, true)
    }

    /// Decodes the block in `raw[..len]` (`len <= raw.len()`), walking its entries when `walk`.
    fn decode_in(raw: Arc<[u8]>, len: usize, data_block: bool, walk: bool) -> Result<Block, &'static str> {
        let contents_len = check_crc(&raw[..len])?.len();
        if contents_len < 4 {
            return Err("block too short for its restart count");
        }
        let num_restarts = read_u32(&raw, contents_len - 4) as usize;
        if num_restarts == 0 {
            return Err("block has no restart points");
        }
        let restarts_off = num_restarts
            .checked_mul(4)
            .and_then(|r| contents_len.checked_sub(4 + r))
            .ok_or("block restart array overruns the block")?;
        let block = Block { data: raw, restarts_off, num_restarts };
        if walk {
            block.validate(data_block)?;
        }
        Ok(block)
    }

    /// Bytes this block holds in memory (its whole buffer), for cache accounting.
    pub fn charge(&self) -> usize {
        self.data.len() + core::mem::size_of::<Block>() + 2 * core::mem::size_of::<usize>()
    }

    /// The newest entry of `user_key` whose sequence number is at most `max_seq`:
    /// `(trailer, value)`, or `None` when the block holds no such entry.
    pub fn get(&self, user_key: &[u8], max_seq: u64) -> Option<(u64, &[u8])> {
        let target = (max_seq.min(key::MAX_SEQ) << 8) | 0xff;
        let contents = &self.data[..self.restarts_off];
        self.touch_restarts();
        let r = self.restart_below(user_key, target);
        let mut off = self.restart_point(r);
        // The answer is in this run or at the next restart point: load its lines together.
        let run_end = if r + 1 < self.num_restarts { self.restart_point(r + 1) } else { self.restarts_off };
        touch(contents, off, run_end.saturating_add(64));
        let mut key = ScratchKey::default();
        // A lean forward scan (no restart bookkeeping): the first entry ≥ the target.
        while off < contents.len() {
            let e = decode_entry(contents, off)?;
            key.set_from(e.shared, &self.data, e.suffix);
            let (found, trailer) = key::split_internal(key.as_slice())?;
            match cmp_bytes(user_key, found) {
                Ordering::Greater => {}
                Ordering::Less => return None,
                Ordering::Equal if trailer > target => {}
                Ordering::Equal => return Some((trailer, &self.data[e.value])),
            }
            off = e.value.end;
        }
        None
    }

    /// A cursor over this block, not yet positioned (call a `seek*` first).
    pub fn cursor(&self) -> BlockCursor {
        let pos = Pos { cur: self.restarts_off, next: self.restarts_off, ..Pos::default() };
        BlockCursor { block: self.clone(), pos, back: Vec::new(), back_keys: Vec::new() }
    }

    /// Number of entries (walks the block).
    pub fn len(&self) -> usize {
        let mut pos = Pos::default();
        self.to_restart(&mut pos, 0);
        let mut n = 0;
        while self.parse_next(&mut pos) {
            n += 1;
        }
        n
    }

    /// Always false: a decoded block holds at least one entry.
    pub fn is_empty(&self) -> bool {
        false
    }

    fn restart_point(&self, i: usize) -> usize {
        read_u32(&self.data, self.restarts_off + 4 * i) as usize
    }

    /// Walks every entry once: varints and lengths in bounds, restart points on entry
    /// boundaries with `shared = 0`, keys long enough to be internal keys and strictly
    /// increasing.
    ///
    /// This runs on every block read from disk, so it is written to be cheap: the previous key
    /// lives in one inline buffer, and each new key (the previous key's first `shared` bytes
    /// and a suffix) is ordered against it by comparing the suffix with the bytes it replaces,
    /// before it overwrites them, instead of building both keys and comparing them whole.
    fn validate(&self, data_block: bool) -> Result<(), &'static str> {
        let data = &self.data[..self.restarts_off];
        let mut key = ScratchKey::default();
        let mut next_restart = 0;
        let mut next_restart_off = self.restart_point(0);
        let mut off = 0;
        while off < data.len() {
            let e = decode_entry(data, off).ok_or("block entry overruns the block")?;
            if off == next_restart_off {
                if e.shared != 0 {
                    return Err("block restart point has a shared prefix");
                }
                next_restart += 1;
                next_restart_off =
                    if next_restart < self.num_restarts { self.restart_point(next_restart) } else { usize::MAX };
            } else if next_restart_off < off {
                return Err("block restart point is not on an entry boundary");
            } else if off == 0 {
                return Err("block does not start with a restart point");
            }
            let s = e.shared;
            if s > key.len {
                return Err("block entry shares more than the previous key");
            }
            let new_len = s + e.suffix.len();
            if new_len < key::TRAILER_LEN {
                return Err("block key shorter than a trailer");
            }
            // The new user key against the previous one. Their first `s` bytes are the same,
            // so when the shorter user key ends within them the lengths decide; otherwise the
            // suffix decides against the previous key's bytes from `s` on.
            let nu = new_len - key::TRAILER_LEN;
            let order = (off != 0).then(|| {
                let prev = key.as_slice();
                let pu = prev.len() - key::TRAILER_LEN;
                let by_user = if s >= nu.min(pu) {
                    nu.cmp(&pu)
                } else {
                    cmp_bytes(&data[e.suffix.start..e.suffix.start + (nu - s)], &prev[s..pu])
                };
                (by_user, trailer_of(prev))
            });
            key.set_from(s, &self.data, e.suffix);
            let trailer = trailer_of(key.as_slice());
            if data_block && key::split_trailer(trailer).is_none() {
                return Err("block key has an unknown value kind");
            }
            match order {
                Some((Ordering::Less, _)) => return Err("block keys out of order"),
                // Same user key: newer (larger) trailers come first.
                Some((Ordering::Equal, prev_trailer)) if trailer >= prev_trailer => {
                    return Err("block keys out of order");
                }
                _ => {}
            }
            off = e.value.end;
        }
        if off == 0 {
            return Err("block has no entries");
        }
        if next_restart != self.num_restarts {
            return Err("block restart point is not on an entry boundary");
        }
        Ok(())
    }

    /// Positions `pos` at restart point `i`, before its entry.
    fn to_restart(&self, pos: &mut Pos, i: usize) {
        pos.key.clear();
        pos.next = self.restart_point(i);
        pos.cur = self.restarts_off;
    }

    /// Moves `pos` to the entry at `pos.next`; false (and invalid) at the end.
    fn parse_next(&self, pos: &mut Pos) -> bool {
        let contents = &self.data[..self.restarts_off];
        let Some(e) = (pos.next < self.restarts_off).then(|| decode_entry(contents, pos.next)).flatten()
        else {
            pos.cur = self.restarts_off;
            pos.next = self.restarts_off;
            pos.key.clear();
            return false;
        };
        pos.key.set_from(e.shared, &self.data, e.suffix);
        pos.cur = pos.next;
        pos.next = e.value.end;
        pos.value = e.value;
        true
    }

    /// The whole key stored at restart point `i`.
    fn restart_key(&self, i: usize) -> &[u8] {
        let contents = &self.data[..self.restarts_off];
        match decode_entry(contents, self.restart_point(i)) {
            Some(e) => &contents[e.suffix],
            None => &[],
        }
    }

    /// Loads the first cache line of every restart entry at once (independent loads, so their
    /// misses overlap) before the binary search walks them one after another. A cached block
    /// is usually cold; this turns ~4 serial misses into about one. Skipped for blocks with
    /// many restart points, where it would load far more than the search reads.
    #[inline]
    fn touch_restarts(&self) {
        if self.num_restarts > 16 {
            return;
        }
        let mut acc = 0u8;
        for i in 0..self.num_restarts {
            acc ^= self.data.get(self.restart_point(i)).copied().unwrap_or(0);
        }
        core::hint::black_box(acc);
    }

    /// The last restart point whose key is below `(user_key, trailer)` (or 0): the first entry
    /// ≥ the target is in its run or at the start of the next.
    fn restart_below(&self, user_key: &[u8], trailer: u64) -> usize {
        let (mut left, mut right) = (0, self.num_restarts - 1);
        while left < right {
            let mid = (left + right).div_ceil(2);
            if cmp_target(user_key, trailer, self.restart_key(mid)) == Ordering::Greater {
                left = mid;
            } else {
                right = mid - 1;
            }
        }
        left
    }

    /// Positions `pos` at the first entry ≥ `(user_key, trailer)`, or invalid past the end.
    fn seek_pos(&self, pos: &mut Pos, user_key: &[u8], trailer: u64) {
        self.to_restart(pos, self.restart_below(user_key, trailer));
        while self.parse_next(pos) {
            if cmp_target(user_key, trailer, pos.key.as_slice()) != Ordering::Greater {
                return;
            }
        }
    }
}

/// An owning cursor over a [`Block`]: moves both ways over its entries in key order.
///
/// A new cursor is unpositioned (invalid). Moving past either end makes it invalid; `next` and
/// `prev` on an invalid cursor do nothing, and `key`/`value` return empty slices.
#[derive(Clone)]
pub struct BlockCursor {
    block: Block,
    pos: Pos,
    /// Entries before `pos` in its restart run, decoded by the last backward step so the
    /// following `prev`s pop them instead of re-walking the run (cleared by every other move).
    back: Vec<Saved>,
    back_keys: Vec<u8>,
}

/// An entry remembered for backward iteration; its key is `back_keys[key_start..]` up to the
/// next saved key.
#[derive(Clone)]
struct Saved {
    cur: usize,
    next: usize,
    value: Range<usize>,
    key_start: usize,
}

impl BlockCursor {
    /// True when positioned on an entry.
    pub fn valid(&self) -> bool {
        self.pos.valid(&self.block)
    }

    /// The current encoded internal key (empty when invalid).
    pub fn key(&self) -> &[u8] {
        self.pos.key.as_slice()
    }

    /// The current user key (empty when invalid).
    pub fn user_key(&self) -> &[u8] {
        key::split_internal(self.key()).map_or(&[][..], |(u, _)| u)
    }

    /// The current trailer (`seq << 8 | kind`; 0 when invalid).
    pub fn trailer(&self) -> u64 {
        key::split_internal(self.key()).map_or(0, |(_, t)| t)
    }

    /// The current value (empty when invalid).
    pub fn value(&self) -> &[u8] {
        if self.valid() {
            &self.block.data[self.pos.value.clone()]
        } else {
            &[]
        }
    }

    /// The block this cursor walks.
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// Moves to the first entry ≥ `(user_key, trailer)`; invalid when there is none.
    pub fn seek(&mut self, user_key: &[u8], trailer: u64) {
        self.forget_back();
        self.block.seek_pos(&mut self.pos, user_key, trailer);
    }

    /// Moves to the last entry ≤ `(user_key, trailer)`; invalid when there is none.
    pub fn seek_for_prev(&mut self, user_key: &[u8], trailer: u64) {
        self.seek(user_key, trailer);
        if !self.valid() {
            self.seek_to_last();
        } else if cmp_target(user_key, trailer, self.key()) == Ordering::Less {
            self.prev();
        }
    }

    /// Moves to the first entry.
    pub fn seek_to_first(&mut self) {
        self.forget_back();
        self.block.to_restart(&mut self.pos, 0);
        self.block.parse_next(&mut self.pos);
    }

    /// Moves to the last entry.
    pub fn seek_to_last(&mut self) {
        self.forget_back();
        let end = self.block.restarts_off;
        self.walk_run(self.block.num_restarts - 1, end);
    }

    /// Moves to the next entry (invalid after the last).
    pub fn next(&mut self) {
        if self.valid() {
            self.forget_back();
            self.block.parse_next(&mut self.pos);
        }
    }

    /// Moves to the previous entry (invalid before the first). Entries are prefix-compressed,
    /// so stepping back restarts from the closest restart point before the current entry and
    /// walks forward, remembering the run so the next steps back are cheap.
    pub fn prev(&mut self) {
        if !self.valid() {
            return;
        }
        if let Some(s) = self.back.pop() {
            self.pos.cur = s.cur;
            self.pos.next = s.next;
            self.pos.value = s.value;
            self.pos.key.clear();
            self.pos.key.set(0, &self.back_keys[s.key_start..]);
            self.back_keys.truncate(s.key_start);
            return;
        }
        let b = &self.block;
        let original = self.pos.cur;
        // The last restart point before the current entry (restart offsets increase).
        let (mut lo, mut hi) = (0, b.num_restarts);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if b.restart_point(mid) < original {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == 0 {
            b.to_restart(&mut self.pos, 0);
            self.pos.next = b.restarts_off;
            return;
        }
        self.walk_run(lo - 1, original);
    }

    /// Walks from restart point `r` to the entry that ends at `end`, saving the ones before it.
    fn walk_run(&mut self, r: usize, end: usize) {
        self.back.clear();
        self.back_keys.clear();
        let b = &self.block;
        b.to_restart(&mut self.pos, r);
        while b.parse_next(&mut self.pos) && self.pos.next < end {
            self.back.push(Saved {
                cur: self.pos.cur,
                next: self.pos.next,
                value: self.pos.value.clone(),
                key_start: self.back_keys.len(),
            });
            self.back_keys.extend_from_slice(self.pos.key.as_slice());
        }
    }

    fn forget_back(&mut self) {
        self.back.clear();
        self.back_keys.clear();
    }
}

/// Writes a block's entries straight into a caller's buffer (the table file being built), then
/// its restart array and crc. One writer is reused for every block of a table.
#[derive(Debug)]
pub(crate) struct BlockWriter {
    restart_interval: usize,
    restarts: Vec<u32>,
    since_restart: usize,
    last_key: Vec<u8>,
    start: usize,
    entries: usize,
}

impl BlockWriter {
    pub(crate) fn new(restart_interval: usize) -> Self {
        BlockWriter {
            restart_interval: restart_interval.max(1),
            restarts: Vec::new(),
            since_restart: 0,
            last_key: Vec::new(),
            start: 0,
            entries: 0,
        }
    }

    /// Where the open block starts in the caller's buffer (meaningful while it has entries).
    pub(crate) fn block_start(&self) -> usize {
        self.start
    }

    /// The caller dropped the first `n` bytes of its buffer (none of them in the open block).
    pub(crate) fn rebase(&mut self, n: usize) {
        if self.entries > 0 {
            debug_assert!(n <= self.start);
            self.start -= n;
        }
    }

    /// Entries in the current block.
    pub(crate) fn entries(&self) -> usize {
        self.entries
    }

    /// The last key added to the current block.
    pub(crate) fn last_key(&self) -> &[u8] {
        &self.last_key
    }

    /// Bytes the current block would take, including its restart array, count and crc.
    pub(crate) fn estimated_len(&self, out: &[u8]) -> usize {
        if self.entries == 0 {
            return 0;
        }
        out.len() - self.start + 4 * self.restarts.len() + 4 + super::BLOCK_TRAILER_LEN
    }

    /// Bytes the current block still needs after its entries: restart array, count and crc.
    pub(crate) fn trailer_len(&self) -> usize {
        if self.entries == 0 {
            return 0;
        }
        4 * self.restarts.len() + 4 + super::BLOCK_TRAILER_LEN
    }

    /// Appends an entry to `out`. Keys must increase; the first entry of a block must be added
    /// while `out` ends where the block starts.
    pub(crate) fn add(&mut self, out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
        if self.entries == 0 {
            self.start = out.len();
        }
        let shared = if self.since_restart == 0 || self.since_restart >= self.restart_interval {
            self.restarts.push((out.len() - self.start) as u32);
            self.since_restart = 0;
            0
        } else {
            common_prefix(&self.last_key, key)
        };
        put_varint_fast(out, shared);
        put_varint_fast(out, key.len() - shared);
        put_varint_fast(out, value.len());
        out.extend_from_slice(&key[shared..]);
        out.extend_from_slice(value);
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(&key[shared..]);
        self.since_restart += 1;
        self.entries += 1;
    }

    /// Ends the current block: appends the restart array, count and crc; returns its handle
    /// (offsets in `out`). Panics on an empty block or one over 4 GiB.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) -> BlockHandle {
        assert!(self.entries > 0, "finishing an empty block");
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        let crc = crc32fast::hash(&out[self.start..]);
        out.extend_from_slice(&crc.to_le_bytes());
        let len = u32::try_from(out.len() - self.start).expect("block over 4 GiB");
        let handle = BlockHandle { offset: self.start as u64, len };
        self.restarts.clear();
        self.since_restart = 0;
        self.entries = 0;
        handle
    }
}

/// Where a cursor stands: the current entry and the key rebuilt so far.
#[derive(Clone, Default)]
struct Pos {
    /// Offset of the current entry (`restarts_off` when invalid).
    cur: usize,
    /// Offset of the entry after it.
    next: usize,
    key: ScratchKey,
    value: Range<usize>,
}

impl Pos {
    fn valid(&self, block: &Block) -> bool {
        self.cur < block.restarts_off
    }
}

/// A key buffer that lives inline for short keys, so point lookups need no allocation.
#[derive(Clone)]
struct ScratchKey {
    small: [u8; INLINE_KEY],
    len: usize,
    big: Vec<u8>,
    spilled: bool,
}

const INLINE_KEY: usize = 128;

impl Default for ScratchKey {
    fn default() -> Self {
        ScratchKey { small: [0; INLINE_KEY], len: 0, big: Vec::new(), spilled: false }
    }
}

impl ScratchKey {
    fn clear(&mut self) {
        self.len = 0;
        self.big.clear();
    }

    /// Keeps the first `shared` bytes and appends `suffix`. `shared` never exceeds the current
    /// length (checked when the block was decoded); a bad value only yields a wrong key.
    fn set(&mut self, shared: usize, suffix: &[u8]) {
        let shared = shared.min(self.len);
        let len = shared + suffix.len();
        if !self.spilled && len <= INLINE_KEY {
            self.small[shared..len].copy_from_slice(suffix);
        } else {
            if !self.spilled {
                self.big.clear();
                self.big.extend_from_slice(&self.small[..shared]);
                self.spilled = true;
            }
            self.big.truncate(shared);
            self.big.extend_from_slice(suffix);
        }
        self.len = len;
    }

    /// [`set`](Self::set) with the suffix at `range` in `data`. Short suffixes are copied as
    /// a fixed 32 bytes (reading past the suffix into the rest of the block, which is
    /// ignored): a fixed-size copy is a couple of vector moves where a variable one is a call.
    #[inline]
    fn set_from(&mut self, shared: usize, data: &[u8], range: Range<usize>) {
        let shared = shared.min(self.len);
        let n = range.len();
        const CHUNK: usize = 32;
        if !self.spilled && n <= CHUNK && shared + CHUNK <= INLINE_KEY && range.start + CHUNK <= data.len() {
            self.small[shared..shared + CHUNK].copy_from_slice(&data[range.start..range.start + CHUNK]);
            self.len = shared + n;
            return;
        }
        self.set(shared, &data[range]);
    }

    fn as_slice(&self) -> &[u8] {
        if self.spilled {
            &self.big[..self.len]
        } else {
            &self.small[..self.len]
        }
    }
}

/// Loads one byte of every cache line of `data[from..to]` (clamped), with independent loads so
/// the misses overlap: the sequential decode that follows then finds the lines in cache.
#[inline]
fn touch(data: &[u8], from: usize, to: usize) {
    let to = to.min(data.len());
    let mut acc = 0u8;
    let mut i = from;
    while i < to {
        acc ^= data[i];
        i += 64;
    }
    core::hint::black_box(acc);
}

/// One decoded entry: byte ranges within the entries area.
struct Entry {
    shared: usize,
    suffix: Range<usize>,
    value: Range<usize>,
}

/// Decodes the entry at `off` in `data` (the entries area); `None` when anything overruns.
#[inline]
fn decode_entry(data: &[u8], off: usize) -> Option<Entry> {
    let mut p = off;
    let shared = read_varint(data, &mut p)?;
    let unshared = read_varint(data, &mut p)?;
    let value_len = read_varint(data, &mut p)?;
    let suffix_end = p.checked_add(unshared)?;
    let value_end = suffix_end.checked_add(value_len)?;
    if value_end > data.len() {
        return None;
    }
    Some(Entry { shared, suffix: p..suffix_end, value: suffix_end..value_end })
}

#[inline]
fn read_varint(data: &[u8], p: &mut usize) -> Option<usize> {
    let b = *data.get(*p)?;
    if b < 0x80 {
        *p += 1;
        return Some(b as usize);
    }
    let (v, n) = varint::get(data.get(*p..)?)?;
    *p += n;
    usize::try_from(v).ok()
}

#[inline]
fn put_varint_fast(out: &mut Vec<u8>, v: usize) {
    if v < 0x80 {
        out.push(v as u8);
    } else {
        varint::put(out, v as u64);
    }
}

/// Compares the target `(user_key, trailer)` with an encoded internal key, like
/// [`key::cmp_parts`] but with an inlined byte comparison (keys are short; a `memcmp` call
/// costs more than the comparison).
#[inline]
pub(crate) fn cmp_target(user_key: &[u8], trailer: u64, ikey: &[u8]) -> Ordering {
    match key::split_internal(ikey) {
        Some((u, t)) => cmp_bytes(user_key, u).then_with(|| t.cmp(&trailer)),
        None => Ordering::Greater,
    }
}

/// Bytewise comparison, eight bytes at a time.
#[inline]
fn cmp_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let (x, y) = (read_u64_be(a, i), read_u64_be(b, i));
        if x != y {
            return x.cmp(&y);
        }
        i += 8;
    }
    while i < n {
        if a[i] != b[i] {
            return a[i].cmp(&b[i]);
        }
        i += 1;
    }
    a.len().cmp(&b.len())
}

/// Length of the common prefix of `a` and `b`, eight bytes at a time.
#[inline]
pub(crate) fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = read_u64(a, i) ^ read_u64(b, i);
        if x != 0 {
            return i + (x.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// Verifies the crc at the end of a block; returns the contents.
pub(crate) fn check_crc(raw: &[u8]) -> Result<&[u8], &'static str> {
    if raw.len() < super::BLOCK_TRAILER_LEN {
        return Err("block shorter than its checksum");
    }
    let (contents, crc) = raw.split_at(raw.len() - super::BLOCK_TRAILER_LEN);
    if crc32fast::hash(contents).to_le_bytes() != crc {
        return Err("block checksum mismatch");
    }
    Ok(contents)
}

/// The trailer of an internal key at least [`key::TRAILER_LEN`] bytes long.
#[inline]
fn trailer_of(ikey: &[u8]) -> u64 {
    key::split_internal(ikey).map_or(0, |(_, t)| t)
}

fn read_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn read_u64_be(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

fn read_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lsm::key::{trailer, ValueKind};
    use alloc::collections::BTreeSet;
    use alloc::vec;
    use proptest::prelude::*;

    const FILE: FileName = FileName { kind: crate::lsm::io::FileKind::Table, number: 4 };

    /// A model entry: encoded internal key and value.
    type Model = Vec<(Vec<u8>, Vec<u8>)>;

    fn ikey(user: &[u8], t: u64) -> Vec<u8> {
        let mut v = Vec::new();
        key::encode_internal(&mut v, user, t);
        v
    }

    /// Sorted, deduplicated entries from arbitrary `(user, seq, is_put, value)` tuples.
    fn model(raw: Vec<(Vec<u8>, u64, bool, Vec<u8>)>) -> Model {
        let mut seen = BTreeSet::new();
        let mut m: Model = raw
            .into_iter()
            .filter(|(u, s, _, _)| seen.insert((u.clone(), *s)))
            .map(|(u, s, put, v)| {
                let kind = if put { ValueKind::Put } else { ValueKind::Delete };
                (ikey(&u, trailer(s, kind)), v)
            })
            .collect();
        m.sort_by(|a, b| key::cmp_internal(&a.0, &b.0));
        m
    }

    fn build(m: &Model, interval: usize) -> (Vec<u8>, BlockHandle) {
        let mut out = vec![0xee; 3]; // the block need not start at offset 0
        let mut w = BlockWriter::new(interval);
        for (k, v) in m {
            w.add(&mut out, k, v);
        }
        let h = w.finish(&mut out);
        (out, h)
    }

    fn decode(m: &Model, interval: usize) -> Block {
        let (out, h) = build(m, interval);
        let raw = out[h.offset as usize..].to_vec();
        Block::decode(FILE, h, raw).expect("decodes")
    }

    fn arb_entries() -> impl Strategy<Value = Vec<(Vec<u8>, u64, bool, Vec<u8>)>> {
        // Few distinct bytes so keys share prefixes and user keys repeat with several seqs.
        let user = prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c']), 0..6);
        let value = prop::collection::vec(any::<u8>(), 0..20);
        prop::collection::vec((user, 0u64..20, any::<bool>(), value), 1..120)
    }

    fn arb_target() -> impl Strategy<Value = (Vec<u8>, u64)> {
        let user = prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c', b'd']), 0..7);
        (user, prop_oneof![0u64..(21 << 8), Just(u64::MAX)])
    }

    proptest! {
        #[test]
        fn cursor_matches_model(
            raw in arb_entries(),
            interval in 1usize..20,
            targets in prop::collection::vec(arb_target(), 1..20),
        ) {
            let m = model(raw);
            let b = decode(&m, interval);
            prop_assert_eq!(b.len(), m.len());
            let mut c = b.cursor();
            prop_assert!(!c.valid());
            // Forward.
            c.seek_to_first();
            let mut fwd = Vec::new();
            while c.valid() {
                fwd.push((c.key().to_vec(), c.value().to_vec()));
                c.next();
            }
            prop_assert_eq!(&fwd, &m);
            // Backward.
            c.seek_to_last();
            let mut back = Vec::new();
            while c.valid() {
                back.push((c.key().to_vec(), c.value().to_vec()));
                c.prev();
            }
            back.reverse();
            prop_assert_eq!(&back, &m);
            for (u, t) in targets {
                let target = ikey(&u, t);
                let lower = m.iter().position(|(k, _)| key::cmp_internal(k, &target) != Ordering::Less);
                c.seek(&u, t);
                match lower {
                    Some(i) => {
                        prop_assert!(c.valid());
                        prop_assert_eq!(c.key(), &m[i].0[..]);
                        // Step back and forth around the landing point.
                        c.prev();
                        if i == 0 { prop_assert!(!c.valid()); } else { prop_assert_eq!(c.key(), &m[i - 1].0[..]); }
                    }
                    None => prop_assert!(!c.valid()),
                }
                let upper = m.iter().rposition(|(k, _)| key::cmp_internal(k, &target) != Ordering::Greater);
                c.seek_for_prev(&u, t);
                match upper {
                    Some(i) => {
                        prop_assert!(c.valid());
                        prop_assert_eq!(c.key(), &m[i].0[..]);
                        c.next();
                        if i + 1 == m.len() { prop_assert!(!c.valid()); } else { prop_assert_eq!(c.key(), &m[i + 1].0[..]); }
                    }
                    None => prop_assert!(!c.valid()),
                }
                // Point lookup: newest entry of `u` with seq ≤ t >> 8.
                let max_seq = t >> 8;
                let want = m.iter().find(|(k, _)| {
                    let (ku, kt) = key::split_internal(k).expect("internal key");
                    ku == &u[..] && kt >> 8 <= max_seq
                });
                let got = b.get(&u, max_seq);
                match want {
                    Some((k, v)) => {
                        let kt = key::split_internal(k).expect("internal key").1;
                        prop_assert_eq!(got, Some((kt, &v[..])));
                    }
                    None => prop_assert_eq!(got, None),
                }
            }
        }
    }

    proptest! {
        #[test]
        fn random_walk_matches_model(
            raw in arb_entries(),
            interval in 1usize..20,
            moves in prop::collection::vec(0u8..6, 1..200),
        ) {
            let m = model(raw);
            let b = decode(&m, interval);
            let mut c = b.cursor();
            // The model position: Some(index) or None (invalid).
            let mut at: Option<usize> = None;
            for mv in moves {
                match mv {
                    0 | 1 => { c.next(); at = at.and_then(|i| (i + 1 < m.len()).then_some(i + 1)); }
                    2 | 3 => { c.prev(); at = at.and_then(|i| i.checked_sub(1)); }
                    4 => { c.seek_to_first(); at = Some(0); }
                    _ => { c.seek_to_last(); at = Some(m.len() - 1); }
                }
                match at {
                    Some(i) => {
                        prop_assert!(c.valid());
                        prop_assert_eq!((c.key(), c.value()), (&m[i].0[..], &m[i].1[..]));
                    }
                    None => prop_assert!(!c.valid()),
                }
            }
        }
    }

    #[test]
    fn long_keys_spill_out_of_line() {
        let mut m: Model = Vec::new();
        for i in 0..40u8 {
            let user = vec![b'k'; 100 + i as usize * 3];
            m.push((ikey(&user, trailer(5, ValueKind::Put)), vec![i]));
        }
        let b = decode(&m, 4);
        let mut c = b.cursor();
        c.seek_to_last();
        for (k, v) in m.iter().rev() {
            assert_eq!((c.key(), c.value()), (&k[..], &v[..]));
            c.prev();
        }
        assert!(!c.valid());
        let user = vec![b'k'; 160];
        assert_eq!(b.get(&user, 9), Some((trailer(5, ValueKind::Put), &[20u8][..])));
        assert_eq!(b.get(&user, 4), None);
        assert_eq!(b.get(&user[..159], 9), None);
    }

    #[test]
    fn next_and_prev_on_invalid_cursor_do_nothing() {
        let m = model(vec![(b"a".to_vec(), 1, true, b"x".to_vec())]);
        let b = decode(&m, 16);
        let mut c = b.cursor();
        c.next();
        c.prev();
        assert!(!c.valid());
        assert_eq!((c.key(), c.value(), c.trailer()), (&[][..], &[][..], 0));
        c.seek_to_first();
        assert_eq!((c.user_key(), c.trailer()), (&b"a"[..], trailer(1, ValueKind::Put)));
        c.next();
        c.prev();
        assert!(!c.valid());
    }

    fn sample() -> (Vec<u8>, BlockHandle) {
        let raw = (0..30u64).map(|i| (alloc::format!("key{:03}", i / 2).into_bytes(), 9 - i % 2, i % 3 != 0, vec![i as u8; (i % 5) as usize])).collect();
        let (out, h) = build(&model(raw), 4);
        (out[h.offset as usize..].to_vec(), BlockHandle { offset: 777, len: h.len })
    }

    fn reason(raw: Vec<u8>, h: BlockHandle) -> &'static str {
        match Block::decode(FILE, h, raw) {
            Err(Error::Corruption { file, offset, reason }) => {
                assert_eq!((file, offset), (FILE, h.offset));
                reason
            }
            Err(e) => panic!("unexpected {e:?}"),
            Ok(_) => panic!("corrupt block decoded"),
        }
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let (raw, h) = sample();
        Block::decode(FILE, h, raw.clone()).expect("decodes");
        for i in 0..raw.len() {
            for bit in 0..8 {
                let mut r = raw.clone();
                r[i] ^= 1 << bit;
                reason(r, h);
            }
        }
        for cut in 0..raw.len() {
            let r = raw[..cut].to_vec();
            reason(r.clone(), h);
            reason(r, BlockHandle { offset: 777, len: cut as u32 });
        }
    }

    /// Rewrites the contents and fixes the crc, so only structure checks can catch it.
    fn recrc(mut contents: Vec<u8>) -> (Vec<u8>, BlockHandle) {
        let crc = crc32fast::hash(&contents);
        contents.extend_from_slice(&crc.to_le_bytes());
        let h = BlockHandle { offset: 5, len: contents.len() as u32 };
        (contents, h)
    }

    #[test]
    fn structural_damage_behind_a_good_crc_is_detected() {
        let (raw, _) = sample();
        let contents = raw[..raw.len() - 4].to_vec();
        let n = contents.len();
        // Restart count too large, zero, or array pointing mid-entry.
        for count in [0u32, 1_000_000, u32::MAX] {
            let mut c = contents.clone();
            c[n - 4..].copy_from_slice(&count.to_le_bytes());
            let (r, h) = recrc(c);
            reason(r, h);
        }
        let mut c = contents.clone();
        let restarts = u32::from_le_bytes(c[n - 4..].try_into().expect("4 bytes")) as usize;
        let second = n - 4 - 4 * restarts + 4;
        c[second] ^= 1; // second restart offset moves by one byte
        let (r, h) = recrc(c);
        reason(r, h);
        // Shared prefix at a restart point, keys out of order, too-short keys.
        let mut c = contents.clone();
        c[0] = 1;
        let (r, h) = recrc(c);
        reason(r, h);
        let mut w = BlockWriter::new(16);
        let mut out = Vec::new();
        w.add(&mut out, &ikey(b"b", 1 << 8), b"");
        w.add(&mut out, &ikey(b"a", 1 << 8), b"");
        w.finish(&mut out);
        let h = BlockHandle { offset: 0, len: out.len() as u32 };
        assert_eq!(reason(out, h), "block keys out of order");
        let mut out = Vec::new();
        w.add(&mut out, b"short", b"");
        w.finish(&mut out);
        let h = BlockHandle { offset: 0, len: out.len() as u32 };
        assert_eq!(reason(out, h), "block key shorter than a trailer");
        // A data block must carry known value kinds.
        let mut out = Vec::new();
        w.add(&mut out, &ikey(b"a", u64::MAX), b"");
        w.finish(&mut out);
        let h = BlockHandle { offset: 0, len: out.len() as u32 };
        assert_eq!(reason(out, h), "block key has an unknown value kind");
        // No entries at all.
        let (r, h) = recrc(1u32.to_le_bytes().iter().chain(&0u32.to_le_bytes()).copied().collect());
        reason(r, h);
    }

    /// The structure checks of `validate`, written the plain way (build every key whole, then
    /// compare it with the previous one): the reference the fast walk must agree with.
    fn validate_reference(b: &Block, data_block: bool) -> Result<(), ()> {
        let data = &b.data[..b.restarts_off];
        let restarts: Vec<usize> = (0..b.num_restarts).map(|i| b.restart_point(i)).collect();
        let (mut prev, mut off, mut entries) = (Vec::<u8>::new(), 0, 0);
        let mut starts = Vec::new();
        while off < data.len() {
            let e = decode_entry(data, off).ok_or(())?;
            if restarts.contains(&off) && e.shared != 0 || e.shared > prev.len() {
                return Err(());
            }
            let mut k = prev[..e.shared].to_vec();
            k.extend_from_slice(&data[e.suffix.clone()]);
            let (_, t) = key::split_internal(&k).ok_or(())?;
            if data_block && key::split_trailer(t).is_none() {
                return Err(());
            }
            if entries > 0 && key::cmp_internal(&prev, &k) != Ordering::Less {
                return Err(());
            }
            starts.push(off);
            (prev, off, entries) = (k, e.value.end, entries + 1);
        }
        // Every restart point is an entry start, in order, the first at 0.
        let on_entries = restarts.iter().all(|r| starts.contains(r));
        let increasing = restarts.windows(2).all(|w| w[0] < w[1]);
        if entries == 0 || !on_entries || !increasing || restarts[0] != 0 {
            return Err(());
        }
        Ok(())
    }

    /// Entries `(shared, suffix, value length)` with restart points every `interval` entries,
    /// encoded as they are (no checks): the contents of a block, without its crc.
    fn raw_block(entries: &[(usize, Vec<u8>, u8)], interval: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut restarts = Vec::new();
        for (i, (shared, suffix, vlen)) in entries.iter().enumerate() {
            if i % interval == 0 {
                restarts.push(out.len() as u32);
            }
            put_varint_fast(&mut out, *shared);
            put_varint_fast(&mut out, suffix.len());
            put_varint_fast(&mut out, usize::from(*vlen));
            out.extend_from_slice(suffix);
            out.extend(core::iter::repeat_n(7u8, usize::from(*vlen)));
        }
        for r in &restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&(restarts.len().max(1) as u32).to_le_bytes());
        out
    }

    /// A well-formed block's entries (keys of a sorted model, prefix-compressed within restart
    /// runs) with one damage applied: `0` none, `1` two entries swapped, `2` an entry
    /// repeated, `3` a `shared` value changed, `4` a key byte changed, `5` a key cut short.
    fn damaged_entries(m: &Model, interval: usize, damage: u8, at: usize, x: u8) -> Vec<(usize, Vec<u8>, u8)> {
        let mut keys: Vec<Vec<u8>> = m.iter().map(|(k, _)| k.clone()).collect();
        let i = at % keys.len();
        let j = (i + 1).min(keys.len() - 1);
        match damage {
            1 => keys.swap(i, j),
            2 => keys.insert(i, keys[i].clone()),
            4 if !keys[i].is_empty() => {
                let n = keys[i].len();
                keys[i][usize::from(x) % n] ^= x | 1;
            }
            5 => keys[i].truncate(usize::from(x) % 9),
            _ => {}
        }
        let mut prev: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        for (n, k) in keys.iter().enumerate() {
            let mut shared = if n % interval == 0 { 0 } else { common_prefix(&prev, k) };
            let suffix = k[shared..].to_vec();
            if damage == 3 && n == i {
                shared = usize::from(x) % (prev.len() + 2);
            }
            out.push((shared, suffix, x % 3));
            prev = k.clone();
        }
        out
    }

    proptest! {
        #[test]
        fn fast_validation_agrees_with_the_plain_one(
            raw in arb_entries(),
            interval in 1usize..6,
            damage in 0u8..6,
            at: usize,
            x: u8,
            bump in prop::option::of((0usize..8, 1u32..4)),
            data_block: bool,
        ) {
            let entries = damaged_entries(&model(raw), interval, damage, at, x);
            let mut contents = raw_block(&entries, interval);
            let n = contents.len();
            let num = read_u32(&contents, n - 4) as usize;
            let Some(restarts_off) = (n - 4).checked_sub(4 * num) else { return Ok(()) };
            if let Some((i, d)) = bump.filter(|_| x % 4 == 0) {
                // Move one restart point off its entry.
                let at = restarts_off + 4 * (i % num);
                let moved = read_u32(&contents, at).wrapping_add(d);
                contents[at..at + 4].copy_from_slice(&moved.to_le_bytes());
            }
            let (raw, h) = recrc(contents.clone());
            let fast = Block::decode_checked(Arc::from(raw), h.len, data_block).map(|_| ());
            let b = Block { data: Arc::from(contents), restarts_off, num_restarts: num };
            prop_assert_eq!(fast.is_ok(), validate_reference(&b, data_block).is_ok(), "{:?}", fast);
        }
    }

    #[test]
    fn fast_validation_orders_same_user_keys_by_trailer() {
        let t = |seq| trailer(seq, ValueKind::Put);
        // Same user key: the newer (larger) trailer must come first, sharing the key's bytes.
        let mut w = BlockWriter::new(16);
        let mut out = Vec::new();
        w.add(&mut out, &ikey(b"key", t(5)), b"");
        w.add(&mut out, &ikey(b"key", t(9)), b"");
        w.finish(&mut out);
        let h = BlockHandle { offset: 0, len: out.len() as u32 };
        assert_eq!(reason(out, h), "block keys out of order");
        let mut out = Vec::new();
        w.add(&mut out, &ikey(b"key", t(9)), b"");
        w.add(&mut out, &ikey(b"key", t(5)), b"");
        w.add(&mut out, &ikey(b"keyz", t(1)), b"");
        w.add(&mut out, &ikey(b"kez", t(1)), b"");
        w.finish(&mut out);
        let h = BlockHandle { offset: 0, len: out.len() as u32 };
        assert!(Block::decode(FILE, h, out).is_ok());
        // A longer user key sharing the whole shorter one sorts after it, never before.
        let mut out = Vec::new();
        w.add(&mut out, &ikey(b"keyz", t(1)), b"");
        w.add(&mut out, &ikey(b"key", t(1)), b"");
        w.finish(&mut out);
        let h = BlockHandle { offset: 0, len: out.len() as u32 };
        assert_eq!(reason(out, h), "block keys out of order");
    }

    #[test]
    fn byte_comparison_matches_slices() {
        let samples: [&[u8]; 9] = [b"", b"a", b"ab", b"abcdefgh", b"abcdefgi", b"abcdefghi", b"abcdefgh\x00", b"\xff", b"abcdefghijklmnopq"];
        for a in samples {
            for b in samples {
                assert_eq!(cmp_bytes(a, b), a.cmp(b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn common_prefix_lengths() {
        assert_eq!(common_prefix(b"", b"abc"), 0);
        assert_eq!(common_prefix(b"abcdefghijk", b"abcdefghijz"), 10);
        assert_eq!(common_prefix(b"abcdefgh", b"abcdefgh"), 8);
        assert_eq!(common_prefix(b"abcdeXgh12", b"abcdefgh12"), 5);
    }

    #[test]
    fn a_block_decodes_from_the_front_of_a_longer_buffer() {
        let m: Model = (0..40u32)
            .map(|i| (ikey(alloc::format!("key{i:04}").as_bytes(), trailer(9, ValueKind::Put)), vec![i as u8; 30]))
            .collect();
        let (out, h) = build(&m, 4);
        let raw = out[h.offset as usize..].to_vec();
        let h = BlockHandle { offset: 0, len: raw.len() as u32 };
        let mut buf = raw.clone();
        buf.extend_from_slice(&[0xAB; 100]); // stale bytes of a recycled buffer
        let b = Block::decode_prefix(FILE, h, Arc::from(buf.clone()), raw.len()).expect("decodes");
        for (k, v) in &m {
            let (user, _) = key::split_internal(k).expect("internal key");
            assert_eq!(b.get(user, 100).map(|(_, v)| v.to_vec()), Some(v.clone()));
        }
        assert_eq!(b.len(), m.len());
        assert_eq!(b.charge(), Block::decode(FILE, h, raw.clone()).expect("decodes").charge() + 100);
        // Unshared: the buffer comes back whole; shared: it does not.
        let again = b.clone();
        assert!(b.into_buffer().is_none());
        assert_eq!(again.into_buffer().map(|a| a.len()), Some(buf.len()));
        // A length other than the handle's, or past the buffer, is corruption.
        assert!(Block::decode_prefix(FILE, h, Arc::from(buf.clone()), raw.len() - 1).is_err());
        let long = BlockHandle { offset: 0, len: buf.len() as u32 + 1 };
        assert!(Block::decode_prefix(FILE, long, Arc::from(buf.clone()), buf.len() + 1).is_err());
    }
}
