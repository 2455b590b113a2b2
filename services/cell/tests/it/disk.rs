//! Disk quota, on both backends: the cell measures each instance's writable layer (runc) or
//! directory (process), reports it as the `disk` gauge, and stops an instance that writes past
//! its quota as CRASHED with that reason.

use std::time::Duration;

use wire::envelope::{Envelope, Message};
use wire::lrp::LrpStart;

use crate::harness::{lrp, served_droplet, start_cell_with, Backend, Cell};

on_both_backends!(an_instance_over_its_disk_quota_is_stopped_and_reported);

/// An app that writes `$TMPDIR/fill` (`/home/vcap/tmp` in a container) of N MiB when it gets
/// `POST /N`.
const FILLER: &str = r#"exec python3 -c '
import http.server, os
class H(http.server.SimpleHTTPRequestHandler):
    def do_POST(self):
        with open(os.environ["TMPDIR"] + "/fill", "wb") as f:
            for _ in range(int(self.path.strip("/"))):
                f.write(b"x" * (1 << 20))
            f.flush(); os.fsync(f.fileno())
        self.send_response(200); self.end_headers()
http.server.HTTPServer(("", int(os.environ["PORT"])), H).serve_forever()'"#;

/// The latest (disk, disk_quota) gauge values of `l`.
fn disk_gauge(c: &Cell, l: &LrpStart) -> Option<(f64, f64)> {
    let envelopes = c.envelopes.lock().expect("lock");
    envelopes.iter().rev().find_map(|(_, e): &(String, Envelope)| match &e.message {
        Message::Gauge(g) if e.source_id == l.desired.log_guid => {
            Some((g.metrics.get("disk")?.value, g.metrics.get("disk_quota")?.value))
        }
        _ => None,
    })
}

async fn an_instance_over_its_disk_quota_is_stopped_and_reported(backend: Backend) {
    let c = start_cell_with(backend, 7, |cfg| {
        cfg.metrics_secs = 1;
        cfg.disk_check_secs = 1;
    })
    .await;
    let (url, sha, _droplet) = served_droplet().await;
    let mut app = lrp(&url, &sha, FILLER, 30);
    app.desired.disk_mb = 16;
    c.send_work(&app).await;
    let port = c.report("start", &app, Duration::from_secs(30)).await.ports[0].host_port;
    let client = reqwest::Client::new();
    let fill = |mb: u32| client.post(format!("http://127.0.0.1:{port}/{mb}")).send();

    // Under the quota: measured and reported, still running.
    assert_eq!(fill(4).await.expect("fill 4").status(), 200);
    let (disk, quota) =
        testkit::eventually("a disk gauge with the 4 MiB", Duration::from_secs(10), || async {
            disk_gauge(&c, &app).filter(|(d, _)| *d >= f64::from(4 << 20))
        })
        .await
        .expect("disk gauge");
    assert!(disk < f64::from(16 << 20), "measured {disk}");
    assert_eq!(quota, f64::from(16 << 20));
    assert!(c.scheduler.find("crash", &app.instance_guid).is_none(), "under its quota");

    // Past it: stopped, CRASHED with the reason, and the reason in its CELL log. The check may
    // stop the instance while it is still writing, so the request may get no answer at all.
    match fill(40).await {
        Ok(r) => assert_eq!(r.status(), 200),
        Err(e) => assert!(e.is_request() || e.is_connect(), "fill 40: {e}"),
    }
    let crash = c.report("crash", &app, Duration::from_secs(15)).await;
    let reason = crash.crash_reason.unwrap_or_default();
    assert!(reason.starts_with("disk quota exceeded: "), "{reason}");
    assert!(reason.ends_with("MB used of 16 MB"), "{reason}");
    let lines = c.wait_log(&app, "CELL", "disk quota exceeded", Duration::from_secs(5)).await;
    assert!(lines.iter().any(|l| l.starts_with("Stopping instance")), "{lines:#?}");
    testkit::eventually("its directory removed", Duration::from_secs(10), || async {
        (!c.instance_dir(&app).exists()).then_some(())
    })
    .await
    .expect("released");
    c.shut_down().await;
}
