//! Managing streams and consumers, and reading streams.
use super::codec;
use super::consumer::Consumer;
use super::engine::Streams;
use super::error::{ConsumerError, ReadError, StreamError};
use super::log::StreamState;
use super::types::{ConsumerConfig, ConsumerInfo, FetchEnd, Purge, StoredMessage, StreamConfig, StreamInfo, Ticket};
use crate::lsm::batch::Batch;
use crate::lsm::store::Store;
use crate::subject::{Pattern, Subject};
use alloc::string::String;
use alloc::vec::Vec;

impl Streams {
    /// Creates a stream. Acknowledged by [`super::Event::Completed`] once durable; the stream
    /// accepts publishes at once.
    pub fn create_stream(&mut self, now_ms: u64, store: &mut Store, config: StreamConfig) -> Result<Ticket, StreamError> {
        self.available()?;
        self.tick(now_ms);
        if self.names.contains_key(&config.name) {
            return Err(StreamError::Exists(config.name));
        }
        self.check_stream_config(&config, None)?;
        if self.streams.len() >= self.config.max_streams {
            return Err(StreamError::TooManyStreams { max: self.config.max_streams });
        }
        let id = self.next_stream;
        self.next_stream += 1;
        let mut batch = Batch::new();
        batch.put(&codec::prefix(codec::TAG_CONFIG, id), &codec::encode_record(&config));
        self.names.insert(config.name.clone(), id);
        let st = StreamState::new(id, config);
        self.streams.insert(id, st);
        self.register_subjects(id);
        Ok(self.command(now_ms, store, batch))
    }

    /// Replaces a stream's configuration (same name). New limits apply at once: with discard
    /// old, messages past them are deleted in the same write.
    pub fn update_stream(&mut self, now_ms: u64, store: &mut Store, config: StreamConfig) -> Result<Ticket, StreamError> {
        self.available()?;
        self.tick(now_ms);
        let id = *self.names.get(&config.name).ok_or_else(|| StreamError::UnknownStream(config.name.clone()))?;
        self.check_stream_config(&config, Some(id))?;
        let now = self.now_ms;
        let mut batch = Batch::new();
        batch.put(&codec::prefix(codec::TAG_CONFIG, id), &codec::encode_record(&config));
        if let Some(st) = self.streams.get_mut(&id) {
            let old_ids = core::mem::take(&mut st.sub_ids);
            if config.duplicate_window_ms == 0 {
                st.dedup.clear();
                st.dedup_order.clear();
            }
            st.config = config;
            st.enforce_limits(&mut batch, now);
            for sub in old_ids {
                self.index.remove(sub);
            }
        }
        self.register_subjects(id);
        Ok(self.command(now_ms, store, batch))
    }

    /// Deletes a stream with its messages and consumers (their pulls end with
    /// [`FetchEnd::Deleted`]), in one write.
    pub fn delete_stream(&mut self, now_ms: u64, store: &mut Store, name: &str) -> Result<Ticket, StreamError> {
        self.available()?;
        self.tick(now_ms);
        let id = self.names.remove(name).ok_or_else(|| StreamError::UnknownStream(name.into()))?;
        let Some(st) = self.streams.remove(&id) else { return Err(StreamError::UnknownStream(name.into())) };
        let mut batch = Batch::new();
        st.delete_all(&mut batch);
        for sub in &st.sub_ids {
            self.index.remove(*sub);
        }
        for &cid in st.consumers.values() {
            self.drop_consumer(cid);
        }
        Ok(self.command(now_ms, store, batch))
    }

    fn check_stream_config(&self, config: &StreamConfig, updating: Option<u32>) -> Result<(), StreamError> {
        codec::check_name(&config.name).map_err(StreamError::InvalidName)?;
        if config.subjects.is_empty() {
            return Err(StreamError::NoSubjects);
        }
        for (i, s) in config.subjects.iter().enumerate() {
            Pattern::parse_with_max(s, self.config.max_subject_bytes)
                .map_err(|error| StreamError::InvalidSubject { subject: s.clone(), error })?;
            if config.subjects[..i].iter().any(|t| codec::patterns_overlap(s, t)) {
                return Err(StreamError::Overlap { subject: s.clone(), stream: config.name.clone() });
            }
            for st in self.streams.values().filter(|st| Some(st.id) != updating) {
                if st.config.subjects.iter().any(|t| codec::patterns_overlap(s, t)) {
                    return Err(StreamError::Overlap { subject: s.clone(), stream: st.config.name.clone() });
                }
            }
        }
        if config.max_msg_bytes > self.config.max_payload_bytes as u64 {
            return Err(StreamError::InvalidConfig("max_msg_bytes is over the engine's max_payload_bytes"));
        }
        Ok(())
    }

    pub(crate) fn register_subjects(&mut self, id: u32) {
        let Some(st) = self.streams.get_mut(&id) else { return };
        let mut ids = Vec::new();
        for s in &st.config.subjects {
            if let Ok(p) = Pattern::parse_with_max(s, self.config.max_subject_bytes) {
                ids.push(self.index.insert(p, None, id));
            }
        }
        st.sub_ids = ids;
    }

    /// Stream names, in order.
    pub fn stream_names(&self) -> Vec<String> {
        self.names.keys().cloned().collect()
    }

    /// A stream's configuration and counts.
    pub fn stream_info(&self, name: &str) -> Result<StreamInfo, ReadError> {
        let st = self.stream(name)?;
        Ok(StreamInfo {
            config: st.config.clone(),
            msgs: st.msgs.len() as u64,
            bytes: st.bytes,
            first_seq: st.first_seq(),
            last_seq: st.last_seq,
            durable_seq: st.durable_seq,
            subjects: st.subjects.len() as u64,
            consumers: st.consumers.len() as u64,
        })
    }

    fn stream(&self, name: &str) -> Result<&StreamState, ReadError> {
        self.available()?;
        let id = self.names.get(name).ok_or_else(|| ReadError::UnknownStream(name.into()))?;
        self.streams.get(id).ok_or_else(|| ReadError::UnknownStream(name.into()))
    }

    /// The durable message with sequence `seq`.
    pub fn get(&self, stream: &str, seq: u64) -> Result<StoredMessage, ReadError> {
        let st = self.stream(stream)?;
        match st.msgs.get(&seq) {
            Some(m) if seq <= st.durable_seq => Ok(m.stored(seq)),
            _ => Err(ReadError::NotFound { seq }),
        }
    }

    /// The last durable message published on `subject` (a literal subject).
    pub fn last_by_subject(&self, stream: &str, subject: &str) -> Result<StoredMessage, ReadError> {
        let st = self.stream(stream)?;
        Subject::parse_with_max(subject, self.config.max_subject_bytes).map_err(ReadError::InvalidSubject)?;
        let seqs = st.subjects.get(subject).ok_or_else(|| ReadError::NoMessageForSubject(subject.into()))?;
        let seq = seqs.range(..=st.durable_seq).next_back().ok_or_else(|| ReadError::NoMessageForSubject(subject.into()))?;
        Ok(st.msgs[seq].stored(*seq))
    }

    /// Deletes the stream's messages chosen by `purge` (all of them by default); returns the
    /// ticket and how many went. Sequences are never reused afterwards.
    pub fn purge(&mut self, now_ms: u64, store: &mut Store, stream: &str, purge: &Purge) -> Result<(Ticket, u64), ReadError> {
        self.stream(stream)?;
        self.tick(now_ms);
        let filter = match &purge.subject {
            Some(s) => Some(Pattern::parse_with_max(s, self.config.max_subject_bytes).map_err(ReadError::InvalidSubject)?),
            None => None,
        };
        let id = self.names[stream];
        let Some(st) = self.streams.get_mut(&id) else { return Err(ReadError::UnknownStream(stream.into())) };
        let below = purge.below_seq.unwrap_or(u64::MAX);
        let doomed: Vec<u64> = st
            .msgs
            .range(..below)
            .filter(|(_, m)| filter.is_none_or(|p| Subject::parse(&m.subject).is_ok_and(|s| p.matches(s))))
            .map(|(&s, _)| s)
            .collect();
        let mut batch = Batch::new();
        for &seq in &doomed {
            st.remove(&mut batch, seq);
        }
        st.put_mark(&mut batch);
        Ok((self.command(now_ms, store, batch), doomed.len() as u64))
    }

    /// Adds a durable consumer to a stream; acknowledged once its record is durable.
    pub fn add_consumer(&mut self, now_ms: u64, store: &mut Store, stream: &str, config: ConsumerConfig) -> Result<Ticket, ConsumerError> {
        self.available()?;
        self.tick(now_ms);
        codec::check_name(&config.name).map_err(ConsumerError::InvalidName)?;
        if let Some(f) = &config.filter_subject {
            Pattern::parse_with_max(f, self.config.max_subject_bytes).map_err(ConsumerError::InvalidFilter)?;
        }
        if config.ack_wait_ms == 0 {
            return Err(ConsumerError::InvalidConfig("ack_wait_ms must be at least 1"));
        }
        let id = *self.names.get(stream).ok_or_else(|| ConsumerError::UnknownStream(stream.into()))?;
        let Some(st) = self.streams.get(&id) else { return Err(ConsumerError::UnknownStream(stream.into())) };
        if st.consumers.contains_key(&config.name) {
            return Err(ConsumerError::Exists(config.name));
        }
        if st.consumers.len() >= self.config.max_consumers_per_stream {
            return Err(ConsumerError::TooManyConsumers { max: self.config.max_consumers_per_stream });
        }
        let c = Consumer::new(st, config);
        let cid = self.insert_consumer(c);
        let batch = self.consumer_batch(cid);
        Ok(self.command(now_ms, store, batch))
    }

    pub(crate) fn insert_consumer(&mut self, c: Consumer) -> u64 {
        let cid = self.next_consumer;
        self.next_consumer += 1;
        if let Some(st) = self.streams.get_mut(&c.stream) {
            st.consumers.insert(c.config.name.clone(), cid);
        }
        for p in c.pending.values() {
            self.ack_timers.insert((p.delivered_ms.saturating_add(c.config.ack_wait_ms), cid, p.seq));
        }
        self.consumers.insert(cid, c);
        cid
    }

    /// Deletes a consumer; its pulls end with [`FetchEnd::Deleted`].
    pub fn delete_consumer(&mut self, now_ms: u64, store: &mut Store, stream: &str, consumer: &str) -> Result<Ticket, ConsumerError> {
        self.available()?;
        self.tick(now_ms);
        let cid = self.consumer_id(stream, consumer)?;
        let sid = self.names[stream];
        if let Some(st) = self.streams.get_mut(&sid) {
            st.consumers.remove(consumer);
        }
        self.drop_consumer(cid);
        let mut batch = Batch::new();
        batch.delete(&codec::consumer_key(sid, consumer));
        Ok(self.command(now_ms, store, batch))
    }

    fn drop_consumer(&mut self, cid: u64) {
        let Some(c) = self.consumers.remove(&cid) else { return };
        for f in c.waiting {
            self.end_pull(f, FetchEnd::Deleted);
        }
    }

    /// A consumer's configuration and position.
    pub fn consumer_info(&self, stream: &str, consumer: &str) -> Result<ConsumerInfo, ConsumerError> {
        self.available()?;
        let cid = self.consumer_id(stream, consumer)?;
        let c = &self.consumers[&cid];
        let st = &self.streams[&c.stream];
        Ok(c.info(st, self.now_ms))
    }

    /// A stream's consumer names, in order.
    pub fn consumer_names(&self, stream: &str) -> Result<Vec<String>, ReadError> {
        Ok(self.stream(stream)?.consumers.keys().cloned().collect())
    }
}
