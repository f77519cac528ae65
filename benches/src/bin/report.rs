//! Turns the last bench run into the Markdown tables of `RESULTS.md`: criterion's estimates
//! (`target/criterion/<workload>/<engine>/new/`), `space_amp.tsv` and `rss.tsv`.
//!
//! Throughput ratios are ours ÷ peer, so > 1 means Strata is faster; the space ratio is
//! the engine's own disk ÷ live bytes (lower is better). Figures come only from those files.
use serde_json::Value;
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
    let criterion = results.parent().expect("target dir").join("criterion");
    let mut md = String::new();
    for (id, title) in WORKLOADS {
        let rows = read_group(&criterion.join(id));
        if rows.is_empty() {
            continue;
        }
        md.push_str(&format!("### `{id}`: {title}\n\n"));
        md.push_str("| engine | throughput | mean time per iteration | ours ÷ engine (throughput) |\n");
        md.push_str("|---|---:|---:|---:|\n");
        let ours = rows.get(OURS).map(|r| r.ops_per_sec);
        for (name, r) in sorted(&rows) {
            let ratio = match ours {
                Some(o) if name != OURS => format!("{:.2}×", o / r.ops_per_sec),
                _ => "—".into(),
            };
            md.push_str(&format!(
                "| {name} | {} | {} | {ratio} |\n",
                fmt_rate(r.ops_per_sec),
                fmt_ns(r.mean_ns)
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
    mean_ns: f64,
}

fn read_group(dir: &Path) -> BTreeMap<String, Row> {
    let mut rows = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return rows };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let new = entry.path().join("new");
        let (Some(est), Some(bench)) = (read_json(&new.join("estimates.json")), read_json(&new.join("benchmark.json")))
        else {
            continue;
        };
        let mean_ns = est["mean"]["point_estimate"].as_f64().unwrap_or(f64::NAN);
        let elements = bench["throughput"]["Elements"].as_f64().unwrap_or(1.0);
        rows.insert(name, Row { ops_per_sec: elements / (mean_ns * 1e-9), mean_ns });
    }
    rows
}

fn sorted(rows: &BTreeMap<String, Row>) -> Vec<(String, &Row)> {
    let mut v: Vec<(String, &Row)> = rows.iter().map(|(k, r)| (k.clone(), r)).collect();
    v.sort_by_key(|(k, _)| ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()));
    v
}

fn read_json(path: &PathBuf) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
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
