//! etcd's features on the versioned [`Db`]: revisions, reads at a past revision, history,
//! compaction, revision watches, leases and compare-and-swap transactions.
//!
//! A *revision* is a commit timestamp: every `put`, `write`, committed transaction, CAS
//! transaction and lease expiry is one revision, shared by all the keys it wrote. Each key
//! carries etcd's fields ([`KeyValue`]). Reads below the compaction mark fail with
//! [`TxnError::Compacted`]; a background thread removes the versions below the mark (GC at a
//! safe point that also stays below every running transaction's snapshot and every lock),
//! expires leases on the wall clock and resolves abandoned locks (`crate::maint`).
use crate::revwatch::Watcher;
use crate::txn::{resolve_lock, TxnError, TxnErrorOrExec, TxnResult};
use crate::versioned::Db;
use std::time::Duration;
use strata_engine::mvcc::cas::{self as ecas, CompareOp, CompareTarget, TxnOp};
use strata_engine::mvcc::exec::command::{Command, Response};
use strata_engine::mvcc::exec::etcd::{EtcdCommand, EtcdResponse};
use strata_engine::mvcc::exec::ExecError;
use strata_engine::mvcc::lease::{Expiry, LeaseChange};
use strata_engine::mvcc::revision::{HistoryEntry as EHistory, Kv};
use strata_engine::mvcc::watch::{WatchRequest, WatchTarget};
use strata_engine::mvcc::{LeaseId, MvccError, Ts};

/// A key's state at a revision (etcd's `mvccpb.KeyValue`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: Vec<u8>,
    /// Its value.
    pub value: Vec<u8>,
    /// Revision of the put that created the key (the first put after its last delete).
    pub create_revision: u64,
    /// Revision of the put that wrote this value.
    pub mod_revision: u64,
    /// Puts since creation, this one included.
    pub version: u64,
    /// The lease the key is attached to.
    pub lease: Option<u64>,
}

impl From<Kv> for KeyValue {
    fn from(k: Kv) -> KeyValue {
        KeyValue {
            key: k.key,
            value: k.value,
            create_revision: k.create_revision.0,
            mod_revision: k.mod_revision.0,
            version: k.version,
            lease: k.lease.map(|l| l.0),
        }
    }
}

/// One version in a key's [`Db::history`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The revision.
    pub revision: u64,
    /// The key's state after it (`None`: deleted).
    pub kv: Option<KeyValue>,
}

/// How a [`Compare`] relates the key's field to the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// `field == target`
    Equal,
    /// `field != target`
    NotEqual,
    /// `field < target`
    Less,
    /// `field > target`
    Greater,
}

/// A compare of a [`CasTxn`]. A missing key has version 0, revisions 0 and no lease; a value
/// compare on a missing key is false (etcd's rules).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compare(ecas::Compare);

impl Compare {
    fn new(key: impl AsRef<[u8]>, cmp: Cmp, target: CompareTarget) -> Compare {
        let op = match cmp {
            Cmp::Equal => CompareOp::Equal,
            Cmp::NotEqual => CompareOp::NotEqual,
            Cmp::Less => CompareOp::Less,
            Cmp::Greater => CompareOp::Greater,
        };
        Compare(ecas::Compare { key: key.as_ref().to_vec(), range_end: None, op, target })
    }
    /// Compares the key's version (puts since creation; 0: missing).
    pub fn version(key: impl AsRef<[u8]>, cmp: Cmp, version: u64) -> Compare {
        Compare::new(key, cmp, CompareTarget::Version(version))
    }
    /// Compares the revision that created the key (0: missing).
    pub fn create_revision(key: impl AsRef<[u8]>, cmp: Cmp, revision: u64) -> Compare {
        Compare::new(key, cmp, CompareTarget::CreateRevision(Ts(revision)))
    }
    /// Compares the revision of the key's last put (0: missing).
    pub fn mod_revision(key: impl AsRef<[u8]>, cmp: Cmp, revision: u64) -> Compare {
        Compare::new(key, cmp, CompareTarget::ModRevision(Ts(revision)))
    }
    /// Compares the value, bytewise (false on a missing key).
    pub fn value(key: impl AsRef<[u8]>, cmp: Cmp, value: impl AsRef<[u8]>) -> Compare {
        Compare::new(key, cmp, CompareTarget::Value(value.as_ref().to_vec()))
    }
    /// Compares the attached lease (`None` sorts as 0).
    pub fn lease(key: impl AsRef<[u8]>, cmp: Cmp, lease: Option<u64>) -> Compare {
        Compare::new(key, cmp, CompareTarget::Lease(lease.map(LeaseId)))
    }
}

/// An operation of a [`CasTxn`] branch. Later ops see earlier ones' writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op(TxnOp);

impl Op {
    /// Sets `key` to `value` (detaching it from any lease).
    pub fn put(key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Op {
        Op(TxnOp::Put { key: key.as_ref().to_vec(), value: value.as_ref().to_vec(), lease: None })
    }
    /// Sets `key` to `value` attached to `lease` (which must exist).
    pub fn put_with_lease(key: impl AsRef<[u8]>, value: impl AsRef<[u8]>, lease: u64) -> Op {
        Op(TxnOp::Put { key: key.as_ref().to_vec(), value: value.as_ref().to_vec(), lease: Some(LeaseId(lease)) })
    }
    /// Deletes `key` (nothing if absent).
    pub fn delete(key: impl AsRef<[u8]>) -> Op {
        Op(TxnOp::Delete { key: key.as_ref().to_vec() })
    }
    /// Reads `key`.
    pub fn get(key: impl AsRef<[u8]>) -> Op {
        Op(TxnOp::Get { key: key.as_ref().to_vec() })
    }
}

/// The result of one op of the branch that ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    /// A put, with the key's previous state.
    Put {
        /// The state before.
        prev: Option<KeyValue>,
    },
    /// A delete, with the key's previous state (`None`: it was absent, nothing written).
    Delete {
        /// The state before.
        prev: Option<KeyValue>,
    },
    /// A get.
    Get(Option<KeyValue>),
}

/// What a [`CasTxn`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CasOutcome {
    /// True when every compare held and the `then` ops ran.
    pub succeeded: bool,
    /// One result per op of the branch that ran.
    pub results: Vec<OpResult>,
    /// The transaction's revision (its commit, or the revision read at if it wrote nothing).
    pub revision: u64,
}

/// etcd's compare-and-swap transaction: `db.txn().when(..).then(..).otherwise(..).commit()`.
/// The compares and ops run atomically at one revision (a one-phase commit under the keys'
/// latches); compares and ops name single keys.
#[derive(Debug)]
#[must_use = "a transaction does nothing until committed"]
pub struct CasTxn {
    db: Db,
    req: ecas::TxnRequest,
}

impl CasTxn {
    /// Adds a compare (all must hold for the `then` branch).
    pub fn when(mut self, c: Compare) -> Self {
        self.req.compares.push(c.0);
        self
    }
    /// Adds an op to the branch run when every compare holds.
    pub fn then(mut self, op: Op) -> Self {
        self.req.success.push(op.0);
        self
    }
    /// Adds an op to the branch run otherwise.
    pub fn otherwise(mut self, op: Op) -> Self {
        self.req.failure.push(op.0);
        self
    }
    /// Runs it. Errors: [`TxnError::LeaseNotFound`] for a put with a missing lease,
    /// [`TxnError::Invalid`] for a key written twice in a branch.
    pub fn commit(self) -> TxnResult<CasOutcome> {
        for op in self.req.success.iter().chain(&self.req.failure) {
            if let TxnOp::Put { key, .. } | TxnOp::Delete { key } | TxnOp::Get { key } = op {
                self.db.check_key(key)?;
            }
        }
        let r = match self.db.etcd(None, || EtcdCommand::Txn(self.req.clone()))? {
            EtcdResponse::Txn(r) => r,
            other => return Err(unexpected(&other)),
        };
        if r.revision > Ts::ZERO && r.results.iter().any(|x| matches!(x, ecas::OpResult::Put { .. } | ecas::OpResult::Delete { .. })) {
            self.db.publish_cas(&self.req, r.succeeded);
        }
        let results = r
            .results
            .into_iter()
            .map(|x| match x {
                ecas::OpResult::Put { prev } => OpResult::Put { prev: prev.map(KeyValue::from) },
                ecas::OpResult::Delete { deleted } => OpResult::Delete { prev: deleted.into_iter().next().map(KeyValue::from) },
                ecas::OpResult::Get(kv) => OpResult::Get(kv.map(KeyValue::from)),
                ecas::OpResult::Range(kvs) => OpResult::Get(kvs.into_iter().next().map(KeyValue::from)),
            })
            .collect();
        Ok(CasOutcome { succeeded: r.succeeded, results, revision: r.revision.0 })
    }
}

fn unexpected(r: &EtcdResponse) -> TxnError {
    TxnError::Invalid(format!("unexpected executor answer {r:?}"))
}

impl Db {
    /// The current revision: every write acknowledged before this call is at or below it.
    pub fn revision(&self) -> TxnResult<u64> {
        Ok(self.timestamp()?.0)
    }

    /// `key` now, with its etcd fields.
    pub fn get_kv(&self, key: impl AsRef<[u8]>) -> TxnResult<Option<KeyValue>> {
        self.get_at_ts(key.as_ref(), Ts::ZERO)
    }

    /// `key` as of `revision`, with its etcd fields. [`TxnError::Compacted`] below the
    /// compaction mark.
    pub fn get_at(&self, key: impl AsRef<[u8]>, revision: u64) -> TxnResult<Option<KeyValue>> {
        if revision == 0 {
            return Err(TxnError::Invalid("revision 0 does not exist".into()));
        }
        self.get_at_ts(key.as_ref(), Ts(revision))
    }

    fn get_at_ts(&self, key: &[u8], rev: Ts) -> TxnResult<Option<KeyValue>> {
        self.check_key(key)?;
        let at = (rev != Ts::ZERO).then_some(rev);
        match self.etcd(at, || EtcdCommand::GetAt { key: key.to_vec(), revision: rev })? {
            EtcdResponse::Kv(kv, _) => Ok(kv.map(KeyValue::from)),
            other => Err(unexpected(&other)),
        }
    }

    /// Every version of `key` still kept, newest first: puts with their fields and deletes
    /// (the history stops at the version visible at the compaction mark).
    pub fn history(&self, key: impl AsRef<[u8]>) -> TxnResult<Vec<HistoryEntry>> {
        let key = key.as_ref();
        self.check_key(key)?;
        match self.etcd(None, || EtcdCommand::History { key: key.to_vec(), limit: usize::MAX })? {
            EtcdResponse::History(h) => {
                Ok(h.into_iter().map(|EHistory { revision, kv }| HistoryEntry { revision: revision.0, kv: kv.map(KeyValue::from) }).collect())
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Compacts the history at `revision`: reads, histories and watches below it fail with
    /// [`TxnError::Compacted`] from now on, and the background thread removes the old
    /// versions. `revision` must be above the current mark and at most [`Db::revision`].
    pub fn compact(&self, revision: u64) -> TxnResult<()> {
        self.etcd(None, || EtcdCommand::Compact { revision: Ts(revision) })?;
        self.maint().want_gc();
        Ok(())
    }

    /// The compaction mark (0: never compacted).
    pub fn compaction_mark(&self) -> TxnResult<u64> {
        match self.etcd(None, || EtcdCommand::CompactionMark)? {
            EtcdResponse::Revision(r) => Ok(r.0),
            other => Err(unexpected(&other)),
        }
    }

    /// Watches every key starting with `prefix` from revision `from` (`None`: changes after
    /// this call), replaying the kept history first. See [`Watcher`]; `from` at or below the
    /// compaction mark fails with [`TxnError::Compacted`].
    pub fn watch(&self, prefix: impl AsRef<[u8]>, from: Option<u64>) -> TxnResult<Watcher> {
        self.watch_target(WatchTarget::Prefix(prefix.as_ref().to_vec()), from)
    }

    /// Watches one key from revision `from` (as [`Db::watch`]).
    pub fn watch_key(&self, key: impl AsRef<[u8]>, from: Option<u64>) -> TxnResult<Watcher> {
        self.watch_target(WatchTarget::Key(key.as_ref().to_vec()), from)
    }

    fn watch_target(&self, target: WatchTarget, from: Option<u64>) -> TxnResult<Watcher> {
        let req = WatchRequest { target, start_revision: from.map(Ts) };
        match self.raw().inner.shared.watch_register(req)? {
            Ok(id) => Ok(Watcher::new(self.clone(), id)),
            Err(e) => Err(TxnError::from_exec(ExecError::Etcd(e))),
        }
    }

    /// Grants a lease of `ttl` (rounded up to a millisecond); returns its id. Keys put with
    /// it ([`Db::put_with_lease`]) are deleted, all at one revision, when it expires or is
    /// revoked. Keep it alive with [`Db::lease_keep_alive`].
    pub fn lease_grant(&self, ttl: Duration) -> TxnResult<u64> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        loop {
            let id = LeaseId(self.maint().next_lease_id());
            match self.etcd(None, || EtcdCommand::LeaseGrant { id, ttl_ms }) {
                Ok(EtcdResponse::Lease(l)) => {
                    self.maint().lease_changed(LeaseChange::Upsert(l));
                    return Ok(id.0);
                }
                Ok(other) => return Err(unexpected(&other)),
                Err(TxnError::LeaseExists(_)) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Renews lease `id` for its full TTL; returns the TTL. [`TxnError::LeaseNotFound`] if it
    /// is gone, [`TxnError::LeaseExpired`] if its deadline passed (it is being expired).
    pub fn lease_keep_alive(&self, id: u64) -> TxnResult<Duration> {
        match self.etcd(None, || EtcdCommand::LeaseKeepAlive { id: LeaseId(id) })? {
            EtcdResponse::Lease(l) => {
                self.maint().lease_changed(LeaseChange::Upsert(l));
                Ok(Duration::from_millis(l.ttl_ms))
            }
            other => Err(unexpected(&other)),
        }
    }

    /// Revokes lease `id`: its keys are deleted at one revision, which is returned.
    pub fn lease_revoke(&self, id: u64) -> TxnResult<u64> {
        let id = LeaseId(id);
        let mut keys = self.lease_keys(id)?;
        loop {
            match self.etcd(None, || EtcdCommand::LeaseRevoke { id, keys: keys.clone() })? {
                EtcdResponse::Revoked(r) => {
                    self.maint().lease_changed(r.change);
                    self.publish_deleted(r.deleted.iter().map(|k| k.key.as_slice()));
                    return Ok(r.revision.0);
                }
                EtcdResponse::LeaseKeysChanged(k) => keys = k,
                other => return Err(unexpected(&other)),
            }
        }
    }

    /// Expires lease `id` if its deadline passed (the background thread's step). True when
    /// it was expired.
    pub(crate) fn lease_expire(&self, id: LeaseId) -> TxnResult<bool> {
        let mut keys = self.lease_keys(id)?;
        loop {
            match self.etcd(None, || EtcdCommand::LeaseExpire { id, keys: keys.clone() })? {
                EtcdResponse::Expiry(Expiry::Expired(r)) => {
                    self.maint().lease_changed(r.change);
                    self.publish_deleted(r.deleted.iter().map(|k| k.key.as_slice()));
                    return Ok(true);
                }
                EtcdResponse::Expiry(Expiry::NotDue(l)) => {
                    self.maint().lease_changed(LeaseChange::Upsert(l));
                    return Ok(false);
                }
                EtcdResponse::Expiry(Expiry::Gone) => {
                    self.maint().lease_changed(LeaseChange::Remove(id));
                    return Ok(false);
                }
                EtcdResponse::LeaseKeysChanged(k) => keys = k,
                other => return Err(unexpected(&other)),
            }
        }
    }

    fn lease_keys(&self, id: LeaseId) -> TxnResult<Vec<Vec<u8>>> {
        match self.etcd(None, || EtcdCommand::LeaseKeys { id })? {
            EtcdResponse::Keys(k) => Ok(k),
            other => Err(unexpected(&other)),
        }
    }

    /// The keys attached to lease `id` now.
    pub fn lease_keys_of(&self, id: u64) -> TxnResult<Vec<Vec<u8>>> {
        self.lease_keys(LeaseId(id))
    }

    /// Sets `key` to `value` attached to lease `lease`; returns the revision.
    pub fn put_with_lease(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>, lease: u64) -> TxnResult<u64> {
        let out = self.txn().then(Op::put_with_lease(key, value, lease)).commit()?;
        Ok(out.revision)
    }

    /// Starts a compare-and-swap transaction ([`CasTxn`]).
    pub fn txn(&self) -> CasTxn {
        CasTxn { db: self.clone(), req: ecas::TxnRequest::default() }
    }

    /// Runs an etcd command, resolving the Percolator locks it meets (at `read_ts` for a
    /// read, as a writer otherwise) and retrying.
    pub(crate) fn etcd(&self, read_ts: Option<Ts>, cmd: impl Fn() -> EtcdCommand) -> TxnResult<EtcdResponse> {
        let mut attempt = 0;
        loop {
            match self.exec(Command::Etcd(cmd())) {
                Ok(Response::Etcd(r)) => return Ok(r),
                Ok(other) => return Err(TxnError::Invalid(format!("unexpected executor answer {other:?}"))),
                Err(TxnErrorOrExec::Exec(ExecError::Mvcc(MvccError::KeyIsLocked(info)))) => {
                    if !resolve_lock(self, &info, read_ts)? {
                        self.pause(attempt, TxnError::Locked { key: info.key.clone(), lock_ts: info.lock.start_ts.0 })?;
                    }
                }
                Err(e) => return Err(e.into_txn()),
            }
            attempt += 1;
        }
    }
}
