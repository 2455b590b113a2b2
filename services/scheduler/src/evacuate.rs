//! Instances that move without crashing: evacuation of a draining cell
//! and the return of a cell that was thought lost.
//!
//! An evacuating cell's RUNNING instance gets an EVACUATING copy that stays routable while the
//! ORDINARY record is auctioned again; the cell is told to stop the old container only when the
//! replacement is RUNNING (see `Engine::start`) or when the evacuation timeout passes
//! (convergence).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use wire::lrp::{ActualLrp, ActualState, EvacuateResult, InstanceReport, LrpEvent, Presence};

use crate::auction::Job;
use crate::engine::{unclaimed_from, Engine, EngineError};

impl Engine {
    /// A draining cell hands over one of its instances; the answer says whether the cell must
    /// keep the container running (and routable) for now.
    pub async fn evacuate(&self, r: &InstanceReport) -> Result<EvacuateResult, EngineError> {
        let guid = &r.instance.process_guid;
        let all = self.repo.list_actual(Some(guid), None).await?;
        let mine = |a: &&ActualLrp| {
            a.index == r.instance.index
                && a.instance_guid == r.instance.instance_guid
                && a.cell_id == r.cell_id
        };
        let Some(a) = all.iter().find(mine).cloned() else {
            // Not ours (any more): the cell should let it go.
            return Ok(EvacuateResult { keep_container: false });
        };
        match (a.presence, a.state) {
            (Presence::Evacuating, _) => {
                let replaced = all.iter().any(|o| {
                    o.index == a.index
                        && o.presence == Presence::Ordinary
                        && o.state == ActualState::Running
                });
                Ok(EvacuateResult { keep_container: !replaced })
            }
            (Presence::Ordinary, ActualState::Running) => {
                let mut copy = a.clone();
                copy.presence = Presence::Evacuating;
                copy.since = self.now();
                self.repo.delete_actual(guid, a.index, Presence::Evacuating).await?;
                self.repo.insert_actual(&copy).await?;
                self.emit(LrpEvent::ActualLrpCreated { actual_lrp: copy });
                self.reauction(a).await?;
                Ok(EvacuateResult { keep_container: true })
            }
            (Presence::Ordinary, ActualState::Claimed) => {
                self.reauction(a).await?;
                Ok(EvacuateResult { keep_container: false })
            }
            _ => Ok(EvacuateResult { keep_container: false }),
        }
    }

    /// Make the ordinary record UNCLAIMED and auction it at once.
    async fn reauction(&self, a: ActualLrp) -> Result<(), EngineError> {
        let b = unclaimed_from(&a, self.now());
        self.transition(a.clone(), b).await?;
        if let Some(d) = self.repo.get_desired(&a.process_guid).await? {
            if a.index < d.instances {
                self.auction(vec![Job { desired: Arc::new(d), index: a.index }]).await?;
            }
        }
        Ok(())
    }

    /// SUSPECT instances whose cell is back (heartbeating again) become ORDINARY once more; a
    /// replacement that is not RUNNING yet is removed. A suspect whose replacement runs is
    /// stopped and forgotten. Returns the records convergence must
    /// look at next.
    pub(crate) async fn cells_returned(
        &self,
        actual: Vec<ActualLrp>,
        lost: &HashSet<String>,
        cells: &HashMap<String, String>,
    ) -> Result<Vec<ActualLrp>, EngineError> {
        let back: Vec<ActualLrp> = actual
            .iter()
            .filter(|a| {
                a.presence == Presence::Suspect
                    && !lost.contains(&a.cell_id)
                    && cells.contains_key(&a.cell_id)
            })
            .cloned()
            .collect();
        if back.is_empty() {
            return Ok(actual);
        }
        let mut restored: HashSet<(String, u32)> = HashSet::new();
        let mut retired: HashSet<(String, u32)> = HashSet::new();
        for s in &back {
            let replacement = actual.iter().find(|o| {
                o.process_guid == s.process_guid
                    && o.index == s.index
                    && o.presence == Presence::Ordinary
            });
            if replacement.is_some_and(|o| o.state == ActualState::Running) {
                // The replacement won. `start` retires the suspect; should that have been cut
                // off, the copy the cell still runs is stopped here.
                self.retire(s, cells).await?;
                retired.insert((s.process_guid.clone(), s.index));
                continue;
            }
            if let Some(o) = replacement {
                self.retire(o, cells).await?;
            }
            self.repo.delete_actual(&s.process_guid, s.index, Presence::Suspect).await?;
            let mut ordinary = s.clone();
            ordinary.presence = Presence::Ordinary;
            self.repo.insert_actual(&ordinary).await?;
            self.emit(LrpEvent::ActualLrpChanged {
                before: Box::new(s.clone()),
                after: Box::new(ordinary),
            });
            restored.insert((s.process_guid.clone(), s.index));
        }
        Ok(actual
            .into_iter()
            .filter_map(|mut a| {
                let at = (a.process_guid.clone(), a.index);
                if a.presence == Presence::Suspect && retired.contains(&at) {
                    return None;
                }
                if !restored.contains(&at) {
                    return Some(a);
                }
                match a.presence {
                    Presence::Suspect => {
                        a.presence = Presence::Ordinary;
                        Some(a)
                    }
                    Presence::Ordinary => None,
                    Presence::Evacuating => Some(a),
                }
            })
            .collect())
    }
}
