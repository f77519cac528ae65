//! `strata shell`: an interactive prompt in the spirit of `redis-cli` and `sqlite3`.
//!
//! Reads one command per line from standard input (a prompt is shown only on a terminal, so
//! scripts can pipe commands in). Arguments are separated by spaces; double quotes group words
//! and accept `\"`, `\\`, `\n`, `\t` and `\xNN` escapes, the same form the shell prints.
use crate::fmt;
use std::io::{BufRead, IsTerminal, Write};
use strata::raw::Db;

const HELP: &str = "\
commands:
  put KEY VALUE            set KEY (durable when it returns)
  get KEY                  print KEY's value, or (nil)
  del KEY                  delete KEY
  scan [FROM [TO]] [N]     keys from FROM (inclusive) to TO (exclusive), at most N (default 20)
  rscan [FROM [TO]] [N]    the same, descending
  prefix P [N]             keys starting with P, at most N (default 20)
  stats                    levels, bytes, amplification, cache hit rate
  flush                    write the memtable to an SST
  compact                  compact everything into the bottom level
  history                  the commands typed so far
  help                     this text
  quit | exit              leave (end of input works too)
quote arguments with spaces or odd bytes: put \"my key\" \"\\x00\\xffvalue\"";

/// Runs the prompt until `quit` or end of input: with line editing and a history kept in
/// `~/.strata_history` on a terminal, plain lines otherwise.
pub fn run(db: &Db) -> Result<(), strata::Error> {
    let mut history: Vec<String> = Vec::new();
    if std::io::stdin().is_terminal() {
        if let Ok(editor) = rustyline::DefaultEditor::new() {
            return run_editor(db, editor, &mut history);
        }
    }
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if let Flow::Quit = one_line(db, &line, &mut history) {
            break;
        }
    }
    Ok(())
}

fn run_editor(db: &Db, mut editor: rustyline::DefaultEditor, history: &mut Vec<String>) -> Result<(), strata::Error> {
    use rustyline::error::ReadlineError;
    println!("strata shell on {} — type `help` for commands", db.path().display());
    let file = std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".strata_history"));
    if let Some(f) = &file {
        let _ = editor.load_history(f);
    }
    loop {
        match editor.readline("strata> ") {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                if let Flow::Quit = one_line(db, &line, history) {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => continue, // Ctrl-C drops the line
            Err(_) => break,                               // Ctrl-D, closed terminal
        }
    }
    if let Some(f) = &file {
        let _ = editor.save_history(f);
    }
    Ok(())
}

/// Runs one input line; comments and blank lines do nothing.
fn one_line(db: &Db, line: &str, history: &mut Vec<String>) -> Flow {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Flow::Continue;
    }
    history.push(line.to_string());
    let mut out = std::io::stdout().lock();
    match execute(db, line, history, &mut out) {
        Ok(flow) => flow,
        Err(msg) => {
            let _ = writeln!(out, "(error) {msg}");
            Flow::Continue
        }
    }
}

enum Flow {
    Continue,
    Quit,
}

fn execute(db: &Db, line: &str, history: &[String], out: &mut impl Write) -> Result<Flow, String> {
    let args = tokenize(line)?;
    let Some((cmd, rest)) = args.split_first() else { return Ok(Flow::Continue) };
    let cmd = String::from_utf8_lossy(cmd).to_ascii_lowercase();
    let e = |e: strata::Error| e.to_string();
    let w = |r: std::io::Result<()>| r.map_err(|e| e.to_string());
    match (cmd.as_str(), rest) {
        ("put" | "set", [k, v]) => {
            db.put(k, v).map_err(e)?;
            w(writeln!(out, "OK"))?;
        }
        ("get", [k]) => match db.get(k).map_err(e)? {
            Some(v) => w(writeln!(out, "{}", fmt::bytes(&v)))?,
            None => w(writeln!(out, "(nil)"))?,
        },
        ("del" | "delete", [k]) => {
            db.delete(k).map_err(e)?;
            w(writeln!(out, "OK"))?;
        }
        ("scan" | "rscan", _) => {
            let (bounds, limit) = scan_args(rest)?;
            let (lo, hi) = bounds;
            let iter = if cmd == "rscan" { db.range_rev((lo, hi)) } else { db.range((lo, hi)) };
            fmt::print_entries(iter, limit, out).map_err(e)?;
        }
        ("prefix", [p, rest @ ..]) if rest.len() <= 1 => {
            let limit = match rest.first() { Some(n) => parse_limit(n)?, None => 20 };
            fmt::print_entries(db.prefix(p), limit, out).map_err(e)?;
        }
        ("stats", []) => w(write!(out, "{}", fmt::stats(&db.stats())))?,
        ("flush", []) => {
            db.flush().map_err(e)?;
            w(writeln!(out, "OK"))?;
        }
        ("compact", []) => {
            db.compact().map_err(e)?;
            w(writeln!(out, "OK"))?;
        }
        ("history", []) => {
            for (i, h) in history.iter().enumerate() {
                w(writeln!(out, "{:>4}  {h}", i + 1))?;
            }
        }
        ("help" | "?", _) => w(writeln!(out, "{HELP}"))?,
        ("quit" | "exit", []) => return Ok(Flow::Quit),
        ("put" | "set" | "get" | "del" | "delete" | "prefix" | "stats" | "flush" | "compact" | "history" | "quit"
        | "exit", _) => return Err(format!("wrong number of arguments for `{cmd}` (try `help`)")),
        _ => return Err(format!("unknown command `{cmd}` (try `help`)")),
    }
    Ok(Flow::Continue)
}

type Bounds = (std::ops::Bound<Vec<u8>>, std::ops::Bound<Vec<u8>>);

/// `[FROM [TO]] [N]`: a trailing all-digits argument is the limit.
fn scan_args(rest: &[Vec<u8>]) -> Result<(Bounds, usize), String> {
    use std::ops::Bound;
    let mut rest = rest.to_vec();
    let mut limit = 20;
    if let Some(last) = rest.last() {
        if !last.is_empty() && last.iter().all(u8::is_ascii_digit) && (rest.len() == 3 || rest.len() == 1) {
            limit = parse_limit(last)?;
            rest.pop();
        }
    }
    let bounds = match rest.as_slice() {
        [] => (Bound::Unbounded, Bound::Unbounded),
        [from] => (Bound::Included(from.clone()), Bound::Unbounded),
        [from, to] => (Bound::Included(from.clone()), Bound::Excluded(to.clone())),
        _ => return Err("usage: scan [FROM [TO]] [N]".into()),
    };
    Ok((bounds, limit))
}

fn parse_limit(n: &[u8]) -> Result<usize, String> {
    std::str::from_utf8(n).ok().and_then(|s| s.parse().ok()).ok_or_else(|| "the limit must be a number".to_string())
}

/// Splits a line into arguments (see the module docs for quoting).
pub fn tokenize(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut args = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else { return Ok(args) };
        let mut arg = Vec::new();
        if first == '"' {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("unterminated quote".into()),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => arg.push(b'\n'),
                        Some('t') => arg.push(b'\t'),
                        Some('\\') => arg.push(b'\\'),
                        Some('"') => arg.push(b'"'),
                        Some('x') => {
                            let hex: String = (0..2).filter_map(|_| chars.next()).collect();
                            let b = u8::from_str_radix(&hex, 16).map_err(|_| format!("bad escape \\x{hex}"))?;
                            arg.push(b);
                        }
                        Some(c) => return Err(format!("unknown escape \\{c}")),
                        None => return Err("unterminated quote".into()),
                    },
                    Some(c) => {
                        let mut buf = [0u8; 4];
                        arg.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return Err("a closing quote must end its argument".into());
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                let mut buf = [0u8; 4];
                arg.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
        args.push(arg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizes_quotes_and_escapes() {
        assert_eq!(tokenize("put a b").unwrap(), vec![b"put".to_vec(), b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(tokenize(r#"put "a b" "\x00\xff\n""#).unwrap(), vec![b"put".to_vec(), b"a b".to_vec(), b"\x00\xff\n".to_vec()]);
        assert!(tokenize("put \"open").is_err());
        assert!(tokenize(r#"put "\q""#).is_err());
        assert!(tokenize(r#"put "a"b"#).is_err());
        assert_eq!(tokenize("   ").unwrap(), Vec::<Vec<u8>>::new());
    }
}
