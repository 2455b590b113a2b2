//! The staging request of a build as a stager gets it, with the app's environment as staging
//! sees it ([`env`]), and the sweeper that keeps builds moving ([`run_sweeper`]): besides
//! failing builds past their deadline or whose stager stopped heartbeating
//! ([`staging::sweep`]), it sends again the request of a STAGING build no stager claimed within
//! `staging_claim_timeout_secs` — published while no stager listened, or lost with one that
//! stopped before claiming it. It does so at most once a claim timeout per build, until the
//! build's deadline; a request may thus reach two stagers, and the claim decides which stages.
//!
//! Apart from `staging` because the environment needs `desired` (`VCAP_APPLICATION`), which
//! depends on `staging` through `docker`.

use std::collections::BTreeMap;
use std::time::Duration;

use bus::BusExt as _;

use crate::domain::staging;
use crate::error::ApiResult;
use crate::store::apps::App;
use crate::store::builds::Build;
use crate::store::{self, now_ms};
use crate::AppState;

/// The app's environment with `VCAP_APPLICATION` and `VCAP_SERVICES`, as staging sees it.
pub async fn env(s: &AppState, app: &App) -> ApiResult<BTreeMap<String, String>> {
    let web = store::processes::find_by_type(&s.db.pool, &app.guid, "web").await?;
    let vcap = crate::domain::desired::vcap_application(s, app, web.as_ref()).await?;
    let staging = crate::domain::env_groups::Group::Staging;
    crate::domain::desired::app_env(s, app, staging, &vcap).await
}

/// How often the sweeper runs: often enough for the claim and heartbeat timeouts (half the
/// shorter one), at most every 5 s.
pub fn sweep_every(config: &crate::Config) -> Duration {
    let shorter =
        config.staging_claim_timeout_secs.min(config.staging_heartbeat_timeout_secs).max(1);
    Duration::from_millis(shorter * 500).min(Duration::from_secs(5))
}

/// Send again the request of every STAGING build unclaimed for the claim timeout; how many
/// were sent.
pub async fn resend_unclaimed(s: &AppState) -> ApiResult<u64> {
    let now = now_ms();
    let timeout = s.config.staging_claim_timeout_secs.saturating_mul(1000);
    let cutoff = now.saturating_sub(i64::try_from(timeout).unwrap_or(i64::MAX));
    let mut n = 0;
    for b in store::builds::unclaimed(&s.db.pool, wire::lrp::DOCKER_STACK, cutoff, now).await? {
        // Another api sending it first, or a claim meanwhile, leaves it to them.
        if !store::builds::mark_resent(&s.db.pool, &b.guid, cutoff, now_ms()).await? {
            continue;
        }
        match resend(s, &b).await {
            Ok(true) => n += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(build = %b.guid, error = %e.detail(), "could not send a staging request again")
            }
        }
    }
    Ok(n)
}

/// Rebuild the request of `b` from the app as it is now and publish it; whether it was sent.
async fn resend(s: &AppState, b: &Build) -> ApiResult<bool> {
    let Some(app) = store::apps::find(&s.db.pool, &b.app_guid).await? else { return Ok(false) };
    let refs = match staging::resolve(s, &b.buildpacks, &b.stack).await {
        Ok(r) => r,
        Err(e) => {
            // Its buildpacks went away while no stager had it: it can never stage.
            let why = format!("StagingError - Staging error: {e}");
            staging::fail(s, &b.guid, &why).await?;
            return Ok(false);
        }
    };
    let mut request = staging::staging_request(s, b, refs, env(s, &app).await?);
    // The stager's own time limit: what is left until the build's deadline.
    let left = u64::try_from((b.deadline - now_ms()) / 1000).unwrap_or(0);
    request.timeout_secs = left.clamp(1, request.timeout_secs.max(1));
    s.bus.publish_json(wire::subjects::STAGING_REQUEST, &request).await.map_err(|e| {
        crate::error::ApiError::ServiceUnavailable(format!("the bus could not be reached ({e})"))
    })?;
    tracing::info!(build = %b.guid, app_guid = %b.app_guid, "no stager claimed this build: its staging request was sent again");
    Ok(true)
}

/// Every `every` until `shutdown`: [`staging::sweep`], then [`resend_unclaimed`].
pub async fn run_sweeper(s: AppState, every: Duration, shutdown: kit::Shutdown) {
    loop {
        if let Err(e) = staging::sweep(&s).await {
            tracing::warn!(error = %e.detail(), "staging sweep failed");
        }
        if let Err(e) = resend_unclaimed(&s).await {
            tracing::warn!(error = %e.detail(), "sending unclaimed staging requests again failed");
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
