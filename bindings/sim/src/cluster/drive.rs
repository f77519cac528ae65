//! The cluster's event loop: what happens at each instant, and carrying out node outputs.
use super::events::EventKind;
use super::{Cluster, Ev, Packet, Phase, CLIENT_BASE};
use crate::net::Delivery;
use strata_engine::lsm::io::IoResult;
use strata_engine::lsm::job::JobStep;
use strata_engine::node::io::Disk;
use strata_engine::node::wire::{ClientMessage, ClientOp, ClientResponse, Consistency};
use strata_engine::node::{Node, NodeEvent, NodeOutput, PeerError};

impl Cluster {
    /// Advances to the next instant something is due and handles everything due then (after
    /// [`Cluster::step_one`] calls, first finishes the current instant).
    pub fn step(&mut self) {
        loop {
            self.step_one();
            if self.phase == Phase::Idle {
                return;
            }
        }
    }

    /// Handles one thing: one disk completion or job, one message, one node's timers or one
    /// client's timer (the first of an instant also moves time to it and injects faults).
    /// A run of `step_one` calls does exactly what [`Cluster::step`] does, in the same order;
    /// [`Cluster::steps`] counts them, so an outside action taken between two calls can be
    /// replayed at exactly that point.
    pub fn step_one(&mut self) {
        if self.phase == Phase::Idle {
            self.begin_instant();
            self.skip_idle_phases();
            if self.phase != Phase::Idle {
                self.unit();
            }
        } else {
            self.unit();
        }
        self.steps += 1;
        self.skip_idle_phases();
        self.record_step_end();
    }

    /// Whether an instant is under way (between [`Cluster::step_one`] calls).
    pub fn mid_instant(&self) -> bool {
        self.phase != Phase::Idle
    }

    fn begin_instant(&mut self) {
        let t = self.next_time();
        self.now = t.max(self.now);
        let now = self.now;
        if now >= self.next_fault_at {
            self.next_fault_at = now + self.cfg.faults.interval_ms.max(1);
            if self.faults_until.is_none_or(|u| now < u) {
                self.inject_faults();
            }
        }
        self.phase = Phase::Events;
    }

    /// Moves past phases with nothing due now (to the next one with work, or to `Idle`).
    fn skip_idle_phases(&mut self) {
        let now = self.now;
        loop {
            self.phase = match self.phase {
                Phase::Idle => return,
                Phase::Events => {
                    if self.events.first_key_value().is_some_and(|(&(at, _), _)| at <= now) {
                        return;
                    }
                    Phase::Net
                }
                Phase::Net => {
                    if self.net.next_delivery_at().is_some_and(|t| t <= now) {
                        return;
                    }
                    Phase::Nodes(0)
                }
                Phase::Nodes(k) => {
                    let due = |m: &super::Machine| m.node.as_ref().and_then(Node::next_deadline).is_some_and(|d| d <= now);
                    match (k..self.machines.len()).find(|&j| due(&self.machines[j])) {
                        Some(j) => {
                            self.phase = Phase::Nodes(j);
                            return;
                        }
                        None => Phase::Clients(0),
                    }
                }
                Phase::Clients(c) => match (c..self.clients.len()).find(|&j| self.clients[j].wake_at.is_some_and(|w| w <= now)) {
                    Some(j) => {
                        self.phase = Phase::Clients(j);
                        return;
                    }
                    None => Phase::Bank(0),
                },
                Phase::Bank(c) => {
                    // Bank clients wake only when the bank workload is configured.
                    let due = |j: &usize| self.bank_clients[*j].wake_at.is_some_and(|w| w <= now);
                    match (c..self.bank_clients.len()).find(due).filter(|_| self.cfg.bank.is_some()) {
                        Some(j) => {
                            self.phase = Phase::Bank(j);
                            return;
                        }
                        None => Phase::Users,
                    }
                }
                Phase::Users => {
                    if self.users.next_wake().is_some_and(|w| w <= now) {
                        return;
                    }
                    Phase::Operator
                }
                Phase::Operator => {
                    if self.operator.wake_at.is_some_and(|w| w <= now) {
                        return;
                    }
                    Phase::Idle
                }
            };
        }
    }

    /// Does the one thing the current phase has due.
    fn unit(&mut self) {
        let now = self.now;
        match self.phase {
            Phase::Idle => {}
            Phase::Events => {
                if let Some((_, ev)) = self.events.pop_first() {
                    self.handle_event(ev);
                }
            }
            Phase::Net => {
                if let Some(d) = self.net.poll(now) {
                    self.deliver(d);
                }
            }
            Phase::Nodes(k) => {
                if let Some(n) = self.machines[k].node.as_mut() {
                    n.handle_timeout(now);
                }
                self.drain(k);
                self.phase = Phase::Nodes(k + 1);
            }
            Phase::Clients(c) => {
                let nodes = self.machines.len() as u64;
                if let Some((to, bytes)) = self.clients[c].wake(now, &self.cfg.client, nodes, &mut self.rng, &mut self.history) {
                    let from = self.clients[c].addr;
                    self.net.send(now, from, to, Packet::Request(bytes));
                }
                self.phase = Phase::Clients(c + 1);
            }
            Phase::Bank(c) => {
                if let Some(bank) = self.cfg.bank.as_ref() {
                    let nodes = self.machines.len() as u64;
                    if let Some((to, bytes)) = self.bank_clients[c].wake(now, &self.cfg.client, bank, nodes, &mut self.rng, &mut self.bank_history) {
                        let from = self.bank_clients[c].addr;
                        self.net.send(now, from, to, Packet::Request(bytes));
                    }
                }
                self.phase = Phase::Bank(c + 1);
            }
            Phase::Users => {
                if let Some(&s) = self.users.due(now).first() {
                    self.wake_user(s);
                }
            }
            Phase::Operator => self.wake_operator(),
        }
    }

    /// When the next thing is due (never before now).
    pub fn next_time(&self) -> u64 {
        let mut t = self.next_fault_at;
        let mut consider = |x: Option<u64>| {
            if let Some(x) = x {
                t = t.min(x);
            }
        };
        consider(self.events.keys().next().map(|k| k.0));
        consider(self.net.next_delivery_at());
        for m in &self.machines {
            consider(m.node.as_ref().and_then(Node::next_deadline));
        }
        for c in &self.clients {
            consider(c.wake_at);
        }
        for c in &self.bank_clients {
            consider(c.wake_at);
        }
        consider(self.users.next_wake());
        consider(self.operator.wake_at);
        t.max(self.now)
    }

    fn handle_event(&mut self, ev: Ev) {
        match ev {
            Ev::Io { node, incarnation, id, disk, req } => {
                let m = &mut self.machines[node];
                if m.incarnation != incarnation || m.node.is_none() {
                    return;
                }
                let sync = matches!(req, strata_engine::lsm::io::IoRequest::Sync { .. });
                let r = match disk {
                    Disk::Store => m.store_disk.execute(req),
                    Disk::Log => m.log_disk.execute(req),
                };
                if let Some(n) = m.node.as_mut() {
                    n.handle_io(self.now, id, r);
                }
                if sync && self.cfg.record_events {
                    self.note_synced(node, disk);
                }
                self.drain(node);
            }
            Ev::Job { node, incarnation, mut job } => {
                let m = &mut self.machines[node];
                if m.incarnation != incarnation || m.node.is_none() {
                    return;
                }
                loop {
                    match job.step() {
                        JobStep::Read { file, offset, len } => {
                            let r = m.store_disk.execute(strata_engine::lsm::io::IoRequest::Read { file, offset, len });
                            job.handle_read(match r {
                                IoResult::Data(d) => Ok(d),
                                IoResult::Failed(e) => Err(e),
                                _ => Ok(Vec::new()),
                            });
                        }
                        JobStep::WriteFile { file, data } => {
                            m.job_files += 1;
                            let r = m.store_disk.write_file(file, &data);
                            job.handle_write(r);
                        }
                        JobStep::Done => break,
                    }
                }
                if let Some(n) = m.node.as_mut() {
                    let before = n.store().stats().compactions;
                    n.handle_job(self.now, *job);
                    let after = n.store().stats().compactions;
                    if after > before && self.cfg.record_events {
                        self.note_compaction(node, after);
                    }
                }
                self.drain(node);
            }
            Ev::Restart { node } => {
                if self.machines[node].node.is_none() && !self.machines[node].decommissioned {
                    self.start(node);
                }
            }
            Ev::Recover { node, incarnation } => {
                let m = &mut self.machines[node];
                if m.incarnation == incarnation && m.node.as_ref().is_some_and(|n| n.failure().is_some()) {
                    m.node = None;
                    self.start(node);
                }
            }
            Ev::Scenario(action) => self.run_action(action),
        }
    }

    fn deliver(&mut self, d: Delivery<Packet>) {
        let now = self.now;
        match d.msg {
            Packet::Peer(bytes) => {
                let k = (d.to - 1) as usize;
                let line = self.cfg.record_trace.then(|| format!("{now} n{} -> n{} {}", d.from, d.to, super::trace::describe_peer(&bytes)));
                if let Some(l) = line {
                    self.trace.push(l);
                }
                let Some(n) = self.machines[k].node.as_mut() else { return };
                match n.handle_message(now, &bytes) {
                    Ok(()) => {}
                    // Messages reaching a node still recovering, or removed from the region,
                    // are dropped (Raft copes).
                    Err(PeerError::NotReady | PeerError::Removed) => self.stats.refused_messages += 1,
                    Err(e) => panic!("seed {}: node {} refused a peer message: {e:?}", self.cfg.seed, d.to),
                }
                self.drain(k);
            }
            Packet::Request(bytes) => {
                let k = (d.to - 1) as usize;
                let mut msg = ClientMessage::decode(&bytes).expect("clients send valid messages");
                let unsafe_read = super::user::is_user_addr(d.from) && self.users.is_unsafe(d.from, msg.id);
                let m = &mut self.machines[k];
                let Some(n) = m.node.as_mut() else { return };
                if unsafe_read {
                    // The teaching toggle (see `user`): served from this replica's own state.
                    let ts = n.applied_ts();
                    if let ClientOp::Read { consistency, .. } = &mut msg.request.op {
                        *consistency = Consistency::Stale { ts };
                    }
                }
                let rid = m.next_request;
                m.next_request += 1;
                m.requests.insert(rid, (d.from, msg.id));
                n.submit(now, rid, msg.request);
                self.drain(k);
            }
            Packet::Response(bytes) => {
                let resp = ClientResponse::decode(&bytes).expect("nodes send valid responses");
                if d.to == super::admin::ADMIN_ADDR {
                    return self.on_admin_response(d.from, resp);
                }
                if resp.result.is_ok() {
                    self.stats.answered += 1;
                }
                if super::user::is_user_addr(d.to) {
                    if let Some(op) = self.users.on_response(now, d.to, d.from, resp) {
                        self.note_return(op);
                    }
                    return;
                }
                if d.to > super::BANK_BASE {
                    let c = (d.to - super::BANK_BASE - 1) as usize;
                    let (nodes, Some(bank)) = (self.machines.len() as u64, self.cfg.bank.as_ref()) else { return };
                    let next = self.bank_clients[c].on_response(now, resp, &self.cfg.client, bank, nodes, &mut self.rng, &mut self.bank_history);
                    if let Some((to, bytes)) = next {
                        self.net.send(now, d.to, to, Packet::Request(bytes));
                    }
                    return;
                }
                let c = (d.to - CLIENT_BASE - 1) as usize;
                self.clients[c].on_response(now, resp, &self.cfg.client, &mut self.rng, &mut self.history);
            }
        }
    }

    /// Carries out every output of node `k`.
    pub(super) fn drain(&mut self, k: usize) {
        let now = self.now;
        let from = k as u64 + 1;
        loop {
            let m = &mut self.machines[k];
            let Some(n) = m.node.as_mut() else { return };
            let Some(out) = n.poll() else {
                if self.cfg.check_invariants {
                    n.check_invariants();
                }
                return;
            };
            match out {
                NodeOutput::Send { to, msg } => {
                    self.net.send(now, from, to.0, Packet::Peer(msg));
                }
                NodeOutput::Io { disk, id, req } => {
                    let lane = usize::from(disk == Disk::Log);
                    let mut latency = self.rng.below(self.cfg.disk_latency_ms + 1);
                    if matches!(req, strata_engine::lsm::io::IoRequest::Sync { .. }) {
                        latency += self.cfg.sync_latency_ms + self.rng.below(self.cfg.sync_latency_ms + 1);
                    }
                    let m = &mut self.machines[k];
                    latency += m.slow_ms[lane];
                    let at = (now + latency).max(m.busy_until[lane]);
                    m.busy_until[lane] = at;
                    let incarnation = m.incarnation;
                    self.schedule(at, Ev::Io { node: k, incarnation, id, disk, req });
                }
                NodeOutput::Job(job) => {
                    let latency = 1 + self.rng.below(self.cfg.disk_latency_ms * 4 + 1) + self.machines[k].slow_ms[0];
                    let incarnation = self.machines[k].incarnation;
                    self.schedule(now + latency, Ev::Job { node: k, incarnation, job: Box::new(job) });
                }
                NodeOutput::Reply { id, result } => {
                    if let Some((super::PROBE_ADDR, probe)) = self.machines[k].requests.get(&id).copied() {
                        self.machines[k].requests.remove(&id);
                        self.probe_replies.insert(probe, (now, result));
                    } else if let Some((client, msg_id)) = self.machines[k].requests.remove(&id) {
                        let bytes = ClientResponse { id: msg_id, result }.encode();
                        self.net.send(now, from, client, Packet::Response(bytes));
                    }
                }
                NodeOutput::Event(e) => {
                    if matches!(e, NodeEvent::SnapshotInstalled { .. }) {
                        self.stats.snapshots_installed += 1;
                    }
                    if let NodeEvent::Failed(err) = &e {
                        // Only injected disk errors may stop a node; it answers `Unavailable`
                        // until it is restarted on its disks (a process restart: nothing is
                        // lost that the disk holds).
                        let injected = self.cfg.faults.disk_errors > 0.0 || self.stats.disk_errors_by_hand > 0;
                        assert!(injected, "seed {}: node {from} failed: {err}", self.cfg.seed);
                        self.machines[k].failures += 1;
                        self.stats.node_failures += 1;
                        self.log_line(format!("{now} n{from} stopped: {err}"));
                        let after = 1 + self.rng.below(self.cfg.faults.restart_within_ms.max(1));
                        let incarnation = self.machines[k].incarnation;
                        self.schedule(now + after, Ev::Recover { node: k, incarnation });
                    }
                    if self.cfg.record_trace {
                        if let Some(line) = super::trace::describe_event(&e) {
                            self.trace.push(format!("{now} n{from} {line}"));
                        }
                    }
                    if self.cfg.record_events {
                        self.note_node_event(from, &e);
                    }
                }
            }
        }
    }

    /// Starts (or restarts) node `k` on its disks.
    pub(super) fn start(&mut self, k: usize) {
        self.machines[k].incarnation += 1;
        let cfg = self.node_config(k);
        let now = self.now;
        let m = &mut self.machines[k];
        m.busy_until = [now; 2];
        m.requests.clear();
        m.node = Some(Node::open(cfg, now));
        self.net.up(now, k as u64 + 1);
        let incarnation = self.machines[k].incarnation;
        self.log_line(format!("{now} n{} start (incarnation {incarnation})", k + 1));
        self.note(EventKind::Start { node: k as u64 + 1, incarnation }, format!("{now} n{} start (incarnation {incarnation})", k + 1));
        self.drain(k);
    }

    /// Restarts node `k` if it is down (a decommissioned machine never restarts).
    pub fn restart(&mut self, k: usize) {
        if self.machines[k].node.is_none() && !self.machines[k].decommissioned {
            self.start(k);
        }
    }

    /// Crashes node `k`: what its disks have not synced is lost (a torn tail may survive).
    pub fn crash(&mut self, k: usize) {
        self.crash_with(k, true);
    }

    /// Crashes node `k`; with `lose_unsynced` false only the process dies (the OS keeps what
    /// was written but not synced).
    pub fn crash_with(&mut self, k: usize, lose_unsynced: bool) {
        let m = &mut self.machines[k];
        if m.node.take().is_none() {
            return;
        }
        if lose_unsynced {
            m.store_disk.crash(true);
            m.log_disk.crash(true);
        }
        m.crashes += 1;
        m.requests.clear();
        self.stats.crashes += 1;
        self.net.down(self.now, k as u64 + 1);
        self.log_line(format!("{} n{} crash", self.now, k + 1));
        let text = format!("{} n{} crash{}", self.now, k + 1, if lose_unsynced { " (unsynced writes lost)" } else { " (process only)" });
        self.note(EventKind::Crash { node: k as u64 + 1, lost_unsynced: lose_unsynced }, text);
    }

    fn inject_faults(&mut self) {
        let f = self.cfg.faults.clone();
        let n = self.machines.len() as u64;
        let now = self.now;
        if self.rng.chance(f.crash) {
            let k = self.rng.below(n) as usize;
            if self.machines[k].node.is_some() && !self.machines[k].decommissioned {
                self.crash(k);
                let after = 1 + self.rng.below(f.restart_within_ms.max(1));
                self.schedule(now + after, Ev::Restart { node: k });
            }
        }
        if self.rng.chance(f.partition) {
            let cut = 1 + self.rng.below(n - 1);
            let mut ids: Vec<u64> = (1..=n).collect();
            for i in (1..ids.len()).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                ids.swap(i, j);
            }
            let (a, b) = ids.split_at(cut as usize);
            // Cuts between the two groups (clients still reach every node).
            for &x in a {
                for &y in b {
                    self.net.cut(now, x, y);
                    self.net.cut(now, y, x);
                }
            }
            self.stats.partitions += 1;
            self.log_fault(format!("{now} partition {a:?} | {b:?}"));
        }
        if self.rng.chance(f.cut) {
            let from = 1 + self.rng.below(n);
            let to = 1 + self.rng.below(n);
            if from != to {
                self.net.cut(now, from, to);
                self.stats.partitions += 1;
                self.log_fault(format!("{now} cut n{from} -> n{to}"));
            }
        }
        if f.slow_disk > 0.0 && self.rng.chance(f.slow_disk) {
            let k = self.rng.below(n) as usize;
            let lane = self.rng.below(2) as usize;
            let ms = 1 + self.rng.below(f.slow_ms.max(1));
            self.machines[k].slow_ms[lane] = ms;
            self.stats.disk_faults += 1;
            self.log_fault(format!("{now} n{} {} disk slow (+{ms} ms)", k + 1, ["store", "log"][lane]));
        }
        if f.disk_errors > 0.0 && self.rng.chance(f.disk_errors) {
            let k = self.rng.below(n) as usize;
            let lane = self.rng.below(2) as usize;
            let m = &mut self.machines[k];
            let disk = if lane == 0 { &mut m.store_disk } else { &mut m.log_disk };
            disk.faults.write_error_rate = f.error_rate;
            self.stats.disk_faults += 1;
            self.log_fault(format!("{now} n{} {} disk failing writes", k + 1, ["store", "log"][lane]));
        }
        if self.rng.chance(f.heal) {
            self.net.heal(now);
            self.end_disk_faults();
            self.log_fault(format!("{now} heal"));
        }
    }

    /// Every disk is fast and healthy again.
    pub(super) fn end_disk_faults(&mut self) {
        for m in &mut self.machines {
            m.slow_ms = [0; 2];
            m.store_disk.faults.write_error_rate = 0.0;
            m.log_disk.faults.write_error_rate = 0.0;
        }
    }
}
