//! In-memory storage: one ring buffer per source id, ordered by timestamp, with a per-source
//! cap and a global byte cap that evicts from the largest sources first, so the noisiest app
//! cannot push everyone else's history out. New envelopes are also broadcast to live streams.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use wire::envelope::{Envelope, EnvelopeType};

/// One stored envelope and its approximate size.
struct Entry {
    env: Arc<Envelope>,
    bytes: usize,
}

#[derive(Default)]
struct Source {
    entries: VecDeque<Entry>,
    bytes: usize,
    expired: u64,
}

/// What a source holds, for `/api/v1/meta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMeta {
    pub count: u64,
    pub expired: u64,
    pub oldest: i64,
    pub newest: i64,
}

/// A read request (`/api/v1/read/<source>`).
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub types: Vec<EnvelopeType>,
    pub limit: usize,
    pub descending: bool,
}

pub struct Store {
    sources: Mutex<HashMap<String, Source>>,
    max_per_source: usize,
    max_total_bytes: usize,
    total: Mutex<usize>,
    live: broadcast::Sender<Arc<Envelope>>,
}

impl Store {
    pub fn new(max_per_source: usize, max_total_bytes: usize) -> Self {
        let (live, _) = broadcast::channel(16_384);
        Self {
            sources: Mutex::new(HashMap::new()),
            max_per_source: max_per_source.max(1),
            max_total_bytes: max_total_bytes.max(1),
            total: Mutex::new(0),
            live,
        }
    }

    /// Live envelopes from now on (subscribe before reading history).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Envelope>> {
        self.live.subscribe()
    }

    /// Store `env` (of about `bytes`) and hand it to live streams; returns it shared.
    pub fn insert(&self, env: Envelope, bytes: usize) -> Arc<Envelope> {
        let env = Arc::new(env);
        {
            let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
            let mut total = self.total.lock().unwrap_or_else(|e| e.into_inner());
            let src = sources.entry(env.source_id.clone()).or_default();
            // Mostly appended in order; a late envelope is placed where it belongs.
            let at = src.entries.partition_point(|e| e.env.timestamp <= env.timestamp);
            src.entries.insert(at, Entry { env: env.clone(), bytes });
            src.bytes += bytes;
            *total += bytes;
            if src.entries.len() > self.max_per_source {
                if let Some(old) = src.entries.pop_front() {
                    src.bytes -= old.bytes;
                    src.expired += 1;
                    *total -= old.bytes;
                }
            }
            while *total > self.max_total_bytes {
                let Some(biggest) = sources.values_mut().max_by_key(|s| s.bytes) else { break };
                let Some(old) = biggest.entries.pop_front() else { break };
                biggest.bytes -= old.bytes;
                biggest.expired += 1;
                *total -= old.bytes;
            }
        }
        let _ = self.live.send(env.clone());
        env
    }

    /// An `LGR` line (a problem of the log system itself) in `source`'s stream; not forwarded.
    pub fn insert_lgr(&self, source: &str, text: String) {
        let env = Envelope::log(source, "", "LGR", text, wire::envelope::LogStream::Err);
        let bytes = env.log_bytes().map_or(0, |b| b.len());
        let _ = self.insert(env, bytes);
    }

    /// Envelopes of `source` matching `q`, oldest first (or newest first when descending).
    pub fn read(&self, source: &str, q: &Query) -> Vec<Arc<Envelope>> {
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let Some(src) = sources.get(source) else { return Vec::new() };
        let start = q.start_time.unwrap_or(i64::MIN);
        let end = q.end_time.unwrap_or(i64::MAX);
        let lo = src.entries.partition_point(|e| e.env.timestamp < start);
        let hi = src.entries.partition_point(|e| e.env.timestamp < end);
        let wanted = |e: &&Entry| q.types.is_empty() || q.types.contains(&e.env.envelope_type());
        let range = src.entries.range(lo..hi.max(lo));
        let mut out: Vec<Arc<Envelope>> = if q.descending {
            range.rev().filter(wanted).take(q.limit).map(|e| e.env.clone()).collect()
        } else {
            range.filter(wanted).take(q.limit).map(|e| e.env.clone()).collect()
        };
        out.shrink_to_fit();
        out
    }

    pub fn meta(&self) -> Vec<(String, SourceMeta)> {
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(String, SourceMeta)> = sources
            .iter()
            .map(|(k, s)| {
                let meta = SourceMeta {
                    count: s.entries.len() as u64,
                    expired: s.expired,
                    oldest: s.entries.front().map_or(0, |e| e.env.timestamp),
                    newest: s.entries.back().map_or(0, |e| e.env.timestamp),
                };
                (k.clone(), meta)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn total_bytes(&self) -> usize {
        *self.total.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use wire::envelope::LogStream;

    use super::*;

    fn log(source: &str, ts: i64, text: &str) -> Envelope {
        let mut e = Envelope::log(source, "0", "APP/PROC/WEB", text, LogStream::Out);
        e.timestamp = ts;
        e
    }

    fn texts(v: &[Arc<Envelope>]) -> Vec<String> {
        v.iter().filter_map(|e| e.log_text()).collect()
    }

    #[test]
    fn reads_are_ordered_and_filtered() {
        let s = Store::new(100, 1 << 20);
        for (ts, t) in [(10, "a"), (30, "c"), (20, "b"), (40, "d")] {
            s.insert(log("app", ts, t), 10);
        }
        s.insert(Envelope::gauge("app", "0", []), 10);
        let all = Query { limit: 100, ..Default::default() };
        let logs = Query { types: vec![EnvelopeType::Log], ..all.clone() };
        assert_eq!(texts(&s.read("app", &logs)), ["a", "b", "c", "d"]);
        let window = Query { start_time: Some(20), end_time: Some(40), ..logs.clone() };
        assert_eq!(texts(&s.read("app", &window)), ["b", "c"]);
        let newest = Query { limit: 2, descending: true, ..logs.clone() };
        assert_eq!(texts(&s.read("app", &newest)), ["d", "c"]);
        let gauges = Query { types: vec![EnvelopeType::Gauge], ..all };
        assert_eq!(s.read("app", &gauges).len(), 1);
        assert!(s.read("other", &logs).is_empty());
    }

    #[test]
    fn per_source_cap_expires_the_oldest() {
        let s = Store::new(3, 1 << 20);
        for ts in 1..=5 {
            s.insert(log("app", ts, &ts.to_string()), 10);
        }
        let q = Query { limit: 100, ..Default::default() };
        assert_eq!(texts(&s.read("app", &q)), ["3", "4", "5"]);
        let meta = s.meta();
        assert_eq!(meta[0].1, SourceMeta { count: 3, expired: 2, oldest: 3, newest: 5 });
    }

    #[test]
    fn the_noisiest_source_pays_for_the_global_cap() {
        let s = Store::new(1000, 100);
        s.insert(log("quiet", 1, "q"), 10);
        for ts in 0..50 {
            s.insert(log("noisy", ts, "n"), 10);
        }
        let q = Query { limit: 1000, ..Default::default() };
        assert_eq!(s.read("quiet", &q).len(), 1, "the quiet app keeps its line");
        assert!(s.total_bytes() <= 100);
        assert_eq!(s.read("noisy", &q).len(), 9);
    }
}
