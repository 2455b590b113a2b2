//! Container networking: one network namespace per container with a veth on the cell's
//! bridge and an address from the cell's subnet; a host port DNAT'ed (nftables, also from
//! loopback) to the container's port 8080; containers may reach the outside world but neither
//! the cell's own addresses nor each other.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use ::container::{Host, HostError, Op};

pub use ::container::net::VETH_PREFIX;

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
    /// The container port the host port maps to (the app's `PORT`).
    pub app_port: u16,
    host_veth: String,
}

impl Attachment {
    pub fn netns_path(&self) -> String {
        format!("/var/run/netns/{}", self.netns)
    }
}

pub struct Network {
    host: Arc<dyn Host>,
    cfg: NetConfig,
    free: Mutex<(BTreeSet<u8>, BTreeSet<u16>)>,
}

/// The container port apps listen on.
pub const APP_PORT: u16 = 8080;

/// The network namespace and host veth of container `id`.
fn names(id: &str) -> (String, String) {
    let short: String = id.chars().filter(char::is_ascii_alphanumeric).take(10).collect();
    (format!("paas-{id}"), format!("{VETH_PREFIX}{short}"))
}

impl Network {
    pub fn new(host: Arc<dyn Host>, cfg: NetConfig) -> Self {
        let hosts: BTreeSet<u8> = (2..=254).collect();
        let ports: BTreeSet<u16> = (cfg.port_range.0..=cfg.port_range.1).collect();
        Self { host, cfg, free: Mutex::new((hosts, ports)) }
    }

    fn ip(&self, host: u8) -> Ipv4Addr {
        let [a, b, c, _] = self.cfg.subnet.octets();
        Ipv4Addr::new(a, b, c, host)
    }

    /// Bridge, forwarding, NAT table and isolation rules; idempotent (start of the cell).
    pub async fn setup(&self) -> Result<(), HostError> {
        let (bridge, table) = (self.cfg.bridge.clone(), self.cfg.table.clone());
        self.host.apply(Op::AddBridge { name: bridge.clone(), gateway: self.ip(1) }).await?;
        self.host.apply(Op::EnableForwarding).await?;
        self.host.apply(Op::InstallTables { table, bridge, subnet: self.cfg.subnet }).await
    }

    /// A namespace, veth, address and host port for container `id`, mapped to port 8080.
    pub async fn attach(&self, id: &str) -> Result<Attachment, HostError> {
        self.attach_on(id, APP_PORT).await
    }

    /// [`Network::attach`] with the host port mapped to the container's `app_port`.
    pub async fn attach_on(&self, id: &str, app_port: u16) -> Result<Attachment, HostError> {
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
                    return Err(HostError::new(&format!("ipam {id}"), "no free address or port"));
                }
            }
        };
        let (netns, host_veth) = names(id);
        let a = Attachment { netns, ip: self.ip(host), host_port: port, app_port, host_veth };
        if let Err(e) = self.plumb(&a).await {
            self.detach(&a).await;
            return Err(e);
        }
        Ok(a)
    }

    /// Three processes per container (a process costs more here than its work): the namespace
    /// and veth from the host, the addresses and route inside, the port mapping.
    async fn plumb(&self, a: &Attachment) -> Result<(), HostError> {
        let netns = a.netns.clone();
        let bridge = self.cfg.bridge.clone();
        let host_veth = a.host_veth.clone();
        self.host.apply(Op::AddNetns { netns: netns.clone(), host_veth, bridge }).await?;
        self.host.apply(Op::ConfigureNetns { netns, address: a.ip, gateway: self.ip(1) }).await?;
        let table = self.cfg.table.clone();
        let map = Op::MapPort { table, host_port: a.host_port, address: a.ip, port: a.app_port };
        self.host.apply(map).await
    }

    /// Release everything `attach` made; safe to call on a half-made attachment.
    pub async fn detach(&self, a: &Attachment) {
        let table = self.cfg.table.clone();
        let _ = self.host.apply(Op::UnmapPort { table, host_port: a.host_port }).await;
        let gone = Op::DelNetns { netns: a.netns.clone(), host_veth: a.host_veth.clone() };
        let _ = self.host.apply(gone).await;
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
        let _ = self.host.apply(Op::DelNetns { netns, host_veth }).await;
    }

    /// Remove the bridge and tables (tests, and a cell that goes away for good).
    pub async fn teardown(&self) {
        let _ = self.host.apply(Op::RemoveTables { table: self.cfg.table.clone() }).await;
        let _ = self.host.apply(Op::DelLink { name: self.cfg.bridge.clone() }).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::container::RecordingHost;

    fn net(host: Arc<RecordingHost>) -> Network {
        let cfg = NetConfig {
            bridge: "pb0".into(),
            subnet: Ipv4Addr::new(10, 254, 9, 0),
            table: "paas_t".into(),
            port_range: (61000, 61001),
        };
        Network::new(host, cfg)
    }

    fn del(netns: &str, host_veth: &str) -> Op {
        Op::DelNetns { netns: netns.into(), host_veth: host_veth.into() }
    }

    #[tokio::test]
    async fn a_sweep_removes_what_a_crashed_run_left_by_id() {
        let host = Arc::new(RecordingHost::default());
        net(host.clone()).sweep("abc-123").await;
        assert_eq!(host.ops(), [del("paas-abc-123", "pvabc123")]);
    }

    #[tokio::test]
    async fn setup_makes_the_bridge_forwarding_and_tables() {
        let host = Arc::new(RecordingHost::default());
        net(host.clone()).setup().await.expect("setup");
        assert_eq!(
            host.ops(),
            [
                Op::AddBridge { name: "pb0".into(), gateway: Ipv4Addr::new(10, 254, 9, 1) },
                Op::EnableForwarding,
                Op::InstallTables {
                    table: "paas_t".into(),
                    bridge: "pb0".into(),
                    subnet: Ipv4Addr::new(10, 254, 9, 0)
                },
            ]
        );
    }

    #[tokio::test]
    async fn attach_allocates_and_detach_releases() {
        let host = Arc::new(RecordingHost::default());
        let n = net(host.clone());
        let a = n.attach("abc-123").await.expect("attach");
        let ip = Ipv4Addr::new(10, 254, 9, 2);
        assert_eq!((a.ip, a.host_port), (ip, 61000));
        assert_eq!(
            host.ops(),
            [
                Op::AddNetns {
                    netns: "paas-abc-123".into(),
                    host_veth: "pvabc123".into(),
                    bridge: "pb0".into()
                },
                Op::ConfigureNetns {
                    netns: "paas-abc-123".into(),
                    address: ip,
                    gateway: Ipv4Addr::new(10, 254, 9, 1)
                },
                Op::MapPort { table: "paas_t".into(), host_port: 61000, address: ip, port: 8080 },
            ]
        );
        let b = n.attach("def").await.expect("second");
        assert_eq!(b.host_port, 61001);
        assert!(n.attach("ghi").await.is_err(), "ports exhausted");
        n.detach(&a).await;
        let ops = host.ops();
        assert!(ops.contains(&Op::UnmapPort { table: "paas_t".into(), host_port: 61000 }));
        assert!(ops.contains(&del("paas-abc-123", "pvabc123")), "{ops:?}");
        assert_eq!(n.attach("jkl").await.expect("reused").host_port, 61000);
    }

    #[tokio::test]
    async fn a_failed_attach_leaves_nothing_behind() {
        let host = Arc::new(RecordingHost::default());
        host.fail_when(|op| matches!(op, Op::ConfigureNetns { .. }));
        let n = net(host.clone());
        assert!(n.attach("x").await.is_err());
        let ops = host.ops();
        assert!(ops.contains(&del("paas-x", "pvx")), "{ops:?}");
        assert!(!ops.iter().any(|op| matches!(op, Op::MapPort { .. })), "{ops:?}");
        host.clear_faults();
        assert_eq!(n.attach("y").await.expect("address back").ip, Ipv4Addr::new(10, 254, 9, 2));
    }
}
