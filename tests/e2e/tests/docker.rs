//! Docker images end to end, on `paasd dev` with runc (slot 9): images built in the test with
//! umoci from busybox, pushed with skopeo to a private registry (Debian's `docker-registry`,
//! htpasswd basic auth) on a free port; `paas push --docker-image` runs one behind the router,
//! its output reaches `paas logs --recent`, a killed instance comes back, a task runs in the
//! image; wrong credentials,
//! a missing tag, an image for another architecture and a tampered layer each fail the push
//! with their reason. It prints push → first 200 for a cached image and for a cold pull of a
//! 50 MB image. Then the other way: a static app's droplet exported with `paas export-image`
//! runs under plain runc (umoci unpack) and answers HTTP, and pushed to the registry with
//! skopeo it runs on the platform again as a docker image. Needs root, runc, the test stack and `deploy/test-deps.sh`'s packages.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A binary built next to this test by `cargo test --workspace`.
fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join(name);
    assert!(p.exists(), "{} is missing: run the suite with `cargo test --workspace`", p.display());
    p
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        for _ in 0..200 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Containers, mounts, bridge and nft table of one platform's cell.
struct CellCleanup {
    data: String,
    bridge: String,
    table: String,
}

impl Drop for CellCleanup {
    fn drop(&mut self) {
        let sh = |c: String| {
            let _ = Command::new("sh").args(["-c", &c]).output();
        };
        let d = &self.data;
        sh(format!(
            "runc list -f json | tr '{{' '\\n' | grep '{d}' | sed 's/.*\"id\":\"\\([^\"]*\\)\".*/\\1/' | xargs -r -n1 runc delete --force"
        ));
        sh(format!("grep '{d}' /proc/mounts | cut -d' ' -f2 | xargs -r -n1 umount -l"));
        sh(format!("ip link del {} 2>/dev/null", self.bridge));
        sh(format!(
            "nft delete table ip {0} 2>/dev/null; nft delete table bridge {0} 2>/dev/null",
            self.table
        ));
    }
}

struct Ports {
    api: u16,
    router: u16,
    router_status: u16,
    logs: u16,
    scheduler: u16,
    cell: u16,
    stager: u16,
    ssh: u16,
}

/// A running platform.
struct Platform {
    api: String,
    router: String,
    admin_password: String,
    _procs: Vec<Proc>,
    _cleanup: CellCleanup,
    _dir: tempfile::TempDir,
    _extra: Vec<Box<dyn std::any::Any>>,
}

impl Drop for Platform {
    /// Stop in reverse start order (cells before the scheduler they report to).
    fn drop(&mut self) {
        while let Some(p) = self._procs.pop() {
            drop(p);
        }
    }
}

fn base_env(dir: &Path, p: &Ports, slot: u32) -> (Vec<(String, String)>, CellCleanup) {
    let n = (std::process::id() % 1000) * 10 + slot;
    let a = |port: u16| format!("127.0.0.1:{port}");
    let stacks = stack::test_cache_dir().display().to_string();
    let env: Vec<(&str, String)> = vec![
        ("PAAS_API_ADDR", a(p.api)),
        ("PAAS_ROUTER_ADDR", a(p.router)),
        ("PAAS_ROUTER_STATUS_ADDR", a(p.router_status)),
        ("PAAS_LOGS_ADDR", a(p.logs)),
        ("PAAS_SCHEDULER_ADDR", a(p.scheduler)),
        ("PAAS_CELL_ADDR", a(p.cell)),
        ("PAAS_STAGER_STATUS_ADDR", a(p.stager)),
        ("PAAS_SSH_ADDR", a(p.ssh)),
        ("PAAS_DASHBOARD_ADDR", "127.0.0.1:0".into()),
        ("PAAS_CELL_BACKEND", "runc".into()),
        // The test stops cells with SIGTERM: no waiting for a hand-over to other cells.
        ("PAAS_CELL_EVACUATION_TIMEOUT_SECS", "0".into()),
        ("PAAS_CELL_BRIDGE", format!("pe{n}")),
        ("PAAS_CELL_NFT_TABLE", format!("paas_e{n}")),
        ("PAAS_CELL_SUBNET", format!("10.{}.{}.0", 230 + slot, n % 250)),
        ("PAAS_CELL_HOST_PORT_MIN", (63000 + slot * 200).to_string()),
        ("PAAS_CELL_HOST_PORT_MAX", (63199 + slot * 200).to_string()),
        ("PAAS_CELL_STACKS_DIR", stacks.clone()),
        ("PAAS_STAGER_STACKS_DIR", stacks),
        ("PAAS_ADMIN_PASSWORD", "e2e-admin-password".into()),
        ("RUST_LOG", "warn".into()),
    ];
    let cleanup = CellCleanup {
        data: dir.display().to_string(),
        bridge: format!("pe{n}"),
        table: format!("paas_e{n}"),
    };
    (env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(), cleanup)
}

fn spawn(args: &[&str], env: &[(String, String)], data: &Path) -> Proc {
    let mut cmd = Command::new(bin("paasd"));
    cmd.args(args).env("PAAS_DATA_DIR", data).stdout(Stdio::null()).stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc(cmd.spawn().expect("paasd starts"))
}

fn ports() -> Ports {
    let f = testkit::free_port;
    Ports {
        api: f(),
        router: f(),
        router_status: f(),
        logs: f(),
        scheduler: f(),
        cell: f(),
        stager: f(),
        ssh: f(),
    }
}

async fn ready(urls: &[String]) {
    for u in urls {
        testkit::wait_http_ok(&format!("{u}/readyz"), Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{u}: {e}"));
    }
}

fn url(p: u16) -> String {
    format!("http://127.0.0.1:{p}")
}

fn readyz(p: &Ports) -> Vec<String> {
    [p.api, p.router_status, p.logs, p.scheduler, p.cell, p.stager]
        .iter()
        .map(|x| url(*x))
        .collect()
}

/// `paasd dev`; `slot` (0-9) keeps its bridge, subnet and host ports apart from other tests'.
async fn dev_platform(slot: u32) -> Platform {
    let dir = tempfile::tempdir().expect("tmp");
    let p = ports();
    let (env, cleanup) = base_env(dir.path(), &p, slot);
    let procs = vec![spawn(&["dev"], &env, dir.path())];
    ready(&readyz(&p)).await;
    Platform {
        api: url(p.api),
        router: url(p.router),
        admin_password: "e2e-admin-password".into(),
        _procs: procs,
        _cleanup: cleanup,
        _dir: dir,
        _extra: vec![],
    }
}

struct User {
    home: tempfile::TempDir,
}

impl User {
    fn new() -> Self {
        Self { home: tempfile::tempdir().expect("home") }
    }

    fn run_in(&self, dir: Option<&Path>, args: &[&str]) -> Output {
        let mut cmd = Command::new(bin("paas"));
        cmd.args(args)
            .env("PAAS_HOME", self.home.path())
            .env("PAAS_POLL_MS", "200")
            .env("NO_COLOR", "1");
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        cmd.output().expect("paas runs")
    }

    /// Run and require success; returns stdout.
    fn ok(&self, dir: Option<&Path>, args: &[&str]) -> String {
        let out = self.run_in(dir, args);
        let (so, se) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(
            out.status.success(),
            "paas {args:?} failed ({:?}):\n{so}\n{se}",
            out.status.code()
        );
        so.into_owned()
    }
}

async fn get(router: &str, host: &str) -> Option<(u16, String)> {
    let res =
        reqwest::Client::new().get(format!("{router}/")).header("host", host).send().await.ok()?;
    let status = res.status().as_u16();
    Some((status, res.text().await.ok()?))
}

/// Poll the router until `host` answers 200 with `want` in the body.
async fn served(router: &str, host: &str, want: &str) -> String {
    testkit::eventually(&format!("{host} serves '{want}'"), Duration::from_secs(60), || async {
        let (st, body) = get(router, host).await?;
        (st == 200 && body.contains(want)).then_some(body)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

impl User {
    /// Run with extra environment variables.
    fn run_env(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let mut cmd = Command::new(bin("paas"));
        cmd.args(args)
            .env("PAAS_HOME", self.home.path())
            .env("PAAS_POLL_MS", "200")
            .env("NO_COLOR", "1")
            .env_remove("CF_DOCKER_PASSWORD");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("paas runs")
    }

    /// Run (with `env`) and require failure; stdout and stderr.
    fn fails(&self, env: &[(&str, &str)], args: &[&str]) -> String {
        let out = self.run_env(env, args);
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "paas {args:?} should fail:\n{text}");
        text
    }
}

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// A private registry (basic auth, `alice`/`s3cret`) on a free port, storing under `dir`.
struct Registry {
    addr: String,
    data: PathBuf,
    _proc: Proc,
}

const USER: &str = "alice";
const PASSWORD: &str = "s3cret";

impl Registry {
    fn start(dir: &Path) -> Self {
        let port = testkit::free_port();
        let htpasswd = dir.join("htpasswd");
        let hash = sh(Command::new("htpasswd").args(["-Bbn", USER, PASSWORD]));
        std::fs::write(&htpasswd, hash.trim()).expect("htpasswd");
        let data = dir.join("data");
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: test\n    path: {}\n",
            data.display(),
            htpasswd.display()
        );
        std::fs::write(dir.join("registry.yml"), config).expect("config");
        let child = Command::new("docker-registry")
            .args(["serve", &dir.join("registry.yml").display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry starts (deploy/test-deps.sh)");
        let addr = format!("127.0.0.1:{port}");
        let up = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            std::net::TcpStream::connect(&addr).is_ok()
        });
        assert!(up, "the registry listens on {addr}");
        Self { addr, data, _proc: Proc(child) }
    }

    /// Push the layout's `tag` as `repo:tag`.
    fn push(&self, layout: &Path, tag: &str, repo: &str) -> String {
        self.copy(&format!("oci:{}:{tag}", layout.display()), &format!("{repo}:{tag}"))
    }

    /// Copy the image `source` (a skopeo reference) into the registry as `repo_tag`.
    fn copy(&self, source: &str, repo_tag: &str) -> String {
        let image = format!("{}/{repo_tag}", self.addr);
        sh(Command::new("skopeo").args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-creds",
            &format!("{USER}:{PASSWORD}"),
            source,
            &format!("docker://{image}"),
        ]));
        image
    }

    /// Flip one byte in the middle of a stored blob (its size unchanged).
    fn tamper(&self, digest: &str) {
        let hex = digest.trim_start_matches("sha256:");
        let path =
            self.data.join(format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]));
        let mut bytes = std::fs::read(&path).expect("blob");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&path, bytes).expect("tampered");
    }
}

/// An OCI layout at `dir/oci` with images built from busybox: `v1` serves `/www` with busybox
/// httpd on `$PORT` (exposing 9000, run as the image's root); `arm` is the same for arm64.
fn build_images(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("bin")).expect("bin");
    std::fs::create_dir_all(root.join("www")).expect("www");
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static");
    for l in ["sh", "httpd"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(l)).expect("link");
    }
    std::fs::write(root.join("www/index.html"), "hello from an image\n").expect("index");
    let layout = dir.join("oci");
    let img = |tag: &str| format!("{}:{tag}", layout.display());
    sh(Command::new("umoci").args(["init", "--layout", &layout.display().to_string()]));
    sh(Command::new("umoci").args(["new", "--image", &img("v1")]));
    sh(Command::new("umoci").args([
        "insert",
        "--image",
        &img("v1"),
        &root.display().to_string(),
        "/",
    ]));
    sh(Command::new("umoci").args([
        "config",
        "--image",
        &img("v1"),
        "--config.cmd",
        "/bin/sh",
        "--config.cmd",
        "-c",
        "--config.cmd",
        "echo image started on port $PORT; exec httpd -f -p $PORT -h /www",
        "--config.exposedports",
        "9000/tcp",
    ]));
    sh(Command::new("umoci").args([
        "config",
        "--image",
        &img("v1"),
        "--tag",
        "arm",
        "--architecture",
        "arm64",
    ]));
    layout
}

/// A new tag `tag` of `v1` with one more layer holding `file` of `bytes` bytes of noise; the
/// digest of that layer.
fn add_layer(layout: &Path, scratch: &Path, tag: &str, bytes: usize) -> String {
    let img = |t: &str| format!("{}:{t}", layout.display());
    sh(Command::new("umoci").args(["tag", "--image", &img("v1"), tag]));
    let file = scratch.join(format!("{tag}.bin"));
    let mut noise = vec![0u8; bytes];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ bytes as u64;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(&file, noise).expect("noise");
    sh(Command::new("umoci").args([
        "insert",
        "--image",
        &img(tag),
        &file.display().to_string(),
        &format!("/www/{tag}.bin"),
    ]));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index"))
            .expect("json");
    let manifest = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .and_then(|m| m["digest"].as_str())
        .expect("tagged manifest")
        .trim_start_matches("sha256:")
        .to_owned();
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(layout.join("blobs/sha256").join(manifest)).expect("manifest"),
    )
    .expect("json");
    m["layers"]
        .as_array()
        .and_then(|l| l.last())
        .and_then(|l| l["digest"].as_str())
        .expect("layer")
        .to_owned()
}

/// `paas push NAME -o IMAGE --docker-username alice` with the right password, and the time
/// to the first 200 through the router.
async fn push_and_time(p: &Platform, u: &User, name: &str, image: &str) -> Duration {
    let started = Instant::now();
    let out = u.run_env(
        &[("CF_DOCKER_PASSWORD", PASSWORD)],
        &["push", name, "-o", image, "--docker-username", USER],
    );
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        let logs = u.run_env(&[], &["logs", name, "--recent"]);
        panic!("push {name}:\n{text}\nlogs:\n{}", String::from_utf8_lossy(&logs.stdout));
    }
    served(&p.router, &format!("{name}.apps.localhost"), "hello from an image").await;
    started.elapsed()
}

#[tokio::test]
async fn docker_images_run_behind_the_router_and_bad_ones_fail_with_their_reason() {
    let scratch = tempfile::tempdir().expect("scratch");
    let registry = Registry::start(scratch.path());
    let layout = build_images(scratch.path());
    let web = registry.push(&layout, "v1", "team/web");
    let arm = registry.push(&layout, "arm", "team/web");
    let tampered_layer = add_layer(&layout, scratch.path(), "bad", 4096);
    let bad = registry.push(&layout, "bad", "team/web");
    registry.tamper(&tampered_layer);
    add_layer(&layout, scratch.path(), "big", 50 << 20);
    let big = registry.push(&layout, "big", "team/big");

    let p = dev_platform(9).await;
    let admin = User::new();
    admin.ok(None, &["login", "-a", &p.api, "-u", "admin", "-p", &p.admin_password]);
    admin.ok(None, &["create-org", "acme"]);
    admin.ok(None, &["create-space", "dev", "-o", "acme"]);
    admin.ok(None, &["target", "-o", "acme", "-s", "dev"]);

    // Off by default, as in CF.
    let off = admin.fails(
        &[("CF_DOCKER_PASSWORD", PASSWORD)],
        &["push", "web", "-o", &web, "--docker-username", USER],
    );
    assert!(off.contains("Feature Disabled: diego_docker"), "{off}");
    admin.ok(None, &["enable-feature-flag", "diego_docker"]);

    // The image runs behind the router, on its exposed port, with its output in the logs.
    let first = push_and_time(&p, &admin, "web", &web).await;
    let logs = admin.ok(None, &["logs", "web", "--recent"]);
    assert!(logs.contains("image started on port 9000"), "{logs}");

    // Killed, it comes back.
    let json = admin.ok(None, &["app", "web", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let instance =
        v["processes"][0]["stats"][0]["instance_guid"].as_str().expect("instance").to_owned();
    let container: String = instance.chars().filter(char::is_ascii_alphanumeric).take(12).collect();
    sh(Command::new("runc").args(["kill", &format!("paas-{container}"), "KILL"]));
    testkit::eventually("the killed instance is back", Duration::from_secs(60), || async {
        let out = admin.run_in(None, &["app", "web", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let s = &v["processes"][0]["stats"][0];
        (s["state"] == "RUNNING" && s["instance_guid"] != instance.as_str()).then_some(())
    })
    .await
    .expect("crash recovery");
    served(&p.router, "web.apps.localhost", "hello from an image").await;

    // A task runs in the image, as the image's user, with the app's environment.
    let out = admin.ok(
        None,
        &[
            "run-task",
            "web",
            "--command",
            "echo task in $(cat /www/index.html) as $(id -u) ${VCAP_APPLICATION:+with VCAP_APPLICATION}",
            "--name",
            "peek",
            "--wait",
        ],
    );
    assert!(out.contains("SUCCEEDED"), "{out}");
    let logs = admin.ok(None, &["logs", "web", "--recent"]);
    assert!(
        logs.contains("APP/TASK/peek")
            && logs.contains("task in hello from an image as 2000 with VCAP_APPLICATION"),
        "{logs}"
    );

    // Bad pushes say why.
    let missing = admin.fails(&[], &["push", "nopw", "-o", &web, "--docker-username", USER]);
    assert!(missing.contains("CF_DOCKER_PASSWORD not set"), "{missing}");
    let wrong = admin.fails(
        &[("CF_DOCKER_PASSWORD", "wrong")],
        &["push", "creds", "-o", &web, "--docker-username", USER],
    );
    assert!(wrong.contains("refused the credentials"), "{wrong}");
    let nope = web.replace(":v1", ":nope");
    let out = admin.fails(
        &[("CF_DOCKER_PASSWORD", PASSWORD)],
        &["push", "tag", "-o", &nope, "--docker-username", USER],
    );
    assert!(out.contains(&format!("image {nope} was not found")), "{out}");
    let out = admin.fails(
        &[("CF_DOCKER_PASSWORD", PASSWORD)],
        &["push", "arch", "-o", &arm, "--docker-username", USER],
    );
    assert!(out.contains("has no linux/amd64 variant (it offers linux/arm64)"), "{out}");
    let out = admin.fails(
        &[("CF_DOCKER_PASSWORD", PASSWORD)],
        &["push", "tampered", "-o", &bad, "--docker-username", USER],
    );
    assert!(
        out.contains(&format!("layer {tampered_layer}"))
            && out.contains("does not match its digest"),
        "{out}"
    );
    admin.ok(None, &["delete", "tampered", "-f"]);

    // Push → first 200: the same image again (its layers cached on the cell), then a cold
    // pull of a 50 MB image.
    let cached = push_and_time(&p, &admin, "web-again", &web).await;
    let cold = push_and_time(&p, &admin, "big", &big).await;
    eprintln!("[docker] push to first 200: first {first:?}, cached image {cached:?}, cold 50 MB image {cold:?}");

    export_runs_elsewhere_and_comes_back(&p, &admin, &registry, scratch.path()).await;
}

/// A buildpack app's droplet out as an OCI image: it runs under plain runc outside the
/// platform and answers HTTP, and pushed to a registry it runs on the platform again as a
/// docker image.
async fn export_runs_elsewhere_and_comes_back(
    p: &Platform,
    admin: &User,
    registry: &Registry,
    scratch: &Path,
) {
    let site = scratch.join("site");
    std::fs::create_dir_all(&site).expect("site dir");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/static");
    for f in ["index.html", "manifest.yml"] {
        std::fs::copy(fixture.join(f), site.join(f)).expect("fixture");
    }
    admin.ok(Some(&site), &["push", "site"]);
    served(&p.router, "site.apps.localhost", "static fixture v1").await;

    // Refusals first: a docker droplet is not exported, nor an unknown format.
    let web = admin.ok(None, &["app", "web", "--guid"]);
    let out = admin.fails(&[], &["export-image", "web", "--path", &scratch.display().to_string()]);
    assert!(out.contains("pull it from its registry"), "{out}");
    let token = admin.ok(None, &["oauth-token"]);
    let droplet: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v3/apps/{}/droplets/current", p.api, web.trim()))
        .header("authorization", token.trim())
        .send()
        .await
        .expect("current droplet")
        .json()
        .await
        .expect("json");
    let res = reqwest::Client::new()
        .get(format!(
            "{}/v3/droplets/{}/download?format=zip",
            p.api,
            droplet["guid"].as_str().expect("guid")
        ))
        .header("authorization", token.trim())
        .send()
        .await
        .expect("download");
    assert_eq!(res.status(), 400);
    let body = res.text().await.expect("body");
    assert!(body.contains("format must be 'tgz' or 'oci'"), "{body}");

    let tar = scratch.join("site.oci.tar");
    let t = Instant::now();
    let out = admin.ok(None, &["export-image", "site", "--path", &tar.display().to_string()]);
    let first = t.elapsed();
    assert!(out.contains("Image written to") && out.contains("umoci unpack"), "{out}");
    let t = Instant::now();
    admin.ok(None, &["export-image", "site", "--path", &tar.display().to_string()]);
    let again = t.elapsed();
    let size = std::fs::metadata(&tar).expect("image tar").len();
    eprintln!(
        "[docker] export of a static droplet: {size} bytes, first {first:?} (stack layer written), again {again:?}"
    );

    // Outside the platform: unpacked with umoci, run with runc on the host's network.
    let layout = scratch.join("site-layout");
    std::fs::create_dir_all(&layout).expect("layout");
    sh(Command::new("tar").arg("-xf").arg(&tar).arg("-C").arg(&layout));
    let bundle = scratch.join("site-bundle");
    sh(Command::new("umoci").args([
        "unpack",
        "--image",
        &format!("{}:latest", layout.display()),
        &bundle.display().to_string(),
    ]));
    let port = testkit::free_port();
    let config_path = bundle.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config_path).expect("config.json")).expect("json");
    assert_eq!(config["process"]["user"]["uid"], 2000, "{config}");
    let env = config["process"]["env"].as_array_mut().expect("env");
    env.retain(|e| !e.as_str().is_some_and(|e| e.starts_with("PORT=")));
    env.push(format!("PORT={port}").into());
    config["process"]["terminal"] = false.into();
    let namespaces = config["linux"]["namespaces"].as_array_mut().expect("namespaces");
    namespaces.retain(|n| n["type"] != "network");
    std::fs::write(&config_path, serde_json::to_vec(&config).expect("json")).expect("config");
    let id = format!("paas-export-{}", std::process::id());
    let _container = RuncContainer(id.clone());
    sh(Command::new("runc")
        .args(["run", "--detach", "--bundle", &bundle.display().to_string(), &id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null()));
    let url = format!("http://127.0.0.1:{port}/");
    testkit::eventually(
        "the exported image answers under runc",
        Duration::from_secs(30),
        || async {
            let res = reqwest::get(&url).await.ok()?;
            let ok = res.status() == 200;
            let body = res.text().await.ok()?;
            (ok && body.contains("static fixture v1")).then_some(())
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));

    // Back in, through a registry, as a docker image.
    let image = registry.copy(&format!("oci-archive:{}:latest", tar.display()), "team/site:v1");
    let out = admin.run_env(
        &[("CF_DOCKER_PASSWORD", PASSWORD)],
        &["push", "site-image", "-o", &image, "--docker-username", USER],
    );
    if !out.status.success() {
        let logs = admin.run_env(&[], &["logs", "site-image", "--recent"]);
        panic!(
            "push site-image:\n{}{}\nlogs:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&logs.stdout)
        );
    }
    served(&p.router, "site-image.apps.localhost", "static fixture v1").await;
}

/// A container run outside the platform, deleted when dropped.
struct RuncContainer(String);

impl Drop for RuncContainer {
    fn drop(&mut self) {
        let _ = Command::new("runc").args(["delete", "--force", &self.0]).output();
    }
}
