//! Golden interaction transcripts (`testdata/*.txt`), in the style of etcd raft's
//! datadriven tests: each block is a command, `----`, and the expected output, ended by a
//! blank line. `REWRITE=1 cargo test -p strata-raft --test golden` rewrites the expected
//! outputs from what the code does now (review the diff before committing).

mod common;

use common::interact::Interaction;

fn run_file(path: &std::path::Path) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(path).expect("readable transcript");
    let mut it = Interaction::new();
    let mut rewritten = String::new();
    let mut failures = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() || line.starts_with('#') {
            rewritten += line;
            rewritten += "\n";
            continue;
        }
        let cmd = line.to_string();
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
        let actual = match it.run(&cmd) {
            Ok(s) => s,
            Err(e) => format!("error: {e}\n"),
        };
        let actual = if actual.is_empty() {
            "ok\n".to_string()
        } else {
            actual
        };
        if actual != expected {
            failures.push(format!(
                "{}: `{cmd}`\n--- expected\n{expected}--- actual\n{actual}",
                path.display()
            ));
        }
        rewritten += &format!("{cmd}\n----\n{actual}\n");
    }
    (rewritten, failures)
}

#[test]
fn golden_transcripts() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("testdata dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no transcripts");
    let rewrite = std::env::var("REWRITE").is_ok();
    let mut all = Vec::new();
    for f in files {
        let (text, failures) = run_file(&f);
        if rewrite {
            std::fs::write(&f, text.trim_end().to_string() + "\n").expect("writable");
        } else {
            all.extend(failures);
        }
    }
    assert!(
        all.is_empty(),
        "{} transcript blocks differ (REWRITE=1 to update):\n{}",
        all.len(),
        all.join("\n")
    );
}
