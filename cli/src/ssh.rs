//! `ssh`, `ssh-code`, `enable-ssh`, `disable-ssh`, `ssh-enabled`, `allow-space-ssh`,
//! `disallow-space-ssh`: a shell, a command or `-L` forwardings into an app instance, through
//! the platform's SSH endpoint (`links.app_ssh`), logged in as `cf:<process guid>/<index>` with
//! a one-time code, as the cf CLI does.

use std::io::IsTerminal as _;
use std::sync::Arc;

use russh::client;
use russh::keys::{HashAlg, PublicKey};
use russh::ChannelMsg;
use serde_json::json;
use tokio::io::AsyncWriteExt as _;
use wire::v3::app::{Feature, SshEnabled};
use wire::v3::root::Root;
use wire::v3::Process;

use crate::client::{Client, Result};
use crate::error::CliError;
use crate::output::bold;

/// `ssh-code`: a one-time code, from the token issuer's authorize endpoint (a 302 whose
/// `Location` carries `code=`).
pub async fn code(c: &mut Client) -> Result<String> {
    let token = c.token().await?;
    let root: Root = reqwest::get(c.url("/")).await?.json().await?;
    let uaa = root.links.uaa.map(|l| l.href).unwrap_or_else(|| c.url(""));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| CliError::Other(e.to_string()))?;
    let res = http
        .get(format!(
            "{}/oauth/authorize?response_type=code&client_id={}",
            uaa.trim_end_matches('/'),
            wire::ssh::OAUTH_CLIENT
        ))
        .bearer_auth(token)
        .send()
        .await?;
    let location = res
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let code = url_code(&location).ok_or_else(|| {
        CliError::Failed(format!(
            "the token issuer gave no one-time code (it answered {}); log in again with 'paas login'",
            res.status()
        ))
    })?;
    Ok(code)
}

fn url_code(location: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "code").map(|(_, v)| v.into_owned())
}

pub async fn print_code(c: &mut Client) -> Result<()> {
    println!("{}", code(c).await?);
    Ok(())
}

pub async fn set_app(c: &mut Client, name: &str, on: bool) -> Result<()> {
    let app = c.app(name).await?;
    let verb = if on { "Enabling" } else { "Disabling" };
    println!("{verb} ssh support for app {}...", bold(name));
    let _: Feature =
        c.patch(&format!("/v3/apps/{}/features/ssh", app.guid), &json!({"enabled": on})).await?;
    let state: SshEnabled = c.get(&format!("/v3/apps/{}/ssh_enabled", app.guid)).await?;
    if on && !state.enabled {
        println!("Note: ssh is still off for this app: {}", state.reason);
    } else if on {
        println!("OK\n\nRestarting the app is not needed: new sessions may start now.");
    } else {
        println!("OK");
    }
    Ok(())
}

pub async fn enabled(c: &mut Client, name: &str) -> Result<()> {
    let app = c.app(name).await?;
    let state: SshEnabled = c.get(&format!("/v3/apps/{}/ssh_enabled", app.guid)).await?;
    if state.enabled {
        println!("ssh support is enabled for app '{name}'.");
    } else {
        println!("ssh support is disabled for app '{name}'.\n{}", state.reason);
    }
    Ok(())
}

pub async fn set_space(c: &mut Client, name: &str, on: bool) -> Result<()> {
    let org = c.cfg.require_org()?.guid.clone();
    let space = c.space(&org, name).await?;
    let verb = if on { "Enabling" } else { "Disabling" };
    println!("{verb} ssh support for space {}...", bold(name));
    let _: Feature = c
        .patch(&format!("/v3/spaces/{}/features/ssh", space.guid), &json!({"enabled": on}))
        .await?;
    println!("OK");
    Ok(())
}

/// `cf space-ssh-allowed SPACE`.
pub async fn space_allowed(c: &mut Client, name: &str) -> Result<()> {
    let org = c.cfg.require_org()?.guid.clone();
    let space = c.space(&org, name).await?;
    let f: Feature = c.get(&format!("/v3/spaces/{}/features/ssh", space.guid)).await?;
    let state = if f.enabled { "enabled" } else { "disabled" };
    println!("ssh support is {state} in space '{name}'.");
    Ok(())
}

/// What `paas ssh` was asked.
pub struct Request {
    pub app: String,
    pub index: u32,
    pub process: String,
    pub commands: Vec<String>,
    pub forwards: Vec<String>,
    pub no_command: bool,
    pub force_tty: bool,
    pub disable_tty: bool,
}

/// `-L [bind:]local:host:port`.
fn parse_forward(spec: &str) -> Result<(String, u16, String, u32)> {
    let bad = || {
        CliError::Usage(format!(
            "-L {spec}: expected [BIND_ADDRESS:]LOCAL_PORT:REMOTE_HOST:REMOTE_PORT"
        ))
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (bind, rest) = match parts.len() {
        3 => ("127.0.0.1", &parts[..]),
        4 => (parts[0], &parts[1..]),
        _ => return Err(bad()),
    };
    let local = rest[0].parse().map_err(|_| bad())?;
    let port = rest[2].parse().map_err(|_| bad())?;
    Ok((bind.to_owned(), local, rest[1].to_owned(), port))
}

/// The SSH endpoint's host key must be the one the platform advertises.
struct Pinned(String);

fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

impl client::Handler for Pinned {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> std::result::Result<bool, Self::Error> {
        if key.certificate().is_some() {
            return Ok(false);
        }
        Ok(self.0.is_empty() || fingerprint(&key.public_key()) == self.0)
    }

    /// The platform ended the connection (its endpoint shutting down, say): show why.
    async fn disconnected(
        &mut self,
        reason: client::DisconnectReason<Self::Error>,
    ) -> std::result::Result<(), Self::Error> {
        match reason {
            client::DisconnectReason::ReceivedDisconnect(info) => {
                eprintln!("\r\nConnection closed by the platform: {}\r", info.message);
                Ok(())
            }
            client::DisconnectReason::Error(e) => Err(e),
        }
    }
}

pub async fn ssh(c: &mut Client, r: Request) -> Result<i32> {
    let forwards: Vec<_> = r.forwards.iter().map(|f| parse_forward(f)).collect::<Result<_>>()?;
    let root: Root = reqwest::get(c.url("/")).await?.json().await?;
    let link = root.links.app_ssh.ok_or_else(|| {
        CliError::Failed(
            "This platform offers no SSH endpoint (no app_ssh link at its root).".into(),
        )
    })?;
    let app = c.app(&r.app).await?;
    let state: SshEnabled = c.get(&format!("/v3/apps/{}/ssh_enabled", app.guid)).await?;
    if !state.enabled {
        return Err(CliError::Failed(format!(
            "Error opening SSH connection: ssh is disabled for app '{}' ({}). {}",
            r.app,
            state.reason,
            if state.reason.contains("space") {
                "A space manager can run 'paas allow-space-ssh SPACE'."
            } else if state.reason.contains("globally") {
                "The platform's operator can turn it on."
            } else {
                "Run 'paas enable-ssh APP' first."
            }
        )));
    }
    let process: Process = c.get(&format!("/v3/apps/{}/processes/{}", app.guid, r.process)).await?;
    let code = code(c).await?;
    let cfg = Arc::new(client::Config { nodelay: true, ..Default::default() });
    let mut session =
        client::connect(cfg, link.href.as_str(), Pinned(link.meta.host_key_fingerprint.clone()))
            .await
            .map_err(|e| {
                CliError::Failed(format!("Error opening SSH connection to {}: {e}", link.href))
            })?;
    let user = format!("cf:{}/{}", process.guid, r.index);
    let auth = session
        .authenticate_password(user, code)
        .await
        .map_err(|e| CliError::Failed(format!("Error opening SSH connection: {e}")))?;
    if !auth.success() {
        return Err(CliError::Failed(format!(
            "Error opening SSH connection: the SSH endpoint refused instance {} of process {} of app '{}'. \
             Check that the instance runs ('paas app {}'), that you are a space developer, and that ssh is enabled.",
            r.index, r.process, r.app, r.app
        )));
    }
    let session = Arc::new(session);
    for (bind, local, host, port) in forwards {
        let listener = tokio::net::TcpListener::bind((bind.as_str(), local))
            .await
            .map_err(|e| CliError::Failed(format!("-L: cannot listen on {bind}:{local}: {e}")))?;
        let s = session.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, peer)) = listener.accept().await {
                let s = s.clone();
                let host = host.clone();
                tokio::spawn(async move {
                    let ch = s
                        .channel_open_direct_tcpip(
                            host,
                            port,
                            peer.ip().to_string(),
                            u32::from(peer.port()),
                        )
                        .await;
                    match ch {
                        Ok(ch) => {
                            let mut stream = ch.into_stream();
                            let _ = tokio::io::copy_bidirectional(&mut conn, &mut stream).await;
                        }
                        Err(e) => eprintln!("paas ssh: forwarding failed: {e}"),
                    }
                });
            }
        });
    }
    if r.no_command {
        std::future::pending::<()>().await;
    }
    let command = r.commands.join(" ");
    let tty = if r.disable_tty {
        false
    } else {
        r.force_tty || (command.is_empty() && std::io::stdin().is_terminal())
    };
    run_channel(&session, &command, tty).await
}

async fn run_channel(session: &client::Handle<Pinned>, command: &str, tty: bool) -> Result<i32> {
    let fail = |e: russh::Error| CliError::Failed(format!("SSH session: {e}"));
    let mut ch = session.channel_open_session().await.map_err(fail)?;
    let _raw = if tty {
        let (cols, rows) = terminal::size();
        let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".into());
        ch.request_pty(true, &term, cols, rows, 0, 0, &[]).await.map_err(fail)?;
        terminal::Raw::enter()
    } else {
        None
    };
    if command.is_empty() {
        ch.request_shell(true).await.map_err(fail)?;
    } else {
        ch.exec(true, command).await.map_err(fail)?;
    }
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; 16 * 1024];
    let mut stdin_open = true;
    let mut winch =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
    let mut out = tokio::io::stdout();
    let mut err = tokio::io::stderr();
    let mut status = None;
    loop {
        tokio::select! {
            n = tokio::io::AsyncReadExt::read(&mut stdin, &mut buf), if stdin_open => match n {
                Ok(0) | Err(_) => { stdin_open = false; let _ = ch.eof().await; }
                Ok(n) => { let _ = ch.data_bytes(buf[..n].to_vec()).await; }
            },
            Some(()) = async { match winch.as_mut() { Some(w) => w.recv().await, None => std::future::pending().await } } => {
                let (cols, rows) = terminal::size();
                let _ = ch.window_change(cols, rows, 0, 0).await;
            },
            msg = ch.wait() => match msg {
                Some(ChannelMsg::Data { data }) => { let _ = out.write_all(&data).await; let _ = out.flush().await; }
                Some(ChannelMsg::ExtendedData { data, .. }) => { let _ = err.write_all(&data).await; let _ = err.flush().await; }
                Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status),
                Some(ChannelMsg::Close) | None => break,
                Some(_) => {}
            },
        }
    }
    Ok(status.map_or(255, |s| i32::try_from(s).unwrap_or(255)))
}

mod terminal {
    //! The local terminal while a remote one is attached: raw mode, and its size.

    use rustix::termios::{tcgetattr, tcgetwinsize, tcsetattr, OptionalActions, Termios};

    pub fn size() -> (u32, u32) {
        match tcgetwinsize(std::io::stdout()) {
            Ok(w) if w.ws_col > 0 => (u32::from(w.ws_col), u32::from(w.ws_row)),
            _ => (80, 24),
        }
    }

    /// Raw mode until dropped.
    pub struct Raw(Termios);

    impl Raw {
        pub fn enter() -> Option<Self> {
            let stdin = std::io::stdin();
            let saved = tcgetattr(&stdin).ok()?;
            let mut raw = saved.clone();
            raw.make_raw();
            tcsetattr(&stdin, OptionalActions::Now, &raw).ok()?;
            Some(Self(saved))
        }
    }

    impl Drop for Raw {
        fn drop(&mut self) {
            let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_and_codes_are_read_as_cf_reads_them() {
        assert_eq!(
            parse_forward("9000:localhost:8080").ok(),
            Some(("127.0.0.1".into(), 9000, "localhost".into(), 8080))
        );
        assert_eq!(
            parse_forward("0.0.0.0:9000:localhost:8080").ok(),
            Some(("0.0.0.0".into(), 9000, "localhost".into(), 8080))
        );
        assert!(parse_forward("9000").is_err());
        assert_eq!(url_code("http://api/login?code=abc&x=1").as_deref(), Some("abc"));
        assert_eq!(url_code("http://api/login"), None);
    }
}
