//! The network ops of [`crate::host::RealHost`]: `ip` and `nft` run with their batch on stdin,
//! one process per step (a process costs more here than its work; see the cell's `net`).

use std::net::Ipv4Addr;
use std::process::Stdio;

use tokio::io::AsyncWriteExt as _;

use crate::host::{HostError, Op};

/// Host-side veth names start with this (the bridge's isolation rule matches on it).
pub const VETH_PREFIX: &str = "pv";

/// Runs `program args` to completion with `input` on its stdin.
pub(crate) async fn command(program: &str, args: &[&str], input: &str) -> Result<(), HostError> {
    let line = format!("{program} {}", args.join(" "));
    let fail = |message: String| HostError::new(&line, message);
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(if input.is_empty() { Stdio::null() } else { Stdio::piped() })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    let mut written = Ok(());
    if let Some(mut stdin) = child.stdin.take() {
        written = stdin.write_all(input.as_bytes()).await;
    }
    let out = child.wait_with_output().await.map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
    }
    // A program that succeeded without reading all its input did not do all of it.
    written.map_err(|e| fail(format!("writing its input: {e}")))
}

/// The `ip -batch` input of the namespace and its veth, seen from the host.
pub fn add_netns_batch(netns: &str, host_veth: &str, bridge: &str) -> String {
    format!(
        "netns add {netns}\nlink add {host_veth} type veth peer name eth0 netns {netns}\n\
         link set {host_veth} master {bridge} up\n"
    )
}

/// The `ip -n <netns> -batch` input of the address and route inside.
pub fn configure_netns_batch(address: Ipv4Addr, gateway: Ipv4Addr) -> String {
    format!(
        "addr add {address}/24 dev eth0\nlink set eth0 up\nlink set lo up\n\
         route add default via {gateway}\n"
    )
}

/// The `ip -force -batch` input removing a veth and a namespace.
pub fn del_netns_batch(netns: &str, host_veth: &str) -> String {
    format!("link del {host_veth}\nnetns del {netns}\n")
}

/// The nftables of a bridge's containers, made anew: a `ports` map DNAT'ing host ports (also
/// from loopback) to container addresses, masquerading out of the subnet, the host's own
/// addresses closed to containers, and containers closed to each other.
pub fn ruleset(table: &str, bridge: &str, subnet: Ipv4Addr) -> String {
    let (t, b, cidr) = (table, bridge, format!("{subnet}/24"));
    format!(
        "table ip {t} {{}}\ndelete table ip {t}\n\
         table ip {t} {{\n\
           map ports {{ type inet_service : ipv4_addr . inet_service; }}\n\
           chain prerouting {{ type nat hook prerouting priority dstnat; policy accept; fib daddr type local dnat ip to tcp dport map @ports; }}\n\
           chain output {{ type nat hook output priority -100; policy accept; fib daddr type local dnat ip to tcp dport map @ports; }}\n\
           chain postrouting {{ type nat hook postrouting priority srcnat; policy accept; \
             ip saddr 127.0.0.0/8 ip daddr {cidr} masquerade; ip saddr {cidr} ip daddr != {cidr} masquerade; }}\n\
           chain input {{ type filter hook input priority 0; policy accept; \
             iifname \"{b}\" ct state established,related accept; iifname \"{b}\" drop; }}\n\
         }}\n\
         table bridge {t} {{}}\ndelete table bridge {t}\n\
         table bridge {t} {{\n chain forward {{\n type filter hook forward priority 0; policy accept;\n \
           iifname \"{VETH_PREFIX}*\" oifname \"{VETH_PREFIX}*\" drop\n }}\n}}\n"
    )
}

/// Does one of the network ops.
pub(crate) async fn apply(op: Op) -> Result<(), HostError> {
    match op {
        Op::AddBridge { name, gateway } => {
            if command("ip", &["link", "show", &name], "").await.is_err() {
                command("ip", &["link", "add", &name, "type", "bridge"], "").await?;
                let gw = format!("{gateway}/24");
                command("ip", &["addr", "add", &gw, "dev", &name], "").await?;
            }
            command("ip", &["link", "set", &name, "up"], "").await
        }
        Op::EnableForwarding => {
            let keys = ["-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.route_localnet=1"];
            command("sysctl", &keys, "").await
        }
        Op::InstallTables { table, bridge, subnet } => {
            let file = std::env::temp_dir().join(format!("{table}.nft"));
            std::fs::write(&file, ruleset(&table, &bridge, subnet))
                .map_err(|e| HostError::new(&format!("write {}", file.display()), e))?;
            let path = file.display().to_string();
            let res = command("nft", &["-f", &path], "").await;
            let _ = std::fs::remove_file(&file);
            res
        }
        Op::RemoveTables { table } => {
            let ip = command("nft", &["delete", "table", "ip", &table], "").await;
            let bridge = command("nft", &["delete", "table", "bridge", &table], "").await;
            ip.and(bridge)
        }
        Op::DelLink { name } => command("ip", &["link", "del", &name], "").await,
        Op::AddNetns { netns, host_veth, bridge } => {
            command("ip", &["-batch", "-"], &add_netns_batch(&netns, &host_veth, &bridge)).await
        }
        Op::ConfigureNetns { netns, address, gateway } => {
            let batch = configure_netns_batch(address, gateway);
            command("ip", &["-n", &netns, "-batch", "-"], &batch).await
        }
        Op::DelNetns { netns, host_veth } => {
            // `-force`: on past a piece that is missing (a half-made attachment).
            let batch = del_netns_batch(&netns, &host_veth);
            command("ip", &["-force", "-batch", "-"], &batch).await
        }
        Op::MapPort { table, host_port, address, port } => {
            let element = format!("{{ {host_port} : {address} . {port} }}");
            command("nft", &["add", "element", "ip", &table, "ports", &element], "").await
        }
        Op::UnmapPort { table, host_port } => {
            let element = format!("{{ {host_port} }}");
            command("nft", &["delete", "element", "ip", &table, "ports", &element], "").await
        }
        other => Err(HostError::new(&other.to_string(), "not a network op")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_name_the_namespace_veth_and_addresses() {
        assert_eq!(
            add_netns_batch("paas-abc-123", "pvabc123", "pb0"),
            "netns add paas-abc-123\nlink add pvabc123 type veth peer name eth0 netns paas-abc-123\n\
             link set pvabc123 master pb0 up\n"
        );
        let inside =
            configure_netns_batch(Ipv4Addr::new(10, 254, 9, 2), Ipv4Addr::new(10, 254, 9, 1));
        assert!(inside.lines().any(|l| l == "addr add 10.254.9.2/24 dev eth0"), "{inside}");
        assert!(inside.lines().any(|l| l == "route add default via 10.254.9.1"), "{inside}");
        assert_eq!(del_netns_batch("n", "v"), "link del v\nnetns del n\n");
    }

    #[test]
    fn the_ruleset_isolates_the_subnet() {
        let r = ruleset("paas_t", "pb0", Ipv4Addr::new(10, 254, 9, 0));
        assert!(r.contains("ip saddr 10.254.9.0/24 ip daddr != 10.254.9.0/24 masquerade"), "{r}");
        assert!(r.contains("iifname \"pb0\" drop"), "{r}");
        assert!(r.contains("iifname \"pv*\" oifname \"pv*\" drop"), "{r}");
        assert!(r.starts_with("table ip paas_t {}\ndelete table ip paas_t\n"), "{r}");
    }
}
