//! Claims: a stager claims a build at the api before it stages it and claims it again (its
//! heartbeat) while the staging runs; a build whose claim is refused is left alone; a staging
//! whose heartbeat is refused is stopped with nothing uploaded or reported.

use std::time::Duration;

use bus::BusExt as _;
use wire::staging::{StagingOutcome, StagingRequest};

use crate::harness::{fixtures, Harness};

/// A request for the empty app staged by the failing buildpack in `mode`.
fn request(h: &mut Harness, mode: &str) -> anyhow::Result<StagingRequest> {
    let bp = h.add_buildpack_dir("failing", &fixtures().join("failing-buildpack"))?;
    let mut req = h.request("empty", vec![bp], true)?;
    req.env.insert("FAIL_MODE".into(), mode.into());
    Ok(req)
}

/// Waits until the stager has no staging running or queued.
async fn idle(h: &Harness) -> anyhow::Result<()> {
    testkit::eventually("the stager idle", Duration::from_secs(30), || async {
        let n = h.metric("stagings_in_flight").await.ok().flatten();
        (n == Some(0.0)).then_some(())
    })
    .await
}

/// Waits until the failing buildpack of `req` runs (its log says its mode).
async fn builder_running(h: &Harness, req: &StagingRequest) -> anyhow::Result<()> {
    let mode = req.env.get("FAIL_MODE").cloned().unwrap_or_default();
    testkit::eventually("the builder running", Duration::from_secs(30), || {
        let running = h.log_of(&req.app_guid).iter().any(|l| l.contains(&format!("mode {mode}")));
        async move { running.then_some(()) }
    })
    .await
}

/// With the default heartbeat (5 s), a staging of 7 s is claimed before the package is
/// downloaded and claimed again while the builder runs, always by the same stager.
#[tokio::test(flavor = "multi_thread")]
async fn a_staging_is_claimed_first_and_heartbeats_while_it_runs() -> anyhow::Result<()> {
    let mut h = Harness::start().await?;
    let mut req = request(&mut h, "nap")?;
    req.env.insert("NAP_SECS".into(), "7".into());
    let s = h.stage(&req).await?;
    assert!(
        matches!(s.result.outcome, StagingOutcome::Staged(_)),
        "{:?}\n{}",
        s.result,
        s.log.join("\n")
    );
    assert!(s.droplet.is_some());

    let events = h.events_of(&req.build_guid);
    assert_eq!(events.first(), Some(&"claim"), "{events:?}");
    let package = events.iter().position(|e| *e == "package").expect("package downloaded");
    let droplet = events.iter().position(|e| *e == "droplet").expect("droplet uploaded");
    assert!(package < droplet && droplet < events.len() - 1, "{events:?}");
    assert_eq!(events.last(), Some(&"completion"), "{events:?}");
    let beats = events[package..droplet].iter().filter(|e| **e == "claim").count();
    assert!(beats >= 1, "no heartbeat while the builder ran: {events:?}");

    let claims = h.claims_of(&req.build_guid);
    let stager = &claims[0].0;
    assert!(!stager.is_empty());
    assert!(claims.iter().all(|(id, granted)| id == stager && *granted), "{claims:?}");
    Ok(())
}

/// A request whose claim is answered 409 is not staged: claimed once, nothing downloaded,
/// uploaded or reported, while the stager goes on staging the next one.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_whose_claim_is_refused_is_not_staged() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let refused = h.request("static", vec![h.bp("staticfile_buildpack")], true)?;
    h.refuse_claims(&refused.build_guid);
    h.bus.publish_json(wire::subjects::STAGING_REQUEST, &refused).await?;
    testkit::eventually("the refused claim", Duration::from_secs(10), || {
        let claimed = !h.claims_of(&refused.build_guid).is_empty();
        async move { claimed.then_some(()) }
    })
    .await?;

    // Taken after the refused one: by the time it is staged, the refused one would have been.
    let next = h.request("static", vec![h.bp("staticfile_buildpack")], true)?;
    let s = h.stage(&next).await?;
    assert!(matches!(s.result.outcome, StagingOutcome::Staged(_)), "{:?}", s.result);
    idle(&h).await?;

    assert_eq!(h.events_of(&refused.build_guid), ["claim"]);
    assert_eq!(h.claims_of(&refused.build_guid).len(), 1);
    assert!(h.droplet_of(&refused.build_guid).is_none());
    assert!(h.result_of(&refused.build_guid).is_none());
    assert!(h.log_of(&refused.app_guid).is_empty(), "{:?}", h.log_of(&refused.app_guid));
    assert_eq!(h.metric("stagings_started_total").await?, Some(1.0));
    Ok(())
}

/// A heartbeat answered 409 while the builder runs stops the staging: the container and the
/// scratch dir go, no droplet is uploaded and no completion posted.
#[tokio::test(flavor = "multi_thread")]
async fn a_heartbeat_refused_mid_staging_stops_it() -> anyhow::Result<()> {
    let mut h = Harness::start_with(|c| c.heartbeat_secs = 1).await?;
    // Would run for 600 s.
    let req = request(&mut h, "sleep")?;
    h.bus.publish_json(wire::subjects::STAGING_REQUEST, &req).await?;
    builder_running(&h, &req).await?;
    let granted = h.claims_of(&req.build_guid).len();
    assert!(granted >= 1);

    h.refuse_claims(&req.build_guid);
    idle(&h).await?;
    let claims = h.claims_of(&req.build_guid);
    assert!(claims.len() > granted && !claims.last().expect("claim").1, "{claims:?}");
    assert_eq!(h.metric("stagings_aborted_total").await?, Some(1.0));
    let events = h.events_of(&req.build_guid);
    assert!(!events.contains(&"droplet") && !events.contains(&"completion"), "{events:?}");
    assert!(h.result_of(&req.build_guid).is_none());
    assert!(h.log_of(&req.app_guid).iter().any(|l| l.contains("Staging stopped")));

    let builds = h.work.path().join("stager/builds");
    let ours = builds.display().to_string();
    testkit::eventually("the container deleted", Duration::from_secs(10), || {
        let listed = std::process::Command::new("runc").arg("list").output();
        let gone = listed.is_ok_and(|o| {
            o.status.success() && !String::from_utf8_lossy(&o.stdout).contains(&ours)
        });
        async move { gone.then_some(()) }
    })
    .await?;
    testkit::eventually("the scratch dir removed", Duration::from_secs(10), || {
        let empty = std::fs::read_dir(&builds).map(|mut d| d.next().is_none()).unwrap_or(false);
        async move { empty.then_some(()) }
    })
    .await?;
    Ok(())
}

/// The processes whose environment names `dir` (a staging's scratch files are under it).
fn processes_under(dir: &str) -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else { return Vec::new() };
    procs
        .flatten()
        .filter_map(|p| p.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.windows(dir.len()).any(|w| w == dir.as_bytes()))
        })
        .collect()
}

/// Without containers, a staging stopped by a refused heartbeat takes every process of its
/// builder with it: the buildpack's `sleep`, not only the shell that started the builder.
#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_staging_without_containers_leaves_no_process_behind() -> anyhow::Result<()> {
    let mut h = Harness::start_with(|c| {
        c.heartbeat_secs = 1;
        c.backend = stager::Backend::Process;
        c.write_images = false;
    })
    .await?;
    let req = request(&mut h, "sleep")?;
    h.bus.publish_json(wire::subjects::STAGING_REQUEST, &req).await?;
    builder_running(&h, &req).await?;
    let builds = h.work.path().join("stager/builds").display().to_string();
    let running = processes_under(&builds);
    assert!(running.len() >= 2, "the builder and its sleep: {running:?}");

    h.refuse_claims(&req.build_guid);
    idle(&h).await?;
    assert_eq!(h.metric("stagings_aborted_total").await?, Some(1.0));
    testkit::eventually("every builder process gone", Duration::from_secs(10), || {
        let left = processes_under(&builds);
        async move { left.is_empty().then_some(()) }
    })
    .await?;
    Ok(())
}
