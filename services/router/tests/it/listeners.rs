//! Each worker accepts on a listening socket of its own (`SO_REUSEPORT`), and a port another
//! router (or anything else) holds is refused rather than shared.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bus::{BusExt as _, DynBus, InProcessBus};

use crate::{backend, get, reg, start_with, wait_routed};

/// Sockets listening on `port` on 127.0.0.1, from `/proc/net/tcp`.
fn listening(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let local = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&local.as_str()) && f.get(3) == Some(&"0A")
        })
        .count()
}

#[tokio::test]
async fn every_worker_listens_on_its_own_socket_and_a_port_in_use_is_refused() {
    let r = start_with(|c| c.workers = 3).await;
    let addr: SocketAddr = r.url.trim_start_matches("http://").parse().expect("addr");
    testkit::eventually("three listening sockets", Duration::from_secs(5), || async {
        (listening(addr.port()) == 3).then_some(())
    })
    .await
    .expect("one listening socket per worker");

    let port = backend("b").await;
    r.bus
        .publish_json(wire::subjects::ROUTER_REGISTER, &reg(port, "app.example.com", "0"))
        .await
        .expect("register");
    wait_routed(&r, "app.example.com").await;
    // Fresh connections land on the sockets of all workers; every one is served.
    for _ in 0..30 {
        assert_eq!(get(&r, "app.example.com", "/").await.0, 200);
    }

    // A second router on the same address does not join the first one's sockets.
    let bus: DynBus = Arc::new(InProcessBus::new());
    let config = router::Config {
        addr,
        status_addr: "127.0.0.1:0".parse().expect("addr"),
        ..Default::default()
    };
    match router::build(config, router::Deps { bus }).await {
        Err(router::Error::Listen(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
            assert!(e.to_string().contains(&format!("cannot listen on {addr}")), "{e}");
        }
        Err(e) => panic!("expected the address in use, got {e}"),
        Ok(_) => panic!("a second router bound a port the first one listens on"),
    }
    assert!(std::net::TcpListener::bind(addr).is_err(), "the port is held");
    assert_eq!(listening(addr.port()), 3);
    assert_eq!(get(&r, "app.example.com", "/").await.0, 200);
}
