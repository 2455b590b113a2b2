//! The auction: filter cells by stack, placement tags and free
//! resources, then score — spread one process across zones first, then across cells, then by
//! resource balance. Pure: it decides, the caller commits.
//!
//! One round costs O(jobs × compatible cells) with no allocation per job: compatibility is
//! computed once per (stack, tags), zone and same-process counts are kept in dense vectors.

use std::collections::HashMap;
use std::sync::Arc;

use wire::lrp::{CellPresence, CellState, DesiredLrp};

/// One instance to place.
#[derive(Debug, Clone)]
pub struct Job {
    pub desired: Arc<DesiredLrp>,
    pub index: u32,
}

/// A cell as the auction sees it during one round.
#[derive(Debug, Clone)]
pub struct Bidder {
    pub presence: CellPresence,
    pub state: CellState,
    /// Instances per process guid, including those placed this round.
    pub per_process: HashMap<String, u32>,
}

impl Bidder {
    pub fn new(presence: CellPresence, state: CellState) -> Self {
        let mut per_process = HashMap::new();
        for i in &state.instances {
            *per_process.entry(i.process_guid.clone()).or_insert(0) += 1;
        }
        Self { presence, state, per_process }
    }
}

const STARTING_WEIGHT: f64 = 0.25;
const LOCALITY_OFFSET: f64 = 1000.0;

/// Placement error when the cluster-wide in-flight start limit is reached.
pub const START_LIMIT_ERROR: &str = "waiting to start instance: reached in-flight start limit";

/// Place `jobs` on `bidders`; returns, per job (same order), the winning bidder's index or the
/// CF placement error.
pub fn place(jobs: &[Job], bidders: &mut [Bidder]) -> Vec<Result<usize, String>> {
    place_limited(jobs, bidders, 0)
}

/// [`place`] with `starting_container_count_maximum` (0: no limit) over the whole cluster.
pub fn place_limited(
    jobs: &[Job],
    bidders: &mut [Bidder],
    max_starting: u32,
) -> Vec<Result<usize, String>> {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    // Index 0 first, then bigger memory first.
    order.sort_by_key(|&i| (jobs[i].index != 0, std::cmp::Reverse(jobs[i].desired.memory_mb)));
    let mut round = Round::new(bidders);
    let mut out = vec![Err(String::new()); jobs.len()];
    for i in order {
        out[i] = if max_starting > 0 && round.starting >= u64::from(max_starting) {
            Err(START_LIMIT_ERROR.to_owned())
        } else {
            round.place_one(&jobs[i], bidders)
        };
    }
    out
}

fn tags_match(cell: &CellPresence, lrp_tags: &[String]) -> bool {
    cell.placement_tags.iter().all(|t| lrp_tags.contains(t))
        && lrp_tags
            .iter()
            .all(|t| cell.placement_tags.contains(t) || cell.optional_placement_tags.contains(t))
}

/// Bookkeeping of one auction round.
struct Round {
    zone_of: Vec<usize>,
    zones: usize,
    /// Per process guid: (bidder, instances of it there).
    placed: HashMap<String, Vec<(usize, u32)>>,
    /// Per (stack, tags): the compatible cells, or why there are none.
    compatible: HashMap<(String, Vec<String>), Result<Vec<usize>, String>>,
    starting: u64,
    counts: Vec<u32>,
    zone_load: Vec<u32>,
}

impl Round {
    fn new(bidders: &[Bidder]) -> Self {
        let mut zone_ids: HashMap<&str, usize> = HashMap::new();
        let zone_of: Vec<usize> = bidders
            .iter()
            .map(|b| {
                let next = zone_ids.len();
                *zone_ids.entry(b.presence.zone.as_str()).or_insert(next)
            })
            .collect();
        let mut placed: HashMap<String, Vec<(usize, u32)>> = HashMap::new();
        for (i, b) in bidders.iter().enumerate() {
            for (guid, n) in &b.per_process {
                placed.entry(guid.clone()).or_default().push((i, *n));
            }
        }
        Self {
            zone_of,
            zones: zone_ids.len(),
            placed,
            compatible: HashMap::new(),
            starting: bidders.iter().map(|b| u64::from(b.state.starting)).sum(),
            counts: vec![0; bidders.len()],
            zone_load: vec![0; zone_ids.len()],
        }
    }

    fn compatible(&mut self, d: &DesiredLrp, bidders: &[Bidder]) -> Result<Vec<usize>, String> {
        let key = (d.stack.clone(), d.placement_tags.clone());
        if let Some(c) = self.compatible.get(&key) {
            return c.clone();
        }
        let live: Vec<usize> =
            (0..bidders.len()).filter(|&i| !bidders[i].state.evacuating).collect();
        let stack_ok: Vec<usize> =
            live.into_iter().filter(|&i| bidders[i].presence.stacks.contains(&d.stack)).collect();
        let result = if stack_ok.is_empty() {
            Err("found no compatible cell for required rootfs".to_owned())
        } else {
            let tags_ok: Vec<usize> = stack_ok
                .into_iter()
                .filter(|&i| tags_match(&bidders[i].presence, &d.placement_tags))
                .collect();
            if tags_ok.is_empty() {
                let tag = d.placement_tags.first().cloned().unwrap_or_default();
                Err(format!("found no compatible cell with placement tag \"{tag}\""))
            } else {
                Ok(tags_ok)
            }
        };
        self.compatible.insert(key, result.clone());
        result
    }

    fn place_one(&mut self, job: &Job, bidders: &mut [Bidder]) -> Result<usize, String> {
        let d = &*job.desired;
        let candidates = self.compatible(d, bidders)?;
        // Dense same-process counts and zone loads for this job; reset below.
        let touched: Vec<(usize, u32)> =
            self.placed.get(&d.process_guid).cloned().unwrap_or_default();
        for &(b, n) in &touched {
            self.counts[b] = n;
            self.zone_load[self.zone_of[b]] += n;
        }
        let winner = self.best(d, &candidates, bidders);
        for &(b, _) in &touched {
            self.counts[b] = 0;
        }
        self.zone_load.iter_mut().take(self.zones).for_each(|z| *z = 0);
        let winner = winner?;
        let b = &mut bidders[winner];
        b.state.available.memory_mb -= d.memory_mb;
        b.state.available.disk_mb -= d.disk_mb;
        b.state.available.containers -= 1;
        b.state.starting += 1;
        *b.per_process.entry(d.process_guid.clone()).or_insert(0) += 1;
        self.starting += 1;
        let list = self.placed.entry(d.process_guid.clone()).or_default();
        match list.iter_mut().find(|(i, _)| *i == winner) {
            Some((_, n)) => *n += 1,
            None => list.push((winner, 1)),
        }
        Ok(winner)
    }

    /// Lowest (zone load of this process, score) among the cells with room: zones with the
    /// fewest instances first (ties pooled), then the best score inside them.
    fn best(
        &self,
        d: &DesiredLrp,
        candidates: &[usize],
        bidders: &[Bidder],
    ) -> Result<usize, String> {
        let (mut mem, mut disk, mut containers) = (false, false, false);
        let mut best: Option<(u32, f64, usize)> = None;
        for &i in candidates {
            let a = &bidders[i].state.available;
            let (m, dk, c) =
                (a.memory_mb >= d.memory_mb, a.disk_mb >= d.disk_mb, a.containers >= 1);
            mem |= m;
            disk |= dk;
            containers |= c;
            if !(m && dk && c) {
                continue;
            }
            let load = self.zone_load[self.zone_of[i]];
            let s = score(&bidders[i], self.counts[i], d);
            if best.is_none_or(|(bl, bs, _)| load < bl || (load == bl && s < bs)) {
                best = Some((load, s, i));
            }
        }
        if let Some((_, _, i)) = best {
            return Ok(i);
        }
        let missing: Vec<&str> = [(!disk, "disk"), (!mem, "memory"), (!containers, "containers")]
            .into_iter()
            .filter_map(|(miss, name)| miss.then_some(name))
            .collect();
        let missing = if missing.is_empty() { vec!["memory"] } else { missing };
        Err(format!("insufficient resources: {}", missing.join(", ")))
    }
}

/// Diego's `ScoreForLRP`: resource use after placement + 0.25 × starting containers + 1000 ×
/// instances of the same process already on the cell. Lower wins.
fn score(b: &Bidder, same_process: u32, d: &DesiredLrp) -> f64 {
    let (a, t) = (&b.state.available, &b.state.total);
    let frac = |free: u64, need: u64, total: u64| {
        if total == 0 {
            1.0
        } else {
            1.0 - (free.saturating_sub(need)) as f64 / total as f64
        }
    };
    let resource = (frac(a.memory_mb, d.memory_mb, t.memory_mb)
        + frac(a.disk_mb, d.disk_mb, t.disk_mb)
        + frac(u64::from(a.containers), 1, u64::from(t.containers)))
        / 3.0;
    resource
        + STARTING_WEIGHT * f64::from(b.state.starting)
        + LOCALITY_OFFSET * f64::from(same_process)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::lrp::{Capacity, InstanceKey};

    fn desired(guid: &str, memory_mb: u64, tags: &[&str]) -> Arc<DesiredLrp> {
        let mut d: DesiredLrp = serde_json::from_value(serde_json::json!({
            "process_guid": guid, "log_guid": "a", "instances": 1, "memory_mb": memory_mb,
            "disk_mb": 100, "stack": "bookworm", "start_command": "./run",
            "image": {"droplet_guid": "d", "droplet_url": "u", "droplet_sha256": "00"},
            "health_check": {"type": "port"}
        }))
        .expect("desired");
        d.placement_tags = tags.iter().map(|t| (*t).to_owned()).collect();
        Arc::new(d)
    }

    fn cell(id: &str, zone: &str, free_mb: u64, tags: &[&str], optional: &[&str]) -> Bidder {
        let total = Capacity { memory_mb: 4096, disk_mb: 10_000, containers: 10 };
        let available = Capacity { memory_mb: free_mb, ..total };
        let presence = CellPresence {
            cell_id: id.into(),
            rep_url: format!("http://{id}"),
            zone: zone.into(),
            capacity: total,
            stacks: vec!["bookworm".into()],
            placement_tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            optional_placement_tags: optional.iter().map(|t| (*t).to_owned()).collect(),
            evacuating: false,
        };
        let state = CellState {
            cell_id: id.into(),
            available,
            total,
            instances: vec![],
            evacuating: false,
            starting: 0,
        };
        Bidder::new(presence, state)
    }

    fn job(d: &Arc<DesiredLrp>, index: u32) -> Job {
        Job { desired: d.clone(), index }
    }

    #[test]
    fn the_least_used_cell_wins_when_nothing_else_differs() {
        let mut cells = [cell("a", "z", 1024, &[], &[]), cell("b", "z", 4096, &[], &[])];
        let d = desired("p", 256, &[]);
        assert_eq!(place(&[job(&d, 0)], &mut cells), vec![Ok(1)]);
    }

    #[test]
    fn same_process_instances_spread_even_onto_busier_cells() {
        let mut cells = [cell("a", "z", 4096, &[], &[]), cell("b", "z", 1024, &[], &[])];
        let d = desired("p", 256, &[]);
        let got = place(&[job(&d, 0), job(&d, 1)], &mut cells);
        assert_eq!(got, vec![Ok(0), Ok(1)], "locality offset beats resource balance");
    }

    #[test]
    fn zones_with_fewer_instances_of_the_process_come_first() {
        let mut cells = [
            cell("a1", "z1", 4096, &[], &[]),
            cell("a2", "z1", 4096, &[], &[]),
            cell("b1", "z2", 512, &[], &[]),
        ];
        cells[0].per_process.insert("p".into(), 1);
        cells[0].state.instances.push(InstanceKey {
            process_guid: "p".into(),
            index: 0,
            instance_guid: "g".into(),
        });
        let d = desired("p", 256, &[]);
        assert_eq!(place(&[job(&d, 1)], &mut cells), vec![Ok(2)], "z2 before the empty a2");
    }

    #[test]
    fn index_zero_and_big_memory_go_first() {
        let mut cells = [cell("a", "z", 600, &[], &[])];
        let small = desired("s", 200, &[]);
        let big = desired("b", 500, &[]);
        let got = place(&[job(&small, 1), job(&big, 1), job(&small, 0)], &mut cells);
        assert_eq!(got[2], Ok(0), "index 0 first");
        assert!(got[1].is_err(), "big one no longer fits after index 0: {got:?}");
        assert_eq!(got[0], Ok(0));
    }

    #[test]
    fn placement_tags_required_and_optional() {
        let mut cells = [cell("gpu", "z", 4096, &["gpu"], &["ssd"])];
        let table: [(&[&str], bool); 5] = [
            (&[], false),
            (&["gpu"], true),
            (&["gpu", "ssd"], true),
            (&["ssd"], false),
            (&["gpu", "arm"], false),
        ];
        for (tags, fits) in table {
            let d = desired("p", 1, tags);
            let got = place(&[job(&d, 0)], &mut cells);
            assert_eq!(got[0].is_ok(), fits, "{tags:?}: {got:?}");
        }
        let d = desired("p", 1, &["arm"]);
        assert_eq!(
            place(&[job(&d, 0)], &mut cells),
            vec![Err("found no compatible cell with placement tag \"arm\"".to_owned())]
        );
    }

    #[test]
    fn insufficient_resources_list_what_is_missing() {
        let mut cells = [cell("a", "z", 100, &[], &[])];
        cells[0].state.available.containers = 0;
        let d = desired("p", 256, &[]);
        assert_eq!(
            place(&[job(&d, 0)], &mut cells),
            vec![Err("insufficient resources: memory, containers".to_owned())]
        );
        cells[0].state.evacuating = true;
        assert_eq!(
            place(&[job(&d, 0)], &mut cells),
            vec![Err("found no compatible cell for required rootfs".to_owned())],
            "evacuating cells do not bid"
        );
    }

    #[test]
    fn the_in_flight_start_limit_holds_jobs_back() {
        let mut cells = [cell("a", "z", 4096, &[], &[]), cell("b", "z", 4096, &[], &[])];
        cells[0].state.starting = 1;
        let d = desired("p", 1, &[]);
        let got = place_limited(&[job(&d, 0), job(&d, 1), job(&d, 2)], &mut cells, 2);
        assert!(got[0].is_ok());
        assert_eq!(got[1], Err(START_LIMIT_ERROR.to_owned()));
        assert_eq!(got[2], Err(START_LIMIT_ERROR.to_owned()));
        assert_eq!(place_limited(&[job(&d, 0)], &mut cells, 0).len(), 1);
    }
}
