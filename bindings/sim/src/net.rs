//! A simulated network: seeded, deterministic, with the faults a cluster must survive.
//!
//! Messages of any type `M` travel between nodes (plain `u64` ids) with a latency drawn per
//! message from its link's range. A link may drop, duplicate and delay (reorder) messages;
//! nodes may be split into partition groups (symmetric), single directions may be cut
//! (one-way), and nodes may be down. Everything is decided by the net's own PRNG, seeded at
//! construction, and by the order of calls: ordered maps only, so the same seed and the same
//! calls give the same deliveries, trace and [`SimNet::digest`].
//!
//! Calling protocol (the sans-IO shape of the rest of Strata; time only moves forward):
//! 1. [`SimNet::send`] whenever a node emits a message, with the current time.
//! 2. [`SimNet::poll`] with the current time until it returns `None`: each [`Delivery`] is due
//!    (its time ≤ now), in delivery-time order, ties by send order.
//! 3. [`SimNet::next_delivery_at`] tells the driver when the next message is due.
//!
//! Fault model (see `bindings/sim/docs/checking.md`): a message is dropped at send time if
//! the link drops it, the sender or receiver is down, or the direction is cut or partitioned;
//! it is dropped at delivery time if the receiver is down then or the direction is cut or
//! partitioned then (a partition also loses what is in flight). Taking a node down also drops
//! everything in flight to it. Duplicates are independent copies with their own latency.
use crate::rng::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A node's address.
pub type NodeId = u64;
/// Virtual time (the driver's unit: ticks, sub-ticks or milliseconds).
pub type Tick = u64;

/// A message's identity in the trace (send order, from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsgId(pub u64);

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m{}", self.0)
    }
}

/// How one direction of a link behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkFaults {
    /// Fewest ticks a message spends in flight.
    pub min_latency: Tick,
    /// Most ticks in flight (before the reordering delay).
    pub max_latency: Tick,
    /// Probability a message is lost.
    pub drop_rate: f64,
    /// Probability a message is delivered twice (the copy has its own latency).
    pub duplicate_rate: f64,
    /// Probability a message is held back by an extra delay of up to
    /// [`LinkFaults::reorder_delay`] ticks, so later messages overtake it.
    pub reorder_rate: f64,
    /// The largest extra delay of a reordered message.
    pub reorder_delay: Tick,
}

impl LinkFaults {
    /// A perfect link with a fixed latency: no loss, no duplicates, FIFO.
    pub fn reliable(latency: Tick) -> Self {
        LinkFaults { min_latency: latency, max_latency: latency, drop_rate: 0.0, duplicate_rate: 0.0, reorder_rate: 0.0, reorder_delay: 0 }
    }
}

/// Why a message was not delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropReason {
    /// The link lost it.
    Lost,
    /// The sender or the receiver was in another partition group.
    Partitioned,
    /// The direction sender → receiver was cut.
    Cut,
    /// The receiver was down (at send, at delivery, or when it went down).
    ReceiverDown,
    /// The sender was down when it sent.
    SenderDown,
    /// The receiver is not a node of this net.
    UnknownNode,
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropReason::Lost => "lost",
            DropReason::Partitioned => "partitioned",
            DropReason::Cut => "cut",
            DropReason::ReceiverDown => "receiver-down",
            DropReason::SenderDown => "sender-down",
            DropReason::UnknownNode => "unknown-node",
        })
    }
}

/// One line of the trace. `Display` gives the line format documented in
/// `bindings/sim/docs/checking.md`, e.g. `12 send 1->2 m5 due 15 AppendEntries..`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceEvent {
    /// A message (or a duplicate of message `copy_of`) entered the network.
    Send {
        /// When.
        at: Tick,
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// The message.
        id: MsgId,
        /// When it is due.
        due: Tick,
        /// For a duplicate: the original.
        copy_of: Option<MsgId>,
        /// The message, described.
        msg: String,
    },
    /// A message reached its receiver.
    Deliver {
        /// When.
        at: Tick,
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// The message.
        id: MsgId,
    },
    /// A message was lost.
    Drop {
        /// When.
        at: Tick,
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// The message.
        id: MsgId,
        /// Why.
        reason: DropReason,
    },
    /// The fault configuration changed (partition, cut, heal, down, up).
    Fault {
        /// When.
        at: Tick,
        /// What changed, e.g. `partition {1,2} {3}`.
        what: String,
    },
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceEvent::Send { at, from, to, id, due, copy_of: None, msg } => write!(f, "{at} send {from}->{to} {id} due {due} {msg}"),
            TraceEvent::Send { at, from, to, id, due, copy_of: Some(o), msg } => {
                write!(f, "{at} send {from}->{to} {id} due {due} copy-of {o} {msg}")
            }
            TraceEvent::Deliver { at, from, to, id } => write!(f, "{at} deliver {from}->{to} {id}"),
            TraceEvent::Drop { at, from, to, id, reason } => write!(f, "{at} drop {from}->{to} {id} {reason}"),
            TraceEvent::Fault { at, what } => write!(f, "{at} fault {what}"),
        }
    }
}

/// A message handed to its receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery<M> {
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// Its id in the trace.
    pub id: MsgId,
    /// The message.
    pub msg: M,
}

/// A message in flight, as [`SimNet::in_flight_messages`] shows it.
#[derive(Debug)]
pub struct InFlightView<'a, M> {
    /// When it was sent.
    pub sent: Tick,
    /// When it is due.
    pub due: Tick,
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// Its id in the trace.
    pub id: MsgId,
    /// The message.
    pub msg: &'a M,
}

/// Counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Messages sent by nodes (duplicates not counted).
    pub sent: u64,
    /// Messages delivered (duplicates counted).
    pub delivered: u64,
    /// Duplicates made.
    pub duplicated: u64,
    /// Messages held back by a reordering delay.
    pub delayed: u64,
    /// Deliveries that overtook an earlier-sent message on the same link.
    pub reordered: u64,
    /// Messages dropped, by reason.
    pub dropped: BTreeMap<DropReason, u64>,
}

impl NetStats {
    /// Messages dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
}

struct InFlight<M> {
    sent: Tick,
    from: NodeId,
    to: NodeId,
    id: MsgId,
    msg: M,
}

/// The simulated network. See the module documentation for the calling protocol.
pub struct SimNet<M> {
    rng: Rng,
    now: Tick,
    default_link: LinkFaults,
    links: BTreeMap<(NodeId, NodeId), LinkFaults>,
    /// Node → up.
    nodes: BTreeMap<NodeId, bool>,
    /// Node → partition group (empty: no partition).
    groups: BTreeMap<NodeId, usize>,
    cuts: BTreeSet<(NodeId, NodeId)>,
    queue: BTreeMap<(Tick, MsgId), InFlight<M>>,
    next_id: u64,
    /// Highest message id delivered per link (for the reordering count).
    last_delivered: BTreeMap<(NodeId, NodeId), MsgId>,
    describe: fn(&M) -> String,
    trace: Vec<TraceEvent>,
    digest: u64,
    /// Keep every [`TraceEvent`] (off: only the digest, over the events' numbers).
    pub record_trace: bool,
    /// Counters.
    pub stats: NetStats,
}

impl<M: Clone + fmt::Debug> SimNet<M> {
    /// A network of `nodes`, all up and connected, every link behaving like `link`.
    pub fn new(seed: u64, nodes: impl IntoIterator<Item = NodeId>, link: LinkFaults) -> Self {
        SimNet {
            rng: Rng::new(seed),
            now: 0,
            default_link: link,
            links: BTreeMap::new(),
            nodes: nodes.into_iter().map(|n| (n, true)).collect(),
            groups: BTreeMap::new(),
            cuts: BTreeSet::new(),
            queue: BTreeMap::new(),
            next_id: 1,
            last_delivered: BTreeMap::new(),
            describe: describe_debug::<M>,
            trace: Vec::new(),
            digest: 0xcbf2_9ce4_8422_2325,
            record_trace: false,
            stats: NetStats::default(),
        }
    }
}

impl<M: Clone> SimNet<M> {
    /// Describes messages in the trace with `f` (default: `Debug`, cut at 160 characters).
    pub fn with_describer(mut self, f: fn(&M) -> String) -> Self {
        self.describe = f;
        self
    }

    /// Sends `msg` from `from` to `to` at `now`. Returns its id (also for a dropped message).
    pub fn send(&mut self, now: Tick, from: NodeId, to: NodeId, msg: M) -> MsgId {
        self.set_now(now);
        self.stats.sent += 1;
        let id = self.fresh_id();
        let link = self.links.get(&(from, to)).unwrap_or(&self.default_link).clone();
        let blocked = if !self.nodes.contains_key(&to) {
            Some(DropReason::UnknownNode)
        } else if !self.is_up(from) {
            Some(DropReason::SenderDown)
        } else if !self.is_up(to) {
            Some(DropReason::ReceiverDown)
        } else {
            self.blocked(from, to)
        };
        // Draw the dice even for blocked messages, so a fault elsewhere does not shift the
        // random choices of every later message.
        let lost = self.rng.chance(link.drop_rate);
        let due = now + self.latency(&link);
        let copy_due = self.rng.chance(link.duplicate_rate).then(|| now + self.latency(&link));
        if let Some(reason) = blocked.or(lost.then_some(DropReason::Lost)) {
            let msg_text = self.text(&msg);
            self.record(TraceEvent::Send { at: now, from, to, id, due, copy_of: None, msg: msg_text });
            self.drop_msg(from, to, id, reason);
            return id;
        }
        if let Some(copy_due) = copy_due {
            self.stats.duplicated += 1;
            let copy = self.fresh_id();
            self.enqueue(from, to, copy, copy_due, Some(id), msg.clone());
        }
        self.enqueue(from, to, id, due, None, msg);
        id
    }

    /// The next message due at or before `now`, or `None`. Messages that can no longer be
    /// delivered (receiver down, direction cut or partitioned) are dropped on the way.
    pub fn poll(&mut self, now: Tick) -> Option<Delivery<M>> {
        self.set_now(now);
        loop {
            let (&(due, _), _) = self.queue.first_key_value()?;
            if due > now {
                return None;
            }
            let (_, m) = self.queue.pop_first()?;
            let blocked = if self.is_up(m.to) { self.blocked(m.from, m.to) } else { Some(DropReason::ReceiverDown) };
            if let Some(reason) = blocked {
                self.drop_msg(m.from, m.to, m.id, reason);
                continue;
            }
            self.stats.delivered += 1;
            let last = self.last_delivered.entry((m.from, m.to)).or_insert(MsgId(0));
            if m.id < *last {
                self.stats.reordered += 1;
            } else {
                *last = m.id;
            }
            self.record(TraceEvent::Deliver { at: now, from: m.from, to: m.to, id: m.id });
            return Some(Delivery { from: m.from, to: m.to, id: m.id, msg: m.msg });
        }
    }

    /// When the next message in flight is due (it may still be dropped then).
    pub fn next_delivery_at(&self) -> Option<Tick> {
        self.queue.keys().next().map(|&(t, _)| t)
    }

    /// Messages in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Every message in flight, in delivery order (it may still be dropped when due).
    pub fn in_flight_messages(&self) -> impl Iterator<Item = InFlightView<'_, M>> {
        self.queue.iter().map(|(&(due, id), m)| InFlightView { sent: m.sent, due, from: m.from, to: m.to, id, msg: &m.msg })
    }

    /// Adds `node` (up, connected) to a running network; a node already known is unchanged.
    pub fn add_node(&mut self, node: NodeId) {
        self.nodes.entry(node).or_insert(true);
    }

    /// The directions cut now (`(from, to)`, in order).
    pub fn cuts(&self) -> impl Iterator<Item = (NodeId, NodeId)> + '_ {
        self.cuts.iter().copied()
    }

    /// How links without their own setting behave.
    pub fn default_link(&self) -> &LinkFaults {
        &self.default_link
    }

    /// Splits the nodes into groups that only reach nodes of their own group; nodes in no
    /// group are isolated. Replaces any previous partition (cuts stay).
    pub fn partition(&mut self, now: Tick, groups: &[&[NodeId]]) {
        self.set_now(now);
        self.groups.clear();
        let mut next = groups.len();
        for (g, members) in groups.iter().enumerate() {
            for &n in members.iter() {
                self.groups.insert(n, g);
            }
        }
        let nodes: Vec<NodeId> = self.nodes.keys().copied().collect();
        for n in nodes {
            self.groups.entry(n).or_insert_with(|| {
                next += 1;
                next
            });
        }
        let text: Vec<String> = groups
            .iter()
            .map(|g| format!("{{{}}}", g.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",")))
            .collect();
        self.fault(format!("partition {}", text.join(" ")));
    }

    /// Cuts the direction `from → to` (the other direction is untouched).
    pub fn cut(&mut self, now: Tick, from: NodeId, to: NodeId) {
        self.set_now(now);
        self.cuts.insert((from, to));
        self.fault(format!("cut {from}->{to}"));
    }

    /// Restores the direction `from → to`.
    pub fn uncut(&mut self, now: Tick, from: NodeId, to: NodeId) {
        self.set_now(now);
        self.cuts.remove(&(from, to));
        self.fault(format!("uncut {from}->{to}"));
    }

    /// Ends every partition and cut.
    pub fn heal(&mut self, now: Tick) {
        self.set_now(now);
        self.groups.clear();
        self.cuts.clear();
        self.fault("heal".to_string());
    }

    /// Takes `node` down: it sends and receives nothing, and what is in flight to it is lost.
    pub fn down(&mut self, now: Tick, node: NodeId) {
        self.set_now(now);
        if let Some(up) = self.nodes.get_mut(&node) {
            *up = false;
        }
        self.fault(format!("down {node}"));
        let doomed: Vec<(Tick, MsgId)> = self.queue.iter().filter(|(_, m)| m.to == node).map(|(&k, _)| k).collect();
        for k in doomed {
            if let Some(m) = self.queue.remove(&k) {
                self.drop_msg(m.from, m.to, m.id, DropReason::ReceiverDown);
            }
        }
    }

    /// Brings `node` back up.
    pub fn up(&mut self, now: Tick, node: NodeId) {
        self.set_now(now);
        if let Some(up) = self.nodes.get_mut(&node) {
            *up = true;
        }
        self.fault(format!("up {node}"));
    }

    /// Whether `node` is up.
    pub fn is_up(&self, node: NodeId) -> bool {
        self.nodes.get(&node).copied().unwrap_or(false)
    }

    /// Whether a message `from → to` sent now would pass the partitions and cuts.
    pub fn connected(&self, from: NodeId, to: NodeId) -> bool {
        self.blocked(from, to).is_none()
    }

    /// Sets how every link without its own setting behaves.
    pub fn set_default_link(&mut self, link: LinkFaults) {
        self.default_link = link;
    }

    /// Sets how the direction `from → to` behaves.
    pub fn set_link(&mut self, from: NodeId, to: NodeId, link: LinkFaults) {
        self.links.insert((from, to), link);
    }

    /// The trace so far (empty unless [`SimNet::record_trace`]).
    pub fn trace(&self) -> &[TraceEvent] {
        &self.trace
    }

    /// Takes the trace recorded so far.
    pub fn take_trace(&mut self) -> Vec<TraceEvent> {
        std::mem::take(&mut self.trace)
    }

    /// A digest of every send, delivery, drop and fault so far (times, nodes, ids, reasons):
    /// equal digests mean equal schedules.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    fn set_now(&mut self, now: Tick) {
        assert!(now >= self.now, "time went back: {now} < {}", self.now);
        self.now = now;
    }

    fn fresh_id(&mut self) -> MsgId {
        self.next_id += 1;
        MsgId(self.next_id - 1)
    }

    fn latency(&mut self, link: &LinkFaults) -> Tick {
        let span = link.max_latency.saturating_sub(link.min_latency);
        let mut t = link.min_latency + self.rng.below(span + 1);
        if link.reorder_rate > 0.0 && self.rng.chance(link.reorder_rate) {
            self.stats.delayed += 1;
            t += 1 + self.rng.below(link.reorder_delay.max(1));
        }
        t
    }

    fn blocked(&self, from: NodeId, to: NodeId) -> Option<DropReason> {
        if self.cuts.contains(&(from, to)) {
            return Some(DropReason::Cut);
        }
        if !self.groups.is_empty() && self.groups.get(&from) != self.groups.get(&to) {
            return Some(DropReason::Partitioned);
        }
        None
    }

    fn enqueue(&mut self, from: NodeId, to: NodeId, id: MsgId, due: Tick, copy_of: Option<MsgId>, msg: M) {
        let text = self.text(&msg);
        self.record(TraceEvent::Send { at: self.now, from, to, id, due, copy_of, msg: text });
        self.queue.insert((due, id), InFlight { sent: self.now, from, to, id, msg });
    }

    fn drop_msg(&mut self, from: NodeId, to: NodeId, id: MsgId, reason: DropReason) {
        *self.stats.dropped.entry(reason).or_default() += 1;
        self.record(TraceEvent::Drop { at: self.now, from, to, id, reason });
    }

    fn fault(&mut self, what: String) {
        self.record(TraceEvent::Fault { at: self.now, what });
    }

    fn text(&self, msg: &M) -> String {
        if self.record_trace {
            (self.describe)(msg)
        } else {
            String::new()
        }
    }

    fn record(&mut self, ev: TraceEvent) {
        let (kind, at, from, to, id, extra) = match &ev {
            TraceEvent::Send { at, from, to, id, due, copy_of, .. } => (1, *at, *from, *to, id.0, due ^ copy_of.map_or(0, |c| c.0 << 32)),
            TraceEvent::Deliver { at, from, to, id } => (2, *at, *from, *to, id.0, 0),
            TraceEvent::Drop { at, from, to, id, reason } => (3, *at, *from, *to, id.0, *reason as u64),
            TraceEvent::Fault { at, what } => (4, *at, 0, 0, 0, what.bytes().fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b))),
        };
        for x in [kind, at, from, to, id, extra] {
            for b in x.to_le_bytes() {
                self.digest ^= u64::from(b);
                self.digest = self.digest.wrapping_mul(0x0100_0000_01b3);
            }
        }
        if self.record_trace {
            self.trace.push(ev);
        }
    }
}

impl<M> fmt::Debug for SimNet<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimNet")
            .field("now", &self.now)
            .field("nodes", &self.nodes)
            .field("groups", &self.groups)
            .field("cuts", &self.cuts)
            .field("in_flight", &self.queue.len())
            .field("stats", &self.stats)
            .finish()
    }
}

fn describe_debug<M: fmt::Debug>(msg: &M) -> String {
    let mut s = format!("{msg:?}");
    if s.len() > 160 {
        let mut end = 157;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}
