//! The data of a Raft log entry: what a committed entry asks every replica to apply.
//!
//! The leader encodes a [`LogCommand`] when it proposes; every replica decodes the same bytes
//! at apply and runs the same deterministic step. The leader's clock travels in the entry
//! ([`WriteCommand::clock_ms`]) so that commit timestamps, which must be equal on every
//! replica, are chosen at apply from the entries alone (see `apply`).
use super::wire::{decode, encode, ClientId, Epoch, WireError, WriteOp};
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// A command in the replicated log. New kinds (transactions, admin) are new variants: old
/// entries keep decoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogCommand {
    /// A client write under a session.
    Write(WriteCommand),
}

/// A client write, as proposed by the leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteCommand {
    /// The region epoch the leader checked the request against; apply refuses the write if
    /// the region's epoch has changed since.
    pub epoch: Epoch,
    /// The leader's clock when it proposed (ms): commit timestamps follow it.
    pub clock_ms: u64,
    /// The session.
    pub client: ClientId,
    /// The write's sequence number in the session.
    pub seq: u64,
    /// The write.
    pub op: WriteOp,
}

impl LogCommand {
    /// Encodes as entry data.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes entry data.
    pub fn decode(bytes: &[u8]) -> Result<LogCommand, WireError> {
        decode(bytes, "log command")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let c = LogCommand::Write(WriteCommand {
            epoch: Epoch::INITIAL,
            clock_ms: 77,
            client: ClientId(5),
            seq: 2,
            op: WriteOp::Put { key: b"a".to_vec(), value: b"b".to_vec() },
        });
        let b = c.encode();
        assert_eq!(LogCommand::decode(&b), Ok(c));
        assert!(LogCommand::decode(&b[..b.len() - 1]).is_err());
        assert!(LogCommand::decode(&[]).is_err());
    }
}
