//! What `/proc` says about a process group: its members, their resident memory and CPU time,
//! and each process's start time (so a pid the kernel gave to someone else is told apart).
//! The process backend has no cgroups; this is how it measures and finds an instance.
//! Every function takes the `/proc` directory, so the parsing is tested on a fake one.

use std::path::Path;

/// Clock ticks per second of `utime`/`stime`/`starttime` (USER_HZ: 100 on every Linux
/// architecture this runs on).
pub const TICKS_PER_SEC: u64 = 100;

/// The fields of `/proc/<pid>/stat` the cell uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    /// `R`, `S`, `Z`, ...
    pub state: char,
    pub pgrp: u32,
    /// User and system CPU time, in ticks.
    pub utime: u64,
    pub stime: u64,
    /// Ticks after boot when the process started (field 22).
    pub starttime: u64,
}

impl Stat {
    /// Parse one `stat` line; the command name (field 2) may hold spaces and parentheses, so
    /// fields are counted after its last `)`.
    pub fn parse(line: &str) -> Option<Self> {
        let (head, rest) = line.rsplit_once(')')?;
        let pid = head.split_whitespace().next()?.parse().ok()?;
        // rest: " S ppid pgrp ..." — field 3 is the first after the name.
        let f: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| f.get(n - 3).copied();
        Some(Self {
            pid,
            state: field(3)?.chars().next()?,
            pgrp: field(5)?.parse().ok()?,
            utime: field(14)?.parse().ok()?,
            stime: field(15)?.parse().ok()?,
            starttime: field(22)?.parse().ok()?,
        })
    }

    fn alive(&self) -> bool {
        self.state != 'Z' && self.state != 'X'
    }
}

/// The stat of process `pid`, if it exists.
pub fn stat(proc: &Path, pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(proc.join(pid.to_string()).join("stat")).ok()?;
    Stat::parse(&text)
}

/// The living (not zombie) members of process group `pgid`.
pub fn group(proc: &Path, pgid: u32) -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir(proc) else { return Vec::new() };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| stat(proc, pid))
        .filter(|s| s.pgrp == pgid && s.alive())
        .collect()
}

/// Whether group `pgid` is still the one whose leader started at `starttime`: the leader
/// itself, or (the leader gone) members that all started after it. A pid reused by another
/// process (its start time differs) is never taken for it.
pub fn is_group_of(proc: &Path, pgid: u32, starttime: u64) -> bool {
    match stat(proc, pgid) {
        Some(leader) if leader.pgrp == pgid && leader.alive() => leader.starttime == starttime,
        _ => {
            let members = group(proc, pgid);
            !members.is_empty() && members.iter().all(|m| m.starttime >= starttime)
        }
    }
}

/// Resident memory of a process in bytes (`VmRSS` of its `status`; 0 when gone).
pub fn rss(proc: &Path, pid: u32) -> u64 {
    let Ok(text) = std::fs::read_to_string(proc.join(pid.to_string()).join("status")) else {
        return 0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Resident memory of a whole group, in bytes.
pub fn group_rss(proc: &Path, pgid: u32) -> u64 {
    group(proc, pgid).iter().map(|s| rss(proc, s.pid)).sum()
}

/// CPU time (user + system) of the living members of a group, in nanoseconds.
pub fn group_cpu_ns(proc: &Path, pgid: u32) -> u64 {
    let ticks: u64 = group(proc, pgid).iter().map(|s| s.utime + s.stime).sum();
    ticks.saturating_mul(1_000_000_000 / TICKS_PER_SEC)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `stat` line as the kernel writes it (52 fields).
    fn line(pid: u32, comm: &str, state: char, pgrp: u32, cpu: (u64, u64), start: u64) -> String {
        let mut f: Vec<String> = vec![pid.to_string(), format!("({comm})"), state.to_string()];
        f.extend(["1".to_owned(), pgrp.to_string()]); // ppid, pgrp
        f.extend((6..=13).map(|_| "0".to_owned()));
        f.extend([cpu.0.to_string(), cpu.1.to_string()]); // utime, stime
        f.extend((16..=21).map(|_| "0".to_owned()));
        f.push(start.to_string());
        f.extend((23..=52).map(|_| "0".to_owned()));
        f.join(" ") + "\n"
    }

    /// A process of a fake `/proc`: its stat fields and its resident memory in kB.
    fn p(
        pid: u32,
        state: char,
        pgrp: u32,
        cpu: (u64, u64),
        starttime: u64,
        rss_kb: u64,
    ) -> (Stat, u64) {
        (Stat { pid, state, pgrp, utime: cpu.0, stime: cpu.1, starttime }, rss_kb)
    }

    fn fake_proc(procs: &[(Stat, u64)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (s, rss_kb) in procs {
            let p = dir.path().join(s.pid.to_string());
            std::fs::create_dir(&p).expect("pid dir");
            let stat = line(s.pid, "app", s.state, s.pgrp, (s.utime, s.stime), s.starttime);
            std::fs::write(p.join("stat"), stat).expect("stat");
            let status = format!("Name:\tapp\nVmPeak:\t 9999 kB\nVmRSS:\t {rss_kb} kB\n");
            std::fs::write(p.join("status"), status).expect("status");
        }
        dir
    }

    #[test]
    fn a_stat_line_parses_past_a_name_with_spaces_and_parentheses() {
        let s = Stat::parse(&line(42, "my (odd) app", 'S', 40, (7, 3), 12345)).expect("parse");
        assert_eq!(s, Stat { pid: 42, state: 'S', pgrp: 40, utime: 7, stime: 3, starttime: 12345 });
        assert_eq!(Stat::parse("42 (cut"), None);
    }

    #[test]
    fn memory_and_cpu_are_summed_over_the_living_members_of_the_group() {
        let proc = fake_proc(&[
            p(100, 'S', 100, (10, 5), 500, 3000),
            p(101, 'R', 100, (200, 20), 510, 40_000),
            p(102, 'Z', 100, (1, 1), 520, 0),
            p(200, 'S', 200, (999, 999), 100, 90_000),
        ]);
        assert_eq!(group_rss(proc.path(), 100), 43_000 * 1024);
        assert_eq!(group_cpu_ns(proc.path(), 100), 235 * 10_000_000);
        let pids: Vec<u32> = group(proc.path(), 100).iter().map(|s| s.pid).collect();
        assert_eq!(pids.len(), 2);
        assert!(pids.contains(&100) && pids.contains(&101));
        assert_eq!(group_rss(proc.path(), 300), 0);
    }

    #[test]
    fn a_group_is_recognised_by_its_leaders_start_time() {
        let proc = fake_proc(&[
            p(100, 'S', 100, (0, 0), 500, 1),
            p(101, 'S', 100, (0, 0), 510, 1),
            // 300 led a group once; its leader is gone, one member is left.
            p(301, 'S', 300, (0, 0), 700, 1),
        ]);
        assert!(is_group_of(proc.path(), 100, 500));
        assert!(!is_group_of(proc.path(), 100, 499), "pid 100 now belongs to another process");
        assert!(is_group_of(proc.path(), 300, 690), "the leader is gone, its member is left");
        assert!(!is_group_of(proc.path(), 300, 800), "a member older than the recorded leader");
        assert!(!is_group_of(proc.path(), 400, 1), "no such group");
    }
}
