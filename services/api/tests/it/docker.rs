//! Docker packages and their builds, on both engines, against a small registry served by the
//! test: the password is never shown back, `diego_docker` gates staging, a build resolves the
//! image into a droplet pinned to its digest (with its process, ports and user), and a missing
//! tag or an unreachable registry fails the build with the reason.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use testkit::{Engine, TestDb};

use crate::harness::{self, Client};

fn digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// An anonymous registry holding `team/app:v1` (one layer, which staging reads through) on a
/// free port.
async fn registry() -> (u16, String) {
    let layer = b"layer bytes".to_vec();
    let config = json!({"architecture": "amd64", "os": "linux", "config": {
        "Cmd": ["/bin/httpd", "-f", "-p", "9000"], "User": "www", "WorkingDir": "/srv",
        "ExposedPorts": {"9000/tcp": {}}}})
    .to_string()
    .into_bytes();
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": digest(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": digest(&layer), "size": layer.len()}]})
    .to_string()
    .into_bytes();
    let manifest_digest = digest(&manifest);
    // `bad`: the same image but for a layer whose stored bytes do not match its digest.
    let honest = b"honest bytes".to_vec();
    let tampered = String::from_utf8(manifest.clone())
        .expect("utf-8")
        .replace(&digest(&layer), &digest(&honest))
        .replace(&format!("\"size\":{}", layer.len()), &format!("\"size\":{}", honest.len()))
        .into_bytes();
    let mut objects: HashMap<String, Vec<u8>> = HashMap::new();
    objects.insert("team/app/manifests/v1".into(), manifest);
    objects.insert("team/app/manifests/bad".into(), tampered);
    objects.insert(format!("team/app/blobs/{}", digest(&honest)), b"altered bytes".to_vec());
    objects.insert(format!("team/app/blobs/{}", digest(&config)), config);
    objects.insert(format!("team/app/blobs/{}", digest(&layer)), layer);
    let objects = Arc::new(objects);
    async fn get(
        State(o): State<Arc<HashMap<String, Vec<u8>>>>,
        Path(rest): Path<String>,
    ) -> Response {
        match o.get(&rest) {
            Some(b) => b.clone().into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }
    let app = axum::Router::new().route("/v2/{*rest}", axum::routing::get(get)).with_state(objects);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, manifest_digest)
}

async fn build_of(c: &Client, app: &str, image: &str) -> Value {
    let body = json!({"type": "docker", "data": {"image": image},
        "relationships": {"app": {"data": {"guid": app}}}});
    let (st, pkg) = c.post("/v3/packages", body).await;
    assert_eq!(st, StatusCode::CREATED, "{pkg}");
    let (st, b) = c.post("/v3/builds", json!({"package": {"guid": pkg["guid"]}})).await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let guid = b["guid"].as_str().expect("build").to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, b) = c.get(&format!("/v3/builds/{guid}")).await;
        if b["state"] != "STAGING" {
            return b;
        }
        assert!(tokio::time::Instant::now() < deadline, "still staging: {b}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn docker_builds_resolve_images_into_droplets_pinned_to_their_digest() {
    let (port, manifest_digest) = registry().await;
    for engine in Engine::ALL {
        let db = TestDb::new(engine).await.expect("db");
        let p = harness::start(&db, |_| {}).await;
        let admin = Client::new(&p.url, &p.admin_token);
        let (_, space) = crate::push::org_and_space(&admin, "docker").await;
        let (st, app) = admin
            .post(
                "/v3/apps",
                json!({"name": "img", "lifecycle": {"type": "docker", "data": {}},
                "relationships": {"space": {"data": {"guid": space}}}}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{app}");
        let app = app["guid"].as_str().expect("app").to_owned();
        let (st, _) = admin.patch("/v3/feature_flags/diego_docker", json!({"enabled": true})).await;
        assert_eq!(st, StatusCode::OK);

        // Credentials: both or neither; the password is never shown back.
        let private = |data: Value| json!({"type": "docker", "data": data, "relationships": {"app": {"data": {"guid": app}}}});
        let (st, e) =
            admin.post("/v3/packages", private(json!({"image": "a/b", "username": "u"}))).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        let (st, pkg) = admin
            .post(
                "/v3/packages",
                private(json!({"image": "a/b", "username": "u", "password": "secret"})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{pkg}");
        assert_eq!(pkg["data"], json!({"image": "a/b", "username": "u", "password": "***"}));
        let (_, shown) =
            admin.get(&format!("/v3/packages/{}", pkg["guid"].as_str().expect("guid"))).await;
        assert!(!shown.to_string().contains("secret"), "{shown}");

        // A build resolves the image: a STAGED droplet with the image pinned and its config.
        let b = build_of(&admin, &app, &format!("127.0.0.1:{port}/team/app:v1")).await;
        assert_eq!(b["state"], "STAGED", "{b}");
        assert_eq!(b["lifecycle"]["type"], "docker", "{b}");
        let (_, d) = admin
            .get(&format!("/v3/droplets/{}", b["droplet"]["guid"].as_str().expect("droplet")))
            .await;
        assert_eq!(d["image"], format!("127.0.0.1:{port}/team/app@{manifest_digest}"), "{d}");
        assert_eq!(d["process_types"], json!({"web": "/bin/httpd -f -p 9000"}), "{d}");
        assert_eq!(d["lifecycle"]["type"], "docker");
        assert_eq!(d["checksum"], Value::Null);
        let meta: Value =
            serde_json::from_str(d["execution_metadata"].as_str().expect("meta")).expect("json");
        assert_eq!(meta["exposed_ports"], json!([9000]), "{meta}");
        assert_eq!(
            (meta["user"].as_str(), meta["working_dir"].as_str()),
            (Some("www"), Some("/srv"))
        );

        // A copy for another app: STAGED at once, the same pinned image, its package copied
        // along (the credentials the cells pull with stay with the copy).
        let (_, other) = admin
            .post(
                "/v3/apps",
                json!({"name": "img-copy", "lifecycle": {"type": "docker", "data": {}},
                "relationships": {"space": {"data": {"guid": space}}}}),
            )
            .await;
        let other = other["guid"].as_str().expect("app").to_owned();
        let (st, copy) = admin
            .post(
                &format!("/v3/droplets?source_guid={}", d["guid"].as_str().expect("guid")),
                json!({"relationships": {"app": {"data": {"guid": other}}}}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{copy}");
        assert_eq!((copy["state"].as_str(), &copy["image"]), (Some("STAGED"), &d["image"]));
        let (_, pkgs) = admin.get(&format!("/v3/apps/{other}/packages")).await;
        assert_eq!(pkgs["resources"][0]["type"], "docker", "{pkgs}");
        assert_eq!(pkgs["resources"][0]["data"]["image"], format!("127.0.0.1:{port}/team/app:v1"));

        // Failures name their reason.
        let b = build_of(&admin, &app, &format!("127.0.0.1:{port}/team/app:missing")).await;
        assert_eq!(b["state"], "FAILED", "{b}");
        let err = b["error"].as_str().expect("error");
        assert!(err.starts_with("StagingError - Staging error: image 127.0.0.1:"), "{err}");
        assert!(err.contains("was not found"), "{err}");
        let b = build_of(&admin, &app, &format!("127.0.0.1:{port}/team/app:bad")).await;
        assert_eq!(b["state"], "FAILED", "{b}");
        let err = b["error"].as_str().expect("error");
        assert!(
            err.contains(&format!("layer {}", digest(b"honest bytes")))
                && err.contains("does not match its digest"),
            "{err}"
        );
        let b = build_of(&admin, &app, "127.0.0.1:1/team/app:v1").await;
        assert_eq!(b["state"], "FAILED", "{b}");
        assert!(b["error"].as_str().expect("error").contains("cannot connect"), "{b}");

        // With diego_docker off, docker packages are not staged (admins included).
        let (_, pkg) = admin.post("/v3/packages", private(json!({"image": "a/b"}))).await;
        let (st, _) =
            admin.patch("/v3/feature_flags/diego_docker", json!({"enabled": false})).await;
        assert_eq!(st, StatusCode::OK);
        let (st, e) = admin.post("/v3/builds", json!({"package": {"guid": pkg["guid"]}})).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{e}");
        assert_eq!(e["errors"][0]["detail"], "Feature Disabled: diego_docker", "{e}");
        p.stop().await;
    }
}
