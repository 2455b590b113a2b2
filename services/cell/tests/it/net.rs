//! Real namespaces, veths, bridge and nftables: an app in a container namespace answers on its
//! host port (also from loopback), reaches the outside, but neither the cell's own ports nor
//! another container; detaching leaves nothing behind.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ::container::RealHost;
use cell::net::{NetConfig, Network};

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().expect("sh");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn tcp_ok(addr: &str) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// `nc`-free TCP probe from inside a namespace, with bash's /dev/tcp.
fn probe_from(netns: &str, ip: &str, port: u16) -> bool {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            netns,
            "timeout",
            "2",
            "bash",
            "-c",
            &format!("echo > /dev/tcp/{ip}/{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[tokio::test]
async fn containers_are_reachable_through_their_port_and_isolated() {
    let pid = std::process::id();
    let tag = format!("{}", pid % 10_000);
    let third = u8::try_from(pid % 200 + 20).expect("fits");
    let cfg = NetConfig {
        bridge: format!("pnt{tag}"),
        subnet: Ipv4Addr::new(10, 254, third, 0),
        table: format!("paas_nt{tag}"),
        port_range: (62000, 62099),
    };
    let net = Arc::new(Network::new(Arc::new(RealHost), cfg.clone()));
    let ours = [format!("paas-a{tag}"), format!("paas-b{tag}")];
    let _cleanup = Cleanup(cfg.clone(), Box::new(move |ns| ours.iter().any(|o| o == ns)));
    net.setup().await.expect("setup");
    net.setup().await.expect("setup is idempotent");
    let a = net.attach(&format!("a{tag}")).await.expect("attach a");
    let b = net.attach(&format!("b{tag}")).await.expect("attach b");
    let mut servers = Vec::new();
    for att in [&a, &b] {
        servers.push(
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &att.netns,
                    "python3",
                    "-m",
                    "http.server",
                    "8080",
                    "--bind",
                    &att.ip.to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("server"),
        );
    }
    // A listener of the cell itself, on all addresses.
    let host = tokio::net::TcpListener::bind("0.0.0.0:0").await.expect("bind");
    let host_port = host.local_addr().expect("addr").port();

    let via_host_port = format!("127.0.0.1:{}", a.host_port);
    testkit::eventually("app answers on its host port", Duration::from_secs(10), || {
        let addr = via_host_port.clone();
        async move { tcp_ok(&addr).await.then_some(()) }
    })
    .await
    .expect("reachable through the host port from loopback");
    assert!(
        !probe_from(&a.netns, &format!("{}", Ipv4Addr::new(10, 254, 200, 1)), host_port),
        "cell port reachable"
    );
    assert!(!probe_from(&a.netns, &b.ip.to_string(), 8080), "another container reachable");

    for mut s in servers {
        let _ = s.kill();
        let _ = s.wait();
    }
    net.detach(&a).await;
    net.detach(&b).await;
    assert!(!sh("ip netns list").contains(&format!("a{tag}")), "namespace left behind");
    assert!(
        !sh("nft list map ip paas_nt{tag} ports").contains("62000"),
        "port mapping left behind"
    );
    net.teardown().await;
    assert!(!sh("ip link show").contains(&cfg.bridge), "bridge left behind");
}

/// Removes whatever a failed test left: its own namespaces (those `ours` names — both tests
/// run in one process under `cargo test`, with the same tag), bridge and tables.
struct Cleanup(NetConfig, Box<dyn Fn(&str) -> bool>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for ns in sh("ip netns list").lines().filter_map(|l| l.split_whitespace().next()) {
            if (self.1)(ns) {
                sh(&format!("ip netns del {ns}"));
            }
        }
        sh(&format!("ip link del {} 2>/dev/null", self.0.bridge));
        sh(&format!(
            "nft delete table ip {0} 2>/dev/null; nft delete table bridge {0} 2>/dev/null",
            self.0.table
        ));
    }
}

#[tokio::test]
async fn many_attaches_at_once_each_get_their_own_answer() {
    let pid = std::process::id();
    let tag = format!("{}", pid % 10_000);
    let cfg = NetConfig {
        bridge: format!("pmt{tag}"),
        subnet: Ipv4Addr::new(10, 210, u8::try_from(pid % 200 + 20).expect("fits"), 0),
        table: format!("paas_mt{tag}"),
        port_range: (65000, 65099),
    };
    let net = Arc::new(Network::new(Arc::new(RealHost), cfg.clone()));
    let prefix = format!("paas-m{tag}x");
    let _cleanup = Cleanup(cfg.clone(), Box::new(move |ns| ns.starts_with(&prefix)));
    net.setup().await.expect("setup");
    // One name is taken already: only that attach fails, in whatever batch it lands.
    let taken = format!("m{tag}x5");
    sh(&format!("ip netns add paas-{taken}"));
    let ids: Vec<String> = (0..12).map(|i| format!("m{tag}x{i}")).collect();
    let results = futures::future::join_all(ids.iter().map(|id| net.attach(id))).await;
    let mut attached = Vec::new();
    for (id, r) in ids.iter().zip(results) {
        if *id == taken {
            assert!(r.is_err(), "{id} attached over an existing namespace");
        } else {
            attached.push(r.unwrap_or_else(|e| panic!("{id}: {e}")));
        }
    }
    let map = sh(&format!("nft list map ip {} ports", cfg.table));
    for a in &attached {
        let inside = sh(&format!("ip -n {} -4 addr show eth0", a.netns));
        assert!(inside.contains(&format!("{}/24", a.ip)), "{}: {inside}", a.netns);
        assert!(map.contains(&format!("{} : {} . 8080", a.host_port, a.ip)), "{map}");
    }
    assert_eq!(sh(&format!("ip -o link show master {}", cfg.bridge)).lines().count(), 11);
    futures::future::join_all(attached.iter().map(|a| net.detach(a))).await;
    assert_eq!(sh(&format!("ip -o link show master {}", cfg.bridge)), "");
    assert!(!sh("ip netns list").contains(&format!("m{tag}x")), "namespaces left");
    assert!(!sh(&format!("nft list map ip {} ports", cfg.table)).contains("8080"));
    net.teardown().await;
}
