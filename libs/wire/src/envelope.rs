//! Loggregator v2 envelopes in their JSON (protobuf-JSON) form: the unit of every log line and
//! metric on the bus and in the aggregator's read API.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// One log line or metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unix time in nanoseconds (a string on the wire, as protobuf-JSON does for int64).
    #[serde(with = "crate::int_string")]
    pub timestamp: i64,
    /// App guid for app logs; component name (`api`, `cell/<id>`, ...) for the platform.
    pub source_id: String,
    /// Instance index for apps; component instance for the platform.
    #[serde(default)]
    pub instance_id: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(flatten)]
    pub message: Message,
}

/// The payload of an envelope: exactly one of these keys is present on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Message {
    Log(Log),
    Counter(Counter),
    Gauge(Gauge),
    Timer(Timer),
    Event(Event),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Log {
    /// Base64 of the raw bytes, as protobuf-JSON encodes `bytes`.
    pub payload: String,
    #[serde(rename = "type", default)]
    pub stream: LogStream,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogStream {
    #[default]
    #[serde(rename = "OUT")]
    Out,
    #[serde(rename = "ERR")]
    Err,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    pub name: String,
    #[serde(default, with = "crate::int_string::unsigned")]
    pub delta: u64,
    #[serde(default, with = "crate::int_string::unsigned")]
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gauge {
    pub metrics: BTreeMap<String, GaugeValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GaugeValue {
    pub unit: String,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timer {
    pub name: String,
    #[serde(with = "crate::int_string")]
    pub start: i64,
    #[serde(with = "crate::int_string")]
    pub stop: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub title: String,
    pub body: String,
}

/// The kinds a reader may filter on (`envelope_types=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EnvelopeType {
    Log,
    Counter,
    Gauge,
    Timer,
    Event,
}

impl EnvelopeType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "LOG" => Self::Log,
            "COUNTER" => Self::Counter,
            "GAUGE" => Self::Gauge,
            "TIMER" => Self::Timer,
            "EVENT" => Self::Event,
            _ => return None,
        })
    }
}

/// Tag naming the log source type (`APP/PROC/WEB`, `STG`, `RTR`, `API`, `CELL`, `LGR`, ...).
pub const SOURCE_TYPE: &str = "source_type";

impl Envelope {
    /// A log line from `source_id` with the given source type (`STG`, `APP/PROC/WEB`, ...).
    pub fn log(
        source_id: impl Into<String>,
        instance_id: impl Into<String>,
        source_type: impl Into<String>,
        line: impl AsRef<[u8]>,
        stream: LogStream,
    ) -> Self {
        let mut tags = BTreeMap::new();
        tags.insert(SOURCE_TYPE.to_owned(), source_type.into());
        Self {
            timestamp: now_ns(),
            source_id: source_id.into(),
            instance_id: instance_id.into(),
            tags,
            message: Message::Log(Log {
                payload: base64::engine::general_purpose::STANDARD.encode(line.as_ref()),
                stream,
            }),
        }
    }

    /// A gauge with several named values (container metrics use `cpu`, `memory`, `disk`,
    /// `memory_quota`, `disk_quota`).
    pub fn gauge(
        source_id: impl Into<String>,
        instance_id: impl Into<String>,
        metrics: impl IntoIterator<Item = (String, GaugeValue)>,
    ) -> Self {
        Self {
            timestamp: now_ns(),
            source_id: source_id.into(),
            instance_id: instance_id.into(),
            tags: BTreeMap::new(),
            message: Message::Gauge(Gauge { metrics: metrics.into_iter().collect() }),
        }
    }

    pub fn with_tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    pub fn source_type(&self) -> Option<&str> {
        self.tags.get(SOURCE_TYPE).map(String::as_str)
    }

    pub fn envelope_type(&self) -> EnvelopeType {
        match self.message {
            Message::Log(_) => EnvelopeType::Log,
            Message::Counter(_) => EnvelopeType::Counter,
            Message::Gauge(_) => EnvelopeType::Gauge,
            Message::Timer(_) => EnvelopeType::Timer,
            Message::Event(_) => EnvelopeType::Event,
        }
    }

    /// The decoded bytes of a log envelope, `None` for metrics or a corrupt payload.
    pub fn log_bytes(&self) -> Option<Vec<u8>> {
        match &self.message {
            Message::Log(l) => base64::engine::general_purpose::STANDARD.decode(&l.payload).ok(),
            _ => None,
        }
    }

    /// The log line as text (lossy), `None` for metrics.
    pub fn log_text(&self) -> Option<String> {
        self.log_bytes().map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// The bus subject this envelope is published on: `logs.<first segment of source type>`
    /// lowercased (`logs.app`, `logs.stg`, `logs.rtr`), `logs.metric` for everything else.
    pub fn subject(&self) -> String {
        let kind = match (&self.message, self.source_type()) {
            (Message::Log(_), Some(st)) => {
                st.split('/').next().unwrap_or("log").to_ascii_lowercase()
            }
            (Message::Log(_), None) => "log".to_owned(),
            _ => "metric".to_owned(),
        };
        let kind: String = kind
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
            .collect();
        format!("{}.{kind}", crate::subjects::LOGS_PREFIX)
    }
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// `{"batch":[...]}` as log-cache and the RLP gateway frame envelopes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeBatch {
    #[serde(default)]
    pub batch: Vec<Envelope>,
}

/// The envelopes of one bus message on `logs.*`: one envelope, or a batch of them
/// (`{"batch":[...]}`, how busy producers such as the router send many lines at once).
pub fn decode(payload: &[u8]) -> Result<Vec<Envelope>, serde_json::Error> {
    let head = payload.trim_ascii_start();
    let batch = head
        .strip_prefix(b"{")
        .is_some_and(|rest| rest.trim_ascii_start().starts_with(b"\"batch\""));
    if batch {
        Ok(serde_json::from_slice::<EnvelopeBatch>(payload)?.batch)
    } else {
        Ok(vec![serde_json::from_slice::<Envelope>(payload)?])
    }
}

/// Response of `GET /api/v1/read/<source-id>`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadResponse {
    pub envelopes: EnvelopeBatch,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_envelope_has_the_log_cache_shape() {
        let e = Envelope::log("app-guid", "0", "STG", "hello", LogStream::Out);
        let v = serde_json::to_value(&e).expect("serialize");
        assert!(v["timestamp"].is_string());
        assert_eq!(v["tags"]["source_type"], "STG");
        assert_eq!(v["log"]["payload"], "aGVsbG8=");
        assert_eq!(v["log"]["type"], "OUT");
        let back: Envelope = serde_json::from_value(v).expect("deserialize");
        assert_eq!(back, e);
        assert_eq!(back.log_text().as_deref(), Some("hello"));
    }

    #[test]
    fn numeric_timestamps_are_accepted() {
        let e: Envelope = serde_json::from_str(
            r#"{"timestamp":12,"source_id":"s","gauge":{"metrics":{"cpu":{"unit":"percentage","value":1.5}}}}"#,
        )
        .expect("parse");
        assert_eq!(e.timestamp, 12);
        assert_eq!(e.envelope_type(), EnvelopeType::Gauge);
    }

    #[test]
    fn bus_messages_carry_one_envelope_or_a_batch() {
        let a = Envelope::log("app-guid", "0", "RTR", "one", LogStream::Out);
        let b = Envelope::log("other", "1", "RTR", "two", LogStream::Err);
        let single = serde_json::to_vec(&a).expect("json");
        assert_eq!(decode(&single).expect("single"), vec![a.clone()]);
        let batch = EnvelopeBatch { batch: vec![a.clone(), b.clone()] };
        let framed = serde_json::to_vec(&batch).expect("json");
        assert_eq!(decode(&framed).expect("batch"), vec![a.clone(), b]);
        let spaced = b" { \"batch\" : [] } ";
        assert_eq!(decode(spaced).expect("empty batch"), Vec::<Envelope>::new());
        for bad in [&b"{\"batch\":{}}"[..], b"{\"batch\":[{}]}", b"[]", b"{}", b"not json"] {
            assert!(decode(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn subjects_follow_the_source_type() {
        let e = Envelope::log("a", "0", "APP/PROC/WEB", "x", LogStream::Err);
        assert_eq!(e.subject(), "logs.app");
        let g = Envelope::gauge("a", "0", []);
        assert_eq!(g.subject(), "logs.metric");
    }
}
