//! Each failure names what happened in the build error and in the STG log.

use wire::staging::{StagingFailure, StagingOutcome};

use crate::harness::{fixtures, Harness, Staging};

fn failure(s: &Staging) -> StagingFailure {
    match &s.result.outcome {
        StagingOutcome::Failed(f) => f.clone(),
        StagingOutcome::Staged(_) => {
            panic!("staging unexpectedly succeeded; log:\n{}", s.log.join("\n"))
        }
    }
}

fn logged(s: &Staging, needle: &str) -> bool {
    s.log.iter().any(|l| l.contains(needle))
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_detected_names_the_buildpacks_tried() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let s = h.stage(&h.request("empty", h.admin_order(), false)?).await?;
    let f = failure(&s);
    assert_eq!(
        f.build_error(),
        "NoAppDetectedError - An app was not successfully detected by any available buildpack"
    );
    assert!(logged(&s, "Tried: staticfile_buildpack python_buildpack nodejs_buildpack go_buildpack procfile_buildpack binary_buildpack"), "{:?}", s.log);
    assert!(logged(&s, "NoAppDetectedError"));
    assert!(s.droplet.is_none());
    Ok(())
}

/// Stages the empty app with the failing buildpack in `mode`.
async fn failing(
    h: &mut Harness,
    mode: &str,
    tweak: impl FnOnce(&mut wire::staging::StagingRequest),
) -> anyhow::Result<Staging> {
    let bp = h.add_buildpack_dir("failing", &fixtures().join("failing-buildpack"))?;
    let mut req = h.request("empty", vec![bp], true)?;
    req.env.insert("FAIL_MODE".into(), mode.into());
    tweak(&mut req);
    h.stage(&req).await
}

#[tokio::test(flavor = "multi_thread")]
async fn compile_failure_has_exit_code_and_last_lines() -> anyhow::Result<()> {
    let mut h = Harness::start().await?;
    let s = failing(&mut h, "exit", |_| {}).await?;
    let f = failure(&s);
    assert_eq!(f.error_id, "BuildpackCompileFailed");
    assert!(
        f.message.contains("exited with 3")
            && f.message.contains("something broke in the compile step"),
        "{}",
        f.message
    );
    assert!(logged(&s, "something broke in the compile step"));
    assert!(logged(&s, "BuildpackCompileFailed"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn release_failure() -> anyhow::Result<()> {
    let mut h = Harness::start().await?;
    let s = failing(&mut h, "release", |_| {}).await?;
    let f = failure(&s);
    assert_eq!(f.error_id, "BuildpackReleaseFailed");
    assert!(f.message.contains("release exploded"), "{}", f.message);
    assert!(logged(&s, "release exploded"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_kills_the_staging() -> anyhow::Result<()> {
    let mut h = Harness::start().await?;
    let s = failing(&mut h, "sleep", |r| r.timeout_secs = 3).await?;
    let f = failure(&s);
    assert_eq!(f.error_id, "StagingTimeExpired");
    assert!(logged(&s, "StagingTimeExpired"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn disk_limit() -> anyhow::Result<()> {
    let mut h = Harness::start().await?;
    let s = failing(&mut h, "disk", |r| r.disk_mb = 64).await?;
    let f = failure(&s);
    assert_eq!(f.error_id, "StagingError");
    assert!(f.message.contains("out of disk"), "{}", f.message);
    assert!(logged(&s, "out of disk"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_limit() -> anyhow::Result<()> {
    let mut h = Harness::start().await?;
    let s = failing(&mut h, "memory", |r| r.memory_mb = 64).await?;
    let f = failure(&s);
    assert_eq!(f.error_id, "StagingError");
    assert!(f.message.contains("out of memory"), "{}", f.message);
    assert!(logged(&s, "out of memory"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn overload_beyond_the_queue_bound_fails_at_once() -> anyhow::Result<()> {
    let mut h = Harness::start_with(|c| {
        c.max_concurrent = 1;
        c.max_queued = 0;
    })
    .await?;
    let bp = h.add_buildpack_dir("failing", &fixtures().join("failing-buildpack"))?;
    let mut slow = h.request("empty", vec![bp.clone()], true)?;
    slow.env.insert("FAIL_MODE".into(), "sleep".into());
    slow.timeout_secs = 5;
    let extra = h.request("empty", vec![bp], true)?;
    bus::BusExt::publish_json(&*h.bus, wire::subjects::STAGING_REQUEST, &slow).await?;
    let s = h.stage(&extra).await?;
    let f = failure(&s);
    assert!(f.message.contains("overloaded"), "{}", f.message);
    assert!(logged(&s, "overloaded"));
    // The accepted one still ends (by its timeout), it is not lost.
    let first = h.stage_result(&slow.build_guid, std::time::Duration::from_secs(60)).await?;
    assert!(
        matches!(first.outcome, StagingOutcome::Failed(ref f) if f.error_id == "StagingTimeExpired")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_reports_in_flight_stagings_failed() -> anyhow::Result<()> {
    let mut h = Harness::start().await?;
    let bp = h.add_buildpack_dir("failing", &fixtures().join("failing-buildpack"))?;
    let mut slow = h.request("empty", vec![bp], true)?;
    slow.env.insert("FAIL_MODE".into(), "sleep".into());
    bus::BusExt::publish_json(&*h.bus, wire::subjects::STAGING_REQUEST, &slow).await?;
    testkit::eventually("staging started", std::time::Duration::from_secs(30), || {
        let started = h.log_of(&slow.app_guid).iter().any(|l| l.contains("mode sleep"));
        async move { started.then_some(()) }
    })
    .await?;
    h.stop_stager();
    let r = h.stage_result(&slow.build_guid, std::time::Duration::from_secs(30)).await?;
    let StagingOutcome::Failed(f) = r.outcome else { anyhow::bail!("not failed") };
    assert!(f.message.contains("shut down"), "{}", f.message);
    Ok(())
}
