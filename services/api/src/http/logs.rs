//! The api's lines in app log streams (`API` source type), published on `logs.API`.

use bus::BusExt as _;

use crate::AppState;

pub async fn api_log(s: &AppState, app_guid: &str, line: &str) {
    let env =
        wire::envelope::Envelope::log(app_guid, "0", "API", line, wire::envelope::LogStream::Out);
    let subject = format!("{}.API", wire::subjects::LOGS_PREFIX);
    if let Err(e) = s.bus.publish_json(&subject, &env).await {
        tracing::debug!(error = %e, "could not publish an API log line");
    }
}
