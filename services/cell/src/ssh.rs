//! The cell's SSH endpoints (component token, like the rest of its API):
//! `POST /internal/v1/instances/:guid/exec` (header `X-Paas-Exec`: the `wire::ssh::ExecRequest`
//! as base64url JSON) and `POST /internal/v1/instances/:guid/connect?port=N`, each upgraded
//! (`Upgrade: paas-ssh`) to the session's byte stream. 404 for an instance that is not running
//! on this cell.

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use wire::ssh::{ExecRequest, UPGRADE};

use crate::api::Api;
use crate::exec::{self, Target};

fn target(api: &Api, guid: &str) -> Option<Target> {
    api.shared.exec_target(guid)
}

fn not_here() -> Response {
    (StatusCode::NOT_FOUND, "no running instance of that guid on this cell\n").into_response()
}

fn switching() -> Response {
    let mut res = StatusCode::SWITCHING_PROTOCOLS.into_response();
    res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    res.headers_mut().insert(header::UPGRADE, HeaderValue::from_static(UPGRADE));
    res
}

fn wants_upgrade(req: &Request) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(UPGRADE))
}

pub async fn exec(State(api): State<Api>, Path(guid): Path<String>, req: Request) -> Response {
    let Some(t) = target(&api, &guid) else { return not_here() };
    let spec = req
        .headers()
        .get("x-paas-exec")
        .and_then(|v| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(v.as_bytes()).ok())
        .and_then(|b| serde_json::from_slice::<ExecRequest>(&b).ok());
    let (Some(spec), true) = (spec, wants_upgrade(&req)) else {
        return (
            StatusCode::BAD_REQUEST,
            "an X-Paas-Exec header and Upgrade: paas-ssh are needed\n",
        )
            .into_response();
    };
    let on = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let io = match on.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => return tracing::warn!(error = %e, "ssh exec upgrade failed"),
        };
        let tty = spec.tty.is_some();
        tracing::info!(instance_guid = %guid, tty, "ssh session started");
        match exec::session(t, spec, io).await {
            Ok(code) => {
                tracing::info!(instance_guid = %guid, exit_status = code, "ssh session ended")
            }
            Err(e) => tracing::info!(instance_guid = %guid, error = %e, "ssh session ended"),
        }
    });
    switching()
}

#[derive(Deserialize)]
pub struct PortQuery {
    port: u16,
}

pub async fn connect(
    State(api): State<Api>,
    Path(guid): Path<String>,
    Query(q): Query<PortQuery>,
    req: Request,
) -> Response {
    let Some(t) = target(&api, &guid) else { return not_here() };
    if !wants_upgrade(&req) {
        return (StatusCode::BAD_REQUEST, "Upgrade: paas-ssh is needed\n").into_response();
    }
    // Connect before answering, so a closed port is an error the client sees.
    let (host, port) = t.connect_addr(q.port);
    let conn = match tokio::net::TcpStream::connect((host.as_str(), port)).await {
        Ok(c) => c,
        Err(e) => {
            return (StatusCode::BAD_GATEWAY, format!("connecting to port {}: {e}\n", q.port))
                .into_response()
        }
    };
    let on = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let mut io = match on.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => return tracing::warn!(error = %e, "ssh connect upgrade failed"),
        };
        let mut conn = conn;
        let _ = tokio::io::copy_bidirectional(&mut io, &mut conn).await;
    });
    switching()
}
