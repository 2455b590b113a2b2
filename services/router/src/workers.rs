//! Worker threads: each runs its own single-threaded event loop with its own backend
//! connection pools, so a request, its client connection and its backend connection stay on
//! one thread (no cross-thread wakeups on the hot path, like nginx's worker processes). The
//! route table, bench, limits and metrics are shared; what a request writes of them is kept
//! off cache lines the other workers write (a view of the table per worker, counters and
//! histograms sharded by thread), so workers do not take lines from each other per request.
//!
//! Each worker accepts on a listening socket of its own, all bound to the same address with
//! `SO_REUSEPORT`: the kernel spreads new connections over them, and a connection wakes only
//! the worker whose socket it reached (one shared socket would wake every worker, and all
//! but one would find nothing to accept). A port another process already holds is refused as
//! it would be without `SO_REUSEPORT`: [`bind`] first binds it plainly.

use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::proxy::Proxy;
use crate::serve::serve;
use crate::Error;

/// Pending connections per listening socket.
const BACKLOG: i32 = 1024;

/// The first listening socket of a worker group on `addr`. Fails as a plain bind would when
/// the address is in use — also by another router's group, which `SO_REUSEPORT` alone would
/// let this one join silently, sharing its traffic.
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let named =
        |e: std::io::Error| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"));
    let probe = socket(addr)?;
    probe.bind(&addr.into()).map_err(named)?;
    let addr = probe
        .local_addr()?
        .as_socket()
        .ok_or_else(|| named(std::io::Error::other("not an IP address")))?;
    drop(probe);
    join(addr).map_err(named)
}

/// Another listening socket in the group on `addr` (bound by [`bind`]).
fn join(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let s = socket(addr)?;
    s.set_reuse_port(true)?;
    s.bind(&addr.into())?;
    s.listen(BACKLOG)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

fn socket(addr: SocketAddr) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std and tokio do: a restarted router binds at once despite connections in TIME_WAIT.
    s.set_reuse_address(true)?;
    Ok(s)
}

/// Serve `plain` (and `tls`) on `n` worker threads until `shutdown`, then drain each; the
/// first worker accepts on `plain` (from [`bind`]), each other on a socket of its own.
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
            let own = |l: &std::net::TcpListener| {
                if i == 0 {
                    l.try_clone()
                } else {
                    join(l.local_addr()?)
                }
            };
            let plain = own(&plain)?;
            let tls = match &tls {
                Some((l, a)) => Some((own(l)?, a.clone())),
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
