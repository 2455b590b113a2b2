//! Routing, spreading, errors, retries, access logs and pruning.

use std::time::Duration;

use bus::BusExt as _;

use crate::{backend, backend_on, get, reg, start, wait_routed};

#[tokio::test]
async fn routes_spread_and_carry_cf_headers() {
    let r = start().await;
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        let port = backend(name).await;
        r.bus
            .publish_json("router.register", &reg(port, "MyApp.apps.localhost", &i.to_string()))
            .await
            .expect("pub");
    }
    wait_routed(&r, "myapp.apps.localhost").await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let (status, body, _) = get(&r, "myapp.APPS.localhost:8080", "/").await;
        assert_eq!(status, 200);
        assert!(body.contains("app=app-guid") && body.contains("xff=127.0.0.1"), "{body}");
        seen.insert(body.split(' ').next().unwrap_or("").to_owned());
    }
    assert_eq!(seen.len(), 3, "round-robin reaches every backend: {seen:?}");
}

#[tokio::test]
async fn errors_are_gorouters() {
    let r = start().await;
    let (status, body, err) = get(&r, "nothing.apps.localhost", "/").await;
    assert_eq!((status, err.as_str()), (404, "unknown_route"));
    assert_eq!(body, "404 Not Found: Requested route ('nothing.apps.localhost') does not exist.\n");
    let port = backend("x").await;
    r.bus
        .publish_json("router.register", &reg(port, "gone.apps.localhost", "0"))
        .await
        .expect("pub");
    wait_routed(&r, "gone.apps.localhost").await;
    r.bus
        .publish_json("router.unregister", &reg(port, "gone.apps.localhost", "0"))
        .await
        .expect("pub");
    let (status, _, err) = testkit::eventually("unregistered", Duration::from_secs(5), || async {
        let got = get(&r, "gone.apps.localhost", "/").await;
        (got.0 != 200).then_some(got)
    })
    .await
    .expect("503");
    assert_eq!((status, err.as_str()), (503, "no_endpoints"));
    let dead = testkit::free_port();
    r.bus
        .publish_json("router.register", &reg(dead, "dead.apps.localhost", "0"))
        .await
        .expect("pub");
    let (status, _, err) = testkit::eventually("dead backend", Duration::from_secs(5), || async {
        let got = get(&r, "dead.apps.localhost", "/").await;
        (got.0 != 404).then_some(got)
    })
    .await
    .expect("502");
    assert_eq!((status, err.as_str()), (502, "endpoint_failure"));
}

#[tokio::test]
async fn a_dead_backend_is_retried_elsewhere_without_errors() {
    let r = start().await;
    let live = backend("live").await;
    let dead = testkit::free_port();
    r.bus
        .publish_json("router.register", &reg(dead, "mixed.apps.localhost", "0"))
        .await
        .expect("pub");
    r.bus
        .publish_json("router.register", &reg(live, "mixed.apps.localhost", "1"))
        .await
        .expect("pub");
    wait_routed(&r, "mixed.apps.localhost").await;
    for _ in 0..20 {
        let (status, body, _) = get(&r, "mixed.apps.localhost", "/").await;
        assert_eq!(status, 200, "{body}");
        assert!(body.starts_with("live"));
    }
}

#[tokio::test]
async fn context_paths_and_wildcards() {
    let r = start().await;
    let (root, api, wild) = (backend("root").await, backend("api").await, backend("wild").await);
    r.bus
        .publish_json("router.register", &reg(root, "shop.apps.localhost", "0"))
        .await
        .expect("pub");
    r.bus
        .publish_json("router.register", &reg(api, "shop.apps.localhost/api", "0"))
        .await
        .expect("pub");
    r.bus.publish_json("router.register", &reg(wild, "*.apps.localhost", "0")).await.expect("pub");
    wait_routed(&r, "shop.apps.localhost").await;
    assert!(get(&r, "shop.apps.localhost", "/api/orders").await.1.starts_with("api"));
    assert!(get(&r, "shop.apps.localhost", "/apiary").await.1.starts_with("root"));
    assert!(get(&r, "other.apps.localhost", "/").await.1.starts_with("wild"));
}

#[tokio::test]
async fn access_logs_and_announcements() {
    let r = start().await;
    let mut rtr = r.bus.subscribe("logs.rtr").await.expect("sub");
    let port = backend("l").await;
    r.bus
        .publish_json("router.register", &reg(port, "logged.apps.localhost", "2"))
        .await
        .expect("pub");
    wait_routed(&r, "logged.apps.localhost").await;
    let msg = tokio::time::timeout(Duration::from_secs(5), rtr.next())
        .await
        .expect("in time")
        .expect("envelope");
    let envs = wire::envelope::decode(&msg.payload).expect("a batch of envelopes");
    let env = envs.first().expect("a line");
    assert_eq!((env.source_id.as_str(), env.instance_id.as_str()), ("app-guid", "4"));
    let line = env.log_text().expect("text");
    assert!(line.starts_with("logged.apps.localhost - ["), "{line}");
    assert!(line.contains("\"GET / HTTP/1.1\" 200") && line.contains("app_index:\"2\""), "{line}");
    let field = |name: &str| -> f64 {
        let at = line.find(&format!(" {name}:")).expect(name) + name.len() + 2;
        line[at..].split(' ').next().and_then(|v| v.parse().ok()).expect("seconds")
    };
    let (total, own) = (field("response_time"), field("gorouter_time"));
    assert!(own > 0.0 && own < total, "the router's own time is a part of the total: {line}");
    let greet = r
        .bus
        .request("router.greet", bytes::Bytes::new(), Duration::from_secs(5))
        .await
        .expect("greet");
    let start: wire::routing::RouterStart = serde_json::from_slice(&greet.payload).expect("json");
    assert_eq!(
        (start.minimum_register_interval_in_seconds, start.prune_threshold_in_seconds),
        (20, 120)
    );
}

#[tokio::test]
async fn heartbeats_keep_a_route_past_its_ttl_and_it_is_pruned_once_they_stop() {
    let r = start().await;
    let port = backend("s").await;
    let mut m = reg(port, "stale.apps.localhost", "0");
    m.stale_threshold_in_seconds = Some(1);
    r.bus.publish_json("router.register", &m).await.expect("pub");
    wait_routed(&r, "stale.apps.localhost").await;
    // Heard every 300 ms for three TTLs (the table prunes every second): routed throughout,
    // also just before each heartbeat (a route pruned meanwhile would answer 503 there).
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(get(&r, "stale.apps.localhost", "/").await.0, 200, "heard, so routed");
        r.bus.publish_json("router.register", &m).await.expect("pub");
    }
    testkit::eventually("pruned", Duration::from_secs(10), || async {
        (get(&r, "stale.apps.localhost", "/").await.0 == 503).then_some(())
    })
    .await
    .expect("pruned after its threshold");
}

#[tokio::test]
async fn a_zone_preference_the_router_cannot_apply_is_refused_at_start() {
    let bus: bus::DynBus = std::sync::Arc::new(bus::InProcessBus::new());
    let config = |pref: &str, zone: &str| router::Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        status_addr: "127.0.0.1:0".parse().expect("addr"),
        balancing_algorithm_az_preference: pref.into(),
        zone: zone.into(),
        ..Default::default()
    };
    let build = |c| router::build(c, router::Deps { bus: bus.clone() });
    let e = build(config("locally-optimistic", "")).await.err().expect("refused");
    assert!(e.to_string().contains("needs the router's zone"), "{e}");
    let e = build(config("nearest", "z1")).await.err().expect("refused");
    assert!(e.to_string().contains("none or locally-optimistic"), "{e}");
    assert!(build(config("locally-optimistic", "z1")).await.is_ok());
}

#[tokio::test]
async fn the_route_table_is_shown_on_the_status_port() {
    let r = start().await;
    let port = backend("shown").await;
    let mut m = reg(port, "shown.example.com/api", "3");
    m.protocol = Some("http2".into());
    m.availability_zone = Some("z2".into());
    m.route_service_url = Some("https://rs.example.com/".into());
    r.bus.publish_json("router.register", &m).await.expect("pub");
    let table = testkit::eventually("listed", Duration::from_secs(5), || async {
        let t: serde_json::Value =
            reqwest::get(format!("{}/routes", r.status)).await.ok()?.json().await.ok()?;
        t.get("shown.example.com/api").is_some().then_some(t)
    })
    .await
    .expect("the route is listed");
    let e = &table["shown.example.com/api"][0];
    assert_eq!(e["address"], format!("127.0.0.1:{port}"));
    assert_eq!(
        (e["protocol"].as_str(), e["availability_zone"].as_str()),
        (Some("http2"), Some("z2"))
    );
    assert_eq!(e["route_service_url"], "https://rs.example.com/");
    assert_eq!(
        (e["private_instance_index"].as_str(), e["app_id"].as_str()),
        (Some("3"), Some("app-guid"))
    );
    assert!(e["ttl"].as_u64().is_some_and(|t| t > 100 && t <= 120), "{e}");
}

/// Packets to a port dropped on input, as when the host behind it is cut off: nothing is
/// refused and nothing is acknowledged. The rule goes with the value.
struct Silenced(String);

impl Silenced {
    fn port(port: u16) -> Self {
        let table = format!("paas_rt_{}_{port}", std::process::id());
        let script = format!(
            "add table inet {table}\n\
             add chain inet {table} input {{ type filter hook input priority -10; }}\n\
             add rule inet {table} input tcp dport {port} drop\n"
        );
        let mut nft = std::process::Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("nft");
        std::io::Write::write_all(nft.stdin.as_mut().expect("stdin"), script.as_bytes())
            .expect("write");
        assert!(nft.wait().expect("nft").success(), "nft rule for port {port}");
        Self(table)
    }
}

impl Drop for Silenced {
    fn drop(&mut self) {
        let _ =
            std::process::Command::new("nft").args(["delete", "table", "inet", &self.0]).status();
    }
}

#[tokio::test]
async fn a_kept_connection_to_a_silent_host_gives_way_to_another_endpoint() {
    let r = start().await;
    let gone = backend("gone").await;
    r.bus
        .publish_json("router.register", &reg(gone, "kept.apps.localhost", "0"))
        .await
        .expect("pub");
    wait_routed(&r, "kept.apps.localhost").await;
    // One client connection (one router worker), pinned to instance 0: its request leaves a
    // kept backend connection to `gone` in that worker's pool.
    let client =
        reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
    let send = || {
        client
            .get(format!("{}/", r.url))
            .header("host", "kept.apps.localhost")
            .header("cookie", "__VCAP_ID__=inst-0")
            .send()
    };
    let first = send().await.expect("first request");
    assert!(first.text().await.expect("body").starts_with("gone"));
    // Instance 1 on another host (another loopback address), instance 2 on the silent one.
    let live = backend_on("127.0.0.2", "live").await;
    let mut elsewhere = reg(live, "kept.apps.localhost", "1");
    elsewhere.host = "127.0.0.2".into();
    r.bus.publish_json("router.register", &elsewhere).await.expect("pub");
    let neighbour = backend("neighbour").await;
    r.bus
        .publish_json("router.register", &reg(neighbour, "kept.apps.localhost", "2"))
        .await
        .expect("pub");
    testkit::eventually("both endpoints routed", Duration::from_secs(5), || async {
        get(&r, "kept.apps.localhost", "/").await.1.starts_with("live").then_some(())
    })
    .await
    .expect("live routed");

    // Instance 0's host goes silent. The pinned request goes to it on the kept connection,
    // gets no acknowledgement, and is carried by instance 1 on the other host instead of
    // hanging (not by its neighbour on the silent host).
    let _cut = Silenced::port(gone);
    let asked = std::time::Instant::now();
    let res = send().await.expect("an answer, not a hang");
    let status = res.status().as_u16();
    let body = res.text().await.expect("body");
    eprintln!("answered after {:?}", asked.elapsed());
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("live"), "{body}");
}
