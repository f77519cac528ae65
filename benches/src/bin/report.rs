//! Turns bench runs into the Markdown tables of `RESULTS.md`: criterion's console output of
//! `cargo bench --bench lsm` saved to files (`report LOG...`; a later log's figure for the same
//! `<workload>/<engine>` replaces an earlier one; default `target/strata-benches/lsm-full.log`),
//! plus `space_amp.tsv` and `rss.tsv` from `target/strata-benches/`.
//!
//! The logs rather than `target/criterion/` are read because that folder is shared by everyone
//! who runs a bench in this checkout: a log is exactly one run. Throughput is criterion's
//! middle estimate. Throughput ratios are ours ÷ peer, so > 1 means Strata is faster; the space
//! ratio is each engine's own disk ÷ live bytes (lower is better).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use strata_benches::workloads;

const OURS: &str = "strata";
const WORKLOADS: &[(&str, &str)] = &[
    ("put_nosync", "1M random puts, no per-op sync (one sync at the end)"),
    ("get_present", "point reads of present keys, 1M keys flushed to SSTs"),
    ("get_missing", "point reads of missing keys, same store"),
    ("scan_10k", "10k-entry range scans from random keys, same store"),
    ("put_durable_4t", "durable puts from 4 threads, each waiting for its own sync"),
    ("reopen_wal", "reopen after 1M unflushed puts (WAL replay) and one read"),
];
const ORDER: &[&str] = &["strata", "fjall", "redb", "sled", "rocksdb"];

fn main() {
    let results = workloads::results_dir();
    let mut logs: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    if logs.is_empty() {
        logs.push(results.join("lsm-full.log"));
    }
    let mut figures: BTreeMap<String, BTreeMap<String, Row>> = BTreeMap::new();
    for log in &logs {
        let text = std::fs::read_to_string(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        for (id, row) in parse_log(&text) {
            let (group, engine) = id.split_once('/').expect("criterion id has a group");
            figures.entry(group.to_string()).or_default().insert(engine.to_string(), row);
        }
    }
    let mut md = String::new();
    for (id, title) in WORKLOADS {
        let Some(rows) = figures.get(*id) else { continue };
        md.push_str(&format!("### `{id}`: {title}\n\n"));
        md.push_str("| engine | throughput | time per iteration | ours ÷ engine (throughput) |\n");
        md.push_str("|---|---:|---:|---:|\n");
        let ours = rows.get(OURS).map(|r| r.ops_per_sec);
        for (name, r) in sorted(rows) {
            let ratio = match ours {
                Some(o) if name != OURS => format!("{:.2}×", o / r.ops_per_sec),
                _ => "—".into(),
            };
            md.push_str(&format!(
                "| {name} | {} | {} | {ratio} |\n",
                fmt_rate(r.ops_per_sec),
                fmt_ns(r.time_ns)
            ));
        }
        md.push('\n');
    }
    if let Some(t) = read_tsv(&results.join("space_amp.tsv"), 7) {
        md.push_str("### `space_amp`: disk ÷ live raw bytes after compacting 1M keys, half overwritten\n\n");
        md.push_str("| engine | keys | disk (allocated) | apparent size | live raw | ratio (lower is better) | full compaction |\n");
        md.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
        for row in t {
            md.push_str(&format!(
                "| {} | {} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {} | {} s |\n",
                row[0],
                row[1],
                mib(&row[2]),
                mib(&row[3]),
                mib(&row[4]),
                row[5],
                row[6]
            ));
        }
        md.push('\n');
    }
    if let Some(t) = read_tsv(&results.join("rss.tsv"), 5) {
        md.push_str("### Peak RSS of the 1M-put load (own process per engine, VmHWM)\n\n");
        md.push_str("| engine | keys | peak RSS | load + sync + flush |\n|---|---:|---:|---:|\n");
        for row in t {
            let kib: f64 = row[2].parse().unwrap_or(0.0);
            md.push_str(&format!("| {} | {} | {:.1} MiB | {} s |\n", row[0], row[1], kib / 1024.0, row[4]));
        }
        md.push('\n');
    }
    print!("{md}");
}

struct Row {
    ops_per_sec: f64,
    time_ns: f64,
}

/// `(id, row)` for every `<group>/<engine>  time: [lo mid hi]` line followed by a
/// `thrpt: [lo mid hi]` line (criterion's "change" lines, with %, are skipped).
fn parse_log(text: &str) -> Vec<(String, Row)> {
    let mut out = Vec::new();
    let mut pending: Option<(String, f64)> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some((id, rest)) = t.split_once("time:") {
            let id = id.trim();
            if id.contains('/') && !id.contains(' ') {
                pending = middle(rest).map(|(v, unit)| (id.to_string(), v * ns_per(unit)));
            } else {
                pending = None;
            }
        } else if let Some(rest) = t.strip_prefix("thrpt:") {
            if rest.contains('%') {
                continue;
            }
            if let (Some((id, time_ns)), Some((v, unit))) = (pending.take(), middle(rest)) {
                out.push((id, Row { ops_per_sec: v * per_sec(unit), time_ns }));
            }
        }
    }
    out
}

/// The middle of criterion's `[lo unit mid unit hi unit]`.
fn middle(s: &str) -> Option<(f64, String)> {
    let inner = s.trim().strip_prefix('[')?.strip_suffix(']')?;
    let parts: Vec<&str> = inner.split_whitespace().collect();
    Some((parts.get(2)?.parse().ok()?, (*parts.get(3)?).to_string()))
}

fn ns_per(unit: String) -> f64 {
    match unit.as_str() {
        "ps" => 1e-3,
        "ns" => 1.0,
        "µs" | "us" => 1e3,
        "ms" => 1e6,
        _ => 1e9,
    }
}

fn per_sec(unit: String) -> f64 {
    match unit.as_str() {
        "Kelem/s" => 1e3,
        "Melem/s" => 1e6,
        "Gelem/s" => 1e9,
        _ => 1.0,
    }
}

fn sorted(rows: &BTreeMap<String, Row>) -> Vec<(String, &Row)> {
    let mut v: Vec<(String, &Row)> = rows.iter().map(|(k, r)| (k.clone(), r)).collect();
    v.sort_by_key(|(k, _)| ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()));
    v
}

/// Rows of a TSV file with exactly `columns` columns (older layouts are skipped).
fn read_tsv(path: &Path, columns: usize) -> Option<Vec<Vec<String>>> {
    let text = std::fs::read_to_string(path).ok()?;
    let rows: Vec<Vec<String>> = text
        .lines()
        .skip(1)
        .map(|l| l.split('\t').map(String::from).collect::<Vec<_>>())
        .filter(|r| r.len() == columns)
        .collect();
    Some(rows)
}

fn mib(bytes: &str) -> f64 {
    bytes.parse::<f64>().unwrap_or(0.0) / (1024.0 * 1024.0)
}

fn fmt_rate(ops: f64) -> String {
    if ops >= 1e6 {
        format!("{:.2} M ops/s", ops / 1e6)
    } else if ops >= 1e3 {
        format!("{:.1} k ops/s", ops / 1e3)
    } else {
        format!("{ops:.1} ops/s")
    }
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}
