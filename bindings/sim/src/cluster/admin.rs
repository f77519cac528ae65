//! Membership changes in the cluster world: machines that join with empty disks, and an
//! operator (a placement driver's role) that sends the nodes' admin requests over the
//! network.
//!
//! [`Cluster::add_machine`] brings up a new machine (fresh disks, node id `n + 1`) whose node
//! starts outside the region (its configuration is the region's initial one, which it is not
//! in): it catches up by log or snapshot once the leader adds it. [`Cluster::admin`] queues
//! an [`AdminOp`]; the operator runs one request at a time, like a placement driver's operator
//! for a region: it sends it to the leader it knows (else a random member), follows
//! `NotLeader` hints, takes the current epoch from `EpochMismatch`, retries `Unknown` (admin
//! requests are idempotent), backs off on other retryable errors, and records the outcome.
//! [`Cluster::decommission`] stops a removed machine for good (its disks are kept; faults,
//! healing and digests leave it out).
//!
//! [`Cluster::schedule`] puts a [`ScenarioAction`] on the world's timeline, so a run (or a
//! test) can add, remove and transfer at chosen times, with targets picked from the seed.
use super::{Cluster, Ev, Packet};
use strata_engine::node::wire::{AdminOp, AdminReply, ClientError, ClientMessage, ClientOp, ClientReply, ClientRequest, ClientResponse, Epoch, Membership, RegionId};

/// The operator's network address.
pub const ADMIN_ADDR: u64 = 900;

/// Ms before an unanswered admin attempt is sent again (a node answers `Unknown` after its
/// request timeout; a learner's catch-up then goes on at the next attempt).
pub const ADMIN_ATTEMPT_MS: u64 = 2_000;

/// Pause after a retryable refusal.
pub const ADMIN_BACKOFF_MS: u64 = 50;

/// A membership action on the world's timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScenarioAction {
    /// A new machine comes up and the operator adds its node.
    AddNode,
    /// The operator removes node `n` (`None`: a voter picked from the seed, never the last),
    /// then the machine is decommissioned.
    Remove(Option<u64>),
    /// The operator hands leadership to node `n` (`None`: a voter picked from the seed, other
    /// than the leader).
    Transfer(Option<u64>),
}

/// An operator request, for a viewer ([`Cluster::admin_view`]).
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdminView {
    /// What (`add n4`, `remove n2`, `transfer to n3`).
    pub op: String,
    /// When it was queued (ms).
    pub queued_at: u64,
    /// Attempts sent so far.
    pub attempts: u64,
    /// When it ended (`None`: still running or waiting its turn).
    pub done_at: Option<u64>,
    /// Why it was refused (`None`: done, or not yet ended).
    pub error: Option<String>,
}

/// One admin request of the operator.
#[derive(Clone, Debug)]
pub struct AdminTask {
    /// The request.
    pub op: AdminOp,
    /// When it was queued.
    pub queued_at: u64,
    /// Decommission the machine once a removal is done.
    pub decommission: bool,
    /// The answer (`None`: not yet).
    pub result: Option<(u64, Result<AdminReply, ClientError>)>,
    /// Attempts sent.
    pub attempts: u64,
}

/// The operator's state.
#[derive(Clone, Debug, Default)]
pub struct Operator {
    /// Every request, in order (the first without a result is the one running).
    pub tasks: Vec<AdminTask>,
    /// The region's epoch as the operator last learned it.
    pub epoch: Option<Epoch>,
    leader_hint: Option<u64>,
    next_msg: u64,
    /// Message id of the latest attempt.
    last_msg: u64,
    /// When the running request wants the operator again.
    pub wake_at: Option<u64>,
}

impl Operator {
    /// The running request's index.
    fn current(&self) -> Option<usize> {
        self.tasks.iter().position(|t| t.result.is_none())
    }

    /// True when every request is answered.
    pub fn is_idle(&self) -> bool {
        self.current().is_none()
    }
}

impl Cluster {
    /// Brings up a new machine with empty disks; returns its index (node id `index + 1`). Its
    /// node serves nothing until the operator adds it ([`Cluster::admin`]).
    pub fn add_machine(&mut self) -> usize {
        let k = self.machines.len();
        let id = k as u64 + 1;
        self.machines.push(super::Machine::new(self.cfg.seed, id));
        self.roles.push((None, 0));
        self.net.add_node(id);
        self.log_fault(format!("{} n{id} new machine (empty disks)", self.now));
        self.start(k);
        k
    }

    /// Queues an admin request for the operator; returns its index in
    /// [`Operator::tasks`].
    pub fn admin(&mut self, op: AdminOp) -> usize {
        self.admin_task(op, false)
    }

    fn admin_task(&mut self, op: AdminOp, decommission: bool) -> usize {
        self.net.add_node(ADMIN_ADDR);
        let now = self.now;
        self.operator.tasks.push(AdminTask { op, queued_at: now, decommission, result: None, attempts: 0 });
        if self.operator.wake_at.is_none() {
            self.operator.wake_at = Some(now);
        }
        self.operator.tasks.len() - 1
    }

    /// Stops machine `k` for good (after its removal): it is never restarted, and faults and
    /// digests leave it out.
    pub fn decommission(&mut self, k: usize) {
        if !self.machines[k].decommissioned {
            self.crash_with(k, false);
            self.machines[k].decommissioned = true;
            self.log_fault(format!("{} n{} decommissioned", self.now, k + 1));
        }
    }

    /// Puts `action` on the timeline at `at` (ms).
    pub fn schedule_action(&mut self, at: u64, action: ScenarioAction) {
        self.schedule(at, Ev::Scenario(action));
    }

    /// The voters as the most advanced running node applied them.
    pub fn voters(&self) -> Vec<u64> {
        self.machines
            .iter()
            .filter_map(|m| m.node.as_ref().filter(|n| n.is_running()))
            .max_by_key(|n| (n.membership().conf_ver, n.membership().index))
            .map_or_else(|| (1..=self.cfg.nodes).collect(), |n| n.membership().conf.voters.iter().map(|v| v.0).collect())
    }

    /// The region's membership as the most advanced running node applied it (`None`: no node
    /// is running).
    pub fn membership_now(&self) -> Option<Membership> {
        self.machines
            .iter()
            .filter_map(|m| m.node.as_ref().filter(|n| n.is_running()))
            .map(|n| n.membership())
            .max_by_key(|m| (m.conf_ver, m.index))
            .map(|m| m.membership(0))
    }

    /// Node `id`'s place in the region ([`Cluster::membership_now`]; the initial voters while
    /// no node runs): `"removed"` (removed, or its machine decommissioned), `"voter"` (also an
    /// outgoing voter of a joint configuration), `"learner"` (also one about to become a
    /// voter), or `"outside"` (a new machine not added yet).
    pub fn member_kind(&self, id: u64) -> &'static str {
        let decommissioned = (id as usize).checked_sub(1).and_then(|k| self.machines.get(k)).is_some_and(|m| m.decommissioned);
        match self.membership_now() {
            _ if decommissioned => "removed",
            Some(m) if m.removed.contains(&id) => "removed",
            Some(m) if m.voters.contains(&id) || m.voters_outgoing.contains(&id) => "voter",
            Some(m) if m.learners.contains(&id) => "learner",
            Some(_) => "outside",
            None if id <= self.cfg.nodes => "voter",
            None => "outside",
        }
    }

    /// The operator's requests, oldest first (for a viewer).
    pub fn admin_view(&self) -> Vec<AdminView> {
        self.operator
            .tasks
            .iter()
            .map(|t| AdminView {
                op: super::trace::describe_admin(&t.op),
                queued_at: t.queued_at,
                attempts: t.attempts,
                done_at: t.result.as_ref().map(|(at, _)| *at),
                error: match &t.result {
                    Some((_, Err(e))) => Some(e.to_string()),
                    _ => None,
                },
            })
            .collect()
    }

    /// Carries out `action` now (what a scheduled [`ScenarioAction`] does when its time
    /// comes): a target left `None` is picked from the seed.
    pub fn run_action(&mut self, action: ScenarioAction) {
        let voters = self.voters();
        match action {
            ScenarioAction::AddNode => {
                let k = self.add_machine();
                self.admin(AdminOp::AddReplica { node: k as u64 + 1 });
            }
            ScenarioAction::Remove(n) => {
                let node = n.or_else(|| (voters.len() > 1).then(|| voters[self.rng.below(voters.len() as u64) as usize]));
                if let Some(node) = node {
                    self.admin_task(AdminOp::RemoveReplica { node }, true);
                }
            }
            ScenarioAction::Transfer(n) => {
                let leader = self.leader().map(|k| k as u64 + 1);
                let others: Vec<u64> = voters.iter().copied().filter(|v| Some(*v) != leader).collect();
                let to = n.or_else(|| (!others.is_empty()).then(|| others[self.rng.below(others.len() as u64) as usize]));
                if let Some(to) = to {
                    self.admin(AdminOp::TransferLeader { to });
                }
            }
        }
    }

    /// The operator's timer fired: send (or resend) the running request.
    pub(super) fn wake_operator(&mut self) {
        let now = self.now;
        self.operator.wake_at = None;
        let Some(i) = self.operator.current() else { return };
        let to = match self.operator.leader_hint.filter(|&l| self.is_member_machine(l)) {
            Some(l) => l,
            None => {
                let up: Vec<u64> = self.voters().into_iter().filter(|&v| self.is_member_machine(v)).collect();
                if up.is_empty() {
                    self.operator.wake_at = Some(now + ADMIN_BACKOFF_MS);
                    return;
                }
                up[self.rng.below(up.len() as u64) as usize]
            }
        };
        self.operator.next_msg += 1;
        let id = self.operator.next_msg;
        self.operator.last_msg = id;
        let epoch = self.operator.epoch.unwrap_or(Epoch::INITIAL);
        let task = &mut self.operator.tasks[i];
        task.attempts += 1;
        let msg = ClientMessage { id, request: ClientRequest { region: RegionId(1), epoch, op: ClientOp::Admin(task.op.clone()) } };
        self.net.send(now, ADMIN_ADDR, to, Packet::Request(msg.encode()));
        self.operator.wake_at = Some(now + ADMIN_ATTEMPT_MS);
    }

    /// A node answered the operator.
    pub(super) fn on_admin_response(&mut self, from: u64, resp: ClientResponse) {
        let now = self.now;
        if resp.id == 0 || resp.id != self.operator.last_msg {
            return;
        }
        let Some(i) = self.operator.current() else { return };
        match resp.result {
            Ok(ClientReply::Admin(reply)) => {
                self.operator.epoch = Some(reply.membership.epoch);
                self.operator.leader_hint = reply.leader.or(Some(from));
                self.finish_task(i, Ok(reply));
            }
            Ok(other) => self.finish_task(i, Err(ClientError::Invalid(format!("unexpected answer {other:?}")))),
            Err(ClientError::NotLeader { leader }) => {
                self.operator.leader_hint = leader;
                self.operator.wake_at = Some(now + if leader.is_some() { 0 } else { ADMIN_BACKOFF_MS });
            }
            Err(ClientError::EpochMismatch { current }) => {
                self.operator.epoch = Some(current);
                self.operator.wake_at = Some(now);
            }
            Err(e) if e.is_retryable() => {
                if matches!(e, ClientError::Removed { .. } | ClientError::Unavailable(_)) {
                    self.operator.leader_hint = None;
                }
                self.operator.wake_at = Some(now + ADMIN_BACKOFF_MS);
            }
            Err(e) => self.finish_task(i, Err(e)),
        }
    }

    fn finish_task(&mut self, i: usize, result: Result<AdminReply, ClientError>) {
        let now = self.now;
        let line = match &result {
            Ok(r) => format!("{now} admin {} done: {}", super::trace::describe_admin(&self.operator.tasks[i].op), super::trace::describe_membership(&r.membership)),
            Err(e) => format!("{now} admin {} refused: {e}", super::trace::describe_admin(&self.operator.tasks[i].op)),
        };
        self.log_fault(line);
        let task = &mut self.operator.tasks[i];
        let decommission = match (&task.op, &result, task.decommission) {
            (AdminOp::RemoveReplica { node }, Ok(_), true) => Some(*node),
            _ => None,
        };
        task.result = Some((now, result));
        // A duplicate of this answer must not end the next request.
        self.operator.last_msg = 0;
        if let Some(node) = decommission {
            if let Some(k) = (node as usize).checked_sub(1).filter(|&k| k < self.machines.len()) {
                self.decommission(k);
            }
        }
        self.operator.wake_at = (!self.operator.is_idle()).then_some(now);
    }

    /// Whether node `id` is a machine in service (up or down, not decommissioned).
    fn is_member_machine(&self, id: u64) -> bool {
        (id as usize).checked_sub(1).and_then(|k| self.machines.get(k)).is_some_and(|m| !m.decommissioned)
    }
}
