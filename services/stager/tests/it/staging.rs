//! The fixture apps stage in runc containers and their droplets answer HTTP when launched.

use std::time::Duration;

use bus::BusExt as _;
use wire::staging::{Staged, StagingOutcome, StagingRequest};

use crate::harness::{fixtures, Harness, Staging};
use crate::run_droplet;

fn staged(s: &Staging) -> &Staged {
    match &s.result.outcome {
        StagingOutcome::Staged(st) => st,
        StagingOutcome::Failed(f) => {
            panic!("staging failed: {}\nlog:\n{}", f.build_error(), s.log.join("\n"))
        }
    }
}

/// Stages `app` by detection, checks the droplet and the log, runs it, returns the body.
async fn stage_and_run(
    h: &Harness,
    app: &str,
    expect_bp: &str,
) -> anyhow::Result<(Staged, String)> {
    let req = h.request(app, h.admin_order(), false)?;
    let s = h.stage(&req).await?;
    let st = staged(&s).clone();
    assert_eq!(st.detected_buildpack, expect_bp, "log:\n{}", s.log.join("\n"));
    for line in ["Downloading buildpacks...", "Staging complete", "Uploading droplet..."] {
        assert!(s.log.iter().any(|l| l == line), "missing {line:?} in log:\n{}", s.log.join("\n"));
    }
    let droplet = s.droplet.expect("droplet uploaded");
    assert_eq!(droplet.len() as u64, st.droplet_size);
    assert_eq!(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&droplet)), st.droplet_sha256);
    assert!(st.image_digest.as_deref().is_some_and(|d| d.starts_with("sha256:")));
    let web = st.process_types.get("web").cloned().expect("web process type");
    let (_running, body) = run_droplet::start_and_get(&droplet, &web).await?;
    Ok((st, body))
}

#[tokio::test(flavor = "multi_thread")]
async fn static_site_stages_and_serves() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (st, body) = stage_and_run(&h, "static", "staticfile_buildpack").await?;
    assert!(body.contains("Hello from the static fixture"), "{body}");
    assert_eq!(st.buildpacks[0].detect_output, "staticfile 1.0.0");
    assert_eq!(st.buildpacks[0].version, "1.0.0");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn python_app_with_pypi_dependency() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (st, body) = stage_and_run(&h, "python", "python_buildpack").await?;
    assert_eq!(st.process_types["web"], "python app.py");
    assert!(body.contains("Hello from python with six 1.16.0"), "{body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn nodejs_app_with_npm_dependency() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let (st, body) = stage_and_run(&h, "nodejs", "nodejs_buildpack").await?;
    assert_eq!(st.process_types["web"], "npm start");
    assert!(body.contains("= true"), "{body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn binary_app_with_procfile() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let req = h.request("binary", vec![h.bp("binary_buildpack")], true)?;
    let s = h.stage(&req).await?;
    let st = staged(&s).clone();
    assert_eq!(st.detected_buildpack, "binary_buildpack");
    assert_eq!(st.process_types["web"], "python3 -m http.server $PORT");
    let (_r, body) =
        run_droplet::start_and_get(&s.droplet.expect("droplet"), &st.process_types["web"]).await?;
    assert!(body.contains("index.txt"), "{body}");
    // Detection picks the procfile buildpack for the same app.
    let req = h.request("binary", h.admin_order(), false)?;
    assert_eq!(staged(&h.stage(&req).await?).detected_buildpack, "procfile_buildpack");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_apps_buildpack_cache_is_kept_until_cleared() -> anyhow::Result<()> {
    let mut h = Harness::start().await?;
    let bp = h.add_buildpack_dir("heroku-hello", &fixtures().join("heroku-buildpack"))?;
    let request = |app: Option<&str>| -> anyhow::Result<StagingRequest> {
        let mut req = h.request("heroku-app", vec![bp.clone()], true)?;
        req.env.insert("GREETING_SUFFIX".into(), "!".into());
        if let Some(app) = app {
            req.app_guid = app.to_owned();
        }
        Ok(req)
    };
    // The app's log holds every staging of it: the last count is this staging's.
    let number = |s: &Staging| {
        s.log.iter().rev().find_map(|l| {
            l.split("staging number ").nth(1).and_then(|r| r.split(' ').next()).map(str::to_owned)
        })
    };
    let first = request(None)?;
    let app = first.app_guid.clone();
    let other = request(None)?;
    assert_eq!(number(&h.stage(&first).await?).as_deref(), Some("1"));
    assert_eq!(number(&h.stage(&request(Some(&app))?).await?).as_deref(), Some("2"));
    assert_eq!(number(&h.stage(&other).await?).as_deref(), Some("1"));

    // The app's cache is cleared: its next staging starts afresh; the other app keeps its own.
    let kept = |guid: &str| h.work.path().join("stager/app-cache").join(guid).exists();
    assert!(kept(&app) && kept(&other.app_guid));
    let clear = |app: Option<&str>| wire::staging::BuildpackCacheDelete {
        app_guid: app.map(str::to_owned),
    };
    h.bus.publish_json(wire::subjects::BUILDPACK_CACHE_DELETE, &clear(Some(&app))).await?;
    testkit::eventually("the app's cache deleted", Duration::from_secs(10), || async {
        (!kept(&app)).then_some(())
    })
    .await?;
    assert!(kept(&other.app_guid), "another app's cache is left alone");
    assert_eq!(number(&h.stage(&request(Some(&app))?).await?).as_deref(), Some("1"));

    // Malformed and empty requests delete nothing; no app means every app.
    h.bus
        .publish(wire::subjects::BUILDPACK_CACHE_DELETE, bytes::Bytes::from_static(b"{not json"))
        .await?;
    h.bus.publish_json(wire::subjects::BUILDPACK_CACHE_DELETE, &clear(Some(""))).await?;
    h.bus.publish_json(wire::subjects::BUILDPACK_CACHE_DELETE, &clear(None)).await?;
    testkit::eventually("every cache deleted", Duration::from_secs(10), || async {
        (!kept(&app) && !kept(&other.app_guid)).then_some(())
    })
    .await?;
    assert_eq!(number(&h.stage(&request(Some(&other.app_guid))?).await?).as_deref(), Some("1"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn heroku_buildpack_stages_unchanged() -> anyhow::Result<()> {
    let mut h = Harness::start().await?;
    let bp = h.add_buildpack_dir("heroku-hello", &fixtures().join("heroku-buildpack"))?;
    let mut req = h.request("heroku-app", vec![bp], true)?;
    req.env.insert("GREETING_SUFFIX".into(), "and ENV_DIR works".into());
    let s = h.stage(&req).await?;
    let st = staged(&s).clone();
    assert_eq!(st.process_types["web"], "cd www && python3 -m http.server $PORT");
    assert!(s.log.iter().any(|l| l.contains("heroku-hello compiling")));
    let (_r, body) =
        run_droplet::start_and_get(&s.droplet.expect("droplet"), &st.process_types["web"]).await?;
    assert!(
        body.contains("hello from the heroku app") && body.contains("and ENV_DIR works"),
        "{body}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn image_layout_is_valid_oci() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let req = h.request("static", vec![h.bp("staticfile_buildpack")], true)?;
    let s = h.stage(&req).await?;
    let digest = staged(&s).image_digest.clone().expect("image digest");
    let layout = h.work.path().join("stager/oci");
    let index: oci_spec::image::ImageIndex =
        serde_json::from_slice(&std::fs::read(layout.join("index.json"))?)?;
    let entry =
        index.manifests().iter().find(|m| m.digest().to_string() == digest).expect("in index");
    let blob = |d: &str| layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"));
    let manifest: oci_spec::image::ImageManifest =
        serde_json::from_slice(&std::fs::read(blob(entry.digest().as_ref()))?)?;
    assert_eq!(manifest.layers().len(), 2);
    for layer in manifest.layers() {
        let bytes = std::fs::read(blob(layer.digest().as_ref()))?;
        assert_eq!(bytes.len() as u64, layer.size());
        assert_eq!(
            format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))),
            layer.digest().to_string()
        );
    }
    let config: oci_spec::image::ImageConfiguration =
        serde_json::from_slice(&std::fs::read(blob(manifest.config().digest().as_ref()))?)?;
    let c = config.config().as_ref().expect("config");
    assert_eq!(c.user().as_deref(), Some("2000:2000"));
    assert_eq!(c.entrypoint().as_ref().expect("entrypoint")[0], stack::LAUNCHER_PATH);
    assert_eq!(c.cmd().as_ref().expect("cmd")[0], staged(&s).process_types["web"]);
    if let Ok(out) =
        std::process::Command::new("umoci").args(["ls", "--layout"]).arg(&layout).output()
    {
        assert!(out.status.success(), "umoci: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn staticfile_root_and_pushstate() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let req = h.request("static-spa", h.admin_order(), false)?;
    let s = h.stage(&req).await?;
    let st = staged(&s).clone();
    let (r, body) =
        run_droplet::start_and_get(&s.droplet.expect("droplet"), &st.process_types["web"]).await?;
    assert!(body.contains("single page app"), "{body}");
    let base = format!("http://127.0.0.1:{}", r.port);
    let deep = reqwest::get(format!("{base}/some/client/route")).await?;
    assert_eq!(deep.status(), 200);
    assert!(deep.text().await?.contains("single page app"));
    let asset = reqwest::get(format!("{base}/assets/app.js")).await?.text().await?;
    assert_eq!(asset, "console.log(1)\n");
    // Only the root directory is served.
    let outside = reqwest::get(format!("{base}/secret.txt")).await?.text().await?;
    assert!(!outside.contains("not served"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn process_backend_stages_without_a_container() -> anyhow::Result<()> {
    let h = Harness::start_with(|c| {
        c.backend = stager::Backend::Process;
        c.write_images = false;
    })
    .await?;
    let req = h.request("static", vec![h.bp("staticfile_buildpack")], true)?;
    let s = h.stage(&req).await?;
    let st = staged(&s);
    let web = &st.process_types["web"];
    assert!(
        web.starts_with('/') && web.ends_with("nginx -p $PWD -c nginx.conf -e stderr"),
        "{web}"
    );
    assert!(st.image_digest.is_none());
    Ok(())
}
