//! The client's side of the HTTP/1.1 path: every request head read on a plain connection
//! passes the strict framing rules ([`super::framing`]) before anything else happens — a
//! refused one is answered 400 (431 when too large) and its connection closed, whichever
//! path would have served it. A clear request of the common shape is proxied here, its body
//! (of a length, or chunked and checked as it goes) copied as it comes; one that needs more
//! (HTTP/1.0, upgrades, `Expect`, absolute-form targets, HTTP/2) goes to hyper.

use std::mem::MaybeUninit;

use axum::http::{self, header, HeaderMap, HeaderName, HeaderValue, Method, Uri};
use bytes::{Buf as _, Bytes, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::chunked::Chunks;
use super::framing::{check_line_ends, BodyLen, Fault, Lengths};
use super::{Failure, BUF};
use crate::errors::RouterError;
use crate::proxy::{
    Ctx, HOP_BY_HOP, X_FORWARDED_FOR, X_FORWARDED_PROTO, X_REQUEST_START, X_VCAP_REQUEST_ID,
};
use crate::table::Endpoint;

/// Largest request head, as gorouter's default `max_header_kb`; a bigger one is refused
/// with 431.
pub(super) const MAX_HEAD: usize = 1024 * 1024;
/// Most header fields in a request; more are refused with 431.
const MAX_HEADERS: usize = 128;
/// Header fields whose place in the head is noted on the stack; those of a request with
/// more go in a vector.
const FEW_SPANS: usize = 24;

/// A parsed request head the fast path takes.
pub(super) struct Head {
    /// Its target and field values share `raw`'s bytes.
    pub parts: http::request::Parts,
    /// The head as it came, taken off the connection's buffer.
    pub raw: Bytes,
    pub body: ReqBody,
    pub close: bool,
}

/// How a request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReqBody {
    /// `Content-Length` (0 without one).
    Length(u64),
    Chunked,
}

impl ReqBody {
    pub fn is_empty(self) -> bool {
        self == Self::Length(0)
    }
}

/// What of a request body is still to be copied.
pub(super) enum Rest {
    Length(u64),
    Chunked(Chunks),
}

pub(super) enum Parsed {
    Fast(Box<Head>),
    Partial,
    /// Clear, but hyper serves it (and the rest of the connection).
    Hyper,
    /// Answered with this error, and the connection closed.
    Refused(RouterError),
}

fn refused(f: Fault) -> Parsed {
    Parsed::Refused(RouterError::Malformed(f.as_str()))
}

/// What a request head says beyond its fields: whether hyper must serve it, and whether
/// the client asked to close.
#[derive(Default)]
struct Shape {
    hyper: bool,
    close: bool,
}

#[cfg(test)]
pub(super) fn parse_request(buf: &[u8]) -> Parsed {
    parse_request_into(&mut BytesMut::from(buf), &mut HeaderMap::new())
}

/// Where a slice `httparse` returned lies in the buffer that starts at address `base`.
fn span(base: usize, s: &[u8]) -> [u32; 2] {
    if s.is_empty() {
        return [0, 0];
    }
    let start = s.as_ptr().addr().wrapping_sub(base);
    // Heads are at most `MAX_HEAD` long: offsets fit.
    let start = u32::try_from(start).unwrap_or(u32::MAX);
    let len = u32::try_from(s.len()).unwrap_or(0);
    [start, start.saturating_add(len)]
}

/// Parse the request head at the start of `buf`. A request the fast path takes is split off
/// `buf` (as [`Head::raw`]), its target and field values sharing those bytes; its fields go
/// into `map` (emptied first; it is kept from an earlier request on the connection for its
/// capacity), which is then left empty. Any other outcome leaves `buf` as it was.
pub(super) fn parse_request_into(buf: &mut BytesMut, map: &mut HeaderMap) -> Parsed {
    // Where the method, the target and each field's name and value lie in the head: the
    // parser's slices borrow `buf`, which is split once the head is known to be good.
    let mut spans = [[0u32; 4]; FEW_SPANS];
    let mut more_spans = Vec::new();
    let (len, target, fields, shape, body) = {
        let buf: &[u8] = buf;
        let base = buf.as_ptr().addr();
        // Left uninitialised: parsing writes only the fields it finds.
        let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        let len = match req.parse_with_uninit_headers(buf, &mut headers) {
            Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD => n,
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Parsed::Partial,
            Ok(_) | Err(httparse::Error::TooManyHeaders) => {
                return Parsed::Refused(RouterError::HeadTooLarge)
            }
            // HTTP/2 with prior knowledge.
            Err(_) if buf.starts_with(b"PRI * HTTP/2.0\r\n") => return Parsed::Hyper,
            Err(_) => return refused(Fault::Malformed),
        };
        if let Err(f) = check_line_ends(&buf[..len]) {
            return refused(f);
        }
        let (Some(method), Some(path), Some(version)) = (req.method, req.path, req.version) else {
            return refused(Fault::Malformed);
        };
        let http10 = version == 0;
        let mut shape = Shape { hyper: http10, close: false };
        let mut lengths = Lengths::default();
        let mut hosts = 0;
        for (i, h) in req.headers.iter().enumerate() {
            if let Err(f) = lengths.field(h.name, h.value) {
                return refused(f);
            }
            if h.name.eq_ignore_ascii_case("host") {
                hosts += 1;
                if hosts > 1 {
                    return refused(Fault::RepeatedHost);
                }
            }
            look_at(&mut shape, h);
            let [ns, ne] = span(base, h.name.as_bytes());
            let [vs, ve] = span(base, h.value);
            match spans.get_mut(i) {
                Some(at) => *at = [ns, ne, vs, ve],
                None => more_spans.push([ns, ne, vs, ve]),
            }
        }
        let body = match lengths.finish(http10) {
            Ok(BodyLen::Chunked) => ReqBody::Chunked,
            Ok(BodyLen::Length(n)) => ReqBody::Length(n),
            Ok(BodyLen::Unframed) => ReqBody::Length(0),
            Err(f) => return refused(f),
        };
        if shape.hyper || !path.starts_with('/') || method == "CONNECT" {
            return Parsed::Hyper;
        }
        let Ok(method) = Method::from_bytes(method.as_bytes()) else {
            return refused(Fault::Malformed);
        };
        (len, (method, span(base, path.as_bytes())), req.headers.len(), shape, body)
    };
    let raw = buf.split_to(len).freeze();
    let (method, path) = target;
    let spans = (&spans[..fields.min(FEW_SPANS)], &more_spans[..]);
    match head_parts(&raw, method, path, spans, std::mem::take(map)) {
        Some(parts) => Parsed::Fast(Box::new(Head { parts, raw, body, close: shape.close })),
        None => {
            // Nothing taken: the connection's buffer is as it was (it closes after the 400).
            let mut back = BytesMut::from(raw);
            back.unsplit(std::mem::take(buf));
            *buf = back;
            refused(Fault::Malformed)
        }
    }
}

/// Note what one header field asks for beyond the fast path.
fn look_at(shape: &mut Shape, h: &httparse::Header<'_>) {
    if h.name.eq_ignore_ascii_case("upgrade") || h.name.eq_ignore_ascii_case("expect") {
        shape.hyper = true;
    } else if h.name.eq_ignore_ascii_case("connection") {
        for token in h.value.split(|b| *b == b',') {
            let token = token.trim_ascii();
            if token.eq_ignore_ascii_case(b"close") {
                shape.close = true;
            } else if token.eq_ignore_ascii_case(b"upgrade") {
                shape.hyper = true;
            }
        }
    }
}

/// The request's parts from its head `raw`: the target and the field values are slices of
/// it (no copies), at the spans the parser found.
fn head_parts(
    raw: &Bytes,
    method: Method,
    path: [u32; 2],
    (few, more): (&[[u32; 4]], &[[u32; 4]]),
    mut map: HeaderMap,
) -> Option<http::request::Parts> {
    let range = |start: u32, end: u32| {
        let (start, end) = (usize::try_from(start).ok()?, usize::try_from(end).ok()?);
        (start <= end && end <= raw.len()).then_some(start..end)
    };
    let slice = |start, end| range(start, end).map(|r| raw.slice(r));
    let uri = Uri::from_maybe_shared(slice(path[0], path[1])?).ok()?;
    if !map.is_empty() {
        map.clear();
    }
    map.reserve(few.len() + more.len() + 8);
    for &[ns, ne, vs, ve] in few.iter().chain(more) {
        // Names are matched or lowercased into a value of their own: no slice needed.
        let name = HeaderName::from_bytes(raw.get(range(ns, ne)?)?).ok()?;
        map.append(name, HeaderValue::from_maybe_shared(slice(vs, ve)?).ok()?);
    }
    let mut parts = http::Request::new(()).into_parts().0;
    parts.method = method;
    parts.uri = uri;
    parts.version = http::Version::HTTP_11;
    parts.headers = map;
    Some(parts)
}

/// The request head for the backend: what [`crate::proxy::outgoing`] makes for the hyper
/// path (origin-form target, hop-by-hop and incoming `X-CF-*` headers dropped, CF's headers
/// set), written straight into `out`. A chunked body goes on as it came, so it keeps its
/// `Transfer-Encoding`.
pub(super) fn request_head(
    out: &mut Vec<u8>,
    parts: &http::request::Parts,
    body: ReqBody,
    ep: &Endpoint,
    ctx: &Ctx,
) {
    let line = |out: &mut Vec<u8>, k: &[u8], v: &[u8]| {
        out.extend_from_slice(k);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    };
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.uri.path_and_query().map_or("/", |q| q.as_str()).as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    // What the headers added below depend on, noted in the one pass that copies the fields.
    let mut host = false;
    let mut trailers = false;
    let mut proto = false;
    let mut start = false;
    let mut xff: Option<&HeaderValue> = None;
    for (k, v) in &parts.headers {
        let name = k.as_str();
        if *k == header::HOST {
            host = true;
        } else if *k == header::TE {
            trailers = trailers || crate::proxy::says_trailers(v);
        } else if *k == X_FORWARDED_PROTO {
            proto = true;
        } else if *k == X_REQUEST_START {
            start = true;
        } else if *k == X_FORWARDED_FOR {
            xff = xff.or(Some(v));
            continue;
        }
        if HOP_BY_HOP.contains(&name) || name.starts_with("x-cf-") || *k == X_VCAP_REQUEST_ID {
            continue;
        }
        line(out, name.as_bytes(), v.as_bytes());
    }
    if !host {
        line(out, b"host", ctx.host.as_bytes());
    }
    if body == ReqBody::Chunked {
        line(out, b"transfer-encoding", b"chunked");
    }
    if trailers {
        line(out, b"te", b"trailers");
    }
    let ip = &ctx.remote.ip;
    match xff {
        Some(prev) => {
            out.extend_from_slice(b"x-forwarded-for: ");
            out.extend_from_slice(prev.as_bytes());
            out.extend_from_slice(b", ");
            out.extend_from_slice(ip.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        None => line(out, b"x-forwarded-for", ip.as_bytes()),
    }
    if !proto {
        line(out, b"x-forwarded-proto", if ctx.https { b"https" } else { b"http" });
    }
    if !start {
        let ms = i64::try_from(ctx.start_wall.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        out.extend_from_slice(b"x-request-start: ");
        out.extend_from_slice(itoa::Buffer::new().format(ms).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    line(out, b"x-vcap-request-id", ctx.request_id.as_bytes());
    line(out, b"x-cf-applicationid", ep.app.as_bytes());
    line(out, b"x-cf-instanceindex", ep.index.as_bytes());
    line(out, b"x-cf-instanceid", ep.instance_id.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The bytes at the start of `buf` that belong to the body, and what is left of it after
/// them. A chunked body is checked as it goes.
pub(super) fn body_start(body: ReqBody, buf: &[u8]) -> Result<(usize, Option<Rest>), Failure> {
    Ok(match body {
        ReqBody::Length(n) => {
            let have = usize::try_from(n).unwrap_or(usize::MAX).min(buf.len());
            (have, ((have as u64) < n).then(|| Rest::Length(n - have as u64)))
        }
        ReqBody::Chunked => {
            let mut scan = Chunks::default();
            match scan.feed(buf).map_err(|e| Failure::Malformed(e.as_str()))? {
                Some(end) => (end, None),
                None => (buf.len(), Some(Rest::Chunked(scan))),
            }
        }
    })
}

/// Copy the rest of the request body from the client to the backend; bytes after it (a
/// pipelined request) stay in `buf`. A chunked body that breaks its framing stops the copy
/// before the offending bytes.
pub(super) async fn copy_body(
    client: &mut TcpStream,
    buf: &mut BytesMut,
    backend: &mut TcpStream,
    mut rest: Rest,
) -> Result<(), Failure> {
    loop {
        buf.clear();
        if buf.capacity() < BUF {
            buf.reserve(BUF);
        }
        match client.read_buf(buf).await {
            Ok(0) | Err(_) => return Err(Failure::Client),
            Ok(_) => {}
        }
        let (take, done) = match &mut rest {
            Rest::Length(left) => {
                let take = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
                *left -= take as u64;
                (take, *left == 0)
            }
            Rest::Chunked(scan) => match scan.feed(buf) {
                Ok(Some(end)) => (end, true),
                Ok(None) => (buf.len(), false),
                Err(e) => return Err(Failure::Malformed(e.as_str())),
            },
        };
        backend
            .write_all(&buf[..take])
            .await
            .map_err(|e| Failure::Backend(format!("sending the request body: {e}")))?;
        buf.advance(take);
        if done {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::proxy::Peer;

    fn refusal(raw: &[u8]) -> Option<RouterError> {
        match parse_request(raw) {
            Parsed::Refused(e) => Some(e),
            _ => None,
        }
    }

    #[test]
    fn a_kept_field_map_carries_nothing_into_the_next_request() {
        let mut map = HeaderMap::new();
        let mut buf =
            BytesMut::from(&b"GET /a HTTP/1.1\r\nHost: x\r\nX-Secret: 1\r\n\r\nGET /b"[..]);
        let Parsed::Fast(first) = parse_request_into(&mut buf, &mut map) else { panic!("fast") };
        assert!(map.is_empty(), "the map went with the request");
        assert_eq!(&buf[..], b"GET /b", "the head was taken off the buffer, the rest left");
        // The connection hands the map back after the request, as `h1::one` does.
        map = first.parts.headers;
        buf.extend_from_slice(b" HTTP/1.1\r\nHost: y\r\n");
        let Parsed::Partial = parse_request_into(&mut buf, &mut map) else { panic!("partial") };
        assert_eq!(map.len(), 2, "kept while the head is incomplete");
        assert_eq!(&buf[..], b"GET /b HTTP/1.1\r\nHost: y\r\n", "nothing taken");
        buf.extend_from_slice(b"\r\n");
        let Parsed::Fast(second) = parse_request_into(&mut buf, &mut map) else { panic!("fast") };
        assert!(buf.is_empty());
        assert_eq!(second.parts.headers.len(), 1);
        assert_eq!(second.parts.headers["host"], "y");
        assert!(second.parts.headers.capacity() >= 2, "the earlier capacity is reused");
    }

    #[test]
    fn the_target_and_field_values_share_the_heads_bytes() {
        let mut buf = BytesMut::from(
            &b"POST /p/a%20th?q=1&r HTTP/1.1\r\nHost: My.Host\r\nX-Empty:\r\nUser-Agent: \
               curl/8 (x)\r\nX-Dup: 1\r\nX-Dup: 2\r\nContent-Length: 3\r\n\r\nabc"[..],
        );
        let Parsed::Fast(head) = parse_request_into(&mut buf, &mut HeaderMap::new()) else {
            panic!("fast")
        };
        assert_eq!(&buf[..], b"abc", "the body stays in the buffer");
        assert!(head.raw.ends_with(b"Content-Length: 3\r\n\r\n"));
        let within = |s: &[u8]| {
            let raw = head.raw.as_ptr_range();
            s.is_empty() || (raw.start <= s.as_ptr() && s.as_ptr_range().end <= raw.end)
        };
        let p = &head.parts;
        assert_eq!(p.method, Method::POST);
        assert_eq!(p.uri.path(), "/p/a%20th");
        assert_eq!(p.uri.query(), Some("q=1&r"));
        assert!(within(p.uri.path().as_bytes()), "the target is not copied");
        assert_eq!(p.headers["host"], "My.Host");
        assert_eq!(p.headers["x-empty"], "");
        assert_eq!(p.headers["user-agent"], "curl/8 (x)");
        let dups: Vec<_> = p.headers.get_all("x-dup").iter().collect();
        assert_eq!(dups, ["1", "2"]);
        for v in p.headers.values() {
            assert!(within(v.as_bytes()), "{v:?} is not copied");
        }
        assert_eq!(head.body, ReqBody::Length(3));
    }

    #[test]
    fn heads_with_more_fields_than_the_stack_notes_keep_them_all() {
        let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..MAX_HEADERS - 1 {
            raw.extend_from_slice(format!("X-F{i}: v{i}\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        let Parsed::Fast(head) = parse_request(&raw) else { panic!("fast") };
        assert_eq!(head.parts.headers.len(), MAX_HEADERS);
        for i in 0..MAX_HEADERS - 1 {
            assert_eq!(head.parts.headers[format!("x-f{i}").as_str()], format!("v{i}").as_str());
        }
    }

    #[test]
    fn a_head_refused_after_parsing_leaves_the_buffer_whole() {
        // httparse takes `<` and bytes above 0x7f in a target; `Uri` does not.
        let raw = &b"GET /a<b\xff HTTP/1.1\r\nHost: x\r\n\r\nnext"[..];
        let mut buf = BytesMut::from(raw);
        let refusal = parse_request_into(&mut buf, &mut HeaderMap::new());
        assert!(matches!(refusal, Parsed::Refused(RouterError::Malformed(_))));
        assert_eq!(&buf[..], raw);
    }

    #[test]
    fn simple_requests_take_the_fast_path_and_the_rest_goes_to_hyper() {
        let fast = |raw: &[u8]| matches!(parse_request(raw), Parsed::Fast(_));
        let hyper = |raw: &[u8]| matches!(parse_request(raw), Parsed::Hyper);
        assert!(fast(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(fast(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"));
        assert!(matches!(parse_request(b"GET / HTTP/1.1\r\nHost: x\r\n"), Parsed::Partial));
        assert!(hyper(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"));
        assert!(hyper(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
        assert!(hyper(b"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n"));
        let Parsed::Fast(h) =
            parse_request(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\tchunked\r\n\r\n")
        else {
            panic!("fast");
        };
        assert_eq!(h.body, ReqBody::Chunked);
        assert!(hyper(
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        ));
        assert!(hyper(
            b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"
        ));
        let Parsed::Fast(h) =
            parse_request(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n")
        else {
            panic!("fast");
        };
        assert!(h.close);
    }

    #[test]
    fn requests_that_could_be_framed_two_ways_are_refused() {
        let bad: &[&[u8]] = &[
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding\t: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nX: 1\r\n Transfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\nX: 1\r\n\r\n",
            b"GET / HTTP/1.1\nHost: x\n\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
            b"GET / HTTP/1.2\r\nHost: x\r\n\r\n",
            b"garbage\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        ];
        for raw in bad {
            let e = refusal(raw);
            assert!(
                matches!(e, Some(RouterError::Malformed(_))),
                "{:?}: {e:?}",
                String::from_utf8_lossy(raw)
            );
            let e = e.expect("refused");
            assert_eq!((e.status().as_u16(), e.closes(), e.kind()), (400, true, None));
        }
        let mut big = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
        big.resize(MAX_HEAD + 10, b'a');
        assert_eq!(refusal(&big), Some(RouterError::HeadTooLarge));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(refusal(&many), Some(RouterError::HeadTooLarge));
    }

    #[test]
    fn the_fast_path_sends_the_headers_the_hyper_path_sends() {
        let raw = b"GET /p?q=1 HTTP/1.1\r\nHost: a.apps.localhost\r\nUser-Agent: t\r\n\
            X-Forwarded-For: 10.0.0.1\r\nX-CF-InstanceID: spoofed\r\nX-Vcap-Request-Id: old\r\n\
            TE: trailers\r\nConnection: keep-alive\r\nX-Request-Start: 1\r\nCookie: a=1\r\n\
            X-Forwarded-For: 10.0.0.9\r\nX-Forwarded-Proto: https\r\n\r\n";
        let Parsed::Fast(head) = parse_request(raw) else { panic!("fast") };
        let ep = Endpoint {
            addr: "127.0.0.1:1".into(),
            app: "app-guid".into(),
            instance_id: "inst".into(),
            index: "2".into(),
            updated: Instant::now(),
            heard: Default::default(),
            ttl: Duration::from_secs(120),
            least_connection: false,
            route_service_url: None,
            http2: false,
            zone: None,
            inflight: Default::default(),
        };
        let ctx = Ctx {
            host: "a.apps.localhost".into(),
            remote: Peer::new("192.0.2.7:4000".parse().expect("addr")),
            https: false,
            request_id: crate::proxy::RequestId::from_random([0x22; 16]),
            started: Instant::now(),
            start_wall: time::OffsetDateTime::now_utc(),
            backend_ns: AtomicU64::new(0),
        };
        let p = &head.parts;
        let hyper = crate::proxy::outgoing(
            &p.method,
            &p.uri,
            &p.headers,
            &ep,
            &ctx,
            axum::body::Body::empty(),
        );
        let mut want: Vec<(String, String)> = hyper
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().expect("ascii").to_owned()))
            .collect();
        want.sort();
        let mut out = Vec::new();
        request_head(&mut out, p, ReqBody::Length(0), &ep, &ctx);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        assert!(req.parse(&out).expect("parses").is_complete());
        assert_eq!(
            (req.method, req.path),
            (Some("GET"), hyper.uri().path_and_query().map(|q| q.as_str()))
        );
        let mut got: Vec<(String, String)> = req
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()))
            .collect();
        got.sort();
        assert_eq!(got, want);
        assert!(got.contains(&("x-forwarded-for".into(), "10.0.0.1, 192.0.2.7".into())));
        assert!(got.contains(&("x-cf-instanceid".into(), "inst".into())));
        assert!(got.contains(&("x-forwarded-proto".into(), "https".into())));
        assert!(got.contains(&("te".into(), "trailers".into())));
    }
}
