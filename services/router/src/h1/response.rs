//! The backend's side of the HTTP/1.1 path: response heads read under the same strict
//! framing rules as requests ([`super::framing`]; a fault is a 502 and the connection is
//! dropped), rewritten in place (hop-by-hop fields out, sticky cookie in), and bodies copied
//! as they arrive in the backend's framing, checked as they go. A backend connection goes
//! back to the pool only when its response ended exactly where its framing said.

use axum::http::{self, header, HeaderMap, HeaderValue, StatusCode};
use bytes::{Buf as _, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::chunked::Chunks;
use super::framing::{check_line_ends, BodyLen, Lengths};
use super::{Next, BUF};
use crate::access;
use crate::proxy::{Ctx, Proxy};
use crate::sticky;
use crate::table::Endpoint;

/// Largest response head; a bigger one is a backend failure.
const MAX_HEAD: usize = 64 * 1024;
/// Most fields in a response head; more is a backend failure.
const MAX_HEADERS: usize = 100;
/// Fields a response head is first parsed for.
const FEW_HEADERS: usize = 16;
/// Interim (1xx) responses passed on before the final one; more is a backend failure.
const MAX_INTERIM: usize = 16;

pub(super) enum ReadErr {
    /// The connection closed (or failed) before a response head.
    Closed(String),
    /// The backend did not acknowledge what was sent within the ack timeout (its host is
    /// gone): it got none of it.
    Unacknowledged(std::io::Error),
    /// Not a valid HTTP/1.x response.
    Bad(String),
    Client,
}

/// A response head from the backend.
pub(super) struct ResHead {
    pub status: u16,
    /// The head as the client gets it (without the final CRLF).
    pub head: Vec<u8>,
    pub framing: Framing,
    /// Whether the backend connection may carry another request afterwards.
    pub reusable: bool,
    pub sent: Option<u64>,
    pub set_cookies: Vec<HeaderValue>,
    /// Bytes at the start of the read buffer that belong to the body (checked).
    pub first: usize,
    /// What is left of the body after them.
    pub rest: Option<Body>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the backend closes.
    Close,
}

pub(super) enum Body {
    Length(u64),
    Chunked(Chunks),
    UntilClose,
}

/// Read the final response head (passing interim 1xx heads on to the client) and check the
/// body bytes that came with it. The final head is written into `spare`'s allocation (the
/// connection's, handed back by [`respond`]); `spare` is left as it was until then.
pub(super) async fn read_response(
    client: &mut TcpStream,
    backend: &mut TcpStream,
    rbuf: &mut BytesMut,
    head_request: bool,
    spare: &mut Vec<u8>,
) -> Result<ResHead, ReadErr> {
    let mut interim = 0;
    loop {
        // Nothing read yet (the common first pass): nothing to parse.
        let parsed =
            if rbuf.is_empty() { None } else { parse_response(rbuf, head_request, spare)? };
        if let Some(mut res) = parsed {
            if (100..200).contains(&res.status) {
                // 1xx interim (not 101, refused in parsing): pass on and read on.
                interim += 1;
                if interim > MAX_INTERIM {
                    return Err(ReadErr::Bad("too many interim responses".into()));
                }
                res.head.extend_from_slice(b"\r\n");
                client.write_all(&res.head).await.map_err(|_| ReadErr::Client)?;
                continue;
            }
            (res.first, res.rest) = body_start(res.framing, rbuf)?;
            return Ok(res);
        }
        if rbuf.len() >= MAX_HEAD {
            return Err(ReadErr::Bad("response head too large".into()));
        }
        if rbuf.capacity() - rbuf.len() < 1024 {
            rbuf.reserve(BUF);
        }
        match backend.read_buf(rbuf).await {
            Ok(0) => return Err(ReadErr::Closed("connection closed before a response".into())),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(ReadErr::Unacknowledged(e))
            }
            Err(e) => return Err(ReadErr::Closed(e.to_string())),
            Ok(_) => {}
        }
    }
}

/// How much of `rbuf` is body, and what of the body is still to come.
fn body_start(framing: Framing, rbuf: &[u8]) -> Result<(usize, Option<Body>), ReadErr> {
    Ok(match framing {
        Framing::None => (0, None),
        Framing::Length(n) => {
            let have = usize::try_from(n).unwrap_or(usize::MAX).min(rbuf.len());
            (have, ((have as u64) < n).then(|| Body::Length(n - have as u64)))
        }
        Framing::Chunked => {
            let mut scan = Chunks::default();
            match scan.feed(rbuf).map_err(|e| ReadErr::Bad(e.to_string()))? {
                Some(end) => (end, None),
                None => (rbuf.len(), Some(Body::Chunked(scan))),
            }
        }
        Framing::Close => (rbuf.len(), Some(Body::UntilClose)),
    })
}

/// Parse (and consume) a complete response head at the start of `rbuf`; a final one is
/// written into `spare`'s allocation.
pub(super) fn parse_response(
    rbuf: &mut BytesMut,
    head_request: bool,
    spare: &mut Vec<u8>,
) -> Result<Option<ResHead>, ReadErr> {
    // Most responses have a few fields: a small array is tried first (httparse initialises
    // the whole array for responses), the full one only for a head with more.
    let mut few = [httparse::EMPTY_HEADER; FEW_HEADERS];
    let mut many;
    let mut res = httparse::Response::new(&mut few);
    let mut parsed = res.parse(rbuf);
    if parsed == Err(httparse::Error::TooManyHeaders) {
        many = [httparse::EMPTY_HEADER; MAX_HEADERS];
        res = httparse::Response::new(&mut many);
        parsed = res.parse(rbuf);
    }
    let len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ReadErr::Bad(format!("invalid response: {e}"))),
    };
    check_line_ends(&rbuf[..len]).map_err(|f| ReadErr::Bad(f.to_string()))?;
    let status = res.code.unwrap_or(0);
    if status == 101 || !(100..=999).contains(&status) {
        return Err(ReadErr::Bad(format!("unexpected status {status}")));
    }
    let version = res.version.unwrap_or(1);
    // No body whatever the fields say; 1xx and 204 must not even carry framing fields,
    // so the client never sees them.
    let bodiless = head_request || status < 200 || status == 204 || status == 304;
    let no_fields = status < 200 || status == 204;
    // Room for the body bytes read with the head too: they go out in the same write. An
    // interim head gets a buffer of its own (the request's may still be needed for a retry).
    let mut head = if status >= 200 { std::mem::take(spare) } else { Vec::new() };
    head.clear();
    head.reserve(rbuf.len() + 160);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(&itoa3(status));
    head.push(b' ');
    head.extend_from_slice(res.reason.unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    let (keep_alive, listed) = connection_options(res.headers, version == 1);
    let mut lengths = Lengths::default();
    let mut set_cookies = Vec::new();
    for h in res.headers.iter() {
        let name = h.name;
        // Framing fields are checked first: `Connection` cannot hide them.
        let framing = lengths.field(name, h.value).map_err(|f| ReadErr::Bad(f.to_string()))?;
        if (framing && no_fields)
            || (!framing
                && (["connection", "keep-alive", "proxy-connection"]
                    .iter()
                    .any(|n| name.eq_ignore_ascii_case(n))
                    || listed.iter().any(|l| l.eq_ignore_ascii_case(name.as_bytes()))))
        {
            continue;
        }
        if name.eq_ignore_ascii_case("set-cookie") {
            if let Ok(v) = HeaderValue::from_bytes(h.value) {
                set_cookies.push(v);
            }
        }
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(h.value);
        head.extend_from_slice(b"\r\n");
    }
    let declared = lengths.finish(version == 0).map_err(|f| ReadErr::Bad(f.to_string()))?;
    let framing = match declared {
        _ if bodiless => Framing::None,
        BodyLen::Chunked => Framing::Chunked,
        BodyLen::Length(n) => Framing::Length(n),
        BodyLen::Unframed => Framing::Close,
    };
    // A bodiless response that declares a body may be followed by one anyway: its
    // connection is not trusted with another request.
    let declares_none = matches!(declared, BodyLen::Unframed | BodyLen::Length(0));
    rbuf.advance(len);
    Ok(Some(ResHead {
        status,
        head,
        framing,
        reusable: keep_alive && framing != Framing::Close && (!bodiless || declares_none),
        sent: lengths.length(),
        set_cookies,
        first: 0,
        rest: None,
    }))
}

/// Whether the connection stays open after the response, and the fields `Connection`
/// names (hop-by-hop, not passed on).
fn connection_options<'h>(headers: &[httparse::Header<'h>], http11: bool) -> (bool, Vec<&'h [u8]>) {
    let mut keep_alive = http11;
    let mut listed: Vec<&[u8]> = Vec::new();
    for h in headers.iter().filter(|h| h.name.eq_ignore_ascii_case("connection")) {
        for token in h.value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
            if token.eq_ignore_ascii_case(b"close") {
                keep_alive = false;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                keep_alive = true;
            } else if !token.is_empty() {
                listed.push(token);
            }
        }
    }
    (keep_alive, listed)
}

/// A status code (100..=999) as its three digits.
fn itoa3(n: u16) -> [u8; 3] {
    [b'0' + (n / 100 % 10) as u8, b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]
}

/// Write the response to the client: head (with the sticky cookie), then the body as it
/// comes; the backend connection goes back to the pool when it can carry another request.
#[allow(clippy::too_many_arguments)]
pub(super) async fn respond(
    p: &Proxy,
    client: &mut TcpStream,
    backend: TcpStream,
    rbuf: &mut BytesMut,
    res: ResHead,
    parts: &http::request::Parts,
    ctx: &Ctx,
    ep: &Endpoint,
    sticky: Option<String>,
    keep: bool,
    spare: &mut Vec<u8>,
) -> Next {
    let mut head = res.head;
    if !res.set_cookies.is_empty() || sticky.is_some() {
        let mut cookies = HeaderMap::new();
        for v in &res.set_cookies {
            cookies.append(header::SET_COOKIE, v.clone());
        }
        let before = cookies.len();
        sticky::add_cookie(&mut cookies, &ep.instance_id, sticky.as_deref(), false);
        for v in cookies.get_all(header::SET_COOKIE).iter().skip(before) {
            head.extend_from_slice(b"set-cookie: ");
            head.extend_from_slice(v.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
    }
    let keep = keep && res.framing != Framing::Close;
    if !keep {
        head.extend_from_slice(b"connection: close\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let times = ctx.times();
    // Body bytes that came with the head go out in the same write.
    head.extend_from_slice(&rbuf[..res.first]);
    rbuf.advance(res.first);
    let next = if client.write_all(&head).await.is_err() {
        Next::Close
    } else if let Some(rest) = res.rest {
        finish_body(client, backend, rbuf, rest, p, ep, res.reusable).await
    } else {
        if res.reusable && rbuf.is_empty() {
            p.pool.put(&ep.addr, backend);
        }
        Next::KeepAlive
    };
    // Counted and logged once the response is out (or the client gone): the client does
    // not wait for the bookkeeping. The times are those of the response head, as on the
    // hyper path.
    let status = StatusCode::from_u16(res.status).unwrap_or(StatusCode::BAD_GATEWAY);
    p.metrics.response(res.status, times.0.as_secs_f64());
    p.metrics.router_latency.observe(times.1.as_secs_f64());
    access::log(p, parts, ctx, ep, status, res.sent, times);
    // The head's allocation serves the connection's next request.
    *spare = head;
    match next {
        Next::KeepAlive if keep => Next::KeepAlive,
        _ => Next::Close,
    }
}

/// Copy the rest of a response body; `KeepAlive` when it ended cleanly (the backend
/// connection pooled when `reusable` and nothing came after the body). A body that breaks
/// its framing, or ends early, closes both connections.
async fn finish_body(
    client: &mut TcpStream,
    mut backend: TcpStream,
    rbuf: &mut BytesMut,
    mut body: Body,
    p: &Proxy,
    ep: &Endpoint,
    reusable: bool,
) -> Next {
    loop {
        rbuf.clear();
        if rbuf.capacity() < BUF {
            rbuf.reserve(BUF);
        }
        let n = match backend.read_buf(rbuf).await {
            Ok(0) | Err(_) => return Next::Close,
            Ok(n) => n,
        };
        let (take, done) = match &mut body {
            Body::Length(left) => {
                let take = usize::try_from(*left).unwrap_or(usize::MAX).min(n);
                *left -= take as u64;
                (take, *left == 0)
            }
            Body::Chunked(scan) => match scan.feed(rbuf) {
                Ok(Some(end)) => (end, true),
                Ok(None) => (n, false),
                Err(e) => {
                    tracing::warn!(backend = %ep.addr, error = %e, "backend sent a malformed chunked body");
                    return Next::Close;
                }
            },
            Body::UntilClose => (n, false),
        };
        if client.write_all(&rbuf[..take]).await.is_err() {
            return Next::Close;
        }
        if done {
            if reusable && take == n {
                p.pool.put(&ep.addr, backend);
            }
            return Next::KeepAlive;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8], head_request: bool) -> (Result<Option<ResHead>, ReadErr>, BytesMut) {
        let mut b = BytesMut::from(raw);
        (parse_response(&mut b, head_request, &mut Vec::new()), b)
    }

    #[test]
    fn response_heads_lose_hop_by_hop_headers_and_say_how_the_body_ends() {
        let (r, rest) = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nSet-Cookie: JSESSIONID=a\r\n\r\nhiNEXT",
            false,
        );
        let Ok(Some(r)) = r else { panic!("parsed") };
        assert_eq!(r.framing, Framing::Length(2));
        assert!(r.reusable);
        assert_eq!(&rest[..], b"hiNEXT");
        let head = String::from_utf8(r.head).expect("utf8");
        assert_eq!(head, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: JSESSIONID=a\r\n");
        assert_eq!(r.set_cookies.len(), 1);

        let Ok(Some(r)) = parse(b"HTTP/1.0 200 OK\r\n\r\nbody", false).0 else { panic!() };
        assert_eq!((r.framing, r.reusable), (Framing::Close, false));
        let Ok(Some(r)) = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true).0 else {
            panic!()
        };
        assert_eq!((r.framing, r.sent, r.reusable), (Framing::None, Some(0), true));
        let Ok(Some(r)) = parse(b"HTTP/1.1 204 No Content\r\n\r\n", false).0 else { panic!() };
        assert_eq!((r.framing, r.reusable), (Framing::None, true));
        let Ok(Some(r)) = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false).0
        else {
            panic!()
        };
        assert_eq!(r.framing, Framing::Chunked);
        assert!(matches!(parse(b"HTTP/1.1 200 OK\r\nContent-", false).0, Ok(None)));
    }

    #[test]
    fn heads_with_many_fields_pass_up_to_the_limit() {
        let head = |n: usize| {
            let mut raw = String::from("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n");
            for i in 1..n {
                raw.push_str(&format!("X-F{i}: v{i}\r\n"));
            }
            raw.push_str("\r\n");
            raw
        };
        for n in [FEW_HEADERS - 1, FEW_HEADERS, FEW_HEADERS + 1, 40, MAX_HEADERS] {
            let Ok(Some(r)) = parse(head(n).as_bytes(), false).0 else { panic!("{n} fields") };
            let text = String::from_utf8(r.head).expect("utf8");
            assert_eq!(text.matches("\r\n").count(), n + 1, "{n} fields");
            assert!(text.contains(&format!("X-F{}: v{}\r\n", n - 1, n - 1)));
        }
        // A partial head past the small array is still partial.
        let many = head(40);
        assert!(matches!(parse(&many.as_bytes()[..many.len() - 30], false).0, Ok(None)));
        let Err(ReadErr::Bad(why)) = parse(head(MAX_HEADERS + 1).as_bytes(), false).0 else {
            panic!("too many fields taken")
        };
        assert!(why.contains("too many headers"), "{why}");
    }

    #[test]
    fn bodiless_responses_that_declare_a_body_are_passed_on_but_their_connection_is_not_kept() {
        let Ok(Some(r)) = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true).0 else {
            panic!()
        };
        assert_eq!((r.framing, r.sent, r.reusable), (Framing::None, Some(9), false));
        let Ok(Some(r)) =
            parse(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello", false).0
        else {
            panic!()
        };
        assert_eq!((r.framing, r.reusable), (Framing::None, false));
        assert_eq!(r.head, b"HTTP/1.1 204 No Content\r\n");
        let Ok(Some(r)) =
            parse(b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false).0
        else {
            panic!()
        };
        assert_eq!((r.framing, r.reusable), (Framing::None, false));
    }

    #[test]
    fn responses_that_could_be_framed_two_ways_are_backend_failures() {
        let bad: &[&[u8]] = &[
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: 1\r\n folded\r\nContent-Length: 1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n",
            b"HTTP/1.1 200 OK\nContent-Length: 1\n\n",
            b"HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n",
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        ];
        for raw in bad {
            assert!(
                matches!(parse(raw, false).0, Err(ReadErr::Bad(_))),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        assert!(matches!(body_start(Framing::Chunked, b"5\r\nhelloXX"), Err(ReadErr::Bad(_))));
        assert!(matches!(
            body_start(Framing::Chunked, b"5\r\nhello\r\n0\r\n\r\nNEXT"),
            Ok((15, None))
        ));
    }
}
