//! Hostile uploads: each refused with a CF error, nothing written
//! outside the package's scratch space, and the package left ready for a good upload.

use axum::http::StatusCode;
use serde_json::json;
use testkit::{Engine, TestDb};

use crate::harness::{self, Client};

/// A zip with one symlink entry `name → target`.
fn symlink_zip(name: &str, target: &str) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.add_symlink(name, target, zip::write::SimpleFileOptions::default()).expect("symlink");
    zip.finish().expect("zip").into_inner()
}

/// A zip whose one file inflates 1000-fold.
fn bomb() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("zeros", opts).expect("entry");
    let mb = vec![0u8; 1 << 20];
    for _ in 0..40 {
        std::io::Write::write_all(&mut zip, &mb).expect("write");
    }
    zip.finish().expect("zip").into_inner()
}

/// Bytes that do not compress (so the zip stays as large as its content).
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x & 0xff) as u8
        })
        .collect()
}

#[tokio::test]
async fn hostile_uploads_are_refused_and_write_nothing_outside() {
    let db = TestDb::new(Engine::Sqlite).await.expect("db");
    let p = harness::start(&db, |c| c.max_upload_bytes = 4 << 20).await;
    let c = Client::new(&p.url, &p.admin_token);
    let (_, space) = crate::push::org_and_space(&c, "uploads").await;
    let (_, app) = c
        .post(
            "/v3/apps",
            json!({"name": "victim", "relationships": {"space": {"data": {"guid": space}}}}),
        )
        .await;
    let app = app["guid"].as_str().expect("app").to_owned();
    let (_, pkg) = c
        .post(
            "/v3/packages",
            json!({"type": "bits", "relationships": {"app": {"data": {"guid": app}}}}),
        )
        .await;
    let pkg = pkg["guid"].as_str().expect("pkg").to_owned();

    let marker = format!("paas-upload-escape-{}", std::process::id());
    let outside = std::env::temp_dir().join(&marker);
    let cases: Vec<(&str, Vec<u8>, serde_json::Value)> = vec![
        (
            "dot-dot entry",
            harness::zip_of(&[(&format!("../../../../../../tmp/{marker}"), 0o644, b"x")]),
            json!([]),
        ),
        (
            "absolute entry",
            harness::zip_of(&[(outside.to_str().expect("path"), 0o644, b"x")]),
            json!([]),
        ),
        ("symlink out", symlink_zip("link", "/etc/passwd"), json!([])),
        ("relative symlink out", symlink_zip("link", "../../../../etc/passwd"), json!([])),
        ("zip bomb", bomb(), json!([])),
        ("over the size limit", harness::zip_of(&[("big.bin", 0o644, &noise(5 << 20))]), json!([])),
        ("not a zip", b"this is not a zip".to_vec(), json!([])),
        (
            "resource escaping",
            harness::zip_of(&[("ok.txt", 0o644, b"x")]),
            json!([{"path": "../escape", "checksum": {"value": "a".repeat(40)}}]),
        ),
        (
            "resource not cached",
            harness::zip_of(&[("ok.txt", 0o644, b"x")]),
            json!([{"path": "cached.txt", "checksum": {"value": "b".repeat(40)}, "mode": "644"}]),
        ),
    ];
    for (what, bits, resources) in cases {
        let (st, e) = c.upload(&pkg, resources, Some(bits)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{what}: {e}");
        assert_eq!(e["errors"][0]["title"], "CF-AppBitsUploadInvalid", "{what}: {e}");
        assert!(!outside.exists(), "{what}: wrote outside");
        let (_, pk) = c.get(&format!("/v3/packages/{pkg}")).await;
        assert_eq!(pk["state"], "AWAITING_UPLOAD", "{what}: the package can be uploaded again");
    }
    // Nothing left in the api's scratch space, and a good upload still works.
    let scratch = p.data.path().join("api/tmp");
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "scratch space cleaned: {left:?}");
    let (st, ok) =
        c.upload(&pkg, json!([]), Some(harness::zip_of(&[("index.html", 0o644, b"hi")]))).await;
    assert_eq!(st, StatusCode::OK, "{ok}");
    assert_eq!(ok["state"], "READY");
    let res = c
        .http
        .get(format!("{}/v3/packages/{pkg}/download", p.url))
        .bearer_auth(&p.admin_token)
        .send()
        .await
        .expect("download");
    assert_eq!(res.status(), 200);
    assert!(res.bytes().await.expect("bytes").starts_with(b"PK"));
    p.stop().await;
}
