//! The api's periodic resync: the scheduler brought in line with the database, in case a
//! call at the time of a change did not reach it — every started app's desired LRPs put and
//! those of apps that no longer run removed ([`desired::resync`]), and the tasks of deleted apps
//! cancelled ([`tasks::cancel_orphans`]).

use std::time::Duration;

use crate::domain::{desired, tasks};
use crate::error::ApiResult;
use crate::AppState;

async fn pass(s: &AppState) -> ApiResult<(usize, usize)> {
    Ok((desired::resync(s).await?, tasks::cancel_orphans(s).await?))
}

/// The periodic resync loop.
pub async fn run(s: AppState, every: Duration, shutdown: kit::Shutdown) {
    let mut failures = 0u32;
    loop {
        match pass(&s).await {
            Ok((apps, orphans)) => {
                failures = 0;
                tracing::debug!(apps, orphan_tasks = orphans, "desired state resynced");
            }
            // The scheduler may start after the api: only repeated failures are news.
            Err(e) if failures == 0 => {
                failures += 1;
                tracing::debug!(error = %e, "desired state resync failed; retrying");
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, failures, "desired state resync failed; retrying");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
