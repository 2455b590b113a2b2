//! Instance usage for process stats: the newest container metrics (gauges `cpu`, `memory`,
//! `disk`) the cells sent to the logs service. Missing or slow metrics give empty usage,
//! never a failed stats call.

use std::collections::HashMap;
use std::time::Duration;

use wire::envelope::{Message, ReadResponse};
use wire::v3::process::Usage;

use crate::AppState;

/// `instance index → usage` from the newest gauge of each instance.
pub async fn latest(s: &AppState, app_guid: &str) -> HashMap<String, Usage> {
    let mut out = HashMap::new();
    let Ok(token) = s.uaa.internal_token() else { return out };
    let url = format!(
        "{}/api/v1/read/{app_guid}?envelope_types=GAUGE&descending=true&limit=200",
        s.config.logs_url.trim_end_matches('/')
    );
    let req = s.http.get(url).bearer_auth(token).timeout(Duration::from_millis(500));
    let Ok(res) = req.send().await else { return out };
    let Ok(read) = res.json::<ReadResponse>().await else { return out };
    for env in read.envelopes.batch {
        let Message::Gauge(g) = &env.message else { continue };
        if out.contains_key(&env.instance_id) || !g.metrics.contains_key("memory") {
            continue;
        }
        let get = |k: &str| g.metrics.get(k).map(|v| v.value).unwrap_or(0.0);
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(env.timestamp))
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok());
        out.insert(
            env.instance_id.clone(),
            Usage {
                time: t,
                cpu: Some(get("cpu") / 100.0),
                cpu_entitlement: Some(None),
                mem: Some(get("memory") as u64),
                disk: Some(get("disk") as u64),
                log_rate: Some(0),
            },
        );
    }
    out
}
