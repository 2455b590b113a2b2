//! What `paasd dev` writes when its output is not a terminal: the banner once on stdout, log
//! lines without ANSI colour codes on stderr, and JSON lines with `--log-format json`.

use std::io::Read as _;
use std::process::Stdio;
use std::time::Duration;

use crate::{Paasd, Ports};

/// Start `paasd dev` with stdout and stderr piped, wait until ready, stop it; its output.
/// Both pipes are read from the start: a pipe nobody reads fills up and blocks paasd's logging.
async fn run_dev(extra: &[&str], data_dir: &std::path::Path) -> (String, String) {
    let ports = Ports::free();
    let mut args = extra.to_vec();
    args.push("dev");
    let mut paasd = Paasd::spawn_with(&args, &ports.env(), data_dir, |cmd| {
        cmd.env("RUST_LOG", "info").env_remove("NO_COLOR").stderr(Stdio::piped());
    });
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).expect("read paasd output");
            text
        })
    };
    let out = drain(Box::new(paasd.child.stdout.take().expect("stdout")));
    let err = drain(Box::new(paasd.child.stderr.take().expect("stderr")));
    ports.wait_ready(&mut paasd, Duration::from_secs(60)).await;
    assert!(paasd.terminate().success(), "clean shutdown");
    (out.join().expect("stdout reader"), err.join().expect("stderr reader"))
}

#[tokio::test]
async fn dev_output_to_pipes_has_one_banner_plain_logs_and_json_on_request() {
    let dir = crate::data_dir();
    let (out, err) = run_dev(&[], dir.path()).await;
    let count = |needle: &str| out.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(count("Log in with:"), 1, "the login line once:\n{out}");
    assert_eq!(count("admin-password"), 1, "the password-file line once:\n{out}");
    assert_eq!(count("paas is ready"), 1, "the banner once:\n{out}");
    assert_eq!(count("dashboard: http://127.0.0.1:"), 1, "where the dashboard is:\n{out}");
    assert!(err.lines().count() > 3, "paasd logged its start at info:\n{err}");
    assert!(!err.contains("\x1b["), "no ANSI colour codes in piped logs:\n{err}");

    let (out, err) = run_dev(&["--log-format", "json"], dir.path()).await;
    assert_eq!(out.lines().filter(|l| l.contains("Log in with:")).count(), 1, "{out}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.len() > 3, "paasd logged its start at info:\n{err}");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(v.get("level").is_some() && v.get("fields").is_some(), "{line}");
    }
}
