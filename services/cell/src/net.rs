//! Container networking: one network namespace per container with a veth on the cell's
//! bridge and an address from the cell's subnet; a host port DNAT'ed (nftables, also from
//! loopback) to the container's port 8080; containers may reach the outside world but neither
//! the cell's own addresses nor each other.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use crate::os::{args, Os, OsError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfig {
    pub bridge: String,
    /// Network address of a /24 (e.g. 10.254.0.0); .1 is the bridge.
    pub subnet: Ipv4Addr,
    /// nftables table names derive from this.
    pub table: String,
    pub port_range: (u16, u16),
}

/// What one container got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub netns: String,
    pub ip: Ipv4Addr,
    pub host_port: u16,
    host_veth: String,
}

impl Attachment {
    pub fn netns_path(&self) -> String {
        format!("/var/run/netns/{}", self.netns)
    }
}

pub struct Network {
    os: Arc<dyn Os>,
    cfg: NetConfig,
    free: Mutex<(BTreeSet<u8>, BTreeSet<u16>)>,
}

/// Host-side veth names start with this (the bridge filter matches on it).
pub const VETH_PREFIX: &str = "pv";

/// The container port apps listen on.
pub const APP_PORT: u16 = 8080;

/// The network namespace and host veth of container `id`.
fn names(id: &str) -> (String, String) {
    let short: String = id.chars().filter(char::is_ascii_alphanumeric).take(10).collect();
    (format!("paas-{id}"), format!("{VETH_PREFIX}{short}"))
}

impl Network {
    pub fn new(os: Arc<dyn Os>, cfg: NetConfig) -> Self {
        let hosts: BTreeSet<u8> = (2..=254).collect();
        let ports: BTreeSet<u16> = (cfg.port_range.0..=cfg.port_range.1).collect();
        Self { os, cfg, free: Mutex::new((hosts, ports)) }
    }

    fn ip(&self, host: u8) -> Ipv4Addr {
        let [a, b, c, _] = self.cfg.subnet.octets();
        Ipv4Addr::new(a, b, c, host)
    }

    fn cidr(&self) -> String {
        format!("{}/24", self.cfg.subnet)
    }

    async fn sh(&self, program: &str, list: &[&str]) -> Result<String, OsError> {
        self.os.run(program, &args(list)).await
    }

    /// Bridge, forwarding, NAT table and isolation rules; idempotent (start of the cell).
    pub async fn setup(&self) -> Result<(), OsError> {
        let (b, t) = (&self.cfg.bridge, &self.cfg.table);
        let gw = format!("{}/24", self.ip(1));
        if self.sh("ip", &["link", "show", b]).await.is_err() {
            self.sh("ip", &["link", "add", b, "type", "bridge"]).await?;
            self.sh("ip", &["addr", "add", &gw, "dev", b]).await?;
        }
        self.sh("ip", &["link", "set", b, "up"]).await?;
        self.sh("sysctl", &["-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.route_localnet=1"])
            .await?;
        let cidr = self.cidr();
        let rules = format!(
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
        );
        let file = std::env::temp_dir().join(format!("{t}.nft"));
        std::fs::write(&file, rules).map_err(|e| OsError {
            program: "write".into(),
            args: file.display().to_string(),
            message: e.to_string(),
        })?;
        let path = file.display().to_string();
        let res = self.sh("nft", &["-f", &path]).await;
        let _ = std::fs::remove_file(&file);
        res.map(|_| ())
    }

    /// A namespace, veth, address and host port for container `id`.
    pub async fn attach(&self, id: &str) -> Result<Attachment, OsError> {
        let (host, port) = {
            let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
            let host = free.0.pop_first();
            let port = free.1.pop_first();
            match (host, port) {
                (Some(h), Some(p)) => (h, p),
                (h, p) => {
                    if let Some(h) = h {
                        free.0.insert(h);
                    }
                    if let Some(p) = p {
                        free.1.insert(p);
                    }
                    return Err(OsError {
                        program: "ipam".into(),
                        args: id.into(),
                        message: "no free address or port".into(),
                    });
                }
            }
        };
        let (netns, host_veth) = names(id);
        let a = Attachment { netns, ip: self.ip(host), host_port: port, host_veth };
        if let Err(e) = self.plumb(&a).await {
            self.detach(&a).await;
            return Err(e);
        }
        Ok(a)
    }

    /// Three processes per container (a process costs more here than its work): the namespace
    /// and veth from the host, the addresses and route inside, the port mapping.
    async fn plumb(&self, a: &Attachment) -> Result<(), OsError> {
        let (ns, hv, b) = (a.netns.as_str(), a.host_veth.as_str(), self.cfg.bridge.as_str());
        let host = format!(
            "netns add {ns}\nlink add {hv} type veth peer name eth0 netns {ns}\n\
             link set {hv} master {b} up\n"
        );
        self.os.run_input("ip", &args(&["-batch", "-"]), &host).await?;
        let inside = format!(
            "addr add {}/24 dev eth0\nlink set eth0 up\nlink set lo up\n\
             route add default via {}\n",
            a.ip,
            self.ip(1)
        );
        self.os.run_input("ip", &args(&["-n", ns, "-batch", "-"]), &inside).await?;
        let element = format!("{{ {} : {} . {APP_PORT} }}", a.host_port, a.ip);
        self.sh("nft", &["add", "element", "ip", &self.cfg.table, "ports", &element]).await?;
        Ok(())
    }

    /// Release everything `attach` made; safe to call on a half-made attachment.
    pub async fn detach(&self, a: &Attachment) {
        let element = format!("{{ {} }}", a.host_port);
        let _ =
            self.sh("nft", &["delete", "element", "ip", &self.cfg.table, "ports", &element]).await;
        // `-force`: on past a piece that is missing (a half-made attachment).
        let gone = format!("link del {}\nnetns del {}\n", a.host_veth, a.netns);
        let _ = self.os.run_input("ip", &args(&["-force", "-batch", "-"]), &gone).await;
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = a.ip.octets().last() {
            free.0.insert(*h);
        }
        free.1.insert(a.host_port);
    }

    /// What a crashed run of this cell left of container `id`'s attachment (known only by the
    /// id): its veth and network namespace. Port mappings go with the tables [`setup`] remakes.
    pub async fn sweep(&self, id: &str) {
        let (netns, host_veth) = names(id);
        let gone = format!("link del {host_veth}\nnetns del {netns}\n");
        let _ = self.os.run_input("ip", &args(&["-force", "-batch", "-"]), &gone).await;
    }

    /// Remove the bridge and tables (tests, and a cell that goes away for good).
    pub async fn teardown(&self) {
        let t = &self.cfg.table;
        let _ = self.sh("nft", &["delete", "table", "ip", t]).await;
        let _ = self.sh("nft", &["delete", "table", "bridge", t]).await;
        let _ = self.sh("ip", &["link", "del", &self.cfg.bridge]).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::RecordingOs;

    fn net(os: Arc<RecordingOs>) -> Network {
        let cfg = NetConfig {
            bridge: "pb0".into(),
            subnet: Ipv4Addr::new(10, 254, 9, 0),
            table: "paas_t".into(),
            port_range: (61000, 61001),
        };
        Network::new(os, cfg)
    }

    #[tokio::test]
    async fn a_sweep_removes_what_a_crashed_run_left_by_id() {
        let os = Arc::new(RecordingOs::default());
        net(os.clone()).sweep("abc-123").await;
        let calls = os.calls();
        assert!(calls.iter().any(|c| c == "ip -force -batch -: link del pvabc123"), "{calls:?}");
        assert!(
            calls.iter().any(|c| c == "ip -force -batch -: netns del paas-abc-123"),
            "{calls:?}"
        );
    }

    #[tokio::test]
    async fn attach_allocates_and_detach_releases() {
        let os = Arc::new(RecordingOs::default());
        let n = net(os.clone());
        let a = n.attach("abc-123").await.expect("attach");
        assert_eq!((a.ip, a.host_port), (Ipv4Addr::new(10, 254, 9, 2), 61000));
        let calls = os.calls();
        for want in [
            "ip -batch -: netns add paas-abc-123",
            "ip -batch -: link add pvabc123 type veth peer name eth0 netns paas-abc-123",
            "ip -batch -: link set pvabc123 master pb0 up",
            "ip -n paas-abc-123 -batch -: addr add 10.254.9.2/24 dev eth0",
            "ip -n paas-abc-123 -batch -: route add default via 10.254.9.1",
            "nft add element ip paas_t ports { 61000 : 10.254.9.2 . 8080 }",
        ] {
            assert!(calls.iter().any(|c| c == want), "{want}: {calls:#?}");
        }
        let b = n.attach("def").await.expect("second");
        assert_eq!(b.host_port, 61001);
        assert!(n.attach("ghi").await.is_err(), "ports exhausted");
        n.detach(&a).await;
        assert!(os.calls().iter().any(|c| c == "ip -force -batch -: netns del paas-abc-123"));
        assert_eq!(n.attach("jkl").await.expect("reused").host_port, 61000);
    }

    #[tokio::test]
    async fn a_failed_attach_leaves_nothing_behind() {
        let os = Arc::new(RecordingOs::default());
        os.fail_matching.lock().expect("lock").push("route add default".into());
        let n = net(os.clone());
        assert!(n.attach("x").await.is_err());
        let calls = os.calls();
        assert!(calls.iter().any(|c| c == "ip -force -batch -: netns del paas-x"), "{calls:?}");
        assert!(!calls.iter().any(|c| c.starts_with("nft add")), "{calls:?}");
        os.fail_matching.lock().expect("lock").clear();
        assert_eq!(n.attach("y").await.expect("address back").ip, Ipv4Addr::new(10, 254, 9, 2));
    }
}
