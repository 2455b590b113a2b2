//! `paasd dev` on a fresh data directory: every service ready quickly, admin created once,
//! data reused on the next start; the directories it creates are open to the apps' user
//! whatever the umask.

use std::io::Read as _;
use std::time::Duration;

use crate::{Paasd, Ports};

#[tokio::test]
async fn dev_starts_ready_and_reuses_its_data() {
    let base = crate::data_dir();
    // Not there yet: paasd creates it, and under a strict umask as some users have.
    let dir = base.path().join("fresh");
    let dir = dir.as_path();
    let ports = Ports::free();
    let env = ports.env();

    let mut first = Paasd::spawn_with_umask("077", &["dev"], &env, dir);
    let took = ports.wait_ready(&mut first, Duration::from_secs(30)).await;
    eprintln!("paasd dev ready in {took:?}");
    let password =
        std::fs::read_to_string(dir.join("api/admin-password")).expect("admin password stored");
    assert!(password.trim().len() >= 16, "generated password is long enough");
    assert!(first.terminate().success(), "clean shutdown");
    let mut out = String::new();
    first.child.stdout.take().expect("stdout").read_to_string(&mut out).expect("read stdout");
    assert!(out.contains(password.trim()), "the generated password is printed once:\n{out}");
    assert!(out.contains(&format!("127.0.0.1:{}", ports.api)), "api address printed:\n{out}");

    // Second start: same data, same admin password, nothing printed about creating it.
    let mut second = Paasd::spawn(&["dev"], &env, dir);
    ports.wait_ready(&mut second, Duration::from_secs(30)).await;
    let again = std::fs::read_to_string(dir.join("api/admin-password")).expect("still stored");
    assert_eq!(again, password, "the admin password is kept");
    assert!(dir.join("api/api.db").exists(), "the api database lives in the data dir");
    // The admin logs in as the cf CLI would, with the password printed on the first start.
    let res = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/oauth/token", ports.api))
        .basic_auth("cf", Some(""))
        .form(&[("grant_type", "password"), ("username", "admin"), ("password", password.trim())])
        .send()
        .await
        .expect("token request");
    assert_eq!(res.status(), 200);
    assert!(second.terminate().success());
    let mut out = String::new();
    second.child.stdout.take().expect("stdout").read_to_string(&mut out).expect("read stdout");
    assert!(!out.contains(password.trim()), "password printed only on first start");
}
