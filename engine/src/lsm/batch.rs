//! An atomic write batch and its encoded form.
//!
//! A batch is kept encoded from the start (`rep`), so logging it to the WAL is a copy, not a
//! second encoding. `rep` is a run of operations:
//!
//! ```text
//! op := kind: u8 | key_len: varint | key | (value_len: varint | value)   -- value only for Put
//! ```
//!
//! A WAL record's payload is `first_seq: u64 LE | count: u32 LE | rep`; operation `i` gets
//! sequence number `first_seq + i`.
use super::key::{self, ValueKind};
use super::varint;
use alloc::vec::Vec;

/// Operations applied together or not at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    rep: Vec<u8>,
    count: u32,
    max_key_len: usize,
    max_value_len: usize,
    empty_key: bool,
    /// The applied mark (see [`Batch::set_applied_mark`]); not part of the WAL record.
    mark: u64,
}

/// One operation of a batch, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op<'a> {
    /// Put or delete.
    pub kind: ValueKind,
    /// The user key.
    pub key: &'a [u8],
    /// The value (empty for a delete).
    pub value: &'a [u8],
}

/// Bytes of a WAL record payload before the ops.
pub const RECORD_HEADER_LEN: usize = 12;

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> &mut Self {
        self.push(ValueKind::Put, key, value);
        self
    }

    /// Adds a put whose key and value are written in place, with no buffer of their own:
    /// `key` must append exactly `key_len` bytes and `value` exactly `value_len` (a mismatch is
    /// a bug in the caller and panics).
    pub fn put_with(&mut self, key_len: usize, value_len: usize, key: impl FnOnce(&mut Vec<u8>), value: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        self.rep.reserve(1 + 2 * 10 + key_len + value_len);
        self.rep.push(ValueKind::Put as u8);
        varint::put(&mut self.rep, key_len as u64);
        let at = self.rep.len();
        key(&mut self.rep);
        assert_eq!(self.rep.len() - at, key_len, "put_with: key length");
        varint::put(&mut self.rep, value_len as u64);
        let at = self.rep.len();
        value(&mut self.rep);
        assert_eq!(self.rep.len() - at, value_len, "put_with: value length");
        self.count += 1;
        self.max_key_len = self.max_key_len.max(key_len);
        self.max_value_len = self.max_value_len.max(value_len);
        self.empty_key |= key_len == 0;
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, key: &[u8]) -> &mut Self {
        self.push(ValueKind::Delete, key, &[]);
        self
    }

    fn push(&mut self, kind: ValueKind, key: &[u8], value: &[u8]) {
        // One growth per operation at most (kind, two varints, key, value).
        self.rep.reserve(1 + 2 * 10 + key.len() + value.len());
        self.rep.push(kind as u8);
        varint::put(&mut self.rep, key.len() as u64);
        self.rep.extend_from_slice(key);
        if kind == ValueKind::Put {
            varint::put(&mut self.rep, value.len() as u64);
            self.rep.extend_from_slice(value);
        }
        self.count += 1;
        self.max_key_len = self.max_key_len.max(key.len());
        self.max_value_len = self.max_value_len.max(value.len());
        self.empty_key |= key.is_empty();
    }

    /// Tags the batch with an *applied mark*: the index of the replicated-log entry it
    /// applies (0: none). The store keeps the largest mark of each memtable and records it
    /// with the memtable's flush (see `Durability::External` and `Store::durable_mark`).
    /// Marks should increase from batch to batch. The mark is not written to the WAL.
    pub fn set_applied_mark(&mut self, mark: u64) -> &mut Self {
        self.mark = mark;
        self
    }

    /// The applied mark (0 when none was set).
    pub fn applied_mark(&self) -> u64 {
        self.mark
    }

    /// Number of operations.
    pub fn len(&self) -> u32 {
        self.count
    }

    /// True when the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Encoded size of the operations.
    pub fn encoded_len(&self) -> usize {
        self.rep.len()
    }

    /// Longest key, for validation.
    pub fn max_key_len(&self) -> usize {
        self.max_key_len
    }

    /// Longest value, for validation.
    pub fn max_value_len(&self) -> usize {
        self.max_value_len
    }

    /// True when some key is empty.
    pub fn has_empty_key(&self) -> bool {
        self.empty_key
    }

    /// The operations in order.
    pub fn iter(&self) -> OpIter<'_> {
        OpIter { rep: &self.rep, left: self.count }
    }

    /// Appends the WAL record payload (`first_seq | count | rep`) to `out`.
    pub fn encode_record(&self, first_seq: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&first_seq.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.rep);
    }

    /// Decodes a WAL record payload: `(first_seq, batch)`. Every op is checked, so a payload
    /// that decodes is safe to apply.
    pub fn decode_record(payload: &[u8]) -> Result<(u64, Batch), &'static str> {
        let mut batch = Batch::default();
        let (first_seq, count) = for_each_op(payload, |_, op| {
            batch.max_key_len = batch.max_key_len.max(op.key.len());
            batch.max_value_len = batch.max_value_len.max(op.value.len());
            batch.empty_key |= op.key.is_empty();
        })?;
        batch.rep = payload[RECORD_HEADER_LEN..].to_vec();
        batch.count = count;
        Ok((first_seq, batch))
    }
}

/// Walks a WAL record payload without copying it: calls `f(seq, op)` for each operation and
/// returns `(first_seq, count)`. On a malformed record the error comes after the operations
/// before it were passed to `f` — callers that must stay atomic check first with
/// [`Batch::decode_record`], or (like recovery) refuse to open on any error.
pub fn for_each_op<'a>(payload: &'a [u8], mut f: impl FnMut(u64, Op<'a>)) -> Result<(u64, u32), &'static str> {
    let (first_seq, count) = record_header(payload)?;
    if first_seq.checked_add(u64::from(count)).is_none_or(|end| end > key::MAX_SEQ + 1) {
        return Err("batch sequence numbers out of range");
    }
    let mut rest = &payload[RECORD_HEADER_LEN..];
    for i in 0..count {
        let (op, used) = decode_op(rest).ok_or("malformed operation in batch record")?;
        f(first_seq + u64::from(i), op);
        rest = &rest[used..];
    }
    if !rest.is_empty() {
        return Err("trailing bytes after batch operations");
    }
    Ok((first_seq, count))
}

/// `(first_seq, count)` from a WAL record payload's header.
fn record_header(payload: &[u8]) -> Result<(u64, u32), &'static str> {
    if payload.len() < RECORD_HEADER_LEN {
        return Err("batch record shorter than its header");
    }
    let mut b8 = [0u8; 8];
    b8.copy_from_slice(&payload[..8]);
    let mut b4 = [0u8; 4];
    b4.copy_from_slice(&payload[8..12]);
    Ok((u64::from_le_bytes(b8), u32::from_le_bytes(b4)))
}

fn decode_op(buf: &[u8]) -> Option<(Op<'_>, usize)> {
    let kind = ValueKind::from_u8(*buf.first()?)?;
    let mut pos = 1;
    let (klen, n) = varint::get(&buf[pos..])?;
    pos += n;
    let kend = pos.checked_add(usize::try_from(klen).ok()?)?;
    let key = buf.get(pos..kend)?;
    pos = kend;
    let value: &[u8] = if kind == ValueKind::Put {
        let (vlen, n) = varint::get(&buf[pos..])?;
        pos += n;
        let vend = pos.checked_add(usize::try_from(vlen).ok()?)?;
        let v = buf.get(pos..vend)?;
        pos = vend;
        v
    } else {
        &[]
    };
    Some((Op { kind, key, value }, pos))
}

/// Iterates a batch's operations.
pub struct OpIter<'a> {
    rep: &'a [u8],
    left: u32,
}

impl<'a> Iterator for OpIter<'a> {
    type Item = Op<'a>;
    fn next(&mut self) -> Option<Op<'a>> {
        if self.left == 0 {
            return None;
        }
        // The rep is built by `push` or checked by `decode_record`, so it always decodes.
        let (op, used) = decode_op(self.rep)?;
        self.rep = &self.rep[used..];
        self.left -= 1;
        Some(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_and_rejects_garbage() {
        let mut b = Batch::new();
        b.put(b"k1", b"v1").delete(b"k2").put(b"", b"");
        let mut rec = Vec::new();
        b.encode_record(42, &mut rec);
        let (seq, d) = Batch::decode_record(&rec).expect("decodes");
        assert_eq!(seq, 42);
        assert_eq!(d, b);
        let ops: Vec<_> = d.iter().collect();
        assert_eq!(ops[1], Op { kind: ValueKind::Delete, key: b"k2", value: b"" });
        for cut in 0..rec.len() {
            assert!(Batch::decode_record(&rec[..cut]).is_err(), "cut at {cut}");
        }
        rec.push(0);
        assert!(Batch::decode_record(&rec).is_err());
    }

    #[test]
    fn sequence_numbers_past_the_maximum_are_rejected_not_overflowed() {
        // Found by the wal_scan fuzz target: first_seq near u64::MAX with two ops.
        let mut b = Batch::new();
        b.delete(b"a").delete(b"b");
        for first in [u64::MAX, u64::MAX - 1, key::MAX_SEQ] {
            let mut rec = Vec::new();
            b.encode_record(first, &mut rec);
            assert_eq!(Batch::decode_record(&rec), Err("batch sequence numbers out of range"));
        }
        let mut rec = Vec::new();
        b.encode_record(key::MAX_SEQ - 1, &mut rec);
        assert!(Batch::decode_record(&rec).is_ok());
    }
}
