//! Worker threads: each runs its own single-threaded event loop accepting on the shared
//! listeners, with its own backend connection pools, so a request, its client connection and
//! its backend connection stay on one thread (no cross-thread wakeups on the hot path, like
//! nginx's worker processes). The route table, bench, limits and metrics are shared.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::proxy::Proxy;
use crate::serve::serve;
use crate::Error;

/// Serve `plain` (and `tls`) on `n` worker threads until `shutdown`, then drain each.
pub async fn run(
    n: usize,
    plain: TcpListener,
    tls: Option<(TcpListener, TlsAcceptor)>,
    proxy: Proxy,
    shutdown: kit::Shutdown,
    drain: Duration,
) -> Result<(), Error> {
    let plain = plain.into_std().map_err(Error::Listen)?;
    let tls = match tls {
        Some((l, a)) => Some((l.into_std().map_err(Error::Listen)?, a)),
        None => None,
    };
    let stop = shutdown.child_token();
    let mut done = Vec::with_capacity(n);
    for i in 0..n.max(1) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let started = (|| {
            let plain = plain.try_clone()?;
            let tls = match &tls {
                Some((l, a)) => Some((l.try_clone()?, a.clone())),
                None => None,
            };
            let proxy = proxy.for_worker();
            // Its own token: idle connections wait on it without touching another
            // thread's cache lines.
            let stop = stop.child_token();
            std::thread::Builder::new().name(format!("router-worker-{i}")).spawn(move || {
                let _ = tx.send(worker(plain, tls, proxy, stop, drain));
            })
        })();
        match started {
            Ok(_) => done.push(rx),
            Err(e) => {
                stop.cancel();
                return Err(Error::Worker(e));
            }
        }
    }
    drop((plain, tls));
    // Awaited, not joined: a runtime being dropped never waits on a worker thread.
    for rx in done {
        match rx.await {
            Ok(res) => res.map_err(Error::Listen)?,
            Err(_) => return Err(Error::Worker(std::io::Error::other("worker thread panicked"))),
        }
    }
    Ok(())
}

fn worker(
    plain: std::net::TcpListener,
    tls: Option<(std::net::TcpListener, TlsAcceptor)>,
    proxy: Proxy,
    stop: kit::Shutdown,
    drain: Duration,
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        // A timer that is always due within a second: request timeouts (at least that long)
        // then never move the event loop's wake-up earlier, which would cost an eventfd
        // write per request; it also drops pooled backend connections idle too long.
        let pool = proxy.pool.clone();
        let sweeping = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = tick.tick() => pool.sweep(),
                    () = sweeping.cancelled() => return,
                }
            }
        });
        let plain = TcpListener::from_std(plain)?;
        let https = match tls {
            Some((l, a)) => Some(tokio::spawn(serve(
                TcpListener::from_std(l)?,
                Some(a),
                proxy.clone(),
                stop.clone(),
                drain,
            ))),
            None => None,
        };
        let served = serve(plain, None, proxy, stop, drain).await;
        if let Some(h) = https {
            h.await.map_err(std::io::Error::other)??;
        }
        served
    })
}
