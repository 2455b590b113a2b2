//! Benchmark (ignored; run in release): staging the static fixture with warm caches, split
//! into time inside buildpack scripts and platform overhead (everything else).
//! `cargo test -p stager --release --test it -- --ignored bench --nocapture`

use std::time::{Duration, Instant};

use crate::harness::Harness;

async fn metric_sum(h: &Harness, name: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(format!("{}/metrics", h.status_url)).await?.text().await?;
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("paas_stager_{name}_sum")))
        .ok_or_else(|| anyhow::anyhow!("no {name}_sum in metrics"))?;
    Ok(line.rsplit(' ').next().unwrap_or("0").parse()?)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark"]
async fn bench_static_warm() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let warmup = h.request("static", h.admin_order(), false)?;
    h.stage(&warmup).await?;
    let runs = 10;
    let (t0, s0) = (
        metric_sum(&h, "staging_seconds").await?,
        metric_sum(&h, "staging_buildpack_seconds").await?,
    );
    let mut wall = Duration::ZERO;
    for _ in 0..runs {
        let req = h.request("static", h.admin_order(), false)?;
        let started = Instant::now();
        let s = h.stage(&req).await?;
        wall += started.elapsed();
        assert!(matches!(s.result.outcome, wire::staging::StagingOutcome::Staged(_)));
    }
    let total = (metric_sum(&h, "staging_seconds").await? - t0) / runs as f64;
    let scripts = (metric_sum(&h, "staging_buildpack_seconds").await? - s0) / runs as f64;
    println!(
        "static fixture, warm caches, {runs} runs: staging {:.0} ms = buildpack scripts {:.0} ms + platform overhead {:.0} ms; request-to-completion as the api sees it {:.0} ms",
        total * 1e3,
        scripts * 1e3,
        (total - scripts) * 1e3,
        wall.as_secs_f64() * 1e3 / runs as f64
    );
    Ok(())
}
