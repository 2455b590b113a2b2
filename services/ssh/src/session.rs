//! One SSH connection: the login (`cf:<process guid>/<index>` with a one-time code as the
//! password, redeemed at the api), then its channels — sessions (a command or a shell, with a
//! terminal when asked) run on the instance's cell, and `direct-tcpip` channels (`-L`)
//! connected to the instance's ports.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bus::BusExt as _;
use russh::server::{Auth, ChannelOpenHandle, Handle, Msg, Session};
use russh::{Channel, ChannelId, ChannelOpenFailure};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use wire::ssh::{Authorize, Authorized, ExecRequest, Frame, Tty, MAX_FRAME};

use crate::platform::PlatformError;
use crate::Shared;

/// The login name: `cf:<process guid>/<index>`.
pub fn parse_user(user: &str) -> Option<(String, u32)> {
    let rest = user.strip_prefix("cf:")?;
    let (guid, index) = rest.rsplit_once('/')?;
    let index = index.parse().ok()?;
    (!guid.is_empty()).then(|| (guid.to_owned(), index))
}

pub struct Conn {
    shared: Arc<Shared>,
    peer: Option<SocketAddr>,
    /// Who logged in and into which instance, and its cell's URL.
    who: Option<(Authorized, String)>,
    channels: HashMap<ChannelId, Chan>,
}

#[derive(Default)]
struct Chan {
    tty: Option<Tty>,
    env: Vec<(String, String)>,
    input: Option<mpsc::Sender<(Frame, Vec<u8>)>>,
}

impl Conn {
    pub fn new(shared: Arc<Shared>, peer: Option<SocketAddr>) -> Self {
        Self { shared, peer, who: None, channels: HashMap::new() }
    }

    async fn app_log(&self, line: &str) {
        let Some((who, _)) = &self.who else { return };
        let env = wire::envelope::Envelope::log(
            &who.app_guid,
            who.index.to_string(),
            "SSH",
            line,
            wire::envelope::LogStream::Out,
        );
        let subject = format!("{}.SSH", wire::subjects::LOGS_PREFIX);
        if let Err(e) = self.shared.bus.publish_json(&subject, &env).await {
            tracing::debug!(error = %e, "could not publish an SSH log line");
        }
    }

    fn peer(&self) -> String {
        self.peer.map(|p| p.ip().to_string()).unwrap_or_else(|| "unknown".into())
    }

    /// Start the channel's command (empty: a shell) on the instance.
    async fn start(&mut self, id: ChannelId, command: String, session: &mut Session) {
        let Some((who, cell)) = self.who.clone() else { return };
        let chan = self.channels.entry(id).or_default();
        let req = ExecRequest { command, tty: chan.tty.clone(), env: chan.env.clone() };
        let (tx, rx) = mpsc::channel(16);
        chan.input = Some(tx);
        let handle = session.handle();
        let shared = self.shared.clone();
        tokio::spawn(async move {
            match shared.platform.exec(&cell, &who.instance_guid, &req).await {
                Ok(io) => pump(io, id, rx, handle).await,
                Err(e) => fail(&handle, id, &e).await,
            }
        });
    }
}

/// Tell the client why its channel could not run, and end it.
async fn fail(handle: &Handle, id: ChannelId, e: &PlatformError) {
    tracing::warn!(error = %e, "ssh session could not start");
    let _ = handle.extended_data(id, 1, format!("paas ssh: {e}\r\n").into_bytes()).await;
    let _ = handle.exit_status_request(id, 255).await;
    let _ = handle.eof(id).await;
    let _ = handle.close(id).await;
}

/// Frames between the client's channel and the cell, until the command's exit status.
async fn pump(
    io: reqwest::Upgraded,
    id: ChannelId,
    mut input: mpsc::Receiver<(Frame, Vec<u8>)>,
    handle: Handle,
) {
    let (mut rd, mut wr) = tokio::io::split(io);
    let writer = tokio::spawn(async move {
        while let Some((kind, data)) = input.recv().await {
            let sent = async {
                wr.write_all(&kind.header(data.len())).await?;
                wr.write_all(&data).await?;
                wr.flush().await
            };
            if sent.await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut status = 255u32;
    loop {
        let mut head = [0u8; 5];
        if rd.read_exact(&mut head).await.is_err() {
            break;
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if len > MAX_FRAME {
            break;
        }
        let mut data = vec![0u8; len];
        if rd.read_exact(&mut data).await.is_err() {
            break;
        }
        match Frame::from_byte(head[0]) {
            Some(Frame::Stdout) => {
                let _ = handle.data(id, data).await;
            }
            Some(Frame::Stderr) => {
                let _ = handle.extended_data(id, 1, data).await;
            }
            Some(Frame::Exit) if data.len() == 4 => {
                let code = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                status = u32::try_from(code).unwrap_or(255);
                break;
            }
            _ => {}
        }
    }
    writer.abort();
    let _ = handle.exit_status_request(id, status).await;
    let _ = handle.eof(id).await;
    let _ = handle.close(id).await;
}

/// Hosts a `-L` forwarding may name: the instance itself.
fn is_instance_host(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1" | "0.0.0.0" | "")
}

impl russh::server::Handler for Conn {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let Some((process_guid, index)) = parse_user(user) else {
            tracing::info!(user, peer = %self.peer(), "ssh login refused: not cf:<process guid>/<index>");
            return Ok(Auth::reject());
        };
        let req =
            Authorize { code: password.to_owned(), process_guid: process_guid.clone(), index };
        let who = match self.shared.platform.authorize(&req).await {
            Ok(w) => w,
            Err(e) => {
                tracing::info!(process_guid, instance = index, peer = %self.peer(), reason = %e, "ssh login refused");
                return Ok(Auth::reject());
            }
        };
        let cell = match self.shared.platform.cell_url(&who.cell_id).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(process_guid, instance = index, error = %e, "ssh login: no cell");
                return Ok(Auth::reject());
            }
        };
        tracing::info!(app_guid = %who.app_guid, process_guid, instance = index,
            user = %who.user_name, peer = %self.peer(), "ssh login");
        self.who = Some((who, cell));
        self.app_log(&format!("Successful remote access by {}", self.peer())).await;
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.insert(channel.id(), Chan::default());
        reply.accept().await;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (Some((who, cell)), Ok(port)) = (self.who.clone(), u16::try_from(port)) else {
            reply.reject(ChannelOpenFailure::ConnectFailed).await;
            return Ok(());
        };
        if !is_instance_host(host) {
            tracing::info!(host, port, "ssh forwarding refused: only the instance's own ports");
            reply.reject(ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        }
        let upstream = match self.shared.platform.connect(&cell, &who.instance_guid, port).await {
            Ok(u) => u,
            Err(e) => {
                tracing::info!(port, error = %e, "ssh forwarding failed");
                reply.reject(ChannelOpenFailure::ConnectFailed).await;
                return Ok(());
            }
        };
        reply.accept().await;
        tokio::spawn(async move {
            let mut stream = channel.into_stream();
            let mut upstream = upstream;
            let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
        });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        cols: u32,
        rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let tty = Tty {
            term: term.to_owned(),
            cols: u16::try_from(cols).unwrap_or(u16::MAX),
            rows: u16::try_from(rows).unwrap_or(u16::MAX),
        };
        self.channels.entry(channel).or_default().tty = Some(tty);
        session.channel_success(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.entry(channel).or_default().env.push((name.to_owned(), value.to_owned()));
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        self.start(channel, String::new(), session).await;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        self.start(channel, String::from_utf8_lossy(data).into_owned(), session).await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        cols: u32,
        rows: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(tx) = self.channels.get(&channel).and_then(|c| c.input.clone()) {
            let mut size = u16::try_from(cols).unwrap_or(u16::MAX).to_be_bytes().to_vec();
            size.extend(u16::try_from(rows).unwrap_or(u16::MAX).to_be_bytes());
            let _ = tx.send((Frame::Resize, size)).await;
        }
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(tx) = self.channels.get(&channel).and_then(|c| c.input.clone()) {
            let _ = tx.send((Frame::Stdin, data.to_vec())).await;
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(tx) = self.channels.get(&channel).and_then(|c| c.input.clone()) {
            let _ = tx.send((Frame::StdinEof, vec![])).await;
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Dropping the input ends the cell's session (its command is hung up).
        self.channels.remove(&channel);
        Ok(())
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some((who, _)) = &self.who {
            tracing::info!(app_guid = %who.app_guid, process_guid = %who.process_guid,
                instance = who.index, user = %who.user_name, "ssh connection ended");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_name_a_process_and_an_index() {
        assert_eq!(parse_user("cf:abc-123/0"), Some(("abc-123".into(), 0)));
        assert_eq!(parse_user("cf:abc/12"), Some(("abc".into(), 12)));
        assert_eq!(parse_user("abc/0"), None);
        assert_eq!(parse_user("cf:abc"), None);
        assert_eq!(parse_user("cf:/0"), None);
        assert_eq!(parse_user("cf:abc/-1"), None);
    }
}
