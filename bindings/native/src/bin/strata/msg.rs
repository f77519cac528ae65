//! `strata serve`, `sub`, `pub`, `request`: the broker over TCP (NATS client protocol).
use crate::fmt;
use clap::Args;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;
use strata::client::{Client, ClientError};
use strata::server::Server;
use strata::raw::Db;

/// Where the client commands connect by default (NATS's port).
const DEFAULT_SERVER: &str = "127.0.0.1:4222";

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port; the address is printed).
    #[arg(long, default_value = DEFAULT_SERVER)]
    listen: String,
}

#[derive(Args, Debug)]
pub struct SubArgs {
    /// The subject pattern (`*` one token, a final `>` the rest).
    pattern: String,
    /// Join this queue group.
    #[arg(long)]
    queue: Option<String>,
    /// Exit after this many messages.
    #[arg(long)]
    count: Option<u64>,
    /// Server address.
    #[arg(long, default_value = DEFAULT_SERVER)]
    server: String,
}

#[derive(Args, Debug)]
pub struct PubArgs {
    /// The subject.
    subject: String,
    /// The message.
    message: String,
    /// Reply subject.
    #[arg(long)]
    reply: Option<String>,
    /// Server address.
    #[arg(long, default_value = DEFAULT_SERVER)]
    server: String,
}

#[derive(Args, Debug)]
pub struct RequestArgs {
    /// The subject.
    subject: String,
    /// The message.
    message: String,
    /// How long to wait for the reply, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    timeout: u64,
    /// Server address.
    #[arg(long, default_value = DEFAULT_SERVER)]
    server: String,
}

/// Serves the folder by its kind: a versioned folder (made by `strata stream`/`consumer` or an
/// embedded `strata::Db`) with its streams, which capture publishes on their subjects; a raw or
/// new one as raw data, like the other commands.
pub fn serve(data: &Path, args: &ServeArgs) -> Result<ExitCode, strata::Error> {
    let io = |e| strata::Error::Io { path: args.listen.clone().into(), source: e };
    let (server, _db) = match strata::Kind::of_folder(data)? {
        Some(strata::Kind::Versioned) => {
            let db = strata::Db::open(data)?;
            let names = db.streams().names()?;
            eprintln!("strata: streams: {}", if names.is_empty() { "(none)".to_string() } else { names.join(", ") });
            (Server::start(&db, args.listen.as_str()).map_err(io)?, Some(db))
        }
        _ => {
            let db = Db::open(data)?;
            (Server::start_raw(&db, args.listen.as_str()).map_err(io)?, None)
        }
    };
    eprintln!("strata: serving {} on {} (NATS client protocol)", data.display(), server.local_addr());
    server.wait();
    Ok(ExitCode::SUCCESS)
}

fn fail(e: ClientError) -> ExitCode {
    eprintln!("strata: error: {e}");
    ExitCode::FAILURE
}

pub fn sub(args: &SubArgs) -> ExitCode {
    let run = || -> Result<(), ClientError> {
        let mut c = Client::connect(args.server.as_str())?;
        let sid = c.subscribe(&args.pattern, args.queue.as_deref())?;
        if let Some(n) = args.count {
            c.unsubscribe(sid, Some(n))?;
        }
        c.flush()?;
        eprintln!("strata: listening on {}", args.pattern);
        let mut seen = 0u64;
        let mut out = std::io::stdout().lock();
        while args.count.is_none_or(|n| seen < n) {
            let m = c.next_msg(None)?;
            seen += 1;
            use std::io::Write;
            let reply = m.reply.map(|r| format!(" (reply to {r})")).unwrap_or_default();
            writeln!(out, "[#{seen}] {}{reply}: {}", m.subject, fmt::bytes(&m.payload)).map_err(ClientError::Io)?;
            out.flush().map_err(ClientError::Io)?;
        }
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

pub fn publish(args: &PubArgs) -> ExitCode {
    let run = || -> Result<(), ClientError> {
        let mut c = Client::connect(args.server.as_str())?;
        c.publish(&args.subject, args.reply.as_deref(), args.message.as_bytes())?;
        c.flush()
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

pub fn request(args: &RequestArgs) -> ExitCode {
    let run = || -> Result<(), ClientError> {
        let mut c = Client::connect(args.server.as_str())?;
        let m = c.request(&args.subject, args.message.as_bytes(), Duration::from_millis(args.timeout))?;
        println!("{}", fmt::bytes(&m.payload));
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
