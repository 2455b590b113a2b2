//! HTTP/1.1 on the wire, through the router: bodies both ways (length, chunked, until close)
//! streamed rather than buffered, keep-alive and pipelining, HEAD and 204, backends that
//! close kept connections, request timeouts, chunked uploads, the requests hyper serves
//! (HTTP/1.0, absolute-form), `Connection: close`, and draining on shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bus::BusExt as _;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::{reg, start, start_with, wait_routed, Router};

/// A backend that runs `serve` for every accepted connection.
async fn raw_backend<F, Fut>(serve: F) -> u16
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(serve(s));
        }
    });
    port
}

/// Read one request head and its body (by `Content-Length` or chunked); `None` when the
/// peer closed.
async fn read_request(r: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let len = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_owned))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).await.ok()?;
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).await.ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    Some((head, body))
}

/// A keep-alive backend echoing the request body (and the request line in `x-line`).
async fn echo_backend() -> u16 {
    raw_backend(|s| async move {
        let mut r = BufReader::new(s);
        while let Some((head, body)) = read_request(&mut r).await {
            let line = head.lines().next().unwrap_or("").to_owned();
            let out = format!(
                "HTTP/1.1 200 OK\r\nx-line: {line}\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            let s = r.get_mut();
            if s.write_all(out.as_bytes()).await.is_err() || s.write_all(&body).await.is_err() {
                return;
            }
        }
    })
    .await
}

async fn routed(r: &Router, port: u16, host: &str) {
    r.bus.publish_json("router.register", &reg(port, host, "0")).await.expect("pub");
    wait_routed(r, host).await;
}

async fn connect(r: &Router) -> TcpStream {
    TcpStream::connect(r.url.trim_start_matches("http://")).await.expect("connect")
}

/// Read one response: head and body (by content-length, chunked, or until close).
async fn read_response(r: &mut BufReader<TcpStream>) -> (String, Vec<u8>) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(r.read_line(&mut line).await.expect("read") > 0, "closed after {head:?}");
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if lower.starts_with("http/1.1 204") || lower.starts_with("http/1.1 304") {
        return (head, body);
    }
    if lower.contains("transfer-encoding: chunked") {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).await.expect("size");
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .expect("hex size");
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).await.expect("chunk");
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        body.resize(len, 0);
        r.read_exact(&mut body).await.expect("body");
    } else {
        r.read_to_end(&mut body).await.expect("body to close");
    }
    (head, body)
}

#[tokio::test]
async fn bodies_go_both_ways_and_keep_alive_carries_pipelined_requests() {
    let r = start().await;
    routed(&r, echo_backend().await, "echo.apps.localhost").await;
    let mut c = BufReader::new(connect(&r).await);
    // A 3 MiB upload with a length comes back whole.
    let big: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
    let head = format!(
        "POST /up HTTP/1.1\r\nHost: echo.apps.localhost\r\nContent-Length: {}\r\n\r\n",
        big.len()
    );
    c.get_mut().write_all(head.as_bytes()).await.expect("head");
    c.get_mut().write_all(&big).await.expect("body");
    let (head, body) = read_response(&mut c).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body == big, "echoed body differs ({} bytes)", body.len());
    // Three pipelined requests on the same connection, answered in order.
    let three = "GET /1 HTTP/1.1\r\nHost: echo.apps.localhost\r\n\r\n\
                 POST /2 HTTP/1.1\r\nHost: echo.apps.localhost\r\nContent-Length: 5\r\n\r\nhello\
                 GET /3 HTTP/1.1\r\nHost: echo.apps.localhost\r\n\r\n";
    c.get_mut().write_all(three.as_bytes()).await.expect("pipelined");
    for (path, want) in [("/1", ""), ("/2", "hello"), ("/3", "")] {
        let (head, body) = read_response(&mut c).await;
        assert!(
            head.contains(&format!(
                "x-line: {} {path} HTTP/1.1",
                if want.is_empty() { "GET" } else { "POST" }
            )),
            "{head}"
        );
        assert_eq!(String::from_utf8_lossy(&body), want);
    }
    // A chunked upload arrives whole.
    c.get_mut()
        .write_all(b"PUT /chunked HTTP/1.1\r\nHost: echo.apps.localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
        .await
        .expect("chunked");
    let (head, body) = read_response(&mut c).await;
    assert!(head.contains("x-line: PUT /chunked HTTP/1.1"), "{head}");
    assert_eq!(body, b"abcdefg");
    // ... and the same connection goes on serving.
    c.get_mut()
        .write_all(b"GET /after HTTP/1.1\r\nHost: echo.apps.localhost\r\n\r\n")
        .await
        .expect("after");
    let (head, _) = read_response(&mut c).await;
    assert!(head.contains("x-line: GET /after HTTP/1.1"), "{head}");
}

#[tokio::test]
async fn response_bodies_stream_in_every_framing() {
    let r = start().await;
    let release = Arc::new(Notify::new());
    let gate = release.clone();
    let port = raw_backend(move |s| {
        let gate = gate.clone();
        async move {
            let mut r = BufReader::new(s);
            while let Some((head, _)) = read_request(&mut r).await {
                let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                let s = r.get_mut();
                match path.as_str() {
                    "/chunked" => {
                        // The first chunk, then the rest only once the client saw it.
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n").await;
                        gate.notified().await;
                        let _ = s.write_all(b"7\r\n second\r\n0\r\nx-trailer: t\r\n\r\n").await;
                    }
                    "/length" => {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\nfirst").await;
                        gate.notified().await;
                        let _ = s.write_all(b" second").await;
                    }
                    "/close" => {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\nuntil the backend closes").await;
                        return;
                    }
                    "/head" => {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n").await;
                    }
                    "/nothing" => {
                        let _ = s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
                    }
                    _ => {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
                    }
                }
            }
        }
    })
    .await;
    routed(&r, port, "stream.apps.localhost").await;
    for path in ["/chunked", "/length"] {
        let mut c = connect(&r).await;
        c.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: stream.apps.localhost\r\n\r\n").as_bytes(),
        )
        .await
        .expect("req");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // The first part arrives while the backend still holds the rest.
        while !String::from_utf8_lossy(&got).contains("first") {
            let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
                .await
                .unwrap_or_else(|_| {
                    panic!("{path}: first part not streamed: {:?}", String::from_utf8_lossy(&got))
                })
                .expect("read");
            assert!(n > 0, "{path}: closed early");
            got.extend_from_slice(&buf[..n]);
        }
        release.notify_one();
        let mut c = BufReader::new(c);
        let text = String::from_utf8_lossy(&got).into_owned();
        let mut rest = Vec::new();
        if path == "/length" {
            while !text.ends_with("second") && !String::from_utf8_lossy(&rest).ends_with("second") {
                let n = c.read(&mut buf).await.expect("rest");
                assert!(n > 0);
                rest.extend_from_slice(&buf[..n]);
            }
            assert!(format!("{text}{}", String::from_utf8_lossy(&rest))
                .ends_with("\r\n\r\nfirst second"));
        } else {
            while !String::from_utf8_lossy(&rest).ends_with("\r\n\r\n") {
                let n = c.read(&mut buf).await.expect("rest");
                assert!(n > 0);
                rest.extend_from_slice(&buf[..n]);
            }
            assert_eq!(String::from_utf8_lossy(&rest), "7\r\n second\r\n0\r\nx-trailer: t\r\n\r\n");
        }
        // Keep-alive survives a streamed body.
        c.get_mut()
            .write_all(b"GET /nothing HTTP/1.1\r\nHost: stream.apps.localhost\r\n\r\n")
            .await
            .expect("next");
        let (head, _) = read_response(&mut c).await;
        assert!(head.starts_with("HTTP/1.1 204"), "{head}");
    }
    // HEAD: a length but no body; the connection carries on.
    let mut c = BufReader::new(connect(&r).await);
    c.get_mut().write_all(b"HEAD /head HTTP/1.1\r\nHost: stream.apps.localhost\r\n\r\nGET /nothing HTTP/1.1\r\nHost: stream.apps.localhost\r\n\r\n").await.expect("head");
    let mut head = String::new();
    loop {
        let mut line = String::new();
        c.read_line(&mut line).await.expect("line");
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    assert!(head.to_ascii_lowercase().contains("content-length: 1234"), "{head}");
    let (next, _) = read_response(&mut c).await;
    assert!(next.starts_with("HTTP/1.1 204"), "{next}");
    // Until close: the client gets it all and the router closes the connection after it.
    c.get_mut()
        .write_all(b"GET /close HTTP/1.1\r\nHost: stream.apps.localhost\r\n\r\n")
        .await
        .expect("close");
    let (head, body) = read_response(&mut c).await;
    assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
    assert_eq!(body, b"until the backend closes");
}

#[tokio::test]
async fn backends_closing_kept_connections_cost_no_request() {
    let r = start().await;
    // One response per connection, then close without saying so.
    let port = raw_backend(|s| async move {
        let mut r = BufReader::new(s);
        if read_request(&mut r).await.is_some() {
            let _ = r.get_mut().write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        }
    })
    .await;
    routed(&r, port, "rude.apps.localhost").await;
    let client = reqwest::Client::new();
    for i in 0..20 {
        if i % 5 == 4 {
            // Past the router's idle check as well as right away.
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
        let res = client
            .get(format!("{}/{i}", r.url))
            .header("host", "rude.apps.localhost")
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), 200, "request {i}");
        assert_eq!(res.text().await.expect("body"), "ok");
    }
}

#[tokio::test]
async fn a_silent_backend_times_out_with_a_504() {
    let r = start_with(|c| c.request_timeout_secs = 1).await;
    let port = raw_backend(|s| async move {
        let mut r = BufReader::new(s);
        while let Some((head, _)) = read_request(&mut r).await {
            if head.starts_with("GET /slow") {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            let _ = r.get_mut().write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
        }
    })
    .await;
    routed(&r, port, "silent.apps.localhost").await;
    let res = reqwest::Client::new()
        .get(format!("{}/slow", r.url))
        .header("host", "silent.apps.localhost")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 504);
    assert_eq!(res.headers()["x-cf-routererror"], "endpoint_failure (request timeout)");
    assert_eq!(res.text().await.expect("body"), "504 Gateway Timeout: Request timed out.\n");
}

#[tokio::test]
async fn http_1_0_absolute_form_and_connection_close_are_answered() {
    let r = start().await;
    routed(&r, echo_backend().await, "old.apps.localhost").await;
    // HTTP/1.0: answered, then closed.
    let mut c = BufReader::new(connect(&r).await);
    c.get_mut()
        .write_all(b"GET /ten HTTP/1.0\r\nHost: old.apps.localhost\r\n\r\n")
        .await
        .expect("req");
    let mut all = String::new();
    c.read_to_string(&mut all).await.expect("read");
    assert!(
        all.starts_with("HTTP/1.")
            && all.contains(" 200 ")
            && all.contains("x-line: GET /ten HTTP/1.1"),
        "{all}"
    );
    // Absolute-form target: routed by its host.
    let mut c = BufReader::new(connect(&r).await);
    c.get_mut()
        .write_all(
            b"GET http://old.apps.localhost/abs?q=1 HTTP/1.1\r\nHost: old.apps.localhost\r\n\r\n",
        )
        .await
        .expect("req");
    let (head, _) = read_response(&mut c).await;
    assert!(head.contains("x-line: GET /abs?q=1 HTTP/1.1"), "{head}");
    // Connection: close is honoured.
    let mut c = BufReader::new(connect(&r).await);
    c.get_mut()
        .write_all(b"GET /bye HTTP/1.1\r\nHost: old.apps.localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("req");
    let (head, _) = read_response(&mut c).await;
    assert!(head.to_ascii_lowercase().contains("connection: close"), "{head}");
    let mut rest = Vec::new();
    assert_eq!(c.read_to_end(&mut rest).await.expect("eof"), 0, "closed after the response");
    // An empty Host: the router's 400, and the connection stays usable.
    let mut c = BufReader::new(connect(&r).await);
    c.get_mut().write_all(b"GET / HTTP/1.1\r\nHost: \r\n\r\nGET /again HTTP/1.1\r\nHost: old.apps.localhost\r\n\r\n").await.expect("req");
    let (head, body) = read_response(&mut c).await;
    assert!(
        head.starts_with("HTTP/1.1 400")
            && head.to_ascii_lowercase().contains("x-cf-routererror: empty_host"),
        "{head}"
    );
    assert_eq!(String::from_utf8_lossy(&body), "400 Bad Request: Request had empty Host header\n");
    let (head, _) = read_response(&mut c).await;
    assert!(head.contains("x-line: GET /again HTTP/1.1"), "{head}");
}

#[tokio::test]
async fn a_drain_finishes_requests_in_flight_and_closes_idle_connections() {
    let r = start_with(|c| c.drain_secs = 10).await;
    let port = raw_backend(|s| async move {
        let mut r = BufReader::new(s);
        while let Some((head, _)) = read_request(&mut r).await {
            if head.starts_with("GET /slow") {
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
            let _ =
                r.get_mut().write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\ndone").await;
        }
    })
    .await;
    routed(&r, port, "drain.apps.localhost").await;
    let mut idle = BufReader::new(connect(&r).await);
    idle.get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: drain.apps.localhost\r\n\r\n")
        .await
        .expect("req");
    read_response(&mut idle).await;
    let mut busy = BufReader::new(connect(&r).await);
    busy.get_mut()
        .write_all(b"GET /slow HTTP/1.1\r\nHost: drain.apps.localhost\r\n\r\n")
        .await
        .expect("req");
    tokio::time::sleep(Duration::from_millis(200)).await;
    r._shutdown.cancel();
    let (head, body) = read_response(&mut busy).await;
    assert!(
        head.starts_with("HTTP/1.1 200") && head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    assert_eq!(body, b"done");
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest))
        .await
        .expect("idle connection closed by the drain")
        .expect("read");
    assert_eq!(n, 0);
}
