//! Routes that change while an instance runs (`cf map-route`, `cf bind-route-service`), on
//! both backends: the scheduler sends the new set (`POST /internal/v1/routes`) and the cell's
//! instances of that process announce it at once, unregistering what is gone; a change that
//! came before the claim arrives in the claim's answer.

use std::time::Duration;

use bus::Subscription;
use wire::lrp::{Route, RoutesUpdate};
use wire::routing::{RegistryMessage, RouterStart};

use crate::harness::{lrp, served_droplet, start_cell, Backend, Cell};

on_both_backends!(changed_routes_reach_the_routers_without_a_restart);

fn route(uri: &str, route_service_url: Option<&str>) -> Route {
    Route {
        uri: uri.into(),
        port: 8080,
        protocol: None,
        loadbalancing: None,
        route_service_url: route_service_url.map(str::to_owned),
    }
}

async fn send_routes(c: &Cell, process_guid: &str, routes: Vec<Route>) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/internal/v1/routes", c.url))
        .header("authorization", &c.token)
        .json(&RoutesUpdate { process_guid: process_guid.into(), routes })
        .send()
        .await
        .expect("routes")
        .status()
        .as_u16()
}

/// The next `n` messages about `instance` on `sub`, as (uri, route service) pairs, sorted.
async fn next(sub: &mut Subscription, instance: &str, n: usize) -> Vec<(String, Option<String>)> {
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while got.len() < n {
            let msg = sub.next().await.expect("bus");
            let m: RegistryMessage = serde_json::from_slice(&msg.payload).expect("json");
            if m.private_instance_id == instance {
                got.push((m.uris.concat(), m.route_service_url));
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{n} messages about {instance}, got {got:?}"));
    got.sort();
    got
}

fn pairs(list: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
    list.iter().map(|(u, rs)| ((*u).to_owned(), rs.map(str::to_owned))).collect()
}

async fn changed_routes_reach_the_routers_without_a_restart(backend: Backend) {
    let c = start_cell(backend, 15).await;
    let (url, sha, _droplet) = served_droplet().await;
    let mut registered = c.bus.subscribe(wire::subjects::ROUTER_REGISTER).await.expect("sub");
    let mut unregistered = c.bus.subscribe(wire::subjects::ROUTER_UNREGISTER).await.expect("sub");
    let app = lrp(&url, &sha, "sleep 1; exec python3 -m http.server $PORT", 30);
    let guid = app.desired.process_guid.clone();
    let instance = app.instance_guid.clone();

    // Nothing of that process here yet: 404, so the scheduler knows.
    assert_eq!(send_routes(&c, &guid, vec![route("early.apps.localhost", None)]).await, 404);

    // Told while it starts, it registers the new routes, not the desired LRP's, once healthy.
    c.send_work(&app).await;
    c.report("claim", &app, Duration::from_secs(10)).await;
    assert_eq!(send_routes(&c, &guid, vec![route("early.apps.localhost", None)]).await, 202);
    let started = c.report("start", &app, Duration::from_secs(30)).await;
    assert_eq!(next(&mut registered, &instance, 1).await, pairs(&[("early.apps.localhost", None)]));

    // Running: a route added with a route service is registered at once, with its URL.
    let rs = "https://rs.example.com/auth";
    let both = vec![route("early.apps.localhost", None), route("b.apps.localhost", Some(rs))];
    assert_eq!(send_routes(&c, &guid, both).await, 202);
    assert_eq!(
        next(&mut registered, &instance, 2).await,
        pairs(&[("b.apps.localhost", Some(rs)), ("early.apps.localhost", None)])
    );
    // A route taken away is unregistered at once, on the instance's host port.
    assert_eq!(send_routes(&c, &guid, vec![route("b.apps.localhost", Some(rs))]).await, 202);
    let gone = tokio::time::timeout(Duration::from_secs(10), unregistered.next())
        .await
        .expect("in time")
        .expect("unregister");
    let gone: RegistryMessage = serde_json::from_slice(&gone.payload).expect("json");
    assert_eq!(
        (gone.uris, gone.port, gone.private_instance_id.as_str()),
        (vec!["early.apps.localhost".to_owned()], started.ports[0].host_port, instance.as_str())
    );
    assert_eq!(next(&mut registered, &instance, 1).await, pairs(&[("b.apps.localhost", Some(rs))]));

    // Every later announcement (here: a router starting) carries only the current routes.
    let start = RouterStart {
        id: "r".into(),
        hosts: vec![],
        minimum_register_interval_in_seconds: 20,
        prune_threshold_in_seconds: 120,
    };
    bus::BusExt::publish_json(&*c.bus, wire::subjects::ROUTER_START, &start).await.expect("pub");
    assert_eq!(next(&mut registered, &instance, 1).await, pairs(&[("b.apps.localhost", Some(rs))]));

    // Routes that changed between the auction and the claim come back in the claim's answer:
    // a new instance announces those, not the ones it was started with.
    *c.scheduler.claim_routes.lock().expect("lock") =
        Some(vec![route("late.apps.localhost", None)]);
    let late = lrp(&url, &sha, "exec python3 -m http.server $PORT", 30);
    c.send_work(&late).await;
    c.report("start", &late, Duration::from_secs(30)).await;
    assert_eq!(
        next(&mut registered, &late.instance_guid, 1).await,
        pairs(&[("late.apps.localhost", None)])
    );
    c.stop(&late).await;
    c.report("remove", &late, Duration::from_secs(30)).await;

    // Stopped: what it announced last is unregistered; the cell no longer knows the process.
    c.stop(&app).await;
    c.report("remove", &app, Duration::from_secs(30)).await;
    assert_eq!(
        next(&mut unregistered, &instance, 1).await,
        pairs(&[("b.apps.localhost", Some(rs))])
    );
    assert_eq!(send_routes(&c, &guid, vec![]).await, 404);
    c.shut_down().await;
}
