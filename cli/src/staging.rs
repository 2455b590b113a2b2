//! Staging a package into a droplet with its output streamed live (`push`, `restage`).

use wire::v3::build::BuildCreate;
use wire::v3::{App, Build, BuildState, Guid};

use crate::client::{Client, Result};
use crate::error::CliError;

/// Create a build for `pkg`, stream its staging output, and return the droplet guid.
pub async fn stage(c: &mut Client, app: &App, pkg: &str) -> Result<String> {
    println!("Staging app and tracing logs...");
    let since = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 - 1_000_000_000;
    let body = BuildCreate { package: Guid::new(pkg), ..Default::default() };
    let build: Build = c.post("/v3/builds", &body).await?;
    let mut tail = crate::logs::Tail::new(&app.guid, since, Some("STG"));
    loop {
        tail.print_new(c).await;
        let b: Build = c.get(&format!("/v3/builds/{}", build.guid)).await?;
        match b.state {
            BuildState::Staged => {
                tail.print_new(c).await;
                return b
                    .droplet
                    .map(|d| d.guid)
                    .ok_or_else(|| CliError::Other("the build has no droplet".into()));
            }
            BuildState::Failed => {
                tail.print_new(c).await;
                return Err(failed(&app.name, b.error.as_deref()));
            }
            BuildState::Staging => {
                tokio::time::sleep(c.poll.min(std::time::Duration::from_millis(500))).await
            }
        }
    }
}

/// The error of a failed build, with what to try next.
fn failed(app: &str, error: Option<&str>) -> CliError {
    let err = error.unwrap_or("staging failed");
    let msg = if err.starts_with("NoAppDetectedError") {
        format!("{err}\nTIP: Buildpacks are detected when 'paas push' runs in the app's folder; check 'paas buildpacks', or name one with -b.")
    } else {
        err.to_owned()
    };
    CliError::Failed(format!("{msg}\nTIP: use 'paas logs {app} --recent' for more information"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_say_what_to_try() {
        let e = failed("web", Some("NoAppDetectedError - none")).to_string();
        assert!(e.contains("paas buildpacks") && e.contains("paas logs web --recent"), "{e}");
        assert!(failed("web", None).to_string().starts_with("staging failed\n"));
    }
}
