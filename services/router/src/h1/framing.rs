//! How a message says where its body ends (RFC 9112 §6), the same strict rules for client
//! requests and backend responses: at most one `Content-Length`, digits only; at most one
//! `Transfer-Encoding`, and then exactly `chunked`; never both; and a head whose lines all
//! end in CRLF. A message that breaks one of them could be framed differently by the next
//! hop, so it is refused and its connection closed.

/// Why a message head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Not HTTP/1.x, or `httparse` refused it (obs-fold, NUL or other control characters,
    /// spaces before a colon, a bad request target).
    Malformed,
    /// A line ending in LF without CR.
    BareLf,
    InvalidContentLength,
    RepeatedContentLength,
    /// A `Transfer-Encoding` other than one `chunked`.
    UnsupportedTransferEncoding,
    RepeatedTransferEncoding,
    LengthAndChunked,
    /// `Transfer-Encoding` in an HTTP/1.0 message.
    ChunkedHttp10,
    RepeatedHost,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed message head",
            Self::BareLf => "line ending without CR",
            Self::InvalidContentLength => "invalid Content-Length",
            Self::RepeatedContentLength => "more than one Content-Length",
            Self::UnsupportedTransferEncoding => "unsupported Transfer-Encoding",
            Self::RepeatedTransferEncoding => "more than one Transfer-Encoding",
            Self::LengthAndChunked => "both Content-Length and Transfer-Encoding",
            Self::ChunkedHttp10 => "Transfer-Encoding in HTTP/1.0",
            Self::RepeatedHost => "more than one Host",
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `httparse` takes a bare LF as a line end; the next hop may not. Every LF in the head
/// must follow a CR.
pub fn check_line_ends(head: &[u8]) -> Result<(), Fault> {
    // Every byte paired with the one before it, without an early exit, so the compiler
    // vectorises the loop: heads are nearly always clean.
    let after = head.get(1..).unwrap_or_default();
    let bare = head.first() == Some(&b'\n')
        || head
            .iter()
            .zip(after)
            .fold(false, |bare, (&prev, &b)| bare | ((b == b'\n') & (prev != b'\r')));
    if bare {
        return Err(Fault::BareLf);
    }
    Ok(())
}

/// Whether the bytes from `from` on may hold the end of a head (an empty line), so that
/// parsing is tried only when it can complete.
pub fn may_end_head(buf: &[u8], from: usize) -> bool {
    let start = from.saturating_sub(2);
    let tail = &buf[start.min(buf.len())..];
    tail.iter().enumerate().any(|(i, &b)| {
        b == b'\n' && (tail.get(i + 1) == Some(&b'\n') || tail.get(i + 1..i + 3) == Some(b"\r\n"))
    })
}

/// The framing header fields of one message, collected field by field.
#[derive(Debug, Default)]
pub struct Lengths {
    length: Option<u64>,
    te: bool,
}

/// Where the body of a message ends, by its header fields alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLen {
    /// No framing field: no body for a request, until close for a response.
    Unframed,
    Length(u64),
    Chunked,
}

impl Lengths {
    /// Look at one header field; `Ok(true)` when it was a framing field.
    pub fn field(&mut self, name: &str, value: &[u8]) -> Result<bool, Fault> {
        if name.eq_ignore_ascii_case("content-length") {
            if self.length.is_some() {
                return Err(Fault::RepeatedContentLength);
            }
            self.length = Some(content_length(value)?);
            Ok(true)
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if self.te {
                return Err(Fault::RepeatedTransferEncoding);
            }
            if !trim_ows(value).eq_ignore_ascii_case(b"chunked") {
                return Err(Fault::UnsupportedTransferEncoding);
            }
            self.te = true;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// The body's delimitation once every field was seen.
    pub fn finish(&self, http10: bool) -> Result<BodyLen, Fault> {
        match (self.length, self.te) {
            (Some(_), true) => Err(Fault::LengthAndChunked),
            (None, true) if http10 => Err(Fault::ChunkedHttp10),
            (None, true) => Ok(BodyLen::Chunked),
            (Some(n), false) => Ok(BodyLen::Length(n)),
            (None, false) => Ok(BodyLen::Unframed),
        }
    }

    /// The `Content-Length` seen, if any.
    pub fn length(&self) -> Option<u64> {
        self.length
    }
}

/// Without the spaces and tabs around it (OWS), and nothing else: another hop may not
/// take a form feed or a vertical tab for a blank.
fn trim_ows(v: &[u8]) -> &[u8] {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !blank(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !blank(b)).map_or(start, |i| i + 1);
    &v[start..end]
}

/// `1*DIGIT`, nothing else (no sign, no list, no inner spaces), at most 19 digits.
fn content_length(value: &[u8]) -> Result<u64, Fault> {
    let v = trim_ows(value);
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(Fault::InvalidContentLength);
    }
    Ok(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Fields<'a> = &'a [(&'a str, &'a str)];

    fn lengths(fields: Fields<'_>) -> Result<BodyLen, Fault> {
        let mut l = Lengths::default();
        for (k, v) in fields {
            l.field(k, v.as_bytes())?;
        }
        l.finish(false)
    }

    #[test]
    fn framing_fields_are_one_length_or_one_chunked() {
        use BodyLen::*;
        use Fault::*;
        let cases: &[(Fields<'_>, Result<BodyLen, Fault>)] = &[
            (&[], Ok(Unframed)),
            (&[("Content-Length", "12")], Ok(Length(12))),
            (&[("content-length", " 0 ")], Ok(Length(0))),
            (&[("Transfer-Encoding", "chunked")], Ok(Chunked)),
            (&[("transfer-encoding", "Chunked")], Ok(Chunked)),
            (&[("Content-Length", "1"), ("Content-Length", "1")], Err(RepeatedContentLength)),
            (&[("Content-Length", "1"), ("Content-Length", "2")], Err(RepeatedContentLength)),
            (&[("Content-Length", "1, 1")], Err(InvalidContentLength)),
            (&[("Content-Length", "+1")], Err(InvalidContentLength)),
            (&[("Content-Length", "-1")], Err(InvalidContentLength)),
            (&[("Content-Length", "0x10")], Err(InvalidContentLength)),
            (&[("Content-Length", "")], Err(InvalidContentLength)),
            (&[("Content-Length", "99999999999999999999")], Err(InvalidContentLength)),
            (&[("Content-Length", "3"), ("Transfer-Encoding", "chunked")], Err(LengthAndChunked)),
            (&[("Transfer-Encoding", "chunked"), ("Content-Length", "3")], Err(LengthAndChunked)),
            (&[("Transfer-Encoding", "xchunked")], Err(UnsupportedTransferEncoding)),
            (&[("Transfer-Encoding", "chunked, identity")], Err(UnsupportedTransferEncoding)),
            (&[("Transfer-Encoding", "gzip, chunked")], Err(UnsupportedTransferEncoding)),
            (&[("Transfer-Encoding", "identity")], Err(UnsupportedTransferEncoding)),
            (&[("Transfer-Encoding", "\x0cchunked")], Err(UnsupportedTransferEncoding)),
            (&[("Transfer-Encoding", "\tchunked ")], Ok(Chunked)),
            (&[("Content-Length", "\x0c1")], Err(InvalidContentLength)),
            (
                &[("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")],
                Err(RepeatedTransferEncoding),
            ),
        ];
        for (fields, want) in cases {
            assert_eq!(&lengths(fields), want, "{fields:?}");
        }
        let mut l = Lengths::default();
        l.field("Transfer-Encoding", b"chunked").expect("field");
        assert_eq!(l.finish(true), Err(Fault::ChunkedHttp10));
    }

    #[test]
    fn only_crlf_ends_lines_and_heads_end_at_an_empty_line() {
        assert_eq!(check_line_ends(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Ok(()));
        assert_eq!(check_line_ends(b"GET / HTTP/1.1\r\nHost: x\n\r\n"), Err(Fault::BareLf));
        assert_eq!(check_line_ends(b"GET / HTTP/1.1\nHost: x\r\n\r\n"), Err(Fault::BareLf));
        // At either end, after a lone CR's neighbour, and in heads longer than a vector.
        for (head, ok) in [
            (&b""[..], true),
            (b"\n", false),
            (b"\r\n", true),
            (b"\r\r\n", true),
            (b"x\n", false),
            (b"\nGET", false),
            (b"\r\n\n", false),
            (b"\rx\n", false),
        ] {
            assert_eq!(check_line_ends(head).is_ok(), ok, "{:?}", String::from_utf8_lossy(head));
        }
        let long = "X-Long: 1\r\n".repeat(40);
        assert_eq!(check_line_ends(long.as_bytes()), Ok(()));
        let bad = format!("{long}X-Bad: 1\n{long}");
        assert_eq!(check_line_ends(bad.as_bytes()), Err(Fault::BareLf));
        let head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(may_end_head(head, 0));
        for from in 0..head.len() {
            assert!(may_end_head(head, from), "from {from}");
        }
        assert!(!may_end_head(b"GET / HTTP/1.1\r\nHost: x\r\n", 0));
        assert!(may_end_head(b"GET /\n\n", 6));
        assert!(!may_end_head(b"", 0));
    }
}
