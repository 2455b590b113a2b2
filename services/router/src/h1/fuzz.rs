//! Randomized tests of the HTTP/1.1 path's parsers, run by every test run (CI included) with
//! few enough cases to take a second or two. Each runs twice: with a fixed seed, and with a
//! new one every run (printed; `ROUTER_FUZZ_SEED=<seed>` runs that one again), so runs keep
//! exploring new inputs as a fuzzer does while any failure can be repeated. They check that
//! the chunked scanner finds the end of any valid body however it is split, gives the same
//! verdict on any input however it is split, and never accepts a size line
//! `httparse::parse_chunk_size` refuses (or reads its size differently); the request parser
//! never panics, refuses every head with an ambiguous framing field, and takes a clear one
//! with the body length its fields say.

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

use super::chunked::{ChunkError, Chunks};
use super::request::{parse_request, Parsed, ReqBody};

/// The fixed seed and this run's: `ROUTER_FUZZ_SEED` or a random one, printed so a failure
/// can be repeated (the test harness shows a failed test's output).
fn seeds(fixed: u64) -> [StdRng; 2] {
    let run = std::env::var("ROUTER_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("seeds {fixed} and {run} (ROUTER_FUZZ_SEED={run} repeats the second)");
    [StdRng::seed_from_u64(fixed), StdRng::seed_from_u64(run)]
}

/// A valid chunked body: random chunk sizes, extensions and trailers.
fn valid_body(rng: &mut StdRng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.gen_range(0..6) {
        let n = rng.gen_range(1..300usize);
        let size = if rng.gen_bool(0.5) { format!("{n:x}") } else { format!("{n:X}") };
        out.extend_from_slice(size.as_bytes());
        match rng.gen_range(0..4) {
            0 => out.extend_from_slice(b";name=value"),
            1 => out.extend_from_slice(b" ; q=\"a b\""),
            2 => out.extend_from_slice(b"\t"),
            _ => {}
        }
        out.extend_from_slice(b"\r\n");
        out.extend((0..n).map(|_| rng.gen::<u8>()));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    for i in 0..rng.gen_range(0..3) {
        out.extend_from_slice(format!("x-t{i}: v {i}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The verdict on `data` fed in pieces cut at `cuts`: where the body ends, or the first
/// error, as a position in `data`.
fn verdict(data: &[u8], cuts: &[usize]) -> Result<Option<usize>, (usize, ChunkError)> {
    let mut c = Chunks::default();
    let mut at = 0;
    let mut bounds: Vec<usize> =
        cuts.iter().copied().filter(|&x| x > 0 && x < data.len()).collect();
    bounds.sort_unstable();
    bounds.dedup();
    bounds.push(data.len());
    for end in bounds {
        match c.feed(&data[at..end]) {
            Ok(Some(n)) => return Ok(Some(at + n)),
            Ok(None) => at = end,
            // Where in the piece it failed is not reported; the piece is.
            Err(e) => return Err((at, e)),
        }
    }
    Ok(None)
}

fn random_cuts(rng: &mut StdRng, len: usize) -> Vec<usize> {
    (0..rng.gen_range(0..8)).map(|_| rng.gen_range(0..=len)).collect()
}

#[test]
fn valid_chunked_bodies_end_exactly_where_they_end() {
    for mut rng in seeds(23004) {
        for _ in 0..3000 {
            let body = valid_body(&mut rng);
            let mut data = body.clone();
            data.extend_from_slice(b"GET /next HTTP/1.1\r\n\r\n");
            let cuts = random_cuts(&mut rng, data.len());
            assert_eq!(verdict(&data, &cuts), Ok(Some(body.len())), "{:?} cut at {cuts:?}", body);
        }
    }
}

#[test]
fn the_chunked_verdict_does_not_depend_on_how_the_bytes_arrive() {
    for mut rng in seeds(23005) {
        let alphabet = b"0123456789abcdefABCDEF;= \t\r\n\0x:\"";
        for _ in 0..5000 {
            let mut data = valid_body(&mut rng);
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..=data.len());
                let b = alphabet[rng.gen_range(0..alphabet.len())];
                match rng.gen_range(0..3) {
                    0 if at < data.len() => data[at] = b,
                    1 if at < data.len() => {
                        data.remove(at);
                    }
                    _ => data.insert(at, b),
                }
            }
            let whole = Chunks::default().feed(&data);
            let byte_by_byte: Vec<usize> = (1..data.len()).collect();
            let pieces = verdict(&data, &random_cuts(&mut rng, data.len()));
            let bytes = verdict(&data, &byte_by_byte);
            match whole {
                Ok(end) => {
                    assert_eq!(pieces, Ok(end), "{data:?}");
                    assert_eq!(bytes, Ok(end), "{data:?}");
                }
                Err(e) => {
                    assert!(matches!(pieces, Err((_, p)) if p == e), "{data:?}: {pieces:?}");
                    assert!(matches!(bytes, Err((_, p)) if p == e), "{data:?}: {bytes:?}");
                }
            }
        }
    }
}

#[test]
fn no_size_line_is_taken_that_httparse_refuses() {
    for mut rng in seeds(23006) {
        let alphabet = b"0123456789abcdefABCDEFgx;= \t\r\n\0\x7f\xff";
        let mut accepted = 0;
        for _ in 0..50_000 {
            let mut line: Vec<u8> = (0..rng.gen_range(1..20))
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            if rng.gen_bool(0.7) {
                line.extend_from_slice(b"\r\n");
            }
            let mut c = Chunks::default();
            // Only the line: the scanner stops at the first byte of data (or the trailers).
            let ours = c.feed(&line);
            let theirs = httparse::parse_chunk_size(&line);
            if let (Ok(None), Some((n, size))) = (ours, c.line_done()) {
                if n != line.len() {
                    // Data followed the line.
                    continue;
                }
                accepted += 1;
                assert_eq!(theirs, Ok(httparse::Status::Complete((line.len(), size))), "{line:?}");
            }
        }
        assert!(accepted > 1000, "too few size lines accepted to say much: {accepted}");
    }
}

/// Framing fields, each with whether it is ambiguous on its own.
const FIELDS: &[(&str, bool)] = &[
    ("Content-Length: 5", false),
    ("Content-Length:5", false),
    ("Content-Length: 5 ", false),
    ("Content-Length: +5", true),
    ("Content-Length: 5, 5", true),
    ("Content-Length: 0x5", true),
    ("Transfer-Encoding: chunked", false),
    ("Transfer-Encoding:\tCHUNKED", false),
    ("Transfer-Encoding: xchunked", true),
    ("Transfer-Encoding: chunked, identity", true),
    ("Transfer-Encoding: gzip, chunked", true),
    ("Transfer-Encoding : chunked", true),
    (" Transfer-Encoding: chunked", true),
    ("X-Other: chunked", false),
    ("X-Nul: a\0b", true),
    ("X-Lf: a\nTransfer-Encoding: chunked", true),
];

#[test]
fn requests_with_ambiguous_framing_are_always_refused() {
    for mut rng in seeds(23007) {
        for _ in 0..20_000 {
            let picked: Vec<(&str, bool)> =
                (0..rng.gen_range(0..4)).map(|_| FIELDS[rng.gen_range(0..FIELDS.len())]).collect();
            let mut raw = String::from("POST /x HTTP/1.1\r\nHost: a\r\n");
            for (f, _) in &picked {
                raw.push_str(f);
                raw.push_str("\r\n");
            }
            raw.push_str("\r\n");
            let cl = picked.iter().filter(|(f, _)| f.starts_with("Content-Length")).count();
            let te = picked.iter().filter(|(f, _)| f.starts_with("Transfer-Encoding")).count();
            let ambiguous = picked.iter().any(|(_, bad)| *bad) || cl > 1 || te > 1 || cl + te > 1;
            match parse_request(raw.as_bytes()) {
                Parsed::Refused(_) => assert!(ambiguous, "{raw:?} refused"),
                Parsed::Fast(head) => {
                    assert!(!ambiguous, "{raw:?} taken");
                    let want =
                        if te == 1 { ReqBody::Chunked } else { ReqBody::Length(5 * cl as u64) };
                    assert_eq!(head.body, want, "{raw:?}");
                }
                Parsed::Hyper | Parsed::Partial => panic!("{raw:?}: not decided"),
            }
        }
    }
}

#[test]
fn mangled_requests_never_panic_and_prefixes_never_pass_for_whole_heads() {
    for mut rng in seeds(23008) {
        let base = b"POST /p?q=1 HTTP/1.1\r\nHost: a.example.com\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc";
        let alphabet = b" \t\r\n\0:;,aZ0-/";
        for _ in 0..10_000 {
            let mut raw = base.to_vec();
            for _ in 0..rng.gen_range(0..4) {
                let at = rng.gen_range(0..raw.len());
                raw[at] = alphabet[rng.gen_range(0..alphabet.len())];
            }
            if let Parsed::Fast(head) = parse_request(&raw) {
                let text = &raw[..head.raw.len()];
                assert!(!text.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'), "{raw:?}");
                assert!(!text.contains(&0), "{raw:?}");
                // Any shorter prefix is not a whole head.
                let cut = rng.gen_range(0..head.raw.len());
                assert!(!matches!(parse_request(&raw[..cut]), Parsed::Fast(_)), "{raw:?} at {cut}");
            }
        }
    }
}
