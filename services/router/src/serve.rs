//! The traffic listeners: plain HTTP and TLS. A plain connection starts on the HTTP/1.1 fast
//! path ([`crate::h1`]) and moves to hyper (HTTP/1.1 with upgrades, HTTP/2) when a request
//! needs it; TLS connections are served by hyper. Every connection is tracked so shutdown
//! drains in-flight requests up to a deadline.

use std::convert::Infallible;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use tokio_util::task::TaskTracker;

use crate::h1;
use crate::proxy::{handle, Peer, Proxy};

const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accept on `listener` until `shutdown`, terminating TLS when `tls` is given; then stop
/// accepting and give open connections up to `drain` to finish.
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    proxy: Proxy,
    shutdown: kit::Shutdown,
    drain: Duration,
) -> std::io::Result<()> {
    let builder = Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let fast = TaskTracker::new();
    loop {
        let (stream, remote) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let peer = Peer::new(remote);
        let p = proxy.clone();
        let https = tls.is_some();
        let svc = {
            let peer = peer.clone();
            hyper::service::service_fn(move |req| {
                let (p, peer) = (p.clone(), peer.clone());
                async move { Ok::<_, Infallible>(handle(p, peer, https, req).await) }
            })
        };
        let builder = builder.clone();
        let watcher = graceful.watcher();
        match tls.clone() {
            None => {
                let (p, stop) = (proxy.clone(), shutdown.clone());
                fast.spawn(async move {
                    let h1::Exit::Handover(io) = h1::serve_conn(p, stream, peer, stop).await else {
                        return;
                    };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!(error = %e, "connection ended");
                    }
                });
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    let stream =
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, %remote, "TLS handshake failed");
                                return;
                            }
                            Err(_) => return,
                        };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        tracing::debug!(error = %e, "connection ended");
                    }
                });
            }
        }
    }
    drop(listener);
    fast.close();
    tokio::select! {
        ((), ()) = async { tokio::join!(graceful.shutdown(), fast.wait()) } => {}
        () = tokio::time::sleep(drain) => {
            tracing::warn!(?drain, "drain deadline passed; closing remaining connections");
        }
    }
    Ok(())
}
