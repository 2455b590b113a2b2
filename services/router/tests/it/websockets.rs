//! Websockets through the router: a raw-TCP echo backend, a raw-TCP client.

use std::time::Duration;

use bus::BusExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::{reg, start, wait_routed};

/// Read an HTTP head (up to the blank line).
async fn read_head(s: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).await.expect("read head");
        assert!(n == 1, "closed in the head: {}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Upgrade requests get a 101 and an echo of every byte; others a plain `ok`.
async fn echo_backend() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let head = read_head(&mut s).await.to_ascii_lowercase();
                if head.contains("upgrade: websocket")
                    && head.contains("connection: upgrade")
                    && head.contains("x-cf-applicationid: app-guid")
                {
                    s.write_all(
                        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                    )
                    .await
                    .expect("101");
                    let (mut rd, mut wr) = s.split();
                    let _ = tokio::io::copy(&mut rd, &mut wr).await;
                } else {
                    let _ = s
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        )
                        .await;
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn websockets_are_upgraded_and_copied_both_ways() {
    let r = start().await;
    let host = "ws.apps.localhost";
    let port = echo_backend().await;
    r.bus.publish_json("router.register", &reg(port, host, "0")).await.expect("pub");
    wait_routed(&r, host).await;
    let addr = r.url.trim_start_matches("http://").to_owned();
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        b"GET /chat HTTP/1.1\r\nHost: ws.apps.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .expect("handshake");
    let head = tokio::time::timeout(Duration::from_secs(5), read_head(&mut s)).await.expect("101");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_ascii_lowercase().contains("upgrade: websocket"), "{head}");
    for msg in [&b"hello"[..], &b"\x81\x05world"[..], &[0u8; 4096][..]] {
        s.write_all(msg).await.expect("send");
        let mut back = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back))
            .await
            .expect("in time")
            .expect("echo");
        assert_eq!(back, msg);
    }
    // A dead first instance is retried for upgrades too.
    let dead = testkit::free_port();
    r.bus
        .publish_json("router.register", &reg(dead, "ws2.apps.localhost", "0"))
        .await
        .expect("pub");
    r.bus
        .publish_json("router.register", &reg(port, "ws2.apps.localhost", "1"))
        .await
        .expect("pub");
    wait_routed(&r, "ws2.apps.localhost").await;
    for _ in 0..3 {
        let mut s = TcpStream::connect(r.url.trim_start_matches("http://")).await.expect("connect");
        s.write_all(
            b"GET / HTTP/1.1\r\nHost: ws2.apps.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
        .await
        .expect("handshake");
        let head = read_head(&mut s).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        s.write_all(b"ping").await.expect("send");
        let mut back = [0u8; 4];
        s.read_exact(&mut back).await.expect("echo");
        assert_eq!(&back, b"ping");
    }
}
