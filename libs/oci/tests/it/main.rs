//! The registry client against an in-process registry on a free port: Bearer-token and basic
//! auth, an index with a linux/amd64 entry, missing tags, tampered blobs, other platforms.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use oci::{Credentials, OciError, Reference, Registry};
use serde_json::json;
use sha2::{Digest as _, Sha256};

#[derive(Clone, Copy, PartialEq)]
enum Auth {
    Bearer,
    Basic,
}

struct Fake {
    auth: Auth,
    port: u16,
    /// `manifests/<ref>` or `blobs/<digest>` → (content type, body).
    objects: HashMap<String, (String, Vec<u8>)>,
}

const USER: &str = "alice";
const PASS: &str = "s3cret";

fn digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn basic_ok(h: &HeaderMap) -> bool {
    use base64::Engine as _;
    let want = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"));
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Basic {want}"))
}

async fn token(State(f): State<Arc<Fake>>, h: HeaderMap) -> Response {
    let _ = f;
    if basic_ok(&h) {
        axum::Json(json!({"token": "t0k"})).into_response()
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    }
}

async fn v2(State(f): State<Arc<Fake>>, Path(rest): Path<String>, h: HeaderMap) -> Response {
    let authorized = match f.auth {
        Auth::Bearer => h.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer t0k"),
        Auth::Basic => basic_ok(&h),
    };
    if !authorized {
        let challenge = match f.auth {
            Auth::Bearer => format!(
                r#"Bearer realm="http://127.0.0.1:{}/token",service="fake",scope="repository:team/app:pull""#,
                f.port
            ),
            Auth::Basic => r#"Basic realm="fake""#.to_owned(),
        };
        return (StatusCode::UNAUTHORIZED, [("www-authenticate", challenge)]).into_response();
    }
    let key = rest.strip_prefix("team/app/").unwrap_or("").to_owned();
    match f.objects.get(&key) {
        Some((ct, body)) => ([("content-type", ct.clone())], body.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

struct Image {
    layer: Vec<u8>,
    layer_digest: String,
    objects: HashMap<String, (String, Vec<u8>)>,
}

/// An image of one layer for `arch`, under an index tagged `v1`, plus `arm` (arm64 only).
fn image(tamper_layer: bool) -> Image {
    let layer = b"not really a tar, but bytes with a digest".to_vec();
    let layer_digest = digest(&layer);
    let config = json!({"architecture": "amd64", "os": "linux", "config": {
        "Entrypoint": ["/bin/serve"], "Cmd": ["--port", "8080"], "User": "1000",
        "Env": ["PATH=/bin"], "WorkingDir": "/srv", "ExposedPorts": {"8080/tcp": {}}}})
    .to_string()
    .into_bytes();
    let arm_config = br#"{"architecture":"arm64","os":"linux"}"#.to_vec();
    let manifest = |config: &[u8]| {
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len()}]})
        .to_string()
        .into_bytes()
    };
    let (amd, arm) = (manifest(&config), manifest(&arm_config));
    let entry = |m: &[u8], arch: &str| json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(m), "size": m.len(), "platform": {"os": "linux", "architecture": arch}});
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&arm, "arm64"), entry(&amd, "amd64")]})
    .to_string()
    .into_bytes();
    let arm_index =
        json!({"schemaVersion": 2, "manifests": [entry(&arm, "arm64")]}).to_string().into_bytes();
    let oci = |t: &str| format!("application/vnd.oci.image.{t}.v1+json");
    let mut objects = HashMap::new();
    objects.insert("manifests/v1".into(), (oci("index"), index));
    objects.insert("manifests/arm".into(), (oci("index"), arm_index));
    objects.insert(format!("manifests/{}", digest(&amd)), (oci("manifest"), amd));
    objects.insert(format!("manifests/{}", digest(&arm)), (oci("manifest"), arm));
    objects.insert(format!("blobs/{}", digest(&config)), (String::new(), config));
    objects.insert(format!("blobs/{}", digest(&arm_config)), (String::new(), arm_config));
    let served = if tamper_layer { b"tampered bytes".to_vec() } else { layer.clone() };
    objects.insert(format!("blobs/{layer_digest}"), (String::new(), served));
    Image { layer, layer_digest, objects }
}

async fn serve(auth: Auth, objects: HashMap<String, (String, Vec<u8>)>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let fake = Arc::new(Fake { auth, port, objects });
    let app =
        Router::new().route("/token", get(token)).route("/v2/{*rest}", get(v2)).with_state(fake);
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

fn creds(password: &str) -> Option<Credentials> {
    Some(Credentials { username: USER.into(), password: password.into() })
}

fn reference(port: u16, tag: &str) -> Reference {
    Reference::parse(&format!("127.0.0.1:{port}/team/app:{tag}")).expect("reference")
}

#[tokio::test]
async fn an_index_resolves_to_its_amd64_image_with_a_bearer_token() {
    let img = image(false);
    let port = serve(Auth::Bearer, img.objects.clone()).await;
    let registry = Registry::new(vec![]);
    let session = registry.session(&reference(port, "v1"), creds(PASS));
    let r = session.resolve().await.expect("resolve");
    assert_eq!(r.reference.to_string(), format!("127.0.0.1:{port}/team/app@{}", r.digest));
    assert_eq!(r.config.argv(), ["/bin/serve", "--port", "8080"]);
    assert_eq!(r.config.exposed_ports, [8080]);
    assert_eq!(r.layers.len(), 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("layer");
    let n =
        session.fetch_blob(&img.layer_digest, img.layer.len() as u64, &dest).await.expect("blob");
    assert_eq!(n, img.layer.len() as u64);
    assert_eq!(std::fs::read(&dest).expect("layer"), img.layer);
    // The pinned reference resolves to the same image.
    let again = registry.resolve(&r.reference, creds(PASS)).await.expect("pinned");
    assert_eq!(again, r);
}

#[tokio::test]
async fn basic_auth_registries_work_too() {
    let img = image(false);
    let port = serve(Auth::Basic, img.objects).await;
    let r = Registry::new(vec![]).resolve(&reference(port, "v1"), creds(PASS)).await;
    assert_eq!(r.expect("resolve").config.user, "1000");
}

#[tokio::test]
async fn wrong_credentials_a_missing_tag_and_another_platform_say_so() {
    let img = image(false);
    for auth in [Auth::Bearer, Auth::Basic] {
        let port = serve(auth, img.objects.clone()).await;
        let registry = Registry::new(vec![]);
        let e = registry.resolve(&reference(port, "v1"), creds("wrong")).await.expect_err("creds");
        assert!(matches!(e, OciError::Unauthorized { .. }), "{e}");
        assert!(e.to_string().contains("refused the credentials"), "{e}");
        let e = registry.resolve(&reference(port, "v1"), None).await.expect_err("anonymous");
        assert!(matches!(e, OciError::Unauthorized { .. }), "{e}");
        let e = registry.resolve(&reference(port, "nope"), creds(PASS)).await.expect_err("tag");
        assert_eq!(
            e.to_string(),
            format!("image 127.0.0.1:{port}/team/app:nope was not found in registry 127.0.0.1:{port} (no such repository, tag or digest)")
        );
        let e = registry.resolve(&reference(port, "arm"), creds(PASS)).await.expect_err("arm");
        assert!(
            e.to_string().contains("has no linux/amd64 variant (it offers linux/arm64)"),
            "{e}"
        );
    }
}

#[tokio::test]
async fn a_tampered_blob_or_manifest_is_refused_and_not_kept() {
    let img = image(true);
    let mut objects = img.objects.clone();
    let port = serve(Auth::Bearer, objects.clone()).await;
    let session = Registry::new(vec![]).session(&reference(port, "v1"), creds(PASS));
    session.resolve().await.expect("the documents are intact");
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("layer");
    let e = session.fetch_blob(&img.layer_digest, 0, &dest).await.expect_err("tampered");
    assert!(matches!(e, OciError::DigestMismatch { .. }), "{e}");
    assert!(e.to_string().contains("does not match its digest"), "{e}");
    assert!(!dest.exists());
    // A manifest served under a digest it does not have.
    let (ct, mut body) = objects.remove("manifests/v1").expect("index");
    body.extend_from_slice(b" ");
    let fake_digest = format!("sha256:{}", "0".repeat(64));
    objects.insert(format!("manifests/{fake_digest}"), (ct, body));
    let port = serve(Auth::Bearer, objects).await;
    let pinned =
        Reference::parse(&format!("127.0.0.1:{port}/team/app@{fake_digest}")).expect("ref");
    let e = Registry::new(vec![]).resolve(&pinned, creds(PASS)).await.expect_err("manifest");
    assert!(matches!(e, OciError::DigestMismatch { ref what, .. } if what == "manifest"), "{e}");
}
