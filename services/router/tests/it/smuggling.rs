//! The request-smuggling corpus, through the router to a backend that records exactly the
//! requests it receives (parsing strictly itself, each with the connection it came on):
//! CL.TE, TE.CL and TE.TE obfuscations, other ambiguous heads, pipelining, half-read
//! bodies, early and interim responses, HEAD/204/304 responses with bodies and malformed
//! backend responses. Each case checks what the client got and that the backend saw exactly
//! the requests the client meant — and no backend connection is reused out of step.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus::BusExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::{reg, start, wait_routed, Router};

const HOST: &str = "smuggle.apps.localhost";
const WAIT: Duration = Duration::from_secs(5);

/// A request as the backend received it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    /// Which backend connection it came on (0, 1, ... in accept order).
    conn: usize,
    method: String,
    path: String,
    /// The body, decoded; `None` when the backend answered without reading it.
    body: Option<Vec<u8>>,
}

/// What the backend does with a request, by its path.
struct Reply {
    bytes: Vec<u8>,
    /// Written 50 ms after `bytes`.
    late: Vec<u8>,
    /// Answer before reading the body.
    early: bool,
    /// Close after answering (without reading an unread body).
    close: bool,
}

fn reply(bytes: &[u8]) -> Reply {
    Reply { bytes: bytes.to_vec(), late: Vec::new(), early: false, close: false }
}

/// Faulty response heads, by name (`/bad/<name>`).
const BAD_RESPONSES: &[(&str, &[u8])] = &[
    ("cl-te", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nok"),
    ("te-cl", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\nok"),
    ("cl-cl", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"),
    ("cl-differ", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"),
    ("cl-sign", b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok"),
    ("te-x", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"),
    ("te-list", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\nok"),
    (
        "te-dup",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    ("fold", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\n folded\r\n\r\nok"),
    ("bare-lf", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"),
    ("nul", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: a\0b\r\n\r\nok"),
    ("chunk-size", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n"),
    ("chunk-crlf", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n"),
    ("status-101", b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
];

fn script(method: &str, path: &str, body_len: usize) -> Reply {
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    match path {
        "/early" => Reply { early: true, ..reply(ok) },
        "/early-close" => Reply { early: true, close: true, ..reply(ok) },
        "/1xx" => reply(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ),
        "/head-body" => reply(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
        "/head-body-late" => Reply {
            late: b"hello".to_vec(),
            ..reply(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
        },
        "/204-body" => reply(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello"),
        "/304-body" => reply(
            b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        "/extra" => reply(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil",
        ),
        "/extra-late" => Reply {
            late: b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil".to_vec(),
            ..reply(ok)
        },
        "/short" => Reply { close: true, ..reply(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello") },
        "/bad-chunk-later" => Reply {
            late: b"5\r\nworldXX0\r\n\r\n".to_vec(),
            ..reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        },
        _ => {
            if let Some((_, raw)) =
                path.strip_prefix("/bad/").and_then(|n| BAD_RESPONSES.iter().find(|(k, _)| *k == n))
            {
                return reply(raw);
            }
            let text = format!("{method} {path} {body_len}");
            reply(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}", text.len()).as_bytes())
        }
    }
}

/// The backend: parses every request strictly and records it, answering by [`script`].
struct Recorder {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Connections the router closed.
    closed: Arc<Mutex<Vec<usize>>>,
    events: Arc<Events>,
}

/// Counts of what the backend did, for tests to wait on.
#[derive(Default)]
struct Events {
    /// Request heads read.
    heads: AtomicUsize,
    /// Late parts of replies written.
    lates: AtomicUsize,
}

impl Events {
    /// Wait until `count` of them passed `than`.
    async fn past(&self, what: &str, count: impl Fn(&Self) -> usize, than: usize) {
        testkit::eventually(what, WAIT, || async { (count(self) > than).then_some(()) })
            .await
            .expect(what);
    }
}

impl Recorder {
    async fn start() -> Self {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = l.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(Mutex::new(Vec::new()));
        let events = Arc::new(Events::default());
        let (log, gone, ev) = (seen.clone(), closed.clone(), events.clone());
        let conns = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let conn = conns.fetch_add(1, Ordering::Relaxed);
                let (log, gone, ev) = (log.clone(), gone.clone(), ev.clone());
                tokio::spawn(async move {
                    if serve(Wire::new(s), conn, log, ev).await == Ended::RouterClosed {
                        gone.lock().expect("closed").push(conn);
                    }
                });
            }
        });
        Self { port, seen, closed, events }
    }

    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().expect("log"))
    }
}

/// A socket with a read buffer, for both test ends.
struct Wire {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Wire {
    fn new(s: TcpStream) -> Self {
        Self { s, buf: Vec::new() }
    }

    /// Read more; false on EOF or error.
    async fn more(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match tokio::time::timeout(WAIT, self.s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Ok(_) => false,
            Err(_) => {
                panic!("nothing read in {WAIT:?}; have {:?}", String::from_utf8_lossy(&self.buf))
            }
        }
    }

    /// Exactly `n` bytes, or `None` on EOF first.
    async fn exact(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if !self.more().await {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }

    /// One CRLF-terminated line (without the CRLF); `None` on EOF or a bare LF.
    async fn line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                return (line.pop() == Some(b'\r')).then_some(line);
            }
            if !self.more().await {
                return None;
            }
        }
    }

    /// A chunked body, strictly; `None` when it breaks off or breaks the rules.
    async fn chunked(&mut self) -> Option<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.line().await?;
            let size = line.split(|b| *b == b';').next()?;
            let n = usize::from_str_radix(std::str::from_utf8(size).ok()?, 16).ok()?;
            if n == 0 {
                while !self.line().await?.is_empty() {}
                return Some(body);
            }
            body.extend(self.exact(n).await?);
            if self.exact(2).await? != b"\r\n" {
                return None;
            }
        }
    }

    /// The next message head: its first line's three words and its fields; `None` on EOF.
    async fn head(&mut self, response: bool) -> Option<Head> {
        loop {
            let mut fields = [httparse::EMPTY_HEADER; 64];
            let parsed = if response {
                let mut r = httparse::Response::new(&mut fields);
                match r.parse(&self.buf) {
                    Ok(httparse::Status::Complete(n)) => {
                        Some((n, vec![r.code.unwrap_or(0).to_string()], collect(r.headers)))
                    }
                    Ok(httparse::Status::Partial) => None,
                    Err(e) => panic!("bad response {e}: {:?}", String::from_utf8_lossy(&self.buf)),
                }
            } else {
                let mut r = httparse::Request::new(&mut fields);
                match r.parse(&self.buf) {
                    Ok(httparse::Status::Complete(n)) => Some((
                        n,
                        vec![r.method.unwrap_or("").to_owned(), r.path.unwrap_or("").to_owned()],
                        collect(r.headers),
                    )),
                    Ok(httparse::Status::Partial) => None,
                    Err(e) => panic!("bad request {e}: {:?}", String::from_utf8_lossy(&self.buf)),
                }
            };
            if let Some((n, line, fields)) = parsed {
                assert!(
                    !self.buf[..n].windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
                    "bare LF in {:?}",
                    String::from_utf8_lossy(&self.buf[..n])
                );
                self.buf.drain(..n);
                return Some(Head { line, fields });
            }
            if !self.more().await {
                return None;
            }
        }
    }
}

fn collect(h: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    h.iter()
        .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
        .collect()
}

struct Head {
    line: Vec<String>,
    fields: Vec<(String, String)>,
}

impl Head {
    fn all(&self, name: &str) -> Vec<&str> {
        self.fields.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// The body's framing, which must be unambiguous: `Some(None)` chunked, `Some(Some(n))`
    /// a length.
    fn framing(&self) -> Option<Option<usize>> {
        let (cl, te) = (self.all("content-length"), self.all("transfer-encoding"));
        match (cl.as_slice(), te.as_slice()) {
            ([], []) => Some(Some(0)),
            ([n], []) => n.parse().ok().map(Some),
            ([], ["chunked"]) => Some(None),
            _ => None,
        }
    }
}

#[derive(PartialEq, Eq)]
enum Ended {
    RouterClosed,
    Other,
}

async fn serve(mut w: Wire, conn: usize, log: Arc<Mutex<Vec<Seen>>>, ev: Arc<Events>) -> Ended {
    let ended = handle(&mut w, conn, log, &ev).await;
    if ended.is_none() && w.buf.is_empty() {
        Ended::RouterClosed
    } else {
        Ended::Other
    }
}

/// Serve requests until the router closes (`None`) or the script ends the connection.
async fn handle(w: &mut Wire, conn: usize, log: Arc<Mutex<Vec<Seen>>>, ev: &Events) -> Option<()> {
    while let Some(head) = w.head(false).await {
        ev.heads.fetch_add(1, Ordering::SeqCst);
        let (method, path) = (head.line[0].clone(), head.line[1].clone());
        let Some(framing) = head.framing() else {
            log.lock().expect("log").push(Seen {
                conn,
                method: "AMBIGUOUS".into(),
                path,
                body: None,
            });
            return Some(());
        };
        let r = script(&method, &path, 0);
        if r.early {
            if w.s.write_all(&r.bytes).await.is_err() {
                return Some(());
            }
            if r.close {
                log.lock().expect("log").push(Seen { conn, method, path, body: None });
                return Some(());
            }
        }
        let body = match framing {
            Some(n) => w.exact(n).await,
            None => w.chunked().await,
        };
        // A request whose body broke off is not a request.
        let body = body?;
        let len = body.len();
        log.lock().expect("log").push(Seen {
            conn,
            method: method.clone(),
            path: path.clone(),
            body: Some(body),
        });
        if !r.early {
            let r = script(&method, &path, len);
            if w.s.write_all(&r.bytes).await.is_err() {
                return Some(());
            }
            if !r.late.is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if w.s.write_all(&r.late).await.is_err() {
                    return Some(());
                }
                ev.lates.fetch_add(1, Ordering::SeqCst);
            }
            if r.close {
                return Some(());
            }
        }
    }
    None
}

/// A response as the client got it.
#[derive(Debug)]
struct Got {
    status: u16,
    fields: Vec<(String, String)>,
    body: Vec<u8>,
    /// The body ended where its framing said.
    complete: bool,
}

impl Got {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

struct Client(Wire);

impl Client {
    async fn send(r: &Router, raw: &[u8]) -> Self {
        let s = TcpStream::connect(r.url.trim_start_matches("http://")).await.expect("connect");
        let mut c = Self(Wire::new(s));
        c.write(raw).await;
        c
    }

    async fn write(&mut self, raw: &[u8]) {
        self.0.s.write_all(raw).await.expect("write");
    }

    /// The next response (interim ones too); `None` when the router closed first.
    async fn response(&mut self, head_request: bool) -> Option<Got> {
        let head = self.0.head(true).await?;
        let status: u16 = head.line[0].parse().expect("status");
        let mut got = Got { status, fields: head.fields.clone(), body: Vec::new(), complete: true };
        if head_request || status < 200 || status == 204 || status == 304 {
            return Some(got);
        }
        match head.framing().expect("the router's framing is unambiguous") {
            Some(n) if head.all("content-length").is_empty() => {
                // Until close.
                assert_eq!(n, 0);
                while self.0.more().await {}
                got.body = std::mem::take(&mut self.0.buf);
            }
            Some(n) => match self.0.exact(n).await {
                Some(b) => got.body = b,
                None => (got.body, got.complete) = (std::mem::take(&mut self.0.buf), false),
            },
            None => match self.0.chunked().await {
                Some(b) => got.body = b,
                None => got.complete = false,
            },
        }
        Some(got)
    }

    /// The router closed the connection, with nothing more sent.
    async fn closed(&mut self) -> bool {
        !self.0.more().await && self.0.buf.is_empty()
    }
}

async fn setup() -> (Router, Recorder) {
    let r = start().await;
    let b = Recorder::start().await;
    r.bus.publish_json("router.register", &reg(b.port, HOST, "0")).await.expect("pub");
    wait_routed(&r, HOST).await;
    b.take();
    (r, b)
}

fn req(method: &str, path: &str) -> String {
    format!("{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n")
}

fn echo(method: &str, path: &str, len: usize) -> String {
    format!("{method} {path} {len}")
}

/// What the backend saw, without connection numbers.
fn requests(seen: &[Seen]) -> Vec<(String, String, Option<Vec<u8>>)> {
    seen.iter().map(|s| (s.method.clone(), s.path.clone(), s.body.clone())).collect()
}

fn meant(list: &[(&str, &str, Option<&str>)]) -> Vec<(String, String, Option<Vec<u8>>)> {
    list.iter()
        .map(|(m, p, b)| ((*m).to_owned(), (*p).to_owned(), b.map(|b| b.as_bytes().to_vec())))
        .collect()
}

/// Requests that could be framed two ways (or are not clear HTTP/1.1), by name.
fn ambiguous() -> Vec<(&'static str, String)> {
    let h = format!("Host: {HOST}\r\n");
    let te = |v: &str| format!("POST /te HTTP/1.1\r\n{h}{v}\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    let mut cases = vec![
        ("CL.TE", format!("POST / HTTP/1.1\r\n{h}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG")),
        ("TE.CL", format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n")),
        ("TE xchunked", te("Transfer-Encoding: xchunked")),
        ("TE chunked, identity", te("Transfer-Encoding: chunked, identity")),
        ("TE gzip, chunked", te("Transfer-Encoding: gzip, chunked")),
        ("TE identity", te("Transfer-Encoding: identity")),
        ("TE duplicated", te("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked")),
        ("TE chunked + identity", te("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity")),
        ("TE space before colon", te("Transfer-Encoding : chunked")),
        ("TE tab before colon", te("Transfer-Encoding\t: chunked")),
        ("TE folded", te("Transfer-Encoding: identity\r\n chunked")),
        ("TE line folded in", te("X-A: 1\r\n Transfer-Encoding: chunked")),
        ("TE vertical tab", te("Transfer-Encoding: \x0bchunked")),
        ("TE form feed", te("Transfer-Encoding: \x0cchunked")),
        ("TE in HTTP/1.0", format!("POST /te HTTP/1.0\r\n{h}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")),
        ("CL repeated", format!("POST / HTTP/1.1\r\n{h}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc")),
        ("CL differing", format!("POST / HTTP/1.1\r\n{h}Content-Length: 3\r\nContent-Length: 30\r\n\r\nabc")),
        ("CL list", format!("POST / HTTP/1.1\r\n{h}Content-Length: 3, 3\r\n\r\nabc")),
        ("CL sign", format!("POST / HTTP/1.1\r\n{h}Content-Length: +3\r\n\r\nabc")),
        ("bare LF", format!("GET / HTTP/1.1\r\n{h}X-A: 1\nContent-Length: 3\r\n\r\nabc")),
        ("NUL", format!("GET / HTTP/1.1\r\n{h}X-A: a\0b\r\n\r\n")),
        ("Host twice", format!("GET / HTTP/1.1\r\n{h}Host: other.apps.localhost\r\n\r\n")),
    ];
    let huge = format!("GET / HTTP/1.1\r\n{h}X-Big: {}\r\n\r\n", "a".repeat(1024 * 1024));
    cases.push(("head too large", huge));
    cases
}

#[tokio::test]
async fn ambiguous_requests_are_refused_and_never_reach_the_backend() {
    let (r, b) = setup().await;
    for (name, raw) in ambiguous() {
        // A request follows on the same connection: it must not be served either.
        let mut c = Client::send(&r, format!("{raw}{}", req("GET", "/after")).as_bytes()).await;
        let got = c.response(false).await.unwrap_or_else(|| panic!("{name}: no answer"));
        let want = if name == "head too large" { 431 } else { 400 };
        assert_eq!(got.status, want, "{name}: {}", got.text());
        assert_eq!(got.field("connection"), Some("close"), "{name}");
        assert_eq!(got.field("x-cf-routererror"), None, "{name}");
        assert!(got.text().starts_with(&format!("{want} ")), "{name}: {}", got.text());
        assert!(c.closed().await, "{name}: connection left open");
    }
    assert_eq!(b.take(), vec![], "the backend saw requests");
}

#[tokio::test]
async fn clear_requests_reach_the_backend_exactly_as_meant() {
    let (r, b) = setup().await;
    let h = format!("Host: {HOST}\r\n");
    // Pipelined, with a body of known length in the middle.
    let mut c = Client::send(
        &r,
        format!(
            "{}POST /2 HTTP/1.1\r\n{h}Content-Length: 3\r\n\r\nabc{}",
            req("GET", "/1"),
            req("GET", "/3")
        )
        .as_bytes(),
    )
    .await;
    for want in [echo("GET", "/1", 0), echo("POST", "/2", 3), echo("GET", "/3", 0)] {
        assert_eq!(c.response(false).await.expect("response").text(), want);
    }
    // A request inside a body is body.
    let inner = req("GET", "/admin");
    let mut c = Client::send(
        &r,
        format!(
            "POST /body HTTP/1.1\r\n{h}Content-Length: {}\r\n\r\n{inner}{}",
            inner.len(),
            req("GET", "/4")
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(c.response(false).await.expect("r").text(), echo("POST", "/body", inner.len()));
    assert_eq!(c.response(false).await.expect("r").text(), echo("GET", "/4", 0));
    // Chunked bodies (with blanks around the value, as OWS allows), pipelined.
    for te in [
        "Transfer-Encoding: chunked",
        "Transfer-Encoding:\tchunked",
        "transfer-encoding:  CHUNKED ",
    ] {
        let raw = format!(
            "POST /te HTTP/1.1\r\n{h}{te}\r\n\r\n5\r\nhello\r\n{:x}\r\n{inner}\r\n0\r\n\r\n{}",
            inner.len(),
            req("GET", "/5")
        );
        let mut c = Client::send(&r, raw.as_bytes()).await;
        assert_eq!(
            c.response(false).await.expect("r").text(),
            echo("POST", "/te", 5 + inner.len()),
            "{te}"
        );
        assert_eq!(c.response(false).await.expect("r").text(), echo("GET", "/5", 0), "{te}");
    }
    let with_inner = format!("hello{inner}");
    let mut want = meant(&[
        ("GET", "/1", Some("")),
        ("POST", "/2", Some("abc")),
        ("GET", "/3", Some("")),
        ("POST", "/body", Some(inner.as_str())),
        ("GET", "/4", Some("")),
    ]);
    for _ in 0..3 {
        want.extend(meant(&[("POST", "/te", Some(with_inner.as_str())), ("GET", "/5", Some(""))]));
    }
    assert_eq!(requests(&b.take()), want);
}

#[tokio::test]
async fn malformed_chunked_request_bodies_never_complete_a_request() {
    let (r, b) = setup().await;
    let h = format!("Host: {HOST}\r\n");
    let bodies = [
        "5\r\nhelloXX0\r\n\r\n",
        "zz\r\nhello\r\n0\r\n\r\n",
        "5\nhello\r\n0\r\n\r\n",
        "5;a\0b\r\nhello\r\n0\r\n\r\n",
        "0\r\n folded: x\r\n\r\n",
        "0\r\nx: 1\n\r\n",
        "11111111111111111\r\n",
        "-5\r\nhello\r\n0\r\n\r\n",
    ];
    for body in bodies {
        let raw = format!(
            "POST /bad HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n{body}{}",
            req("GET", "/smuggled")
        );
        let mut c = Client::send(&r, raw.as_bytes()).await;
        let got = c.response(false).await.expect("answer");
        assert_eq!(got.status, 400, "{body:?}: {}", got.text());
        assert_eq!(got.field("connection"), Some("close"), "{body:?}");
        assert!(c.closed().await, "{body:?}");
    }
    // The same after the head went on to the backend: its connection is dropped.
    let heads = b.events.heads.load(Ordering::SeqCst);
    let mut c = Client::send(
        &r,
        format!("POST /bad HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            .as_bytes(),
    )
    .await;
    b.events.past("head forwarded", |e| e.heads.load(Ordering::SeqCst), heads).await;
    c.write(format!("5\r\nworldXX0\r\n\r\n{}", req("GET", "/smuggled")).as_bytes()).await;
    let got = c.response(false).await.expect("answer");
    assert_eq!(got.status, 400, "{}", got.text());
    assert!(c.closed().await);
    assert_eq!(b.take(), vec![], "the backend saw a request");
    testkit::eventually("backend connection closed", WAIT, || async {
        (!b.closed.lock().expect("closed").is_empty()).then_some(())
    })
    .await
    .expect("closed");
}

#[tokio::test]
async fn half_read_bodies_leave_nothing_behind() {
    let (r, b) = setup().await;
    // The client promises ten bytes, sends five and goes away.
    let c = Client::send(
        &r,
        format!("POST /half HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 10\r\n\r\n12345")
            .as_bytes(),
    )
    .await;
    drop(c);
    // The backend promises ten bytes, sends five and goes away.
    let mut c = Client::send(&r, req("GET", "/short").as_bytes()).await;
    let got = c.response(false).await.expect("head");
    assert_eq!((got.status, got.complete, got.text().as_str()), (200, false, "hello"));
    assert!(c.closed().await);
    let mut c = Client::send(&r, req("GET", "/after").as_bytes()).await;
    assert_eq!(c.response(false).await.expect("r").text(), echo("GET", "/after", 0));
    let seen = b.take();
    assert_eq!(requests(&seen), meant(&[("GET", "/short", Some("")), ("GET", "/after", Some(""))]));
    assert_ne!(seen[0].conn, seen[1].conn, "a connection closed mid-body was reused");
}

#[tokio::test]
async fn early_and_interim_responses_keep_both_sides_in_step() {
    let (r, b) = setup().await;
    let h = format!("Host: {HOST}\r\n");
    // Answered before the body was read; the backend reads it after.
    let heads = b.events.heads.load(Ordering::SeqCst);
    let mut c = Client::send(
        &r,
        format!("POST /early HTTP/1.1\r\n{h}Content-Length: 5\r\n\r\n").as_bytes(),
    )
    .await;
    b.events.past("head forwarded", |e| e.heads.load(Ordering::SeqCst), heads).await;
    c.write(format!("hello{}", req("GET", "/next")).as_bytes()).await;
    assert_eq!(c.response(false).await.expect("r").text(), "ok");
    assert_eq!(c.response(false).await.expect("r").text(), echo("GET", "/next", 0));
    // Answered before the body was read, then closed.
    let mut c = Client::send(
        &r,
        format!("POST /early-close HTTP/1.1\r\n{h}Content-Length: 5\r\n\r\nhello").as_bytes(),
    )
    .await;
    assert_eq!(c.response(false).await.expect("r").text(), "ok");
    // Interim responses are passed on, the final one follows.
    let mut c =
        Client::send(&r, format!("{}{}", req("GET", "/1xx"), req("GET", "/next")).as_bytes()).await;
    let statuses = [100, 103, 200];
    for want in statuses {
        let got = c.response(false).await.expect("r");
        assert_eq!(got.status, want);
        if want == 103 {
            assert_eq!(got.field("link"), Some("</s.css>"));
        }
        if want == 200 {
            assert_eq!(got.text(), "ok");
        }
    }
    assert_eq!(c.response(false).await.expect("r").text(), echo("GET", "/next", 0));
    assert_eq!(
        requests(&b.take()),
        meant(&[
            ("POST", "/early", Some("hello")),
            ("GET", "/next", Some("")),
            ("POST", "/early-close", None),
            ("GET", "/1xx", Some("")),
            ("GET", "/next", Some("")),
        ])
    );
}

#[tokio::test]
async fn bodies_a_response_should_not_have_never_reach_the_next_response() {
    let (r, b) = setup().await;
    let cases = [
        ("HEAD", "/head-body"),
        ("HEAD", "/head-body-late"),
        ("GET", "/204-body"),
        ("GET", "/304-body"),
        ("GET", "/extra"),
        ("GET", "/extra-late"),
    ];
    let mut want = Vec::new();
    for (method, path) in cases {
        let lates = b.events.lates.load(Ordering::SeqCst);
        let mut c = Client::send(&r, req(method, path).as_bytes()).await;
        let got = c.response(method == "HEAD").await.expect("r");
        assert!([200, 204, 304].contains(&got.status), "{path}: {}", got.status);
        if path == "/204-body" {
            assert_eq!(got.field("content-length"), None, "{path}");
        }
        if path.starts_with("/extra") {
            assert_eq!(got.text(), "ok");
        }
        // Once the backend's surplus is sent, the next request, on the same client
        // connection, gets its own answer.
        if path.ends_with("-late") {
            b.events.past("surplus sent", |e| e.lates.load(Ordering::SeqCst), lates).await;
        }
        c.write(req("GET", "/next").as_bytes()).await;
        assert_eq!(
            c.response(false).await.expect("next").text(),
            echo("GET", "/next", 0),
            "after {path}"
        );
        want.extend(meant(&[(method, path, Some("")), ("GET", "/next", Some(""))]));
    }
    let seen = b.take();
    assert_eq!(requests(&seen), want);
    for pair in seen.chunks(2) {
        assert_ne!(
            pair[0].conn, pair[1].conn,
            "{} left bytes on a reused connection",
            pair[0].path
        );
    }
}

#[tokio::test]
async fn malformed_backend_responses_are_502_and_their_connections_dropped() {
    let (r, b) = setup().await;
    // A body that breaks its framing after the head went out: the client's connection
    // closes before the body's end, and so does the backend's.
    let mut c = Client::send(&r, req("GET", "/bad-chunk-later").as_bytes()).await;
    let got = c.response(false).await.expect("head");
    assert_eq!((got.status, got.complete), (200, false));
    let mut c = Client::send(&r, req("GET", "/next").as_bytes()).await;
    assert_eq!(c.response(false).await.expect("r").text(), echo("GET", "/next", 0));
    let seen = b.take();
    assert_eq!(
        requests(&seen),
        meant(&[("GET", "/bad-chunk-later", Some("")), ("GET", "/next", Some(""))])
    );
    assert_ne!(seen[0].conn, seen[1].conn, "a connection with a broken body was reused");
    for (name, _) in BAD_RESPONSES {
        // A new backend and route each time: a failed backend is benched.
        let b = Recorder::start().await;
        let host = format!("{name}.bad.apps.localhost");
        r.bus.publish_json("router.register", &reg(b.port, &host, "0")).await.expect("pub");
        wait_routed(&r, &host).await;
        b.take();
        let path = format!("/bad/{name}");
        let raw = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        let mut c = Client::send(&r, raw.as_bytes()).await;
        let got = c.response(false).await.expect("r");
        assert_eq!(got.status, 502, "{name}: {}", got.text());
        assert_eq!(got.field("x-cf-routererror"), Some("endpoint_failure"), "{name}");
        assert!(c.closed().await, "{name}");
        let seen = b.take();
        assert_eq!(requests(&seen), meant(&[("GET", &path, Some(""))]), "{name}");
        // The backend connection is closed, not kept for another request.
        let conn = seen[0].conn;
        testkit::eventually(&format!("{name}: backend connection closed"), WAIT, || async {
            b.closed.lock().expect("closed").contains(&conn).then_some(())
        })
        .await
        .expect("closed");
    }
}
