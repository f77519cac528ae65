//! Lock and write records and their compact binary encoding.
//!
//! Hand-written, in the spirit of TiKV's: a kind byte, the required fields as varints, then
//! optional fields each introduced by a tag byte. Values of at most [`SHORT_VALUE_MAX_LEN`]
//! bytes are inlined in the record (TiKV's rule); longer ones live in the default CF.
//!
//! ```text
//! write := kind | start_ts: varint | field*
//!   kind  := 'P' put | 'D' delete | 'R' rollback | 'L' lock
//!   field := 'v' len: u8 value          -- the short value of a put
//!          | 'R'                        -- a rollback of the transaction `commit_ts` overlaps it
//!          | 'c' create_revision: varint  -- (puts) commit ts of the put that created the key
//!          | 'n' version: varint          -- (puts) puts since creation, this one included
//!          | 'e' lease: varint            -- (puts) the lease the key is attached to
//! lock  := kind | primary_len: varint | primary | start_ts: varint | ttl_ms: varint | field*
//!   kind  := 'P' put | 'D' delete | 'L' lock | 'S' pessimistic
//!   field := 'v' len: u8 value | 'f' for_update_ts: varint | 't' txn_size: varint
//!          | 'c' min_commit_ts: varint
//! ```
//!
//! Each optional field appears at most once; the decoder rejects unknown kinds and tags,
//! duplicate fields and truncated input with a [`RecordError`].
use super::{LeaseId, Ts};
use crate::lsm::varint;
use alloc::vec::Vec;

/// The longest value inlined in a lock or write record.
pub const SHORT_VALUE_MAX_LEN: usize = 255;

/// What a transaction does to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockKind {
    /// Writes a value.
    Put,
    /// Deletes the key.
    Delete,
    /// Only locks the key (a read that must not be overwritten before commit).
    Lock,
    /// A pessimistic lock taken before prewrite; it does not block readers.
    Pessimistic,
}

/// What a write-CF record says about a key at its commit timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WriteKind {
    /// A committed value.
    Put,
    /// A committed delete.
    Delete,
    /// The transaction `start_ts` was rolled back (stored at `commit_ts == start_ts`).
    Rollback,
    /// A committed lock-only mutation: no change to the value.
    Lock,
}

/// A Percolator lock: the key is being written by the transaction `start_ts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lock {
    /// What the transaction does to the key.
    pub kind: LockKind,
    /// The transaction's primary key: its commit record decides the fate of every lock.
    pub primary: Vec<u8>,
    /// The transaction's start timestamp.
    pub start_ts: Ts,
    /// Time to live from the physical part of `start_ts`, in ms.
    pub ttl_ms: u64,
    /// The value when it is short enough to inline.
    pub short_value: Option<Vec<u8>>,
    /// The transaction may not commit below this; readers at a smaller ts ignore the lock.
    pub min_commit_ts: Ts,
    /// For pessimistic transactions, the ts the conflict check was done at (else zero).
    pub for_update_ts: Ts,
    /// Number of keys in the transaction (a hint for resolvers), zero when unknown.
    pub txn_size: u64,
}

/// A write-CF record: the outcome of the transaction `start_ts` on a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// Put, delete, rollback or lock.
    pub kind: WriteKind,
    /// The start timestamp of the transaction that wrote it.
    pub start_ts: Ts,
    /// The value of a put when it is inlined.
    pub short_value: Option<Vec<u8>>,
    /// A rollback of the transaction whose start_ts equals this record's commit_ts was folded
    /// into this record (the two would otherwise share a key).
    pub overlapped_rollback: bool,
    /// For a put: the commit ts of the put that created the key (the first put after its
    /// last delete), etcd's `create_revision`. [`Ts::ZERO`] when not recorded (records
    /// written before the field existed); see `revision::key_meta`.
    pub create_revision: Ts,
    /// For a put: the number of puts since the key was created, this one included (etcd's
    /// `version`); 0 when not recorded.
    pub version: u64,
    /// For a put: the lease the key is attached to.
    pub lease: Option<LeaseId>,
}

/// Why bytes do not decode as a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// The input ended early.
    Truncated,
    /// The kind byte is unknown.
    UnknownKind(u8),
    /// An optional field's tag is unknown.
    UnknownField(u8),
    /// An optional field appears twice.
    DuplicateField(u8),
}

impl core::fmt::Display for RecordError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RecordError::Truncated => write!(f, "record truncated"),
            RecordError::UnknownKind(b) => write!(f, "unknown record kind {b:#04x}"),
            RecordError::UnknownField(b) => write!(f, "unknown record field {b:#04x}"),
            RecordError::DuplicateField(b) => write!(f, "duplicate record field {b:#04x}"),
        }
    }
}

impl Write {
    /// A record with no short value and no overlapped rollback.
    pub fn new(kind: WriteKind, start_ts: Ts) -> Write {
        Write {
            kind,
            start_ts,
            short_value: None,
            overlapped_rollback: false,
            create_revision: Ts::ZERO,
            version: 0,
            lease: None,
        }
    }

    /// True for the records that carry data (put or delete), false for rollback and lock.
    pub fn is_data(&self) -> bool {
        matches!(self.kind, WriteKind::Put | WriteKind::Delete)
    }

    /// The encoded record.
    pub fn encode(&self) -> Vec<u8> {
        let value = self.short_value.as_deref();
        let mut out = Vec::with_capacity(self.encoded_len_with(value));
        self.encode_with(value, &mut out);
        out
    }

    /// Length of the record encoded with short value `value` (in place of its own).
    pub fn encoded_len_with(&self, value: Option<&[u8]>) -> usize {
        let tagged = |present: bool, v: u64| if present { 1 + varint_len(v) } else { 0 };
        1 + varint_len(self.start_ts.0)
            + value.map_or(0, |v| 2 + v.len())
            + usize::from(self.overlapped_rollback)
            + tagged(self.create_revision != Ts::ZERO, self.create_revision.0)
            + tagged(self.version != 0, self.version)
            + self.lease.map_or(0, |l| 1 + varint_len(l.0))
    }

    /// Appends the record with short value `value` (in place of its own) to `out`: the
    /// encoding of a copy whose `short_value` is `value`, without making the copy.
    pub fn encode_with(&self, value: Option<&[u8]>, out: &mut Vec<u8>) {
        out.push(match self.kind {
            WriteKind::Put => b'P',
            WriteKind::Delete => b'D',
            WriteKind::Rollback => b'R',
            WriteKind::Lock => b'L',
        });
        varint::put(out, self.start_ts.0);
        if let Some(v) = value {
            put_short_value(out, v);
        }
        if self.overlapped_rollback {
            out.push(b'R');
        }
        if self.create_revision != Ts::ZERO {
            out.push(b'c');
            varint::put(out, self.create_revision.0);
        }
        if self.version != 0 {
            out.push(b'n');
            varint::put(out, self.version);
        }
        if let Some(lease) = self.lease {
            out.push(b'e');
            varint::put(out, lease.0);
        }
    }

    /// Decodes a record; all of `buf` must belong to it.
    pub fn decode(buf: &[u8]) -> Result<Write, RecordError> {
        let mut r = Cursor { buf };
        let kind = match r.byte()? {
            b'P' => WriteKind::Put,
            b'D' => WriteKind::Delete,
            b'R' => WriteKind::Rollback,
            b'L' => WriteKind::Lock,
            b => return Err(RecordError::UnknownKind(b)),
        };
        let mut w = Write::new(kind, Ts(r.varint()?));
        let mut seen = Seen::default();
        while !r.buf.is_empty() {
            let tag = r.byte()?;
            seen.mark(tag)?;
            match tag {
                b'v' => w.short_value = Some(r.short_value()?),
                b'R' => w.overlapped_rollback = true,
                b'c' => w.create_revision = Ts(r.varint()?),
                b'n' => w.version = r.varint()?,
                b'e' => w.lease = Some(LeaseId(r.varint()?)),
                _ => return Err(RecordError::UnknownField(tag)),
            }
        }
        Ok(w)
    }
}

impl Lock {
    /// A lock with no short value, `min_commit_ts = start_ts + 1` and no pessimistic fields.
    pub fn new(kind: LockKind, primary: Vec<u8>, start_ts: Ts, ttl_ms: u64) -> Lock {
        Lock {
            kind,
            primary,
            start_ts,
            ttl_ms,
            short_value: None,
            min_commit_ts: start_ts.next(),
            for_update_ts: Ts::ZERO,
            txn_size: 0,
        }
    }

    /// True when the lock's TTL has run out at `now_ms` (measured from `start_ts`'s physical
    /// time, as TiKV does).
    pub fn is_expired(&self, now_ms: u64) -> bool {
        now_ms >= self.start_ts.physical_ms().saturating_add(self.ttl_ms)
    }

    /// The encoded record.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            32 + self.primary.len() + self.short_value.as_ref().map_or(0, |v| v.len() + 2),
        );
        out.push(match self.kind {
            LockKind::Put => b'P',
            LockKind::Delete => b'D',
            LockKind::Lock => b'L',
            LockKind::Pessimistic => b'S',
        });
        varint::put(&mut out, self.primary.len() as u64);
        out.extend_from_slice(&self.primary);
        varint::put(&mut out, self.start_ts.0);
        varint::put(&mut out, self.ttl_ms);
        if let Some(v) = &self.short_value {
            put_short_value(&mut out, v);
        }
        if self.for_update_ts != Ts::ZERO {
            out.push(b'f');
            varint::put(&mut out, self.for_update_ts.0);
        }
        if self.txn_size != 0 {
            out.push(b't');
            varint::put(&mut out, self.txn_size);
        }
        out.push(b'c');
        varint::put(&mut out, self.min_commit_ts.0);
        out
    }

    /// Decodes a record; all of `buf` must belong to it.
    pub fn decode(buf: &[u8]) -> Result<Lock, RecordError> {
        let mut r = Cursor { buf };
        let kind = match r.byte()? {
            b'P' => LockKind::Put,
            b'D' => LockKind::Delete,
            b'L' => LockKind::Lock,
            b'S' => LockKind::Pessimistic,
            b => return Err(RecordError::UnknownKind(b)),
        };
        let primary_len = usize::try_from(r.varint()?).map_err(|_| RecordError::Truncated)?;
        let primary = r.take(primary_len)?.to_vec();
        let start_ts = Ts(r.varint()?);
        let ttl_ms = r.varint()?;
        let mut lock = Lock::new(kind, primary, start_ts, ttl_ms);
        lock.min_commit_ts = Ts::ZERO;
        let mut seen = Seen::default();
        while !r.buf.is_empty() {
            let tag = r.byte()?;
            seen.mark(tag)?;
            match tag {
                b'v' => lock.short_value = Some(r.short_value()?),
                b'f' => lock.for_update_ts = Ts(r.varint()?),
                b't' => lock.txn_size = r.varint()?,
                b'c' => lock.min_commit_ts = Ts(r.varint()?),
                _ => return Err(RecordError::UnknownField(tag)),
            }
        }
        Ok(lock)
    }
}

/// Bytes of `v` as a LEB128 varint.
fn varint_len(v: u64) -> usize {
    (64 - v.leading_zeros() as usize).max(1).div_ceil(7)
}

fn put_short_value(out: &mut Vec<u8>, v: &[u8]) {
    assert!(
        v.len() <= SHORT_VALUE_MAX_LEN,
        "short value of {} bytes",
        v.len()
    );
    out.push(b'v');
    out.push(v.len() as u8);
    out.extend_from_slice(v);
}

/// Which optional field tags were seen (a record holds each at most once).
#[derive(Default)]
struct Seen(u128);

impl Seen {
    fn mark(&mut self, tag: u8) -> Result<(), RecordError> {
        let bit = 1u128 << (tag & 0x7f);
        if tag < 0x80 && self.0 & bit != 0 {
            return Err(RecordError::DuplicateField(tag));
        }
        self.0 |= bit;
        Ok(())
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Result<u8, RecordError> {
        let (&b, rest) = self.buf.split_first().ok_or(RecordError::Truncated)?;
        self.buf = rest;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, RecordError> {
        let (v, n) = varint::get(self.buf).ok_or(RecordError::Truncated)?;
        self.buf = &self.buf[n..];
        Ok(v)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.buf.len() < n {
            return Err(RecordError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn short_value(&mut self) -> Result<Vec<u8>, RecordError> {
        let n = self.byte()?;
        Ok(self.take(usize::from(n))?.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    fn any_lock() -> impl Strategy<Value = Lock> {
        (
            0u8..4,
            proptest::collection::vec(any::<u8>(), 0..20),
            any::<u64>(),
            any::<u64>(),
            proptest::option::of(proptest::collection::vec(
                any::<u8>(),
                0..=SHORT_VALUE_MAX_LEN,
            )),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(|(k, primary, s, ttl, sv, m, f, n)| Lock {
                kind: [
                    LockKind::Put,
                    LockKind::Delete,
                    LockKind::Lock,
                    LockKind::Pessimistic,
                ][k as usize],
                primary,
                start_ts: Ts(s),
                ttl_ms: ttl,
                short_value: sv,
                min_commit_ts: Ts(m),
                for_update_ts: Ts(f),
                txn_size: n,
            })
    }

    proptest! {
        #[test]
        fn lock_round_trips(lock in any_lock()) {
            let bytes = lock.encode();
            prop_assert_eq!(Lock::decode(&bytes), Ok(lock.clone()));
            for cut in 0..bytes.len() {
                // A cut record either fails or (cut inside optional fields) differs.
                prop_assert_ne!(Lock::decode(&bytes[..cut]), Ok(lock.clone()));
            }
        }

        #[test]
        fn write_round_trips(k in 0u8..4, s: u64, sv in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..=255)), o: bool, c: u64, n: u64, e in proptest::option::of(any::<u64>())) {
            let kind = [WriteKind::Put, WriteKind::Delete, WriteKind::Rollback, WriteKind::Lock][k as usize];
            let w = Write { kind, start_ts: Ts(s), short_value: sv, overlapped_rollback: o, create_revision: Ts(c), version: n, lease: e.map(LeaseId) };
            let bytes = w.encode();
            prop_assert_eq!(Write::decode(&bytes), Ok(w.clone()));
            // The in-place encoding (one-phase commit's) is the same bytes, its length exact.
            let bare = Write { short_value: None, ..w.clone() };
            let mut out = vec![0xAA];
            bare.encode_with(w.short_value.as_deref(), &mut out);
            prop_assert_eq!(&out[1..], &bytes[..]);
            prop_assert_eq!(bare.encoded_len_with(w.short_value.as_deref()), bytes.len());
            for cut in 0..bytes.len() {
                prop_assert_ne!(Write::decode(&bytes[..cut]), Ok(w.clone()));
            }
        }

        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(w) = Write::decode(&bytes) {
                prop_assert_eq!(Write::decode(&w.encode()), Ok(w));
            }
            if let Ok(l) = Lock::decode(&bytes) {
                prop_assert_eq!(Lock::decode(&l.encode()), Ok(l));
            }
        }
    }

    #[test]
    fn typed_errors() {
        assert_eq!(Write::decode(&[]), Err(RecordError::Truncated));
        assert_eq!(Write::decode(b"X\x01"), Err(RecordError::UnknownKind(b'X')));
        assert_eq!(
            Write::decode(b"P\x01z"),
            Err(RecordError::UnknownField(b'z'))
        );
        assert_eq!(
            Write::decode(b"P\x01RR"),
            Err(RecordError::DuplicateField(b'R'))
        );
        assert_eq!(Write::decode(b"P\x01v\x05ab"), Err(RecordError::Truncated));
        assert_eq!(Lock::decode(b"P\x09ab"), Err(RecordError::Truncated));
        assert_eq!(
            Lock::decode(b"P\x00\x01\x01c\x02c\x02"),
            Err(RecordError::DuplicateField(b'c'))
        );
        let mut w = Write::new(WriteKind::Put, Ts(300));
        w.short_value = Some(vec![7; 3]);
        assert_eq!(w.encode(), b"P\xac\x02v\x03\x07\x07\x07".to_vec());
    }

    #[test]
    fn etcd_fields_are_optional_and_old_records_still_decode() {
        // A record written before the etcd fields existed decodes with them unset.
        let old = b"P\xac\x02v\x01\x07";
        let w = Write::decode(old).unwrap();
        assert_eq!((w.create_revision, w.version, w.lease), (Ts::ZERO, 0, None));
        assert_eq!(w.encode(), old.to_vec());
        let mut w = Write::new(WriteKind::Put, Ts(5));
        w.create_revision = Ts(3);
        w.version = 2;
        w.lease = Some(LeaseId(9));
        assert_eq!(w.encode(), b"P\x05c\x03n\x02e\x09".to_vec());
        assert_eq!(Write::decode(&w.encode()), Ok(w));
        assert_eq!(
            Write::decode(b"P\x05n\x02n\x02"),
            Err(RecordError::DuplicateField(b'n'))
        );
    }

    #[test]
    fn ttl_counts_from_the_start_ts_physical_time() {
        let lock = Lock::new(LockKind::Put, b"p".to_vec(), Ts::compose(1_000, 5), 300);
        assert!(!lock.is_expired(1_299));
        assert!(lock.is_expired(1_300));
    }
}
