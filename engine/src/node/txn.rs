//! Multi-key transactions through the node: etcd's `Txn` (compares, then the success or the
//! failure branch), carried in one log entry and applied atomically as one MVCC one-phase
//! commit — what an etcd user expects, and the building block of optimistic read-modify-write
//! transactions (etcd's STM, TiKV's optimistic transactions without a second phase).
//!
//! * A [`TxnSpec`] is sent as [`WriteOp::Txn`](super::wire::WriteOp::Txn) under the client's
//!   session (a retry applies at most once and gets the recorded answer).
//! * At apply every compare is evaluated at the newest applied revision; if all hold the
//!   `success` steps run, else the `failure` steps. Steps run in order and see the writes of
//!   earlier steps. Every write lands at one commit timestamp (the reply's `revision`), in the
//!   same store batch as the session record: all of the transaction or none of it, on every
//!   replica alike.
//! * **Serializable** by construction: entries apply one at a time in log order, and a
//!   transaction's reads and compares happen at apply, at the state every earlier entry left.
//! * **Optimistic read-modify-write** (the bank workload's transfers): read the keys (a
//!   read-only `TxnSpec` of `Get`s returns each key's value and `mod_revision`, all at one
//!   revision), compute, then commit with a compare `ModRevision(key) == seen` per key read
//!   and the writes in `success`. `succeeded == false` means another transaction wrote one of
//!   the keys in between: nothing was written; read again and retry.
use super::wire::ClientError;
use crate::mvcc::cas::{Compare, CompareOp, CompareTarget, OpResult, TxnOp, TxnRequest, TxnResponse};
use crate::mvcc::revision::Kv;
use crate::mvcc::Ts;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// A transaction: compares, then one of two branches.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnSpec {
    /// All must hold for `success` to run.
    pub compares: Vec<TxnCompare>,
    /// Steps run when every compare holds.
    pub success: Vec<TxnStep>,
    /// Steps run otherwise.
    pub failure: Vec<TxnStep>,
}

/// One compare: `field(key) op target`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnCompare {
    /// The key.
    #[serde(with = "super::bytes_serde")]
    pub key: Vec<u8>,
    /// The relation.
    pub op: CompareKind,
    /// The field and the value it is compared with.
    pub target: TxnTarget,
}

/// How a compare relates the field to the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareKind {
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
    /// `<`
    Less,
    /// `>`
    Greater,
}

/// The field a compare looks at (etcd's semantics: a value compare on an absent key is false;
/// the other fields of an absent key are 0).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnTarget {
    /// The value.
    Value(#[serde(with = "super::bytes_serde")] Vec<u8>),
    /// Puts since the key was created (0: absent).
    Version(u64),
    /// Revision of the key's last put (0: absent).
    ModRevision(u64),
    /// Revision of the put that created the key (0: absent).
    CreateRevision(u64),
}

/// One step of a branch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnStep {
    /// Read a key.
    Get {
        /// The key.
        #[serde(with = "super::bytes_serde")]
        key: Vec<u8>,
    },
    /// Set a key.
    Put {
        /// The key.
        #[serde(with = "super::bytes_serde")]
        key: Vec<u8>,
        /// The value.
        #[serde(with = "super::bytes_serde")]
        value: Vec<u8>,
    },
    /// Remove a key (nothing if absent).
    Delete {
        /// The key.
        #[serde(with = "super::bytes_serde")]
        key: Vec<u8>,
    },
}

impl TxnStep {
    /// The key the step touches.
    pub fn key(&self) -> &[u8] {
        match self {
            TxnStep::Get { key } | TxnStep::Put { key, .. } | TxnStep::Delete { key } => key,
        }
    }
}

/// A key's state as a step read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    /// The value.
    #[serde(with = "super::bytes_serde")]
    pub value: Vec<u8>,
    /// Revision of its last put.
    pub mod_revision: u64,
    /// Revision of the put that created it.
    pub create_revision: u64,
    /// Puts since creation.
    pub version: u64,
}

/// What one step did, in branch order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepResult {
    /// A get: the key's state (`None`: absent).
    Get(Option<KeyValue>),
    /// A put.
    Put,
    /// A delete: whether the key existed.
    Delete {
        /// True when a live key was removed.
        existed: bool,
    },
}

/// The answer to a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnReply {
    /// True when every compare held and `success` ran.
    pub succeeded: bool,
    /// The commit timestamp if the transaction wrote anything, else the revision it read at.
    pub revision: u64,
    /// One result per step of the branch that ran.
    pub results: Vec<StepResult>,
}

impl TxnSpec {
    /// Every key the transaction names (compares and steps of both branches).
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.compares.iter().map(|c| c.key.as_slice()).chain(self.success.iter().chain(self.failure.iter()).map(TxnStep::key))
    }

    /// The largest value it writes.
    pub fn max_value_len(&self) -> usize {
        let step = |s: &TxnStep| match s {
            TxnStep::Put { value, .. } => value.len(),
            _ => 0,
        };
        let cmp = |c: &TxnCompare| match &c.target {
            TxnTarget::Value(v) => v.len(),
            _ => 0,
        };
        let steps = self.success.iter().chain(self.failure.iter()).map(step).max().unwrap_or(0);
        steps.max(self.compares.iter().map(cmp).max().unwrap_or(0))
    }

    /// Steps and compares in all.
    pub fn len(&self) -> usize {
        self.compares.len() + self.success.len() + self.failure.len()
    }

    /// True when it has no compare and no step.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The MVCC transaction it runs as.
    pub fn to_request(&self) -> TxnRequest {
        let step = |s: &TxnStep| match s {
            TxnStep::Get { key } => TxnOp::Get { key: key.clone() },
            TxnStep::Put { key, value } => TxnOp::Put { key: key.clone(), value: value.clone(), lease: None },
            TxnStep::Delete { key } => TxnOp::Delete { key: key.clone() },
        };
        let compare = |c: &TxnCompare| Compare {
            key: c.key.clone(),
            range_end: None,
            op: match c.op {
                CompareKind::Equal => CompareOp::Equal,
                CompareKind::NotEqual => CompareOp::NotEqual,
                CompareKind::Less => CompareOp::Less,
                CompareKind::Greater => CompareOp::Greater,
            },
            target: match &c.target {
                TxnTarget::Value(v) => CompareTarget::Value(v.clone()),
                TxnTarget::Version(v) => CompareTarget::Version(*v),
                TxnTarget::ModRevision(r) => CompareTarget::ModRevision(Ts(*r)),
                TxnTarget::CreateRevision(r) => CompareTarget::CreateRevision(Ts(*r)),
            },
        };
        TxnRequest {
            compares: self.compares.iter().map(compare).collect(),
            success: self.success.iter().map(step).collect(),
            failure: self.failure.iter().map(step).collect(),
        }
    }
}

impl TxnReply {
    /// The reply to the MVCC transaction's response.
    pub fn from_response(resp: TxnResponse) -> Result<TxnReply, ClientError> {
        let kv = |k: Kv| KeyValue {
            value: k.value,
            mod_revision: k.mod_revision.0,
            create_revision: k.create_revision.0,
            version: k.version,
        };
        let mut results = Vec::with_capacity(resp.results.len());
        for r in resp.results {
            results.push(match r {
                OpResult::Get(k) => StepResult::Get(k.map(kv)),
                OpResult::Put { .. } => StepResult::Put,
                OpResult::Delete { deleted } => StepResult::Delete { existed: !deleted.is_empty() },
                // The node's steps are never ranges.
                OpResult::Range(_) => return Err(ClientError::Invalid("range results in a point transaction".into())),
            });
        }
        Ok(TxnReply { succeeded: resp.succeeded, revision: resp.revision.0, results })
    }
}
