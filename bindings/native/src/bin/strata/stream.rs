//! `strata stream ...` and `strata consumer ...`: streams and durable consumers of a versioned
//! database folder (streams need the versioned `strata::Db`; a raw folder is refused with a
//! clear error).
use crate::fmt;
use clap::{Args, Subcommand, ValueEnum};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;
use strata::streams::{AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy, Discard, Purge, StoredMessage, StreamConfig, StreamInfo};
use strata::{Db, Error, StreamsError};
use strata_engine::stream::ReadError;

#[derive(Subcommand, Debug)]
pub enum StreamCmd {
    /// Create a stream capturing SUBJECTS (patterns; `*` one token, a final `>` the rest).
    Add(AddArgs),
    /// Show a stream's configuration and state.
    Info {
        /// The stream.
        name: String,
    },
    /// List the streams.
    Ls,
    /// Print message SEQ of a stream, or the last one on a subject (`--last SUBJECT`).
    Get {
        /// The stream.
        name: String,
        /// The sequence number.
        seq: Option<u64>,
        /// The last message on this subject instead.
        #[arg(long, value_name = "SUBJECT", conflicts_with = "seq")]
        last: Option<String>,
    },
    /// Delete messages: all, those on `--subject`, those below `--below` (combined: both).
    Purge {
        /// The stream.
        name: String,
        /// Only messages whose subject matches this pattern.
        #[arg(long)]
        subject: Option<String>,
        /// Only messages with a sequence below this one.
        #[arg(long, value_name = "SEQ")]
        below: Option<u64>,
    },
    /// Publish MESSAGE on SUBJECT into the stream capturing it; prints the stream and sequence
    /// once durable.
    Pub {
        /// The subject.
        subject: String,
        /// The message.
        message: String,
        /// A message id: a repeat within the stream's duplicate window is not stored again.
        #[arg(long)]
        id: Option<String>,
    },
    /// Delete a stream with its messages and consumers.
    Rm {
        /// The stream.
        name: String,
    },
}

#[derive(Args, Debug)]
pub struct AddArgs {
    /// The stream's name (`A-Z a-z 0-9 _ -`).
    name: String,
    /// Subject patterns to capture.
    #[arg(required = true)]
    subjects: Vec<String>,
    /// Messages kept at most (0: no limit).
    #[arg(long, default_value_t = 0)]
    max_msgs: u64,
    /// Bytes (subject + payload) kept at most (0: no limit).
    #[arg(long, default_value_t = 0)]
    max_bytes: u64,
    /// Messages older than this many milliseconds are deleted (0: kept).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    max_age: u64,
    /// The largest payload accepted (0: the engine's maximum).
    #[arg(long, default_value_t = 0)]
    max_msg_size: u64,
    /// At a limit: delete the oldest messages, or refuse new ones.
    #[arg(long, value_enum, default_value_t = DiscardArg::Old)]
    discard: DiscardArg,
    /// Duplicate window for message ids, in milliseconds (0: off).
    #[arg(long, value_name = "MS", default_value_t = 120_000)]
    dupe_window: u64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DiscardArg {
    Old,
    New,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum AckArg {
    Explicit,
    All,
    None,
}

#[derive(Subcommand, Debug)]
pub enum ConsumerCmd {
    /// Add a durable pull consumer NAME to STREAM.
    Add(ConsumerAddArgs),
    /// Pull up to `--count` messages (waiting at most `--timeout`); prints each. Unless
    /// `--ack`, acknowledge them later with `strata consumer ack`.
    Next {
        /// The stream.
        stream: String,
        /// The consumer.
        name: String,
        /// Messages at most.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// How long to wait for them, in milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 1000)]
        timeout: u64,
        /// Acknowledge each message after printing it.
        #[arg(long)]
        ack: bool,
    },
    /// Acknowledge delivery SEQ (or `--nak` to have it again, `--term` never again).
    Ack {
        /// The stream.
        stream: String,
        /// The consumer.
        name: String,
        /// The message's stream sequence.
        seq: u64,
        /// Deliver it again as soon as possible.
        #[arg(long, conflicts_with = "term")]
        nak: bool,
        /// Never deliver it again.
        #[arg(long)]
        term: bool,
    },
    /// Show a consumer's configuration and state.
    Info {
        /// The stream.
        stream: String,
        /// The consumer.
        name: String,
    },
    /// List a stream's consumers.
    Ls {
        /// The stream.
        stream: String,
    },
    /// Delete a consumer.
    Rm {
        /// The stream.
        stream: String,
        /// The consumer.
        name: String,
    },
}

#[derive(Args, Debug)]
pub struct ConsumerAddArgs {
    /// The stream.
    stream: String,
    /// The consumer's name.
    name: String,
    /// Only messages whose subject matches this pattern.
    #[arg(long)]
    filter: Option<String>,
    /// How deliveries are acknowledged.
    #[arg(long, value_enum, default_value_t = AckArg::Explicit)]
    ack: AckArg,
    /// Where delivery starts: all, last, new, last-per-subject, seq:N, or time:MS (Unix ms).
    #[arg(long, default_value = "all", value_parser = parse_deliver)]
    deliver: DeliverPolicy,
    /// Unacknowledged deliveries come again after this many milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    ack_wait: u64,
    /// Deliveries of one message at most (0: no limit).
    #[arg(long, default_value_t = 0)]
    max_deliver: u32,
    /// Unacknowledged messages at most (0: no limit).
    #[arg(long, default_value_t = 1000)]
    max_ack_pending: u32,
}

fn parse_deliver(s: &str) -> Result<DeliverPolicy, String> {
    let number = |n: &str| n.parse::<u64>().map_err(|e| format!("{s}: {e}"));
    match s {
        "all" => Ok(DeliverPolicy::All),
        "last" => Ok(DeliverPolicy::Last),
        "new" => Ok(DeliverPolicy::New),
        "last-per-subject" => Ok(DeliverPolicy::LastPerSubject),
        _ => match s.split_once(':') {
            Some(("seq", n)) => Ok(DeliverPolicy::ByStartSequence(number(n)?)),
            Some(("time", n)) => Ok(DeliverPolicy::ByStartTime(number(n)?)),
            _ => Err(format!("{s}: expected all, last, new, last-per-subject, seq:N or time:MS")),
        },
    }
}

/// Opens the folder as a versioned database (streams live only there).
fn open(data: &Path) -> Result<Db, Error> {
    Db::open(data)
}

pub fn stream(data: &Path, cmd: StreamCmd) -> Result<ExitCode, Error> {
    let db = open(data)?;
    let js = db.streams();
    let code = match cmd {
        StreamCmd::Add(a) => {
            let config = StreamConfig {
                name: a.name,
                subjects: a.subjects,
                max_msgs: a.max_msgs,
                max_bytes: a.max_bytes,
                max_age_ms: a.max_age,
                max_msg_bytes: a.max_msg_size,
                duplicate_window_ms: a.dupe_window,
                discard: match a.discard {
                    DiscardArg::Old => Discard::Old,
                    DiscardArg::New => Discard::New,
                },
            };
            print!("{}", stream_info(&js.create(config)?));
            ExitCode::SUCCESS
        }
        StreamCmd::Info { name } => {
            print!("{}", stream_info(&js.info(&name)?));
            ExitCode::SUCCESS
        }
        StreamCmd::Ls => {
            for s in js.list()? {
                println!("{}  {}  {} messages, {} bytes, last seq {}", s.config.name, s.config.subjects.join(","), s.msgs, s.bytes, s.last_seq);
            }
            ExitCode::SUCCESS
        }
        StreamCmd::Get { name, seq, last } => {
            let found = match (seq, last) {
                (_, Some(subject)) => js.last(&name, &subject),
                (Some(seq), None) => js.get(&name, seq),
                (None, None) => return Err(invalid("give a sequence number or --last SUBJECT")),
            };
            match found {
                Ok(m) => {
                    println!("{}", message(&m));
                    ExitCode::SUCCESS
                }
                Err(StreamsError::Read(e @ (ReadError::NotFound { .. } | ReadError::NoMessageForSubject(_)))) => {
                    eprintln!("({e})");
                    ExitCode::from(1)
                }
                Err(e) => return Err(e.into()),
            }
        }
        StreamCmd::Purge { name, subject, below } => {
            let n = js.purge(&name, &Purge { subject, below_seq: below })?;
            println!("purged {n} messages");
            ExitCode::SUCCESS
        }
        StreamCmd::Pub { subject, message, id } => {
            let ack = match id {
                Some(id) => js.publish_with_id(&subject, &id, message.as_bytes())?,
                None => js.publish(&subject, message.as_bytes())?,
            };
            let dup = if ack.duplicate { " (duplicate)" } else { "" };
            println!("stored in {} as #{}{dup}", ack.stream, ack.seq);
            ExitCode::SUCCESS
        }
        StreamCmd::Rm { name } => {
            js.delete(&name)?;
            ExitCode::SUCCESS
        }
    };
    db.close()?;
    Ok(code)
}

pub fn consumer(data: &Path, cmd: ConsumerCmd) -> Result<ExitCode, Error> {
    let db = open(data)?;
    let js = db.streams();
    let code = match cmd {
        ConsumerCmd::Add(a) => {
            let config = ConsumerConfig {
                name: a.name,
                filter_subject: a.filter,
                ack_policy: match a.ack {
                    AckArg::Explicit => AckPolicy::Explicit,
                    AckArg::All => AckPolicy::All,
                    AckArg::None => AckPolicy::None,
                },
                deliver_policy: a.deliver,
                ack_wait_ms: a.ack_wait,
                max_deliver: a.max_deliver,
                max_ack_pending: a.max_ack_pending,
            };
            print!("{}", consumer_info(&js.add_consumer(&a.stream, config)?));
            ExitCode::SUCCESS
        }
        ConsumerCmd::Next { stream, name, count, timeout, ack } => {
            let got = js.fetch(&stream, &name, count, Duration::from_millis(timeout))?;
            for d in &got {
                let again = if d.deliveries > 1 { format!(" (delivery {})", d.deliveries) } else { String::new() };
                println!("{}{again}", message(&d.message));
                if ack {
                    js.ack(&stream, &name, d.message.seq)?;
                }
            }
            if got.is_empty() {
                eprintln!("(no message within {timeout} ms)");
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        ConsumerCmd::Ack { stream, name, seq, nak, term } => {
            if nak {
                js.nak(&stream, &name, seq)?;
            } else if term {
                js.term(&stream, &name, seq)?;
            } else {
                js.ack(&stream, &name, seq)?;
            }
            ExitCode::SUCCESS
        }
        ConsumerCmd::Info { stream, name } => {
            print!("{}", consumer_info(&js.consumer_info(&stream, &name)?));
            ExitCode::SUCCESS
        }
        ConsumerCmd::Ls { stream } => {
            for n in js.consumer_names(&stream)? {
                println!("{n}");
            }
            ExitCode::SUCCESS
        }
        ConsumerCmd::Rm { stream, name } => {
            js.delete_consumer(&stream, &name)?;
            ExitCode::SUCCESS
        }
    };
    db.close()?;
    Ok(code)
}

fn invalid(what: &str) -> Error {
    Error::Store(strata::StoreError::InvalidArgument(strata::InvalidArgument::Other(what.into())))
}

/// `[#seq] subject: payload` (with the message id when there is one).
fn message(m: &StoredMessage) -> String {
    let id = m.msg_id.as_ref().map(|i| format!(" (id {i})")).unwrap_or_default();
    format!("[#{}] {}{id}: {}", m.seq, m.subject, fmt::bytes(&m.payload))
}

fn stream_info(s: &StreamInfo) -> String {
    let c = &s.config;
    let limit = |v: u64| if v == 0 { "-".to_string() } else { v.to_string() };
    format!(
        "stream {}\n  subjects      {}\n  messages      {} ({} bytes, {} subjects)\n  sequences     first {}, last {}\n  consumers     {}\n  limits        max_msgs {}, max_bytes {}, max_age_ms {}, max_msg_size {}, discard {:?}, dupe_window_ms {}\n",
        c.name,
        c.subjects.join(", "),
        s.msgs,
        s.bytes,
        s.subjects,
        s.first_seq,
        s.last_seq,
        s.consumers,
        limit(c.max_msgs),
        limit(c.max_bytes),
        limit(c.max_age_ms),
        limit(c.max_msg_bytes),
        c.discard,
        c.duplicate_window_ms,
    )
}

fn consumer_info(i: &ConsumerInfo) -> String {
    let c = &i.config;
    format!(
        "consumer {}\n  filter        {}\n  policies      ack {:?}, deliver {:?}, ack_wait_ms {}, max_deliver {}, max_ack_pending {}\n  state         next seq {}, delivered {}, ack floor {}, ack pending {}, pending {}\n",
        c.name,
        c.filter_subject.as_deref().unwrap_or("-"),
        c.ack_policy,
        c.deliver_policy,
        c.ack_wait_ms,
        c.max_deliver,
        c.max_ack_pending,
        i.next_seq,
        i.delivered,
        i.ack_floor,
        i.ack_pending,
        i.num_pending,
    )
}
