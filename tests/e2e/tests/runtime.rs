//! The runtime half of a push, through real services: a desired LRP given to the scheduler is
//! auctioned to a cell, which runs the droplet in a runc container on the real stack, reports
//! it RUNNING and registers its route; the router then serves it by host name. Scaling and a
//! killed instance are handled as a user expects. (The api's half — upload, staging, desired
//! state — joins when the api issues land.)

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bus::{DynBus, InProcessBus};
use testkit::tokens::Issuer;

/// What the api gives the runtime: component tokens, its keys, and the droplet.
async fn fake_api(droplet: PathBuf) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let issuer = Arc::new(Issuer::new("k1", &format!("{url}/oauth/token")));
    let (i1, i2) = (issuer.clone(), issuer);
    let app = axum::Router::new()
        .route(
            "/oauth/token",
            axum::routing::post(move || {
                let token = i1.token(&[auth::SCOPE_INTERNAL], 3600);
                let raw = token.trim_start_matches("bearer ").to_owned();
                async move { axum::Json(serde_json::json!({"access_token": raw, "token_type": "bearer", "expires_in": 3600})) }
            }),
        )
        .route("/token_keys", axum::routing::get(move || async move { axum::Json(i2.jwks()) }))
        .route(
            "/droplet",
            axum::routing::get(move || {
                let p = droplet.clone();
                async move { tokio::fs::read(p).await.unwrap_or_default() }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn droplet(dir: &Path) -> (PathBuf, String) {
    let root = dir.join("droplet");
    for d in ["app", "deps", "profile.d", "tmp", "logs"] {
        std::fs::create_dir_all(root.join(d)).expect("dir");
    }
    std::fs::write(root.join("app/index.html"), "hello through the router\n").expect("index");
    std::fs::write(
        root.join("staging_info.yml"),
        "detected_buildpack: test\nstart_command: serve\n",
    )
    .expect("info");
    let tgz = dir.join("droplet.tgz");
    let written = archive::write_tar_gz(&root, &tgz).expect("tgz");
    (tgz, written.sha256)
}

struct Cleanup(cell::Config);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let sh = |c: String| {
            let _ = std::process::Command::new("sh").args(["-c", &c]).output();
        };
        let dir = self.0.data_dir.display().to_string();
        sh(format!(
            "runc list -f json | tr '{{' '\\n' | grep '{dir}' | sed 's/.*\"id\":\"\\([^\"]*\\)\".*/\\1/' | xargs -r -n1 runc delete --force"
        ));
        sh(format!("grep '{dir}' /proc/mounts | cut -d' ' -f2 | xargs -r -n1 umount -l"));
        sh(format!("ip link del {} 2>/dev/null", self.0.bridge));
        sh(format!(
            "nft delete table ip {0} 2>/dev/null; nft delete table bridge {0} 2>/dev/null",
            self.0.nft_table
        ));
    }
}

/// A running service: cancel and await it to stop it in order.
struct Running(kit::Shutdown, tokio::task::JoinHandle<()>);

impl Running {
    async fn stop(self) {
        self.0.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.1).await;
    }
}

fn spawn<F>(f: F) -> Running
where
    F: FnOnce(kit::Shutdown) -> tokio::task::JoinHandle<()>,
{
    let s = kit::Shutdown::new();
    let handle = f(s.clone());
    Running(s, handle)
}

#[tokio::test]
async fn desired_instances_run_in_containers_and_are_served_by_the_router() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (tgz, sha) = droplet(tmp.path());
    let api = fake_api(tgz).await;
    let bus: DynBus = Arc::new(InProcessBus::new());
    let pid = std::process::id();

    let sched_cfg = scheduler::Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        database_url: format!("sqlite://{}", tmp.path().join("scheduler.db").display()),
        api_url: api.clone(),
        convergence_interval_secs: 2,
        ..Default::default()
    };
    let sched =
        scheduler::build(sched_cfg, scheduler::Deps { bus: bus.clone() }).await.expect("scheduler");
    let scheduler_url = format!("http://{}", sched.local_addr());
    let s1 = spawn(|s| {
        tokio::spawn(async move {
            let _ = sched.run(s).await;
        })
    });

    let stacks = stack::find(&stack::test_cache_dir(), stack::DEFAULT_STACK)
        .expect("test stack")
        .parent()
        .and_then(Path::parent)
        .expect("stacks dir")
        .to_owned();
    let cell_cfg = cell::Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        cell_id: format!("e2e-cell-{pid}"),
        data_dir: tmp.path().join("cell"),
        stacks_dir: stacks,
        scheduler_url: scheduler_url.clone(),
        api_url: api.clone(),
        backend: "runc".into(),
        bridge: format!("pe{}", pid % 10_000),
        subnet: Ipv4Addr::new(10, 251, u8::try_from(pid % 200 + 20).expect("fits"), 0),
        nft_table: format!("paas_e{}", pid % 10_000),
        host_port_min: 62300,
        host_port_max: 62399,
        heartbeat_secs: 1,
        graceful_stop_secs: 2,
        evacuation_timeout_secs: 0,
        ..Default::default()
    };
    let _cleanup = Cleanup(cell_cfg.clone());
    // The cell advertises its bound address to the scheduler, so it must be concrete.
    let cell_port = testkit::free_port();
    let cell_cfg =
        cell::Config { addr: format!("127.0.0.1:{cell_port}").parse().expect("addr"), ..cell_cfg };
    let cell = cell::build(cell_cfg, cell::Deps { bus: bus.clone() }).await.expect("cell");
    let s2 = spawn(|s| {
        tokio::spawn(async move {
            let _ = cell.run(s).await;
        })
    });

    let router_cfg = router::Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        status_addr: "127.0.0.1:0".parse().expect("addr"),
        ..Default::default()
    };
    let rtr = router::build(router_cfg, router::Deps { bus: bus.clone() }).await.expect("router");
    let router_url = format!("http://{}", rtr.local_addr());
    let s3 = spawn(|s| {
        tokio::spawn(async move {
            let _ = rtr.run(s).await;
        })
    });

    let internal = {
        let res =
            reqwest::Client::new().post(format!("{api}/oauth/token")).send().await.expect("token");
        let body: serde_json::Value = res.json().await.expect("json");
        format!("bearer {}", body["access_token"].as_str().expect("token"))
    };
    let desired = serde_json::json!({
        "process_guid": "web-proc-v1", "log_guid": "11111111-2222-4333-8444-555555555555",
        "instances": 1, "memory_mb": 128, "disk_mb": 512, "stack": "bookworm",
        "start_command": "exec python3 -m http.server $PORT",
        "image": {"droplet_guid": "d1", "droplet_url": format!("{api}/droplet"), "droplet_sha256": sha},
        "health_check": {"type": "port", "start_timeout_secs": 30},
        "routes": [{"uri": "hello.apps.localhost"}]
    });
    let http = reqwest::Client::new();
    testkit::eventually("the cell registered", Duration::from_secs(20), || async {
        let cells: serde_json::Value = http
            .get(format!("{scheduler_url}/v1/cells"))
            .header("authorization", &internal)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (!cells.as_array()?.is_empty()).then_some(())
    })
    .await
    .expect("cell presence");
    let res = http
        .put(format!("{scheduler_url}/v1/desired_lrps/web-proc-v1"))
        .header("authorization", &internal)
        .json(&desired)
        .send()
        .await
        .expect("desire");
    assert_eq!(res.status(), 201);

    let body =
        testkit::eventually("the app through the router", Duration::from_secs(60), || async {
            let res = http
                .get(format!("{router_url}/index.html"))
                .header("host", "hello.apps.localhost")
                .send()
                .await
                .ok()?;
            (res.status() == 200).then_some(())?;
            res.text().await.ok()
        })
        .await
        .expect("served by the router");
    assert_eq!(body, "hello through the router\n");

    // Scale to three: three RUNNING instances, each registered.
    let res = http
        .patch(format!("{scheduler_url}/v1/desired_lrps/web-proc-v1"))
        .header("authorization", &internal)
        .json(&serde_json::json!({"instances": 3}))
        .send()
        .await
        .expect("scale");
    assert_eq!(res.status(), 200);
    let running = |http: reqwest::Client, url: String, token: String| async move {
        let list: Vec<wire::lrp::ActualLrp> = http
            .get(format!("{url}/v1/actual_lrps?process_guid=web-proc-v1"))
            .header("authorization", token)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        Some(
            list.into_iter()
                .filter(|a| a.state == wire::lrp::ActualState::Running)
                .collect::<Vec<_>>(),
        )
    };
    let three = testkit::eventually("three running", Duration::from_secs(60), || {
        let f = running(http.clone(), scheduler_url.clone(), internal.clone());
        async move { f.await.filter(|l| l.len() == 3) }
    })
    .await
    .expect("scaled");

    // Kill one instance's process from outside: it is replaced and the app keeps serving.
    let victim = three[0].clone();
    let container: String =
        victim.instance_guid.chars().filter(char::is_ascii_alphanumeric).take(12).collect();
    let killed = std::process::Command::new("runc")
        .args(["kill", &format!("paas-{container}"), "KILL"])
        .status()
        .expect("kill");
    assert!(killed.success(), "the victim's container exists and was killed");
    testkit::eventually("replaced", Duration::from_secs(60), || {
        let f = running(http.clone(), scheduler_url.clone(), internal.clone());
        let victim = victim.clone();
        async move {
            let list = f.await?;
            let replaced = list.iter().find(|a| a.index == victim.index)?;
            let done = list.len() == 3
                && replaced.instance_guid != victim.instance_guid
                && replaced.crash_count == 1;
            done.then_some(())
        }
    })
    .await
    .expect("three running again after a kill");
    for _ in 0..10 {
        let res = http
            .get(format!("{router_url}/index.html"))
            .header("host", "hello.apps.localhost")
            .send()
            .await
            .expect("get");
        assert_eq!(res.status(), 200);
    }
    // Stop in order; the cell releases its containers and networks.
    s3.stop().await;
    s2.stop().await;
    s1.stop().await;
}
