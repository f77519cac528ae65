//! `strata`: the command line of the Strata storage engine.
//!
//! With no command it runs `strata load` on `./strata-data`, Strata's main job on its embedded
//! default: write keys durably-at-the-end, show a progress bar, report throughput and latency.
mod etcd;
mod fmt;
mod load;
mod msg;
mod shell;
mod stream;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use strata::raw::Db;

#[derive(Parser, Debug)]
#[command(
    name = "strata",
    version,
    about = "Strata, an embeddable storage engine: a key-value store in a folder.",
    long_about = "Strata, an embeddable storage engine: a key-value store in a folder.\n\n\
                  With no command, `strata` runs `strata load` (100,000 keys) on ./strata-data."
)]
struct Cli {
    /// The database folder (created if missing).
    #[arg(long, global = true, value_name = "DIR", default_value = "strata-data")]
    data: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// An interactive prompt (put, get, del, scan, prefix, stats, compact, help, history).
    Shell,
    /// Set KEY to VALUE (durable when it returns).
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Print the value of KEY (exit code 1 when absent).
    Get {
        /// The key.
        key: String,
    },
    /// Delete KEY.
    Del {
        /// The key.
        key: String,
    },
    /// Print keys and values from FROM (inclusive) to TO (exclusive), in order.
    Scan {
        /// First key (default: the smallest).
        from: Option<String>,
        /// Stop before this key (default: the end).
        to: Option<String>,
        /// At most this many entries (0: all).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Descending order.
        #[arg(long)]
        reverse: bool,
    },
    /// Print keys starting with PREFIX, in order.
    Prefix {
        /// The prefix.
        prefix: String,
        /// At most this many entries (0: all).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Descending order.
        #[arg(long)]
        reverse: bool,
    },
    /// Levels, files, bytes, amplification and cache hit rate.
    Stats,
    /// Flush the memtable to an SST.
    Flush,
    /// Without REV: compact every key into the bottom level (a raw folder). With REV: compact
    /// the history of a versioned folder below revision REV (older reads fail afterwards).
    Compact {
        /// The revision (a versioned folder).
        rev: Option<u64>,
    },
    /// Run a compare-and-swap transaction read from standard input: compares, an empty line,
    /// the ops run when all hold, an empty line, the ops run otherwise (a versioned folder).
    Txn,
    /// Print every change of the keys starting with PREFIX (a versioned folder).
    Watch(etcd::WatchArgs),
    /// Print every kept version of KEY, newest first (a versioned folder).
    History {
        /// The key.
        key: String,
    },
    /// Leases: grant, keepalive, revoke (a versioned folder).
    #[command(subcommand)]
    Lease(etcd::LeaseCmd),
    /// Print the current revision (a versioned folder).
    Revision,
    /// Write COUNT random keys with a progress bar; print throughput and latency.
    Load(load::LoadArgs),
    /// Serve the database's broker over TCP (NATS client protocol subset).
    Serve(msg::ServeArgs),
    /// Connect to a server and print messages matching PATTERN.
    Sub(msg::SubArgs),
    /// Connect to a server and publish MESSAGE on SUBJECT.
    Pub(msg::PubArgs),
    /// Connect to a server, send a request and print the reply.
    Request(msg::RequestArgs),
    /// Streams: add, info, ls, get, purge, pub, rm (a versioned folder).
    #[command(subcommand)]
    Stream(stream::StreamCmd),
    /// Durable consumers of a stream: add, next, ack, info, ls, rm.
    #[command(subcommand)]
    Consumer(stream::ConsumerCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("strata: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, strata::Error> {
    let command = cli.command.unwrap_or(Command::Load(load::LoadArgs::default()));
    match &command {
        Command::Load(args) => return load::run(&cli.data, args).map(|()| ExitCode::SUCCESS),
        Command::Serve(args) => return msg::serve(&cli.data, args),
        Command::Sub(args) => return Ok(msg::sub(args)),
        Command::Pub(args) => return Ok(msg::publish(args)),
        Command::Request(args) => return Ok(msg::request(args)),
        _ => {}
    }
    let command = match command {
        Command::Stream(cmd) => return stream::stream(&cli.data, cmd),
        Command::Consumer(cmd) => return stream::consumer(&cli.data, cmd),
        Command::Txn => return etcd::txn(&cli.data),
        Command::Watch(a) => return etcd::watch(&cli.data, &a),
        Command::History { key } => return etcd::history(&cli.data, &key),
        Command::Lease(cmd) => return etcd::lease(&cli.data, &cmd),
        Command::Revision => return etcd::revision(&cli.data),
        Command::Compact { rev: Some(rev) } => return etcd::compact(&cli.data, rev),
        other => other,
    };
    let db = Db::open(&cli.data)?;
    let code = match command {
        Command::Shell => {
            shell::run(&db)?;
            ExitCode::SUCCESS
        }
        Command::Put { key, value } => {
            db.put(key, value)?;
            ExitCode::SUCCESS
        }
        Command::Get { key } => match db.get(&key)? {
            Some(v) => {
                println!("{}", fmt::bytes(&v));
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("(not found)");
                ExitCode::from(1)
            }
        },
        Command::Del { key } => {
            db.delete(key)?;
            ExitCode::SUCCESS
        }
        Command::Scan { from, to, limit, reverse } => {
            let lo = from.map_or(std::ops::Bound::Unbounded, |f| std::ops::Bound::Included(f.into_bytes()));
            let hi = to.map_or(std::ops::Bound::Unbounded, |t| std::ops::Bound::Excluded(t.into_bytes()));
            let iter = if reverse { db.range_rev((lo, hi)) } else { db.range((lo, hi)) };
            fmt::print_entries(iter, limit, &mut std::io::stdout().lock())?;
            ExitCode::SUCCESS
        }
        Command::Prefix { prefix, limit, reverse } => {
            let iter = if reverse { db.prefix_rev(prefix) } else { db.prefix(prefix) };
            fmt::print_entries(iter, limit, &mut std::io::stdout().lock())?;
            ExitCode::SUCCESS
        }
        Command::Stats => {
            print!("{}", fmt::stats(&db.stats()));
            ExitCode::SUCCESS
        }
        Command::Flush => {
            db.flush()?;
            ExitCode::SUCCESS
        }
        Command::Compact { .. } => {
            db.compact()?;
            print!("{}", fmt::stats(&db.stats()));
            ExitCode::SUCCESS
        }
        Command::Load(_)
        | Command::Serve(_)
        | Command::Sub(_)
        | Command::Pub(_)
        | Command::Request(_)
        | Command::Stream(_)
        | Command::Consumer(_)
        | Command::Txn
        | Command::Watch(_)
        | Command::History { .. }
        | Command::Lease(_)
        | Command::Revision => ExitCode::SUCCESS,
    };
    db.close()?;
    Ok(code)
}
