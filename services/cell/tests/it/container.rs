//! A real droplet in a real runc container on the real stack: downloaded and verified once,
//! answering through its host port, seeing only its own processes, and leaving nothing behind.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ::container::RealHost;
use cell::backend::runc::{self, ContainerPlan};
use cell::image::Images;
use cell::net::{NetConfig, Network};

/// A droplet whose app serves its directory, and writes `ps` output at start.
pub fn droplet(dir: &Path) -> (PathBuf, String) {
    let root = dir.join("droplet");
    for d in ["app", "deps", "profile.d", "tmp", "logs"] {
        std::fs::create_dir_all(root.join(d)).expect("dir");
    }
    std::fs::write(root.join("app/index.html"), "hello from the droplet\n").expect("index");
    std::fs::write(
        root.join("staging_info.yml"),
        "detected_buildpack: test\nstart_command: serve\n",
    )
    .expect("info");
    let tgz = dir.join("droplet.tgz");
    let written = archive::write_tar_gz(&root, &tgz).expect("tgz");
    (tgz, written.sha256)
}

/// Serve one file over HTTP like the api's droplet download.
pub async fn serve_file(path: PathBuf) -> String {
    let app = axum::Router::new().route(
        "/droplet",
        axum::routing::get(move || {
            let path = path.clone();
            async move { tokio::fs::read(path).await.unwrap_or_default() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/droplet", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

pub fn stack_rootfs() -> PathBuf {
    stack::find(&stack::test_cache_dir(), stack::DEFAULT_STACK)
        .expect("the test stack (cargo test -p stack builds it)")
}

#[tokio::test]
async fn droplet_runs_in_a_container_and_answers_on_its_port() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (tgz, sha) = droplet(tmp.path());
    let url = serve_file(tgz).await;
    let images = Images::new(tmp.path().join("layers"), None);
    let layer = images.layer(&url, &sha).await.expect("layer");
    let again = images.layer(&url, &sha).await.expect("cached");
    assert_eq!(layer, again);
    assert!(images.layer(&url, &"0".repeat(64)).await.is_err(), "checksum mismatch refused");

    let pid = std::process::id();
    let cfg = NetConfig {
        bridge: format!("pct{}", pid % 10_000),
        subnet: Ipv4Addr::new(10, 253, u8::try_from(pid % 200 + 20).expect("fits"), 0),
        table: format!("paas_ct{}", pid % 10_000),
        port_range: (62100, 62199),
    };
    let net = Network::new(Arc::new(RealHost), cfg.clone());
    net.setup().await.expect("net");
    let id = format!("cell-test-{pid}");
    let att = net.attach(&id).await.expect("attach");
    let plan = ContainerPlan {
        id: id.clone(),
        dir: tmp.path().join("instance"),
        droplet_layer: layer,
        stack_rootfs: stack_rootfs(),
        netns_path: att.netns_path(),
        address: att.ip,
        env: vec!["PORT=8080".into(), "PATH=/usr/local/bin:/usr/bin:/bin".into()],
        start_command: "ps -e -o pid= > /home/vcap/tmp/ps.txt; exec python3 -m http.server $PORT"
            .into(),
        memory_mb: 256,
        pids: 512,
        ca_file: None,
        docker: None,
    };
    let _cleanup = Cleanup { plan: plan.clone(), cfg: cfg.clone() };
    runc::prepare(&RealHost, &plan).await.expect("prepare");
    let mut child = runc::run(&plan).expect("runc run");
    let addr = format!("http://127.0.0.1:{}/index.html", att.host_port);
    let body = testkit::eventually(
        "the app answers through its host port",
        Duration::from_secs(20),
        || {
            let addr = addr.clone();
            async move { reqwest::get(&addr).await.ok()?.text().await.ok() }
        },
    )
    .await
    .expect("answer");
    assert_eq!(body, "hello from the droplet\n");
    let ps = std::fs::read_to_string(plan.upper().join("home/vcap/tmp/ps.txt")).expect("ps output");
    assert!(ps.lines().count() <= 5, "sees only its own processes:\n{ps}");

    runc::signal(&RealHost, &id, ::container::Signal::Term).await.expect("term");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("stops")
        .expect("status");
    assert_eq!(status.code(), Some(143), "the app got SIGTERM: {status:?}");
    runc::destroy(&RealHost, &plan).await;
    net.detach(&att).await;
    net.teardown().await;
    let mounts = std::fs::read_to_string("/proc/mounts").expect("mounts");
    assert!(!mounts.contains(&plan.rootfs().display().to_string()), "overlay left mounted");
    assert!(!plan.dir.exists(), "instance directory left");
}

/// Whatever a failed run left: the container, its mount, namespaces, bridge, tables.
struct Cleanup {
    plan: ContainerPlan,
    cfg: NetConfig,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let sh = |c: String| {
            let _ = std::process::Command::new("sh").args(["-c", &c]).output();
        };
        sh(format!("runc delete --force {} 2>/dev/null", self.plan.id));
        sh(format!("umount -l {} 2>/dev/null", self.plan.rootfs().display()));
        sh(format!("ip netns del paas-{} 2>/dev/null", self.plan.id));
        sh(format!("ip link del {} 2>/dev/null", self.cfg.bridge));
        sh(format!(
            "nft delete table ip {0} 2>/dev/null; nft delete table bridge {0} 2>/dev/null",
            self.cfg.table
        ));
    }
}
