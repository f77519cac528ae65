//! Membership (Raft thesis §4.1, §4.3): a server uses the latest configuration in its log,
//! whether or not it is committed, and falls back to the previous one when a conflicting
//! leader truncates that entry. Entering and leaving a joint configuration work the same
//! way. The leader still allows one change at a time (a new change only once the previous
//! one is applied), so at most the latest configuration entry is uncommitted.

use crate::confchange::apply_conf_change;
use crate::message::{ConfState, EntryKind};
use crate::node::{Node, Role};
use crate::types::{Index, NodeId};

impl Node {
    /// The log changed from index `from` on (entries truncated, appended or both): drops
    /// the configurations of entries that are gone and adopts those of new entries.
    pub(crate) fn adopt_confs_from(&mut self, from: Index) {
        let before = self.conf_history.len();
        while self.conf_history.last().is_some_and(|(i, _)| *i >= from) {
            self.conf_history.pop();
        }
        let mut changed = self.conf_history.len() != before;
        let last = self.log.last_index();
        let mut conf: Option<ConfState> = None;
        for e in self.log.iter_range(from, last.next()) {
            if e.kind != EntryKind::ConfChange {
                continue;
            }
            let Some(cc) = e.conf_change() else { continue };
            let base = conf.get_or_insert_with(|| {
                latest_conf(&self.conf_history, &self.log.snapshot.conf).clone()
            });
            // An invalid change (which a correct leader never appends) is skipped by every
            // node alike, so all agree on the configuration at every index.
            if let Ok(next) = apply_conf_change(base, &cc) {
                *base = next.clone();
                self.conf_history.push((e.index, next));
                changed = true;
            }
        }
        if !changed {
            return;
        }
        let cs = latest_conf(&self.conf_history, &self.log.snapshot.conf).clone();
        self.tracker.set_conf(&cs, last.next());
        if self.role == Role::Leader {
            self.broadcast_pending = true;
            self.maybe_commit();
        }
    }

    /// A configuration entry was applied (committed and durable here). A leader that is no
    /// longer a voter once its latest configuration is committed hands off (§4.2.2).
    pub(crate) fn conf_entry_applied(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        self.broadcast_pending = true;
        if !self.tracker.is_voter(self.id) && self.latest_conf_index() <= self.log.applied {
            // Stepping down at once could leave the remaining voters without anyone to
            // tell them the commit index: keep replicating, refuse proposals, and hand
            // leadership to the most caught-up voter; the new term it starts deposes us.
            self.hand_off_leadership();
        }
    }

    /// Whether this node may campaign: a voter of its latest configuration, or of a
    /// configuration that entry may still be rolled back to (one at or after its commit
    /// index). The second case keeps the group live when the only voter of the latest
    /// configuration lost that entry in a crash: the nodes that hold it, learners by it,
    /// campaign and win with the votes of the latest configuration, then hand off.
    pub(crate) fn promotable(&self) -> bool {
        if self.tracker.is_voter(self.id) {
            return true;
        }
        let committed = self.log.committed;
        let uncommitted = self
            .conf_history
            .iter()
            .rev()
            .take_while(|(i, _)| *i > committed);
        let mut earlier = None;
        for (i, cs) in uncommitted {
            if is_voter(cs, self.id) {
                return true;
            }
            earlier = Some(*i);
        }
        earlier.is_some_and(|i| is_voter(&self.conf_at(i.prev()), self.id))
    }

    /// The configuration in effect at `index` (as the log holds it).
    pub(crate) fn conf_at(&self, index: Index) -> ConfState {
        self.conf_history
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| self.log.snapshot.conf.clone())
    }

    /// Index of the latest configuration entry in the log (0 if the snapshot's).
    pub(crate) fn latest_conf_index(&self) -> Index {
        self.conf_history.last().map_or(Index(0), |(i, _)| *i)
    }
}

fn latest_conf<'a>(history: &'a [(Index, ConfState)], snapshot: &'a ConfState) -> &'a ConfState {
    history.last().map_or(snapshot, |(_, c)| c)
}

fn is_voter(cs: &ConfState, id: NodeId) -> bool {
    cs.voters.contains(&id) || cs.voters_outgoing.contains(&id)
}
