//! What an app in a cell's container cannot do, tried for real: see the host's or another
//! container's processes and files, keep privileges, exceed its memory unnoticed, take the host
//! down with a fork bomb, reach the platform's internal endpoints; and what it leaves behind
//! after a hundred start/stop cycles: nothing.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wire::lrp::{HealthCheckType, LrpStart};

use crate::harness::{
    host_cmdlines, lrp, out_of_memory_is_told_apart, served_droplet, start_cell, Backend, Cell,
};

const APP: &str = "APP/PROC/WEB";
const SERVE: &str = "exec python3 -m http.server $PORT";

/// A process on the host that the test owns and kills when done.
struct HostProcess(std::process::Child);

impl HostProcess {
    fn spawn(program: &str, args: &[&str]) -> Self {
        let child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        Self(child)
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines of `lines` starting with `prefix`, without it.
fn tagged<'a>(lines: &'a [String], prefix: &str) -> Vec<&'a str> {
    lines.iter().filter_map(|l| l.strip_prefix(prefix)).collect()
}

#[tokio::test]
async fn an_app_sees_only_its_own_processes_and_runs_as_vcap_without_privileges() {
    let marker = HostProcess::spawn("sleep", &["1234567"]);
    // The child shows its command line only once it has exec'd.
    testkit::eventually("the marker runs on the host", Duration::from_secs(5), || async {
        host_cmdlines().iter().any(|c| c.contains("sleep 1234567")).then_some(())
    })
    .await
    .expect("the marker runs on the host");
    let c = start_cell(Backend::Runc, 1).await;
    let (url, sha, _droplet) = served_droplet().await;
    let inspect = r#"echo "ID $(id -u) $(id -g) $(id -un)"
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status | sed 's/^/STATUS /'
for p in /proc/[0-9]*; do echo "PROC ${p#/proc/} $(tr '\0' ' ' < $p/cmdline 2>/dev/null)"; done
touch /etc/owned 2>/dev/null && echo "ESCALATED wrote /etc"
echo "HOSTS $(getent hosts "$(hostname)")"
echo INSPECTED
"#;
    let app = lrp(&url, &sha, &format!("{inspect}{SERVE}"), 30);
    c.send_work(&app).await;
    let started = c.report("start", &app, Duration::from_secs(30)).await;
    let lines = c.wait_log(&app, APP, "INSPECTED", Duration::from_secs(10)).await;

    assert!(lines.contains(&"ID 2000 2000 vcap".to_owned()), "runs as vcap: {lines:#?}");
    let status = tagged(&lines, "STATUS ");
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        let line = status.iter().find(|l| l.starts_with(cap)).expect("capability line");
        assert!(line.ends_with("0000000000000000"), "no capabilities: {line}");
    }
    assert!(
        status.iter().any(|l| l.starts_with("NoNewPrivs:") && l.ends_with('1')),
        "no_new_privileges: {status:?}"
    );
    assert!(tagged(&lines, "ESCALATED").is_empty(), "vcap wrote to /etc");

    let procs = tagged(&lines, "PROC ");
    assert!(
        procs.iter().any(|p| p.starts_with("1 ") && p.contains(stack::LAUNCHER_PATH)),
        "PID 1 is the container's init: {procs:#?}"
    );
    assert!(procs.len() <= 6, "only the container's own processes: {procs:#?}");
    assert!(!procs.iter().any(|p| p.contains("1234567")), "the host's marker is visible");
    assert!(!procs.iter().any(|p| p.contains("cargo") || p.contains("runc")), "{procs:#?}");

    // Its own name resolves from its /etc/hosts (no DNS round trip at start).
    let hosts = tagged(&lines, "HOSTS ");
    let name = cell::backend::runc::container_id(&app.instance_guid);
    assert_eq!(
        hosts.first().map(|h| h.split_whitespace().collect::<Vec<_>>()),
        Some(vec![started.instance_address.as_str(), name.as_str()]),
        "{lines:#?}"
    );

    let port = started.ports[0].host_port;
    let body = reqwest::get(format!("http://127.0.0.1:{port}/index.html"))
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "hello from the droplet\n");
    drop(marker);
    c.shut_down().await;
}

#[tokio::test]
async fn an_app_cannot_read_another_containers_files_or_see_its_processes() {
    let c = start_cell(Backend::Runc, 2).await;
    let (url, sha, _droplet) = served_droplet().await;
    let secret = uuid::Uuid::new_v4().to_string();
    let mut a = lrp(
        &url,
        &sha,
        &format!(
            "echo \"$SECRET\" > /home/vcap/tmp/secret-of-a.txt; \
             echo \"$SECRET\" > /tmp/secret-of-a.txt; sleep 7654321 & {SERVE}"
        ),
        30,
    );
    a.desired.env.insert("SECRET".into(), secret.clone());
    c.send_work(&a).await;
    c.report("start", &a, Duration::from_secs(30)).await;
    let a_upper = c.instance_dir(&a).join("upper");
    let on_host = std::fs::read_to_string(a_upper.join("home/vcap/tmp/secret-of-a.txt"))
        .expect("A's file, in its writable layer on the host");
    assert_eq!(on_host.trim(), secret);
    assert!(host_cmdlines().iter().any(|c| c.contains("sleep 7654321")), "A's marker runs");

    // B tries every path it can think of: its own view of the same paths, A's layer and root by
    // their host paths, other processes' roots, and a search of its whole file system.
    let probe = r#"for f in /home/vcap/tmp/secret-of-a.txt /tmp/secret-of-a.txt \
  "$A_UPPER/home/vcap/tmp/secret-of-a.txt" "$A_ROOTFS/tmp/secret-of-a.txt" \
  /proc/[0-9]*/root/tmp/secret-of-a.txt; do
  echo "READ $f: $(cat "$f" 2>&1)"
done
find / \( -path /proc -o -path /sys \) -prune -o -name '*secret-of-a*' -print 2>/dev/null | sed 's/^/FOUND /'
for p in /proc/[0-9]*; do echo "PROC $(tr '\0' ' ' < $p/cmdline 2>/dev/null)"; done
echo PROBED
"#;
    let mut b = lrp(&url, &sha, &format!("{probe}{SERVE}"), 30);
    b.desired.env.insert("A_UPPER".into(), a_upper.display().to_string());
    b.desired
        .env
        .insert("A_ROOTFS".into(), c.instance_dir(&a).join("rootfs").display().to_string());
    c.send_work(&b).await;
    c.report("start", &b, Duration::from_secs(30)).await;
    let lines = c.wait_log(&b, APP, "PROBED", Duration::from_secs(30)).await;
    assert!(tagged(&lines, "READ ").len() >= 4, "B tried the paths: {lines:#?}");
    assert!(!lines.iter().any(|l| l.contains(&secret)), "B read A's file: {lines:#?}");
    assert!(tagged(&lines, "FOUND ").is_empty(), "B found A's files: {lines:#?}");
    let procs = tagged(&lines, "PROC ");
    assert!(procs.iter().any(|p| p.contains(stack::LAUNCHER_PATH)), "B lists its own: {procs:#?}");
    assert!(!procs.iter().any(|p| p.contains("7654321")), "B sees A's processes: {procs:#?}");
    c.shut_down().await;
}

#[tokio::test]
async fn exceeding_its_memory_is_reported_as_out_of_memory() {
    let c = start_cell(Backend::Runc, 3).await;
    let (url, sha, _droplet) = served_droplet().await;
    let with = |command: &str| {
        let mut l = lrp(&url, &sha, command, 30);
        l.desired.memory_mb = 64;
        l.desired.health_check.kind = HealthCheckType::Process;
        l
    };
    let hog = with("exec python3 -c 'import time; b = bytearray(200 << 20); time.sleep(600)'");
    // An ordinary SIGKILL has the same exit status and must not be called out of memory.
    let killed = with("exec python3 -c 'import os, signal; os.kill(os.getpid(), signal.SIGKILL)'");
    c.send_work(&hog).await;
    c.send_work(&killed).await;

    out_of_memory_is_told_apart(&c, &hog, &killed).await;
    c.shut_down().await;
}

/// The processes on the host whose cgroup is container `id`'s.
fn processes_of(id: &str) -> Vec<String> {
    let needle = format!("/paas/{id}");
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let cgroups = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        if cgroups.lines().any(|l| l.ends_with(&needle) || l.contains(&format!("{needle}/"))) {
            pids.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    pids
}

/// The `max` count of a pids cgroup's events: forks refused at its limit.
fn pids_refused(id: &str) -> Option<u64> {
    let events =
        std::fs::read_to_string(format!("/sys/fs/cgroup/pids/paas/{id}/pids.events")).ok()?;
    events.lines().find_map(|l| l.strip_prefix("max ")?.trim().parse().ok())
}

#[tokio::test]
async fn a_fork_bomb_stays_inside_its_container() {
    let c = start_cell(Backend::Runc, 4).await;
    let (url, sha, _droplet) = served_droplet().await;
    let neighbour = lrp(&url, &sha, SERVE, 30);
    c.send_work(&neighbour).await;
    let port = c.report("start", &neighbour, Duration::from_secs(30)).await.ports[0].host_port;

    let mut bomb = lrp(&url, &sha, "bomb() { bomb | bomb & }; bomb; exec sleep 3600", 30);
    bomb.desired.max_pids = 64;
    bomb.desired.health_check.kind = HealthCheckType::Process;
    c.send_work(&bomb).await;
    c.report("start", &bomb, Duration::from_secs(30)).await;
    let id = cell::backend::runc::container_id(&bomb.instance_guid);
    testkit::eventually("the bomb hits its PIDs limit", Duration::from_secs(30), || async {
        pids_refused(&id).filter(|n| *n > 0)
    })
    .await
    .expect("the PIDs limit refused forks");
    let max = std::fs::read_to_string(format!("/sys/fs/cgroup/pids/paas/{id}/pids.max"))
        .expect("pids.max");
    assert_eq!(max.trim(), "64");

    // Meanwhile the host forks and the neighbour answers, again and again.
    let client =
        reqwest::Client::builder().timeout(Duration::from_secs(3)).build().expect("client");
    let until = Instant::now() + Duration::from_secs(3);
    let mut rounds = 0;
    while Instant::now() < until {
        let forked = Instant::now();
        let status = tokio::process::Command::new("true").status().await.expect("host fork");
        assert!(status.success());
        assert!(forked.elapsed() < Duration::from_secs(1), "host fork took {:?}", forked.elapsed());
        let res = client
            .get(format!("http://127.0.0.1:{port}/index.html"))
            .send()
            .await
            .expect("the neighbour answers during the bomb");
        assert_eq!(res.status(), 200);
        let refused = pids_refused(&id).expect("the bomb's cgroup");
        assert!(refused > 0);
        rounds += 1;
    }
    assert!(rounds >= 3, "only {rounds} rounds in 3 s");
    assert!(!processes_of(&id).is_empty(), "the bomb is still running");

    c.stop(&bomb).await;
    c.report("remove", &bomb, Duration::from_secs(30)).await;
    assert_eq!(processes_of(&id), Vec::<String>::new(), "processes of the bomb left");
    let runc = Command::new("runc").args(["list", "-q"]).output().expect("runc list");
    assert!(!String::from_utf8_lossy(&runc.stdout).contains(&id), "container left");
    assert!(!PathBuf::from(format!("/sys/fs/cgroup/pids/paas/{id}")).exists(), "cgroup left");
    c.shut_down().await;
}

/// Every IPv4 address of the host with its interface (loopback, external, the cells' bridges).
fn host_addresses() -> Vec<(String, String)> {
    let out = Command::new("ip").args(["-4", "-o", "addr", "show"]).output().expect("ip addr");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "inet")?;
            let addr = words.get(at + 1)?.split('/').next()?;
            Some((words.get(1)?.to_string(), addr.to_owned()))
        })
        .collect()
}

/// A listener that counts the connections it accepts.
async fn counting_listener(addr: &str) -> (u16, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind(addr).await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let n = Arc::new(AtomicUsize::new(0));
    let seen = n.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = l.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    (port, n)
}

#[tokio::test]
async fn the_platforms_internal_endpoints_are_unreachable_from_a_container() {
    let c = start_cell(Backend::Runc, 5).await;
    let (url, sha, _droplet) = served_droplet().await;
    // Stand-ins for the api's internal port: on every address, and on loopback only.
    let (any_port, any_hits) = counting_listener("0.0.0.0:0").await;
    let (lo_port, lo_hits) = counting_listener("127.0.0.1:0").await;
    let interfaces = host_addresses();
    let addresses: Vec<String> = interfaces.iter().map(|(_, a)| a.clone()).collect();
    assert!(addresses.iter().any(|a| a == "127.0.0.1"), "{addresses:?}");
    let gateway = {
        let [a, b, x, _] = c.cfg.subnet.octets();
        format!("{a}.{b}.{x}.1")
    };
    assert!(addresses.contains(&gateway), "the bridge address is the host's: {addresses:?}");
    let mut targets: Vec<String> = addresses.iter().map(|a| format!("{a}:{any_port}")).collect();
    targets.push(format!("127.0.0.1:{lo_port}"));
    targets.push(format!("{gateway}:{lo_port}"));
    targets.push(format!("{}:{}", c.cfg.addr.ip(), c.url.rsplit(':').next().expect("cell port")));

    // The app first proves it can connect at all (to itself), then tries every target.
    let probe = r#"python3 -m http.server $PORT & server=$!
until echo > /dev/tcp/127.0.0.1/$PORT; do sleep 0.05; done 2>/dev/null
echo "PROBE self open"
probes=""
for t in $TARGETS; do
  ( if timeout 2 bash -c "echo > /dev/tcp/${t%:*}/${t#*:}" 2>/dev/null; then r=open; else r=closed; fi
    echo "PROBE $t $r" ) & probes="$probes $!"
done
wait $probes
echo PROBED
wait $server
"#;
    let mut app = lrp(&url, &sha, probe, 60);
    app.desired.env.insert("TARGETS".into(), targets.join(" "));
    c.send_work(&app).await;
    let started = c.report("start", &app, Duration::from_secs(30)).await;
    let lines = c.wait_log(&app, APP, "PROBED", Duration::from_secs(60)).await;
    let probes = tagged(&lines, "PROBE ");
    assert!(probes.contains(&"self open"), "the probe works: {probes:#?}");
    for t in &targets {
        assert!(probes.contains(&format!("{t} closed").as_str()), "{t} reachable: {probes:#?}");
    }
    assert_eq!(any_hits.load(Ordering::SeqCst), 0, "the 0.0.0.0 listener was reached");
    assert_eq!(lo_hits.load(Ordering::SeqCst), 0, "the loopback listener was reached");

    // Its own port stays reachable through its host port, on loopback and the host's own
    // addresses (not the bridges of cells, which come and go with other tests).
    let port = started.ports[0].host_port;
    let own = interfaces.iter().filter(|(name, _)| !name.starts_with('p')).map(|(_, a)| a);
    for a in own {
        let res = reqwest::get(format!("http://{a}:{port}/index.html")).await.expect("get");
        assert_eq!(res.status(), 200, "through {a}:{port}");
    }
    c.shut_down().await;
}

/// What of `ids` (container ids) is still on the host, and what the cell's own bridge, table
/// and directories still hold.
fn leftovers(c: &Cell, ids: &[String]) -> Vec<String> {
    let mut left = Vec::new();
    let runc = Command::new("runc").args(["list", "-q"]).output().expect("runc list");
    let runc = String::from_utf8_lossy(&runc.stdout).into_owned();
    let netns = Command::new("ip").args(["netns", "list"]).output().expect("netns");
    let netns = String::from_utf8_lossy(&netns.stdout).into_owned();
    let hierarchies: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .expect("cgroups")
        .flatten()
        .map(|e| e.path().join("paas"))
        .collect();
    for id in ids {
        if runc.lines().any(|l| l == id) {
            left.push(format!("runc container {id}"));
        }
        if netns.contains(id.as_str()) {
            left.push(format!("network namespace {id}"));
        }
        for h in &hierarchies {
            if h.join(id).exists() {
                left.push(format!("cgroup {}", h.join(id).display()));
            }
        }
    }
    let data = c.cfg.data_dir.display().to_string();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    left.extend(mountinfo.lines().filter(|l| l.contains(&data)).map(|l| format!("mount {l}")));
    let veths = Command::new("ip").args(["-o", "link", "show", "master", &c.cfg.bridge]).output();
    let veths = String::from_utf8_lossy(&veths.expect("ip link").stdout).into_owned();
    left.extend(veths.lines().map(|l| format!("veth {l}")));
    let map = Command::new("nft")
        .args(["-j", "list", "map", "ip", &c.cfg.nft_table, "ports"])
        .output()
        .expect("nft");
    let map: serde_json::Value = serde_json::from_slice(&map.stdout).expect("nft json");
    let elements = map["nftables"]
        .as_array()
        .and_then(|a| a.iter().find_map(|x| x["map"]["elem"].as_array().cloned()))
        .unwrap_or_default();
    left.extend(elements.iter().map(|e| format!("port mapping {e}")));
    let instances = c.cfg.data_dir.join("instances");
    if let Ok(dir) = std::fs::read_dir(&instances) {
        left.extend(dir.flatten().map(|e| format!("directory {}", e.path().display())));
    }
    left
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("fds").count()
}

#[tokio::test]
async fn a_hundred_start_stop_cycles_leave_nothing_behind() {
    let c = start_cell(Backend::Runc, 6).await;
    let (url, sha, _droplet) = served_droplet().await;
    let mut ids = Vec::new();
    let mut fds_after_warm_up = 0;
    let began = Instant::now();
    for i in 0..100 {
        let l: LrpStart = lrp(&url, &sha, SERVE, 30);
        ids.push(cell::backend::runc::container_id(&l.instance_guid));
        c.send_work(&l).await;
        let r = c.report("start", &l, Duration::from_secs(30)).await;
        assert_eq!(r.ports.len(), 1);
        c.stop(&l).await;
        c.report("remove", &l, Duration::from_secs(30)).await;
        if i == 9 {
            fds_after_warm_up = open_fds();
        }
    }
    let cycles = began.elapsed();
    let left = testkit::eventually("nothing left", Duration::from_secs(5), || async {
        let left = leftovers(&c, &ids);
        left.is_empty().then_some(())
    })
    .await;
    assert!(left.is_ok(), "left behind: {:#?}", leftovers(&c, &ids));
    // The count is the whole test process's, which tests running beside this one change by
    // a few dozen; a descriptor leaked per cycle would add 90.
    let fds = open_fds();
    assert!(
        fds <= fds_after_warm_up + 45,
        "file descriptors grew from {fds_after_warm_up} to {fds} over 90 cycles"
    );
    eprintln!("100 start/stop cycles in {cycles:?}");
    c.shut_down().await;
}
