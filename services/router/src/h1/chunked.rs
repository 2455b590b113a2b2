//! Finds the end of a chunked body (RFC 9112 §7.1) in the bytes fed to it, across reads,
//! without buffering: the body is copied as it is, so it must be checked as it is. Strict:
//! a chunk size is 1 to 16 hex digits (blanks may follow); an extension (after optional blanks and `;`) has no
//! control characters and its line is bounded; chunk data ends in CRLF; trailer fields are
//! `name: value` lines (no obs-fold, no control characters) and bounded in total. A body
//! that breaks a rule is refused where it breaks it.

/// Longest chunk-size line (size, extensions and CRLF).
pub const MAX_SIZE_LINE: usize = 4096;
/// Most bytes of trailer fields after the last chunk.
pub const MAX_TRAILERS: usize = 16 * 1024;

/// Why a chunked body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    Size,
    Extension,
    LineTooLong,
    /// Chunk data not followed by CRLF.
    DataEnd,
    Trailer,
    TrailersTooLarge,
}

impl ChunkError {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Size => "invalid chunk size",
            Self::Extension => "invalid chunk extension",
            Self::LineTooLong => "chunk-size line too long",
            Self::DataEnd => "chunk data not followed by CRLF",
            Self::Trailer => "invalid trailer field",
            Self::TrailersTooLarge => "trailer fields too large",
        }
    }
}

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Default)]
pub struct Chunks {
    state: State,
    /// Bytes left of the current chunk's data.
    size: u64,
    digits: u8,
    /// Bytes of the current size line so far.
    line: usize,
    trailers: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Size,
    /// Blanks after the size, before `;` (BWS).
    SizeBlank,
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    EndLf,
    Done,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Field-value and extension bytes: HTAB, visible ASCII, SP, obs-text.
fn is_text(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

impl Chunks {
    /// Feed the next bytes; `Ok(Some(n))` when the body ends after `n` of them, `Ok(None)`
    /// when it goes on past them.
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<usize>, ChunkError> {
        use State::*;
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            if matches!(self.state, Size | SizeBlank | Ext | SizeLf) {
                self.line += 1;
                if self.line > MAX_SIZE_LINE {
                    return Err(ChunkError::LineTooLong);
                }
            } else if matches!(self.state, TrailerStart | TrailerName | TrailerValue | TrailerLf) {
                self.trailers += 1;
                if self.trailers > MAX_TRAILERS {
                    return Err(ChunkError::TrailersTooLarge);
                }
            }
            self.state = match (self.state, b) {
                (Size, b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F') => {
                    if self.digits == 16 {
                        return Err(ChunkError::Size);
                    }
                    self.digits += 1;
                    let d = (b as char).to_digit(16).map_or(0, u64::from);
                    self.size = self.size << 4 | d;
                    Size
                }
                (Size | SizeBlank, _) if self.digits == 0 => return Err(ChunkError::Size),
                (Size | SizeBlank, b' ' | b'\t') => SizeBlank,
                (Size | SizeBlank, b';') => Ext,
                (Size | SizeBlank, b'\r') => SizeLf,
                (Size | SizeBlank, _) => return Err(ChunkError::Size),
                (Ext, b'\r') => SizeLf,
                (Ext, b) if is_text(b) => Ext,
                (Ext, _) => return Err(ChunkError::Extension),
                (SizeLf, b'\n') if self.size == 0 => TrailerStart,
                (SizeLf, b'\n') => Data,
                (SizeLf, _) => return Err(ChunkError::Size),
                (Data, _) => {
                    let take = usize::try_from(self.size).unwrap_or(usize::MAX).min(data.len() - i);
                    self.size -= take as u64;
                    i += take;
                    if self.size == 0 {
                        self.state = DataCr;
                    }
                    continue;
                }
                (DataCr, b'\r') => DataLf,
                (DataLf, b'\n') => {
                    (self.digits, self.line) = (0, 0);
                    Size
                }
                (DataCr | DataLf, _) => return Err(ChunkError::DataEnd),
                (TrailerStart, b'\r') => EndLf,
                (TrailerStart | TrailerName, b) if is_tchar(b) => TrailerName,
                (TrailerName, b':') => TrailerValue,
                (TrailerStart | TrailerName, _) => return Err(ChunkError::Trailer),
                (TrailerValue, b'\r') => TrailerLf,
                (TrailerValue, b) if is_text(b) => TrailerValue,
                (TrailerLf, b'\n') => TrailerStart,
                (TrailerValue | TrailerLf, _) => return Err(ChunkError::Trailer),
                (EndLf, b'\n') => {
                    self.state = Done;
                    return Ok(Some(i + 1));
                }
                (EndLf, _) => return Err(ChunkError::Trailer),
                (Done, _) => return Ok(Some(i)),
            };
            i += 1;
        }
        Ok((self.state == Done).then_some(data.len()))
    }

    /// After a size line and nothing more: its length and the chunk size it gave.
    #[cfg(test)]
    pub fn line_done(&self) -> Option<(usize, u64)> {
        matches!(self.state, State::Data | State::TrailerStart).then_some((self.line, self.size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] =
        b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE ; a=\"b c\"\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n";

    #[test]
    fn chunked_bodies_end_where_they_end_whatever_the_reads() {
        let mut with_next = BODY.to_vec();
        with_next.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        assert_eq!(Chunks::default().feed(&with_next), Ok(Some(BODY.len())));
        for split in 1..BODY.len() {
            let mut c = Chunks::default();
            assert_eq!(c.feed(&BODY[..split]), Ok(None), "split at {split}");
            assert_eq!(c.feed(&BODY[split..]), Ok(Some(BODY.len() - split)), "split at {split}");
        }
        let mut c = Chunks::default();
        let ends: Vec<_> = b"0\r\n\r\n".chunks(1).map(|b| c.feed(b)).collect();
        assert_eq!(ends, vec![Ok(None), Ok(None), Ok(None), Ok(None), Ok(Some(1))]);
    }

    #[test]
    fn malformed_chunked_bodies_are_refused() {
        use ChunkError::*;
        let long_ext = format!("1;{}\r\na\r\n0\r\n\r\n", "x".repeat(MAX_SIZE_LINE));
        let big_trailers = format!("0\r\n{}\r\n", "x-t: 1\r\n".repeat(MAX_TRAILERS / 8 + 1));
        let cases: &[(&[u8], ChunkError)] = &[
            (b"\r\nabc", Size),
            (b"x\r\n", Size),
            (b"-1\r\n", Size),
            (b"0x5\r\n", Size),
            (b" 5\r\n", Size),
            (b"5\nhello\r\n", Size),
            (b"5\r\rhello", Size),
            (b"11111111111111111\r\n", Size),
            (b"5;a\0b\r\nhello\r\n", Extension),
            (b"5;a\nb\r\nhello\r\n", Extension),
            (long_ext.as_bytes(), LineTooLong),
            (b"5\r\nhelloXX0\r\n\r\n", DataEnd),
            (b"5\r\nhello\n0\r\n\r\n", DataEnd),
            (b"5\r\nhello\r0\r\n\r\n", DataEnd),
            (b"0\r\n folded: x\r\n\r\n", Trailer),
            (b"0\r\nx-t : 1\r\n\r\n", Trailer),
            (b"0\r\nx-t: a\0\r\n\r\n", Trailer),
            (b"0\r\nx-t: 1\n\r\n", Trailer),
            (b"0\r\n\rX", Trailer),
            (big_trailers.as_bytes(), TrailersTooLarge),
        ];
        for (body, want) in cases {
            let got = Chunks::default().feed(body);
            assert_eq!(got, Err(*want), "{:?}", String::from_utf8_lossy(body));
            let mut c = Chunks::default();
            let bytewise = body.chunks(1).map(|b| c.feed(b)).find(Result::is_err);
            assert_eq!(bytewise, Some(Err(*want)), "{:?}", String::from_utf8_lossy(body));
        }
        // Blanks after the size are allowed (as hyper and Go allow them).
        assert_eq!(Chunks::default().feed(b"5 \r\nhello\r\n0\r\n\r\n"), Ok(Some(16)));
        // The largest size that fits in 16 digits is a size, not an error.
        assert_eq!(Chunks::default().feed(b"ffffffffffffffff\r\nab"), Ok(None));
    }
}
