//! The node's own records in the store, under the key namespace `n` (`docs/format.md`):
//! the apply state and the client session table. Both are written in the same batch as the
//! write they describe, so after a crash they agree with the data.
//!
//! * `n a` → [`ApplyState`]: the Raft index and term of the last entry whose batch this is,
//!   and the commit timestamp it used (the next write's timestamp must be above it).
//! * `n s <client id: u64 BE>` → [`SessionRecord`]: the session's last applied sequence
//!   number and that write's answer, returned again to a retry.
use super::wire::{decode, encode, ClientError, ClientId, ClientReply};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// The namespace byte of the node's records.
pub const NODE_NAMESPACE: u8 = b'n';

/// The key of the apply state.
pub const APPLY_STATE_KEY: &[u8] = &[NODE_NAMESPACE, b'a'];

/// What apply has reached, as stored with every batch apply writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyState {
    /// The Raft index of the entry that wrote this batch.
    pub index: u64,
    /// The commit timestamp of the newest applied write (0: none).
    pub last_ts: u64,
    /// The Raft term of entry `index`: with it the store's state names the log position it
    /// is at, which rebuilds the Raft log's base if a snapshot was installed in the store
    /// and the crash came before the log recorded it (`node::snapshot`).
    pub term: u64,
}

/// One client session: its last applied write and that write's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The last applied sequence number.
    pub seq: u64,
    /// What that write answered (errors included: a retry gets the same answer).
    pub result: Result<ClientReply, ClientError>,
}

/// The store key of `client`'s session.
pub fn session_key(client: ClientId) -> Vec<u8> {
    let mut k = Vec::with_capacity(10);
    k.extend_from_slice(&[NODE_NAMESPACE, b's']);
    k.extend_from_slice(&client.0.to_be_bytes());
    k
}

impl ApplyState {
    /// Encodes the stored value.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes the stored value.
    pub fn decode(bytes: &[u8]) -> Result<ApplyState, super::wire::WireError> {
        decode(bytes, "apply state")
    }
}

impl SessionRecord {
    /// Encodes the stored value.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes the stored value.
    pub fn decode(bytes: &[u8]) -> Result<SessionRecord, super::wire::WireError> {
        decode(bytes, "session record")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_roundtrip() {
        let s = ApplyState { index: 7, last_ts: 1 << 40, term: 2 };
        assert_eq!(ApplyState::decode(&s.encode()), Ok(s));
        let r = SessionRecord { seq: 3, result: Ok(ClientReply::Swapped { swapped: false, revision: 9 }) };
        assert_eq!(SessionRecord::decode(&r.encode()), Ok(r));
        assert!(SessionRecord::decode(b"\xff\xff").is_err());
        assert_eq!(session_key(ClientId(1)), b"ns\0\0\0\0\0\0\0\x01".to_vec());
    }
}
