//! The auction (contracts/runtime.md §1.6): filter cells by stack, placement tags and free
//! resources, then score — spread one process across zones first, then across cells, then by
//! resource balance. Pure: it decides, the caller commits.

use std::collections::HashMap;

use wire::lrp::{CellPresence, CellState, DesiredLrp};

/// One instance to place.
#[derive(Debug, Clone)]
pub struct Job {
    pub desired: DesiredLrp,
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

/// Place `jobs` on `bidders`; returns, per job (same order), the winning bidder's index or the
/// CF placement error.
pub fn place(jobs: &[Job], bidders: &mut [Bidder]) -> Vec<Result<usize, String>> {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    // Index 0 first, then bigger memory first.
    order.sort_by(|&a, &b| {
        (jobs[a].index != 0, std::cmp::Reverse(jobs[a].desired.memory_mb))
            .cmp(&(jobs[b].index != 0, std::cmp::Reverse(jobs[b].desired.memory_mb)))
    });
    let mut out = vec![Err(String::new()); jobs.len()];
    for i in order {
        out[i] = place_one(&jobs[i], bidders);
    }
    out
}

fn tags_match(cell: &CellPresence, lrp_tags: &[String]) -> bool {
    cell.placement_tags.iter().all(|t| lrp_tags.contains(t))
        && lrp_tags
            .iter()
            .all(|t| cell.placement_tags.contains(t) || cell.optional_placement_tags.contains(t))
}

fn place_one(job: &Job, bidders: &mut [Bidder]) -> Result<usize, String> {
    let d = &job.desired;
    let live: Vec<usize> = (0..bidders.len()).filter(|&i| !bidders[i].state.evacuating).collect();
    let stack_ok: Vec<usize> =
        live.into_iter().filter(|&i| bidders[i].presence.stacks.contains(&d.stack)).collect();
    if stack_ok.is_empty() {
        return Err("found no compatible cell for required rootfs".into());
    }
    let tags_ok: Vec<usize> = stack_ok
        .into_iter()
        .filter(|&i| tags_match(&bidders[i].presence, &d.placement_tags))
        .collect();
    if tags_ok.is_empty() {
        let tag = d.placement_tags.first().cloned().unwrap_or_default();
        return Err(format!("found no compatible cell with placement tag \"{tag}\""));
    }
    let (mut mem, mut disk, mut containers) = (false, false, false);
    let fits: Vec<usize> = tags_ok
        .into_iter()
        .filter(|&i| {
            let a = &bidders[i].state.available;
            let (m, dk, c) =
                (a.memory_mb >= d.memory_mb, a.disk_mb >= d.disk_mb, a.containers >= 1);
            mem |= m;
            disk |= dk;
            containers |= c;
            m && dk && c
        })
        .collect();
    if fits.is_empty() {
        let missing: Vec<&str> = [(!disk, "disk"), (!mem, "memory"), (!containers, "containers")]
            .into_iter()
            .filter_map(|(miss, name)| miss.then_some(name))
            .collect();
        let missing = if missing.is_empty() { vec!["memory"] } else { missing };
        return Err(format!("insufficient resources: {}", missing.join(", ")));
    }
    let winner = best_in_least_loaded_zone(&fits, bidders, &d.process_guid, d);
    let b = &mut bidders[winner];
    b.state.available.memory_mb -= d.memory_mb;
    b.state.available.disk_mb -= d.disk_mb;
    b.state.available.containers -= 1;
    b.state.starting += 1;
    *b.per_process.entry(d.process_guid.clone()).or_insert(0) += 1;
    Ok(winner)
}

/// Zones sorted by how many instances of this process they hold; the first group (ties
/// pooled) with a candidate wins, and within it the lowest score.
fn best_in_least_loaded_zone(
    fits: &[usize],
    bidders: &[Bidder],
    guid: &str,
    d: &DesiredLrp,
) -> usize {
    let mut zone_load: HashMap<&str, u32> = HashMap::new();
    for b in bidders.iter() {
        *zone_load.entry(b.presence.zone.as_str()).or_insert(0) +=
            b.per_process.get(guid).copied().unwrap_or(0);
    }
    let min = fits.iter().map(|&i| zone_load[bidders[i].presence.zone.as_str()]).min().unwrap_or(0);
    let pool =
        fits.iter().copied().filter(|&i| zone_load[bidders[i].presence.zone.as_str()] == min);
    pool.min_by(|&a, &b| score(&bidders[a], guid, d).total_cmp(&score(&bidders[b], guid, d)))
        .unwrap_or(fits[0])
}

fn score(b: &Bidder, guid: &str, d: &DesiredLrp) -> f64 {
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
        + LOCALITY_OFFSET * f64::from(b.per_process.get(guid).copied().unwrap_or(0))
}
