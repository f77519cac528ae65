//! How the CLI shows bytes, entries and stats.
use std::fmt::Write as _;
use std::io::Write;
use strata::raw::Iter;
use strata::Stats;

/// Bytes as text: UTF-8 without control characters prints as is; anything else is quoted
/// with escapes (`"\x00\xff"`), the form the shell accepts back.
pub fn bytes(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if !s.is_empty() && !s.chars().any(|c| c.is_control() || c == '"' || c == '\\') && !s.contains(' ') => {
            s.to_string()
        }
        _ => quoted(b),
    }
}

fn quoted(b: &[u8]) -> String {
    let mut out = String::from("\"");
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for byte in c.encode_utf8(&mut buf).bytes() {
                        let _ = write!(out, "\\x{byte:02x}");
                    }
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out.push('"');
    out
}

/// Prints `key = value` lines, at most `limit` (0: all); returns how many were printed.
pub fn print_entries(iter: Iter, limit: usize, out: &mut impl Write) -> Result<usize, strata::Error> {
    let mut n = 0;
    for item in iter {
        if limit != 0 && n >= limit {
            let _ = writeln!(out, "... (limit {limit} reached)");
            break;
        }
        let (k, v) = item?;
        if writeln!(out, "{} = {}", bytes(&k), bytes(&v)).is_err() {
            break; // stdout closed (e.g. piped into `head`)
        }
        n += 1;
    }
    if n == 0 {
        let _ = writeln!(out, "(empty)");
    }
    Ok(n)
}

/// A byte count for people.
pub fn size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A duration in nanoseconds for people.
pub fn nanos(ns: u64) -> String {
    match ns {
        0..=9_999 => format!("{:.1} µs", ns as f64 / 1e3),
        10_000..=999_999 => format!("{:.0} µs", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.2} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

/// The stats table.
pub fn stats(s: &Stats) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "level  files       bytes");
    for (l, (files, bytes)) in s.level_files.iter().zip(s.level_bytes.iter()).enumerate() {
        if *files > 0 || l == 0 {
            let _ = writeln!(out, "L{l:<5}{files:>6}  {:>10}", size(*bytes));
        }
    }
    let _ = writeln!(out, "tables: {}   memtables: {}", size(s.table_bytes()), size(s.memtable_bytes));
    let _ = writeln!(
        out,
        "written: user {}, WAL {}, flushes {}, compactions {}",
        size(s.user_bytes_written),
        size(s.wal_bytes_written),
        size(s.flush_bytes_written),
        size(s.compaction_bytes_written)
    );
    let _ = writeln!(
        out,
        "write amplification {:.2}   space amplification {:.2}",
        s.write_amplification(),
        s.space_amplification()
    );
    let _ = writeln!(out, "flushes {}   compactions {}   WAL syncs {}   last seq {}", s.flushes, s.compactions, s.wal_syncs, s.last_seq);
    let _ = writeln!(
        out,
        "block cache: {} of {}, hit rate {:.1}% ({} hits, {} misses)",
        size(s.cache.bytes as u64),
        size(s.cache.capacity as u64),
        s.cache.hit_rate() * 100.0,
        s.cache.hits,
        s.cache.misses
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_through_the_shell_syntax() {
        assert_eq!(bytes(b"abc"), "abc");
        assert_eq!(bytes(b"a b"), "\"a b\"");
        assert_eq!(bytes(b"\x00\xff"), "\"\\x00\\xff\"");
        assert_eq!(bytes(b""), "\"\"");
        for s in [&b"a b"[..], b"\x00\xff", b"q\"uo\\te\n", b"", "é".as_bytes()] {
            let shown = bytes(s);
            let parsed = crate::shell::tokenize(&shown).expect("parses");
            assert_eq!(parsed, vec![s.to_vec()], "{shown}");
        }
    }
}
