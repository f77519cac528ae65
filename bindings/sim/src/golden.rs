//! The golden-transcript runner shared by every transcript test (broker, etcd, streams, …).
//!
//! A transcript is a text file of commands, each followed by `----` and the output it must
//! produce, then a blank line; `#` lines are comments. [`check_dir`] runs every `*.txt` file
//! in a folder through a fresh world, line by line, and fails with every differing block; with
//! `REWRITE=1` in the environment it rewrites the files with the actual outputs instead.
use std::path::Path;

/// Runs one transcript: `run` executes a command line and returns its output (`Ok("")`
/// prints as `ok`, `Err(e)` as `error: e`). Returns the rewritten text and the failures.
pub fn run_file<E: std::fmt::Display>(path: &Path, mut run: impl FnMut(&str) -> Result<String, E>) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(path).expect("readable transcript");
    let mut rewritten = String::new();
    let mut failures = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() && (rewritten.is_empty() || rewritten.ends_with("\n\n")) {
            continue;
        }
        if line.trim().is_empty() || line.starts_with('#') {
            rewritten += line;
            rewritten += "\n";
            continue;
        }
        let mut expected = String::new();
        if lines.peek() == Some(&"----") {
            lines.next();
            for l in lines.by_ref() {
                if l.is_empty() {
                    break;
                }
                expected += l;
                expected += "\n";
            }
        }
        let actual = match run(line) {
            Ok(s) if s.is_empty() => "ok\n".to_string(),
            Ok(s) => s,
            Err(e) => format!("error: {e}\n"),
        };
        if actual != expected {
            failures.push(format!("{}: `{line}`\n--- expected\n{expected}--- actual\n{actual}", path.display()));
        }
        rewritten += &format!("{line}\n----\n{actual}\n");
    }
    (rewritten, failures)
}

/// Checks (or with `REWRITE=1` rewrites) every `*.txt` transcript in `dir`; `run_one` runs
/// one file with a fresh world, usually by calling [`run_file`].
pub fn check_dir(dir: &Path, mut run_one: impl FnMut(&Path) -> (String, Vec<String>)) {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("testdata dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no transcripts in {}", dir.display());
    let rewrite = std::env::var_os("REWRITE").is_some();
    let mut all = Vec::new();
    for f in files {
        let (text, failures) = run_one(&f);
        if rewrite {
            std::fs::write(&f, text.trim_end().to_string() + "\n").expect("writable");
        } else {
            all.extend(failures);
        }
    }
    assert!(all.is_empty(), "{} transcript blocks differ (REWRITE=1 to update):\n{}", all.len(), all.join("\n"));
}
