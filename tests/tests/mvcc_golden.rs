//! Golden transcripts of Percolator command sequences through the MVCC executor on the sim
//! disk: `tests/testdata/mvcc/*.txt`. Each command line starts with `> `; the lines after it,
//! up to the next command, are its expected output. Run with `REWRITE=1` to regenerate the
//! expected output after an intended change, then read the diff.
//!
//! Timestamps are named: `ts T1` draws one from the oracle and calls it `T1`; later commands
//! refer to it by name, and output shows names (a one-phase commit names its commit ts `C<n>`).
//!
//! Commands: `open`, `crash [tear]`, `reopen`, `advance MS`, `flush`, `ts NAME`,
//! `prewrite START PRIMARY k=v del:k lock:k ... [ttl=MS]`, `commit START COMMIT k ...`,
//! `rollback START k ...`, `cleanup START k`, `onepc START k=v del:k ...`, `get K @TS`,
//! `scan [FROM] [TO] @TS`, `check PRIMARY START [caller=TS]`,
//! `resolve START commit=TS|rollback k ...`, `heartbeat PRIMARY START TTL`, `gc SAFE_POINT`,
//! `applied` (notifications since the last `applied`).
use std::collections::BTreeMap;
use strata_engine::lsm::config::Durability;
use strata_engine::mvcc::exec::command::{Command, Response};
use strata_engine::mvcc::exec::{ExecConfig, ExecError};
use strata_engine::mvcc::txn::{Mutation, PrewriteRequest, TxnStatus};
use strata_engine::mvcc::{MvccError, Ts};
use strata_sim::disk::SimDisk;
use strata_sim::mvcc::SimMvcc;
use strata_tests::tiny_config;

struct World {
    w: Option<SimMvcc>,
    disk: Option<SimDisk>,
    now_ms: u64,
    names: BTreeMap<String, Ts>,
    one_pcs: usize,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A value, with long ones abbreviated.
fn val(v: &[u8]) -> String {
    if v.len() > 20 {
        format!("<{} bytes>", v.len())
    } else {
        text(v)
    }
}

impl World {
    fn w(&mut self) -> &mut SimMvcc {
        self.w.as_mut().expect("no store open: use `open`")
    }

    fn name(&self, ts: Ts) -> String {
        self.names.iter().find(|(_, t)| **t == ts).map_or_else(|| format!("{}.{}", ts.physical_ms(), ts.logical()), |(n, _)| n.clone())
    }

    fn ts(&self, name: &str) -> Ts {
        *self.names.get(name).unwrap_or_else(|| panic!("unknown timestamp {name}"))
    }

    fn open(&mut self) -> String {
        let disk = self.disk.take().unwrap_or_else(|| SimDisk::new(11));
        let config = ExecConfig { tso_window_ms: 100, block_cache_bytes: 4 << 10, ..ExecConfig::default() };
        let w = SimMvcc::open_at(tiny_config(Durability::SyncEachWrite), config, disk, self.now_ms, None);
        let out = match &w.recovered {
            Some(Ok(mark)) => format!("opened (timestamp mark {})", self.name(*mark)),
            other => format!("open failed: {other:?}"),
        };
        self.w = Some(w);
        out
    }

    fn show_err(&self, e: &ExecError) -> String {
        match e {
            ExecError::Mvcc(MvccError::KeyIsLocked(info)) => format!(
                "error: key {} is locked by {} (primary {}, ttl {} ms)",
                text(&info.key),
                self.name(info.lock.start_ts),
                text(&info.lock.primary),
                info.lock.ttl_ms
            ),
            ExecError::Mvcc(MvccError::WriteConflict { key, start_ts, conflict_commit_ts, reason, .. }) => format!(
                "error: write conflict on {} for {}: committed at {} ({reason:?})",
                text(key),
                self.name(*start_ts),
                self.name(*conflict_commit_ts)
            ),
            ExecError::Mvcc(MvccError::TxnLockNotFound { key, start_ts, .. }) => {
                format!("error: lock of {} on {} not found (rolled back)", self.name(*start_ts), text(key))
            }
            ExecError::Mvcc(MvccError::Committed { key, start_ts, commit_ts }) => {
                format!("error: {} already committed {} at {}", self.name(*start_ts), text(key), self.name(*commit_ts))
            }
            ExecError::Mvcc(MvccError::CommitTsExpired { commit_ts, min_commit_ts, .. }) => {
                format!("error: commit ts {} below min_commit_ts {}", self.name(*commit_ts), self.name(*min_commit_ts))
            }
            ExecError::Mvcc(MvccError::TxnNotFound { key, start_ts }) => format!("error: {} not found on {}", self.name(*start_ts), text(key)),
            other => format!("error: {other}"),
        }
    }

    fn show(&mut self, r: Option<Result<Response, ExecError>>) -> String {
        match r {
            None => "no reply (power cut)".into(),
            Some(Err(e)) => self.show_err(&e),
            Some(Ok(Response::Done)) => "ok".into(),
            Some(Ok(Response::Value(Some(v)))) => val(&v),
            Some(Ok(Response::Value(None))) => "(not found)".into(),
            Some(Ok(Response::Entries(e))) if e.is_empty() => "(empty)".into(),
            Some(Ok(Response::Entries(e))) => e.iter().map(|(k, v)| format!("{}={}", text(k), val(v))).collect::<Vec<_>>().join(" "),
            Some(Ok(Response::Committed { commit_ts })) => {
                self.one_pcs += 1;
                let n = format!("C{}", self.one_pcs);
                self.names.insert(n.clone(), commit_ts);
                format!("committed at {n}")
            }
            Some(Ok(Response::TxnStatus(s))) => match s {
                TxnStatus::Locked { lock } => format!("locked (ttl {} ms, min_commit_ts {})", lock.ttl_ms, self.name(lock.min_commit_ts)),
                TxnStatus::Committed { commit_ts } => format!("committed at {}", self.name(commit_ts)),
                other => format!("{other:?}"),
            },
            Some(Ok(Response::Ttl(t))) => format!("ttl {t} ms"),
            Some(Ok(Response::Gc { resume_from })) => format!("gc done (resume {resume_from:?})"),
            Some(Ok(Response::Timestamp(ts))) => self.name(ts),
            Some(Ok(other)) => format!("{other:?}"),
        }
    }

    fn mutations(&self, words: &[&str]) -> Vec<Mutation> {
        words
            .iter()
            .filter(|w| !w.starts_with("ttl="))
            .map(|w| {
                if let Some(k) = w.strip_prefix("del:") {
                    Mutation::Delete(k.as_bytes().to_vec())
                } else if let Some(k) = w.strip_prefix("lock:") {
                    Mutation::Lock(k.as_bytes().to_vec())
                } else {
                    let (k, v) = w.split_once('=').expect("k=v");
                    let v = v.strip_prefix("long:").map_or_else(|| v.as_bytes().to_vec(), |v| v.repeat(300 / v.len().max(1) + 1).into_bytes());
                    Mutation::Put(k.as_bytes().to_vec(), v)
                }
            })
            .collect()
    }

    fn run(&mut self, line: &str) -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        let keys = |from: usize| words[from..].iter().map(|k| k.as_bytes().to_vec()).collect::<Vec<_>>();
        let ttl = words.iter().find_map(|w| w.strip_prefix("ttl=")).map_or(3_000, |t| t.parse().expect("ttl=N"));
        let cmd = match words.first().copied().unwrap_or("") {
            "open" | "reopen" => return self.open(),
            "crash" => {
                let w = self.w.take().expect("no store");
                self.now_ms = w.now_ms();
                self.disk = Some(w.crash(words.get(1) == Some(&"tear")));
                return "power cut".into();
            }
            "advance" => {
                let ms = words[1].parse().expect("advance MS");
                self.w().advance(ms);
                return format!("now {} ms", self.w().now_ms());
            }
            "flush" => {
                let r = self.w().sim.call(strata_engine::lsm::store::Request::Flush);
                self.w().run();
                return match r {
                    Some(Ok(_)) => "flushed".into(),
                    other => format!("flush: {other:?}"),
                };
            }
            "ts" => {
                let r = self.w().call(Command::Timestamp);
                let Some(Ok(Response::Timestamp(ts))) = r else { return self.show(r) };
                self.names.insert(words[1].to_string(), ts);
                return format!("{} = {}.{}", words[1], ts.physical_ms(), ts.logical());
            }
            "prewrite" => {
                let mut req = PrewriteRequest::new(words[2].as_bytes().to_vec(), self.ts(words[1]), ttl);
                req.mutations = self.mutations(&words[3..]);
                Command::Prewrite(req)
            }
            "onepc" => {
                let muts = self.mutations(&words[2..]);
                let mut req = PrewriteRequest::new(muts[0].key().to_vec(), self.ts(words[1]), ttl);
                req.mutations = muts;
                Command::OnePc(req)
            }
            "commit" => Command::Commit { keys: keys(3), start_ts: self.ts(words[1]), commit_ts: self.ts(words[2]) },
            "rollback" => Command::Rollback { keys: keys(2), start_ts: self.ts(words[1]) },
            "cleanup" => Command::Cleanup { key: words[2].as_bytes().to_vec(), start_ts: self.ts(words[1]) },
            "get" => Command::Get { key: words[1].as_bytes().to_vec(), read_ts: self.ts(words[2].trim_start_matches('@')) },
            "scan" => {
                let at = self.ts(words.last().expect("@TS").trim_start_matches('@'));
                let plain = &words[1..words.len() - 1];
                Command::Scan {
                    from: plain.first().map_or_else(Vec::new, |k| k.as_bytes().to_vec()),
                    upper: plain.get(1).map(|k| k.as_bytes().to_vec()),
                    read_ts: at,
                    limit: usize::MAX,
                }
            }
            "check" => Command::CheckTxnStatus {
                primary: words[1].as_bytes().to_vec(),
                lock_ts: self.ts(words[2]),
                caller_start_ts: words.get(3).and_then(|w| w.strip_prefix("caller=")).map(|n| self.ts(n)),
                rollback_if_not_exist: true,
            },
            "resolve" => Command::ResolveLock {
                keys: keys(3),
                start_ts: self.ts(words[1]),
                commit_ts: words[2].strip_prefix("commit=").map(|n| self.ts(n)),
            },
            "heartbeat" => Command::TxnHeartbeat { primary: words[1].as_bytes().to_vec(), start_ts: self.ts(words[2]), advise_ttl_ms: words[3].parse().expect("TTL") },
            "gc" => Command::Gc { from: Vec::new(), upper: None, safe_point: self.ts(words[1]), max_keys: 1_000 },
            "applied" => {
                let applied = std::mem::take(&mut self.w().applied);
                if applied.is_empty() {
                    return "(none)".into();
                }
                let mut lines = Vec::new();
                for a in applied {
                    let changes: Vec<String> = a
                        .changes
                        .iter()
                        .map(|c| match &c.value {
                            Some(v) => format!("{}={}", text(&c.key), val(v)),
                            None => format!("{} deleted", text(&c.key)),
                        })
                        .collect();
                    lines.push(format!("at {}: {}", self.name(a.commit_ts), changes.join(", ")));
                }
                return lines.join("\n");
            }
            other => return format!("unknown command {other:?}"),
        };
        let r = self.w().call(cmd);
        self.show(r)
    }
}

fn run_file(path: &std::path::Path) -> (String, String) {
    let text = std::fs::read_to_string(path).expect("read transcript");
    let mut world = World { w: None, disk: None, now_ms: 1_000, names: BTreeMap::new(), one_pcs: 0 };
    let mut out = String::new();
    for line in text.lines() {
        if let Some(cmd) = line.strip_prefix("> ") {
            out.push_str(line);
            out.push('\n');
            for l in world.run(cmd).lines() {
                out.push_str(l);
                out.push('\n');
            }
        } else if line.starts_with('#') || line.trim().is_empty() {
            out.push_str(line);
            out.push('\n');
        }
    }
    (text, out)
}

#[test]
fn transcripts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/mvcc");
    let rewrite = std::env::var_os("REWRITE").is_some();
    let mut paths: Vec<_> = std::fs::read_dir(&dir).expect("testdata/mvcc").map(|e| e.expect("entry").path()).collect();
    paths.sort();
    assert!(!paths.is_empty());
    for path in paths {
        let (want, got) = run_file(&path);
        if rewrite {
            std::fs::write(&path, &got).expect("rewrite transcript");
        } else {
            assert_eq!(want, got, "transcript {} differs (REWRITE=1 regenerates it)", path.display());
        }
    }
}
