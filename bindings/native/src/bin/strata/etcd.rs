//! `strata txn`, `watch`, `history`, `lease`, `revision` and `compact REV`: etcd's features on
//! a versioned folder. These commands open the folder as a versioned `strata::Db` (a new
//! folder becomes one); a raw folder is refused with a clear error and left unchanged.
use crate::fmt;
use clap::{Args, Subcommand};
use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;
use strata::{Cmp, Compare, Db, Error, EventKind, KeyValue, Op, OpResult, TxnError, WatchError};

/// `strata watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Watch keys starting with this prefix.
    prefix: String,
    /// Replay from this revision (default: only changes from now on).
    #[arg(long, value_name = "REV")]
    from: Option<u64>,
    /// Exit after this many events (default: run until interrupted).
    #[arg(long, value_name = "N")]
    count: Option<usize>,
}

/// `strata lease ...`.
#[derive(Subcommand, Debug)]
pub enum LeaseCmd {
    /// Grant a lease of TTL milliseconds; prints its id.
    Grant {
        /// Time to live in milliseconds.
        ttl_ms: u64,
    },
    /// Renew lease ID for its full TTL.
    Keepalive {
        /// The lease.
        id: u64,
    },
    /// Revoke lease ID, deleting its keys at one revision (printed).
    Revoke {
        /// The lease.
        id: u64,
    },
}

/// The versioned database of `data` (with the CLI's error type).
fn open(data: &Path) -> Result<Db, Error> {
    Db::open(data)
}

/// A `TxnError` as the CLI's error (a database error, or a message).
fn err(e: TxnError) -> Error {
    match e {
        TxnError::Db(e) => e,
        other => Error::Store(strata::StoreError::InvalidArgument(strata::InvalidArgument::Other(other.to_string()))),
    }
}

fn kv_line(kv: &KeyValue) -> String {
    let lease = kv.lease.map(|l| format!(" lease={l}")).unwrap_or_default();
    format!(
        "{} = {} (mod={} create={} version={}{lease})",
        fmt::bytes(&kv.key),
        fmt::bytes(&kv.value),
        kv.mod_revision,
        kv.create_revision,
        kv.version
    )
}

pub fn watch(data: &Path, a: &WatchArgs) -> Result<ExitCode, Error> {
    let db = open(data)?;
    let mut w = db.watch(&a.prefix, a.from).map_err(err)?;
    let mut seen = 0;
    let code = loop {
        if a.count.is_some_and(|c| seen >= c) {
            break ExitCode::SUCCESS;
        }
        match w.recv() {
            Ok(batch) => {
                for e in batch.events {
                    seen += 1;
                    let prev = e.prev.as_ref().map(|p| format!(" (prev {})", fmt::bytes(&p.value))).unwrap_or_default();
                    match e.kind {
                        EventKind::Put => println!("{} PUT {} = {}{prev}", batch.revision, fmt::bytes(&e.kv.key), fmt::bytes(&e.kv.value)),
                        EventKind::Delete => println!("{} DELETE {}{prev}", batch.revision, fmt::bytes(&e.kv.key)),
                    }
                }
            }
            Err(e @ WatchError::Compacted { .. }) => {
                eprintln!("strata: watch ended: {e}");
                break ExitCode::from(1);
            }
            Err(e) => return Err(err(TxnError::Invalid(e.to_string()))),
        }
    };
    drop(w);
    db.close()?;
    Ok(code)
}

pub fn history(data: &Path, key: &str) -> Result<ExitCode, Error> {
    let db = open(data)?;
    let h = db.history(key).map_err(err)?;
    for e in &h {
        match &e.kv {
            Some(kv) => println!("{} PUT {}", e.revision, kv_line(kv)),
            None => println!("{} DELETE {}", e.revision, key),
        }
    }
    db.close()?;
    Ok(if h.is_empty() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

pub fn lease(data: &Path, cmd: &LeaseCmd) -> Result<ExitCode, Error> {
    let db = open(data)?;
    match *cmd {
        LeaseCmd::Grant { ttl_ms } => println!("{}", db.lease_grant(Duration::from_millis(ttl_ms)).map_err(err)?),
        LeaseCmd::Keepalive { id } => println!("lease {id} renewed for {} ms", db.lease_keep_alive(id).map_err(err)?.as_millis()),
        LeaseCmd::Revoke { id } => println!("lease {id} revoked at revision {}", db.lease_revoke(id).map_err(err)?),
    }
    db.close()?;
    Ok(ExitCode::SUCCESS)
}

pub fn compact(data: &Path, rev: u64) -> Result<ExitCode, Error> {
    let db = open(data)?;
    db.compact(rev).map_err(err)?;
    println!("compacted history below revision {rev}");
    db.close()?;
    Ok(ExitCode::SUCCESS)
}

pub fn revision(data: &Path) -> Result<ExitCode, Error> {
    let db = open(data)?;
    println!("{}", db.revision().map_err(err)?);
    db.close()?;
    Ok(ExitCode::SUCCESS)
}

/// `strata txn`: reads a transaction from standard input in three sections separated by empty
/// lines (etcdctl's interactive format): compares, the ops run when all hold, the ops run
/// otherwise. Prints `SUCCESS` or `FAILURE`, one line per op, and the revision.
pub fn txn(data: &Path) -> Result<ExitCode, Error> {
    let stdin = std::io::stdin();
    let mut sections: [Vec<String>; 3] = Default::default();
    let mut section = 0;
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| Error::Io { path: "<stdin>".into(), source: e })?;
        let line = line.trim();
        if line.is_empty() {
            section += 1;
            if section > 2 {
                break;
            }
            continue;
        }
        sections[section].push(line.to_owned());
    }
    let db = open(data)?;
    let result = build(&db, &sections).and_then(|tx| tx.commit().map_err(|e| e.to_string()));
    let code = match result {
        Ok(out) => {
            println!("{}", if out.succeeded { "SUCCESS" } else { "FAILURE" });
            for r in &out.results {
                match r {
                    OpResult::Put { .. } => println!("OK"),
                    OpResult::Delete { prev } => println!("DELETED {}", u8::from(prev.is_some())),
                    OpResult::Get(Some(kv)) => println!("{}", kv_line(kv)),
                    OpResult::Get(None) => println!("(not found)"),
                }
            }
            println!("revision {}", out.revision);
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("strata: txn: {why}");
            ExitCode::from(2)
        }
    };
    db.close()?;
    Ok(code)
}

fn build(db: &Db, sections: &[Vec<String>; 3]) -> Result<strata::CasTxn, String> {
    let mut tx = db.txn();
    for line in &sections[0] {
        tx = tx.when(compare(line)?);
    }
    for line in &sections[1] {
        tx = tx.then(op(line)?);
    }
    for line in &sections[2] {
        tx = tx.otherwise(op(line)?);
    }
    Ok(tx)
}

/// `FIELD KEY OP TARGET`: FIELD one of value, version, create, mod, lease; OP one of = != < >
/// (arguments quoted as in `strata shell`).
fn compare(line: &str) -> Result<Compare, String> {
    let w = crate::shell::tokenize(line)?;
    let [field, key, op, target] = w.as_slice() else {
        return Err(format!("compare {line:?}: expected FIELD KEY OP TARGET (e.g. `value k = v`, `version k = 0`)"));
    };
    let cmp = match op.as_slice() {
        b"=" | b"==" => Cmp::Equal,
        b"!=" => Cmp::NotEqual,
        b"<" => Cmp::Less,
        b">" => Cmp::Greater,
        other => return Err(format!("compare {line:?}: unknown operator {:?} (= != < >)", fmt::bytes(other))),
    };
    let num = || {
        std::str::from_utf8(target).ok().and_then(|t| t.parse::<u64>().ok()).ok_or_else(|| format!("compare {line:?}: the target is not a number"))
    };
    Ok(match field.as_slice() {
        b"value" => Compare::value(key, cmp, target),
        b"version" => Compare::version(key, cmp, num()?),
        b"create" => Compare::create_revision(key, cmp, num()?),
        b"mod" => Compare::mod_revision(key, cmp, num()?),
        b"lease" => Compare::lease(key, cmp, Some(num()?).filter(|&l| l != 0)),
        other => return Err(format!("compare {line:?}: unknown field {:?} (value version create mod lease)", fmt::bytes(other))),
    })
}

/// `put KEY VALUE [LEASE]`, `del KEY`, `get KEY`.
fn op(line: &str) -> Result<Op, String> {
    let w = crate::shell::tokenize(line)?;
    let bad = || format!("op {line:?}: expected `put KEY VALUE [LEASE]`, `del KEY` or `get KEY`");
    let Some((verb, args)) = w.split_first() else { return Err(bad()) };
    match (verb.as_slice(), args) {
        (b"put", [k, v]) => Ok(Op::put(k, v)),
        (b"put", [k, v, lease]) => {
            let id = std::str::from_utf8(lease).ok().and_then(|l| l.parse().ok()).ok_or_else(|| format!("op {line:?}: the lease is not a number"))?;
            Ok(Op::put_with_lease(k, v, id))
        }
        (b"del" | b"delete", [k]) => Ok(Op::delete(k)),
        (b"get", [k]) => Ok(Op::get(k)),
        _ => Err(bad()),
    }
}
