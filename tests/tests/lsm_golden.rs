//! Golden transcripts: readable scenarios in `tests/testdata/lsm/*.txt` whose expected output is
//! checked in. Each command line starts with `> `; the lines after it, up to the next command,
//! are its expected output. Run with `REWRITE=1` to regenerate the expected output after an
//! intended change, then read the diff.
//!
//! Commands: `open [sync|manual]`, `put K V`, `del K`, `batch put K V, del K, ...`, `get K`,
//! `get@SNAP K`, `scan [FROM] [TO] [rev] [limit=N]`, `snapshot`, `flush`, `compact [LO HI]`,
//! `sync`, `crash [tear]`, `reopen`, `levels`, `files`, `flip FILE OFFSET`, `full on|off`.
use std::fmt::Write as _;
use std::ops::Bound;
use strata_engine::lsm::batch::Batch;
use strata_engine::lsm::config::Durability;
use strata_engine::lsm::io::FileName;
use strata_engine::lsm::store::{Reply, Request};
use strata_sim::disk::SimDisk;
use strata_sim::store::SimStore;
use strata_tests::tiny_config;

struct World {
    store: Option<SimStore>,
    disk: Option<SimDisk>,
    durability: Durability,
    snapshots: Vec<u64>,
}

fn show(r: Option<Result<Reply, strata_engine::lsm::error::Error>>) -> String {
    match r {
        None => "no reply (power cut)".into(),
        Some(Err(e)) => format!("error: {e}"),
        Some(Ok(Reply::Written { seq })) => format!("ok seq={seq}"),
        Some(Ok(Reply::Value(Some(v)))) => String::from_utf8_lossy(&v).into_owned(),
        Some(Ok(Reply::Value(None))) => "(not found)".into(),
        Some(Ok(Reply::Done)) => "ok".into(),
        Some(Ok(Reply::Entries(e))) if e.is_empty() => "(empty)".into(),
        Some(Ok(Reply::Entries(e))) => e
            .iter()
            .map(|(k, v)| format!("{}={}", String::from_utf8_lossy(k), String::from_utf8_lossy(v)))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

impl World {
    fn s(&mut self) -> &mut SimStore {
        self.store.as_mut().expect("no store open: use `open`")
    }

    fn open(&mut self) -> String {
        let disk = self.disk.take().unwrap_or_else(|| SimDisk::new(7));
        let s = SimStore::open(tiny_config(self.durability), disk);
        let out = match s.open_result() {
            Some(Ok(())) => "opened".to_string(),
            Some(Err(e)) => format!("open failed: {e}"),
            None => "open did not finish".into(),
        };
        self.store = Some(s);
        out
    }

    fn run(&mut self, line: &str) -> String {
        let words: Vec<&str> = line.split_whitespace().collect();
        // `""` stands for the empty string.
        let arg = |i: usize| match words.get(i).copied().unwrap_or("") {
            "\"\"" => Vec::new(),
            w => w.as_bytes().to_vec(),
        };
        match words.first().copied().unwrap_or("") {
            "open" => {
                self.durability = if words.get(1) == Some(&"manual") { Durability::Manual } else { Durability::SyncEachWrite };
                self.open()
            }
            "put" => {
                let mut b = Batch::new();
                b.put(&arg(1), &arg(2));
                show(self.s().call(Request::Write(b)))
            }
            "del" => {
                let mut b = Batch::new();
                b.delete(&arg(1));
                show(self.s().call(Request::Write(b)))
            }
            "batch" => {
                let mut b = Batch::new();
                for op in line["batch".len()..].split(',') {
                    let w: Vec<&str> = op.split_whitespace().collect();
                    match w.as_slice() {
                        ["put", k, v] => b.put(k.as_bytes(), v.as_bytes()),
                        ["del", k] => b.delete(k.as_bytes()),
                        _ => return format!("bad batch op {op:?}"),
                    };
                }
                show(self.s().call(Request::Write(b)))
            }
            "get" => show(self.s().call(Request::Get { key: arg(1), snapshot: None })),
            w if w.starts_with("get@") => {
                let i: usize = w[4..].parse().expect("get@N names a snapshot index");
                let snap = self.snapshots[i];
                show(self.s().call(Request::Get { key: arg(1), snapshot: Some(snap) }))
            }
            "snapshot" => {
                let seq = self.s().store.snapshot();
                self.snapshots.push(seq);
                format!("snapshot {} at seq {seq}", self.snapshots.len() - 1)
            }
            "scan" => {
                let mut plain = Vec::new();
                let (mut reverse, mut limit) = (false, usize::MAX);
                for w in &words[1..] {
                    if *w == "rev" {
                        reverse = true;
                    } else if let Some(n) = w.strip_prefix("limit=") {
                        limit = n.parse().expect("limit=N");
                    } else {
                        plain.push(w.as_bytes().to_vec());
                    }
                }
                let lower = plain.first().cloned().map_or(Bound::Unbounded, Bound::Included);
                let upper = plain.get(1).cloned().map_or(Bound::Unbounded, Bound::Excluded);
                show(self.s().call(Request::Scan { lower, upper, reverse, limit, snapshot: None }))
            }
            "flush" => show(self.s().call(Request::Flush)),
            "sync" => show(self.s().call(Request::Sync)),
            "compact" => {
                let (lo, hi) = if words.len() == 3 { (arg(1), arg(2)) } else { (vec![], vec![0xff; 8]) };
                show(self.s().call(Request::CompactRange { lo, hi }))
            }
            "crash" => {
                let s = self.store.take().expect("no store");
                self.disk = Some(s.crash(words.get(1) == Some(&"tear")));
                self.snapshots.clear();
                "power cut".into()
            }
            "reopen" => self.open(),
            "levels" => {
                let st = self.s().store.stats();
                let mut out = String::new();
                for (l, n) in st.level_files.iter().enumerate().filter(|(_, n)| **n > 0) {
                    let _ = write!(out, "L{l}: {n} files  ");
                }
                if out.is_empty() {
                    out.push_str("(no tables)");
                }
                out.trim_end().to_string()
            }
            "files" => {
                let disk = match (&self.store, &self.disk) {
                    (Some(s), _) => &s.disk,
                    (None, Some(d)) => d,
                    _ => return "(no disk)".into(),
                };
                disk.files().iter().map(|(f, len)| format!("{f} ({len} B)")).collect::<Vec<_>>().join("\n")
            }
            "flip" => {
                let file = FileName::parse(words[1]).expect("a file name");
                let offset: usize = words[2].parse().expect("an offset");
                let disk = self.disk.as_mut().expect("flip needs a crashed store (its disk)");
                format!("flipped: {}", disk.flip_bit(file, offset, 0))
            }
            "full" => {
                self.s().disk.faults.disk_full = words.get(1) == Some(&"on");
                format!("disk full: {}", words.get(1) == Some(&"on"))
            }
            other => format!("unknown command {other:?}"),
        }
    }
}

fn run_file(path: &std::path::Path) -> (String, String) {
    let text = std::fs::read_to_string(path).expect("read transcript");
    let mut world = World { store: None, disk: None, durability: Durability::SyncEachWrite, snapshots: Vec::new() };
    let mut out = String::new();
    for line in text.lines() {
        if let Some(cmd) = line.strip_prefix("> ") {
            out.push_str(line);
            out.push('\n');
            let r = world.run(cmd);
            for l in r.lines() {
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
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/lsm");
    let rewrite = std::env::var_os("REWRITE").is_some();
    let mut paths: Vec<_> = std::fs::read_dir(&dir).expect("testdata/lsm").map(|e| e.expect("entry").path()).collect();
    paths.sort();
    assert!(!paths.is_empty());
    for path in paths {
        let (want, got) = run_file(&path);
        if rewrite {
            std::fs::write(&path, &got).expect("rewrite transcript");
        } else {
            assert_eq!(got, want, "{} differs (run with REWRITE=1 to accept)", path.display());
        }
    }
}
