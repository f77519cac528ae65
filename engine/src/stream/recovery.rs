//! Rebuilding every stream and consumer from the `s` namespace at open, and again after a
//! failed write: scans of the store, page by page, in key order (configs, consumers,
//! last-by-subject index, messages, marks), then a check that the index agrees with the
//! messages. A rebuild whose scan fails (the disk cannot be read) is tried again
//! `REBUILD_RETRY_MS` later through `handle_timeout`.
use super::codec::{self, ConsumerRecord, StreamMark};
use super::consumer::Consumer;
use super::engine::{Inflight, Phase, Streams};
use super::error::OpenError;
use super::log::{Msg, StreamState};
use super::types::{Event, StreamConfig};
use crate::lsm::error::Error;
use crate::lsm::store::{Reply, Request, Store};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ops::Bound;

/// What the scans found so far.
#[derive(Debug, Default)]
pub(crate) struct Recovery {
    consumers: Vec<(u32, ConsumerRecord)>,
    index: BTreeMap<(u32, String), u64>,
    marks: BTreeMap<u32, StreamMark>,
}

fn corrupt(key: &[u8], reason: &'static str) -> OpenError {
    OpenError::Corrupt { key: codec::show_key(key), reason }
}

impl Streams {
    pub(crate) fn submit_scan(&mut self, store: &mut Store, after: Option<Vec<u8>>) {
        let lower = match after {
            Some(k) => Bound::Excluded(k),
            None => Bound::Included(alloc::vec![codec::NAMESPACE]),
        };
        let req = Request::Scan {
            lower,
            upper: Bound::Excluded(alloc::vec![codec::NAMESPACE + 1]),
            reverse: false,
            limit: self.config.recovery_page.max(1),
            snapshot: None,
        };
        let id = store.submit(self.now_ms, req);
        self.inflight.insert(id, Inflight::Scan);
    }

    pub(crate) fn scan_done(&mut self, _now_ms: u64, store: &mut Store, result: &Result<Reply, Error>) {
        let Phase::Recovering(mut rec) = core::mem::replace(&mut self.phase, Phase::Open) else { return };
        let entries = match result {
            Ok(Reply::Entries(e)) => e,
            Ok(_) => return self.open_failed(corrupt(b"", "a scan answered with something else")),
            Err(e) if self.rebuilding.is_some() => {
                // The store could not be read now: try again later (see `handle_timeout`).
                self.phase = Phase::Failed(e.clone());
                self.retry_at = Some(self.now_ms.saturating_add(super::engine::REBUILD_RETRY_MS));
                return;
            }
            Err(e) => return self.open_failed(OpenError::Store(e.clone())),
        };
        for (k, v) in entries {
            if let Err(e) = self.absorb(&mut rec, k, v) {
                return self.open_failed(e);
            }
        }
        if entries.len() >= self.config.recovery_page.max(1) {
            let last = entries.last().map(|(k, _)| k.clone());
            self.phase = Phase::Recovering(rec);
            self.submit_scan(store, last);
            return;
        }
        match self.finish(rec) {
            Ok(()) => {
                self.phase = Phase::Open;
                self.rebuilding = None;
                self.events.push_back(Event::Opened(Ok(())));
            }
            Err(e) => self.open_failed(e),
        }
    }

    fn open_failed(&mut self, e: OpenError) {
        self.phase = Phase::OpenFailed(e.clone());
        self.events.push_back(Event::Opened(Err(e)));
    }

    fn absorb(&mut self, rec: &mut Recovery, k: &[u8], v: &[u8]) -> Result<(), OpenError> {
        let (tag, id, rest) = codec::split_key(k).ok_or_else(|| corrupt(k, "short key"))?;
        match tag {
            codec::TAG_CONFIG if rest.is_empty() => {
                let config: StreamConfig = codec::decode_record(v).map_err(|r| corrupt(k, r))?;
                codec::check_name(&config.name).map_err(|_| corrupt(k, "bad stream name"))?;
                if self.names.insert(config.name.clone(), id).is_some() {
                    return Err(corrupt(k, "two streams with one name"));
                }
                self.streams.insert(id, StreamState::new(id, config));
                self.next_stream = self.next_stream.max(id.saturating_add(1));
            }
            codec::TAG_CONSUMER => {
                let r: ConsumerRecord = codec::decode_record(v).map_err(|r| corrupt(k, r))?;
                if r.config.name.as_bytes() != rest || !self.streams.contains_key(&id) {
                    return Err(corrupt(k, "consumer of no stream, or misnamed"));
                }
                rec.consumers.push((id, r));
            }
            codec::TAG_LAST => {
                let subject = core::str::from_utf8(rest).map_err(|_| corrupt(k, "subject is not UTF-8"))?;
                let seq = v.try_into().map(u64::from_be_bytes).map_err(|_| corrupt(k, "bad sequence"))?;
                rec.index.insert((id, subject.into()), seq);
            }
            codec::TAG_MSG => {
                let seq = rest.try_into().map(u64::from_be_bytes).map_err(|_| corrupt(k, "bad sequence"))?;
                let m = codec::decode_msg(v).map_err(|r| corrupt(k, r))?;
                let st = self.streams.get_mut(&id).ok_or_else(|| corrupt(k, "message of no stream"))?;
                let msg = Msg { subject: m.subject.into(), ts_ms: m.ts_ms, msg_id: m.msg_id.map(Arc::from), payload: m.payload.into() };
                st.insert(seq, msg);
                st.last_seq = st.last_seq.max(seq);
                st.last_ts = st.last_ts.max(m.ts_ms);
            }
            codec::TAG_MARK if rest.is_empty() => {
                let mark: StreamMark = codec::decode_record(v).map_err(|r| corrupt(k, r))?;
                rec.marks.insert(id, mark);
            }
            _ => return Err(corrupt(k, "unknown stream key")),
        }
        Ok(())
    }

    fn finish(&mut self, rec: Recovery) -> Result<(), OpenError> {
        for (id, mark) in &rec.marks {
            let st = self.streams.get_mut(id).ok_or_else(|| corrupt(&codec::prefix(codec::TAG_MARK, *id), "mark of no stream"))?;
            st.last_seq = st.last_seq.max(mark.last_seq);
            st.last_ts = st.last_ts.max(mark.last_ts);
        }
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            let Some(st) = self.streams.get_mut(&id) else { continue };
            st.durable_seq = st.last_seq;
            // The index must name the last message of every subject, and nothing else.
            let want = st.subjects.iter().filter_map(|(s, set)| set.last().map(|&l| (s.clone(), l)));
            let got = rec.index.range((id, String::new())..).take_while(|((i, _), _)| *i == id);
            if !want.map(|(s, l)| (String::from(&*s), l)).eq(got.map(|((_, s), l)| (s.clone(), *l))) {
                return Err(corrupt(&codec::prefix(codec::TAG_LAST, id), "last-by-subject index disagrees with the messages"));
            }
            self.register_subjects(id);
        }
        if rec.index.keys().any(|(i, _)| !self.streams.contains_key(i)) {
            return Err(corrupt(b"sL", "index entry of no stream"));
        }
        for (id, r) in rec.consumers {
            let c = Consumer::from_record(id, r);
            self.insert_consumer(c);
        }
        Ok(())
    }
}
