//! Droplets a client brings (`cf push --droplet`), on both engines: created AWAITING_UPLOAD,
//! a bad upload refused with the droplet left for another try, a good one STAGED with its
//! checksum and the start command of its `staging_info.yml`, then run like a staged one.

use axum::http::StatusCode;
use serde_json::{json, Value};
use testkit::{Engine, TestDb};

use crate::harness::{self, Client};
use crate::tenancy::{create_user, login, role};

/// A droplet `.tgz` as staging writes one: `app/`, `staging_info.yml`.
fn droplet_tgz(with_app: bool) -> Vec<u8> {
    let d = tempfile::tempdir().expect("dir");
    let root = d.path().join("droplet");
    std::fs::create_dir_all(&root).expect("mkdir");
    if with_app {
        std::fs::create_dir_all(root.join("app")).expect("mkdir");
        std::fs::write(root.join("app/run"), "#!/bin/sh\necho hi\n").expect("write");
    }
    std::fs::write(
        root.join("staging_info.yml"),
        "detected_buildpack: binary\nstart_command: ./run\n",
    )
    .expect("write");
    let tgz = d.path().join("droplet.tgz");
    archive::write_tar_gz(&root, &tgz).expect("tgz");
    std::fs::read(tgz).expect("read")
}

async fn upload(c: &Client, droplet: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    let form = reqwest::multipart::Form::new()
        .part("bits", reqwest::multipart::Part::bytes(bytes).file_name("droplet.tgz"));
    let res = c
        .http
        .post(format!("{}/v3/droplets/{droplet}/upload", c.url))
        .bearer_auth(&c.token)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let st = StatusCode::from_u16(res.status().as_u16()).expect("status");
    let loc = res.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body: Value = res.json().await.unwrap_or_default();
    match loc {
        Some(l) if st == StatusCode::ACCEPTED => (st, c.wait_job(&l).await),
        _ => (st, body),
    }
}

#[tokio::test]
async fn droplets_brought_by_a_client_are_checked_staged_and_run() {
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |_| {}).await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (org, space) = crate::push::org_and_space(&admin, "drops").await;
        let (_, other_space) = crate::push::org_and_space(&admin, "others").await;
        create_user(&admin, "dev").await;
        create_user(&admin, "aud").await;
        assert_eq!(role(&admin, "organization_user", "dev", ("organization", &org)).await.0, 201);
        assert_eq!(role(&admin, "space_developer", "dev", ("space", &space)).await.0, 201);
        assert_eq!(role(&admin, "organization_user", "aud", ("organization", &org)).await.0, 201);
        assert_eq!(role(&admin, "space_auditor", "aud", ("space", &space)).await.0, 201);
        let dev = login(&p.url, "dev").await;
        let aud = login(&p.url, "aud").await;
        let app_in = |space: &str| json!({"name": "web", "relationships": {"space": {"data": {"guid": space}}}});
        let (_, app) = dev.post("/v3/apps", app_in(&space)).await;
        let app = app["guid"].as_str().expect("app").to_owned();
        let (_, theirs) = admin.post("/v3/apps", app_in(&other_space)).await;
        let theirs = theirs["guid"].as_str().expect("app").to_owned();

        let new = |a: &str| json!({"relationships": {"app": {"data": {"guid": a}}}});
        let (st, e) = dev.post("/v3/droplets", new(&theirs)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "another tenant's app: {e}");
        let (st, e) = aud.post("/v3/droplets", new(&app)).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
        let (st, e) = dev.post("/v3/droplets", json!({"relationships": "web"})).await;
        assert!(st.is_client_error(), "{e}");
        let (st, d) = dev.post("/v3/droplets", new(&app)).await;
        assert_eq!(st, StatusCode::CREATED, "{d}");
        assert_eq!(d["state"], "AWAITING_UPLOAD");
        assert_eq!(d["checksum"]["value"], Value::Null);
        assert!(
            d["links"]["upload"]["href"].is_string() && d["links"]["download"].is_null(),
            "{d}"
        );
        let droplet = d["guid"].as_str().expect("droplet").to_owned();

        // Refused uploads: the job says why, the droplet waits for another try.
        let (st, job) = upload(&dev, &droplet, b"not a tarball".to_vec()).await;
        assert_eq!((st, &job["state"]), (StatusCode::ACCEPTED, &json!("FAILED")), "{job}");
        assert!(
            job["errors"][0]["detail"]
                .as_str()
                .expect("detail")
                .contains("not a valid gzipped tar"),
            "{job}"
        );
        let (_, job) = upload(&dev, &droplet, droplet_tgz(false)).await;
        assert!(job["errors"][0]["detail"].as_str().expect("detail").contains("no app/"), "{job}");
        assert_eq!(dev.get(&format!("/v3/droplets/{droplet}")).await.1["state"], "AWAITING_UPLOAD");
        let (st, e) = upload(&aud, &droplet, droplet_tgz(true)).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{e}");

        // A good one: STAGED, its checksum, web from staging_info.yml; downloaded the same.
        let bytes = droplet_tgz(true);
        let (_, job) = upload(&dev, &droplet, bytes.clone()).await;
        assert_eq!(job["state"], "COMPLETE", "{job}");
        let (_, d) = dev.get(&format!("/v3/droplets/{droplet}")).await;
        assert_eq!(d["state"], "STAGED", "{d}");
        assert_eq!(d["process_types"], json!({"web": "./run"}));
        use sha2::Digest as _;
        let sha = hex::encode(sha2::Sha256::digest(&bytes));
        assert_eq!(d["checksum"]["value"], sha.as_str());
        let got = dev
            .http
            .get(format!("{}/v3/droplets/{droplet}/download", p.url))
            .bearer_auth(&dev.token)
            .send()
            .await
            .expect("download")
            .bytes()
            .await
            .expect("bytes");
        assert_eq!(got.as_ref(), bytes.as_slice());
        let (st, e) = upload(&dev, &droplet, droplet_tgz(true)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "once staged: {e}");

        // Given process types win over staging_info.yml.
        let mut typed = new(&app);
        typed["process_types"] = json!({"web": "./serve", "worker": "./work"});
        let (_, t) = dev.post("/v3/droplets", typed).await;
        let typed = t["guid"].as_str().expect("droplet").to_owned();
        assert_eq!(upload(&dev, &typed, droplet_tgz(true)).await.1["state"], "COMPLETE");
        assert_eq!(
            dev.get(&format!("/v3/droplets/{typed}")).await.1["process_types"]["worker"],
            "./work"
        );

        // Copied to another app: STAGED at once with the same bits and settings.
        let (_, second) = dev
            .post(
                "/v3/apps",
                json!({"name": "second", "relationships": {"space": {"data": {"guid": space}}}}),
            )
            .await;
        let second = second["guid"].as_str().expect("app").to_owned();
        let (st, copy) =
            dev.post(&format!("/v3/droplets?source_guid={droplet}"), new(&second)).await;
        assert_eq!(st, StatusCode::CREATED, "{copy}");
        assert_eq!(copy["state"], "STAGED", "{copy}");
        assert_eq!(copy["checksum"]["value"], sha.as_str());
        assert_eq!(copy["process_types"], json!({"web": "./run"}));
        assert_eq!(copy["relationships"]["app"]["data"]["guid"], second.as_str());
        let (_, waiting) = dev.post("/v3/droplets", new(&app)).await;
        let waiting = waiting["guid"].as_str().expect("droplet").to_owned();
        let (st, e) = dev.post(&format!("/v3/droplets?source_guid={waiting}"), new(&second)).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "only a staged droplet: {e}");
        let (_, theirs_droplet) = admin.post("/v3/droplets", new(&theirs)).await;
        let theirs_droplet = theirs_droplet["guid"].as_str().expect("droplet").to_owned();
        let (st, e) =
            dev.post(&format!("/v3/droplets?source_guid={theirs_droplet}"), new(&second)).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "another tenant's droplet: {e}");

        // It runs as a staged droplet does.
        let (st, r) = dev
            .patch(
                &format!("/v3/apps/{app}/relationships/current_droplet"),
                json!({"data": {"guid": droplet}}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{r}");
        let (st, started) = dev.post(&format!("/v3/apps/{app}/actions/start"), json!({})).await;
        assert_eq!(st, StatusCode::OK, "{started}");
        let lrp = p
            .desired
            .lock()
            .expect("lock")
            .values()
            .find(|l| l.log_guid == app)
            .cloned()
            .expect("desired");
        assert_eq!(lrp.image.droplet_sha256, sha);
        assert_eq!(lrp.start_command, "./run");
        p.stop().await;
    }
}
