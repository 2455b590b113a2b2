//! Sticky sessions (`JSESSIONID` → `__VCAP_ID__`) and pinning with `X-CF-APP-INSTANCE`.

use std::time::Duration;

use bus::BusExt as _;

use crate::{backend, reg, start, wait_routed, Router};

async fn send(r: &Router, host: &str, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(format!("{}{path}", r.url)).header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("request")
}

fn vcap_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("__VCAP_ID__="))
        .map(str::to_owned)
}

async fn three_instances(r: &Router, host: &str) -> Vec<u16> {
    let mut ports = Vec::new();
    for (i, name) in ["a", "b", "c"].into_iter().enumerate() {
        let port = backend(name).await;
        r.bus.publish_json("router.register", &reg(port, host, &i.to_string())).await.expect("pub");
        ports.push(port);
    }
    testkit::eventually("three instances", Duration::from_secs(5), || async {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..6 {
            seen.insert(send(r, host, "/", &[]).await.text().await.unwrap_or_default());
        }
        (seen.len() == 3).then_some(())
    })
    .await
    .expect("all registered");
    ports
}

#[tokio::test]
async fn sticky_sessions_follow_vcap_id_until_the_instance_goes() {
    let r = start().await;
    let host = "sticky.apps.localhost";
    let ports = three_instances(&r, host).await;
    let res = send(&r, host, "/login", &[]).await;
    let cookie = vcap_cookie(&res).expect("__VCAP_ID__ set beside JSESSIONID");
    let served = res.text().await.expect("body");
    let index = served.split("index=").nth(1).and_then(|s| s.split(' ').next()).expect("index");
    assert_eq!(cookie, format!("__VCAP_ID__=inst-{index}; Path=/; SameSite=Lax; HttpOnly"));
    let pair = format!("JSESSIONID=s1; __VCAP_ID__=inst-{index}");
    for _ in 0..10 {
        let res = send(&r, host, "/", &[("cookie", pair.as_str())]).await;
        assert!(vcap_cookie(&res).is_none(), "no new cookie while the instance serves");
        assert_eq!(res.text().await.expect("body"), served);
    }
    // Without the cookie the spread goes on.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..6 {
        seen.insert(send(&r, host, "/", &[]).await.text().await.expect("body"));
    }
    assert_eq!(seen.len(), 3);
    // The sticky instance leaves: another serves and the cookie names the new one.
    let i: usize = index.parse().expect("index");
    r.bus.publish_json("router.unregister", &reg(ports[i], host, index)).await.expect("pub");
    let res = testkit::eventually("moved", Duration::from_secs(5), || async {
        let res = send(&r, host, "/", &[("cookie", pair.as_str())]).await;
        vcap_cookie(&res).is_some().then_some(res)
    })
    .await
    .expect("served elsewhere");
    let cookie = vcap_cookie(&res).expect("cookie");
    let body = res.text().await.expect("body");
    let now = body.split("index=").nth(1).and_then(|s| s.split(' ').next()).expect("index");
    assert_ne!(now, index);
    assert_eq!(cookie, format!("__VCAP_ID__=inst-{now}; Path=/; HttpOnly"));
}

#[tokio::test]
async fn x_cf_app_instance_pins_and_rejects_unknown_instances() {
    let r = start().await;
    let host = "pin.apps.localhost";
    three_instances(&r, host).await;
    for _ in 0..6 {
        let res = send(&r, host, "/", &[("x-cf-app-instance", "app-guid:1")]).await;
        assert_eq!(res.status(), 200);
        let body = res.text().await.expect("body");
        assert!(body.starts_with("b index=1"), "{body}");
        assert!(body.ends_with("pin="), "the header is not forwarded: {body}");
    }
    let res = send(&r, host, "/", &[("x-cf-app-instance", "app-guid:7")]).await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["x-cf-routererror"], "unknown_route");
    assert_eq!(
        res.text().await.expect("body"),
        "400 Bad Request: Requested instance ('7') with guid ('app-guid') does not exist for route ('pin.apps.localhost')\n"
    );
    let res = send(&r, host, "/", &[("x-cf-app-instance", "other-guid:1")]).await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["x-cf-routererror"], "unknown_route");
    let res = send(&r, host, "/", &[("x-cf-app-instance", "no-index")]).await;
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["x-cf-routererror"], "invalid_cf_app_instance_header");
    wait_routed(&r, host).await;
}
