//! SSH sessions inside an instance: a command (or a login shell) run in the instance's
//! container as `vcap` with `runc exec` — with a terminal of its own when one was asked for —,
//! or, on the process backend, as the app's user in its directory with its environment; and
//! TCP connections to the instance's ports (`-L` forwarding), made from the cell.
//!
//! The SSH endpoint reaches both over an upgraded HTTP connection (`wire::ssh`): an exec
//! session speaks frames (stdin, resize and EOF in; stdout, stderr and the exit status out), a
//! connection is the raw byte stream. A session never runs anything on the cell itself, except
//! on the process backend, where apps run on the cell anyway.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;
use wire::ssh::{ExecRequest, Frame, MAX_FRAME};

/// The shell a session runs its command with (or logs in to), in the container or on the host.
const SHELL: &str = "/bin/bash";

/// Where a running instance's sessions go.
#[derive(Debug, Clone)]
pub enum Target {
    /// In the runc container `container_id`, whose address is `ip`.
    Runc { container_id: String, ip: String },
    /// As the app's process: its `home/vcap`, environment, user, and the host port it listens on.
    Process { home: PathBuf, env: Vec<(String, String)>, run_as: Option<(u32, u32)>, port: u16 },
}

impl Target {
    /// Where a connection to the instance's `port` goes: the container's address, or on the
    /// process backend loopback (the app's own port 8080 is its host port there).
    pub fn connect_addr(&self, port: u16) -> (String, u16) {
        match self {
            Self::Runc { ip, .. } => (ip.clone(), port),
            Self::Process { port: app, .. } if port == crate::net::APP_PORT => {
                ("127.0.0.1".into(), *app)
            }
            Self::Process { .. } => ("127.0.0.1".into(), port),
        }
    }

    /// The arguments of [`Target::program`] for `req`.
    fn argv(&self, req: &ExecRequest) -> Vec<String> {
        let shell_args: Vec<String> = if req.command.is_empty() {
            vec!["-l".into()]
        } else {
            vec!["-c".into(), req.command.clone()]
        };
        match self {
            Self::Runc { container_id, .. } => {
                let mut a: Vec<String> = vec![
                    "exec".into(),
                    "--user".into(),
                    format!("{}:{}", stack::VCAP_UID, stack::VCAP_GID),
                    "--cwd".into(),
                    "/home/vcap".into(),
                ];
                if req.tty.is_some() {
                    a.push("--tty".into());
                }
                for (k, v) in session_env(req) {
                    a.extend(["--env".into(), format!("{k}={v}")]);
                }
                a.push(container_id.clone());
                a.push(SHELL.into());
                a.extend(shell_args);
                a
            }
            Self::Process { .. } => shell_args,
        }
    }

    fn program(&self) -> &'static str {
        match self {
            Self::Runc { .. } => "runc",
            Self::Process { .. } => SHELL,
        }
    }
}

/// Variables a session adds to the app's: the client's, and `TERM` for a terminal.
fn session_env(req: &ExecRequest) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = req
        .env
        .iter()
        .filter(|(k, _)| !k.is_empty() && !k.contains('=') && k != "PATH")
        .cloned()
        .collect();
    if let Some(t) = &req.tty {
        let term = if t.term.is_empty() { "xterm" } else { &t.term };
        env.push(("TERM".into(), term.into()));
    }
    env
}

/// Run `req` for the instance and speak frames over `io` until the command ended and its
/// output is sent (then an `Exit` frame), or the client went away (then the command is killed).
pub async fn session<S>(target: Target, req: ExecRequest, io: S) -> std::io::Result<i32>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let (out_tx, mut out_rx) = mpsc::channel::<(Frame, Vec<u8>)>(16);
    let (in_tx, in_rx) = mpsc::channel::<Input>(16);
    let reader = tokio::spawn(async move { read_frames(&mut rd, in_tx).await });
    let runner = tokio::spawn(async move {
        let code = match req.tty.clone() {
            Some(tty) => with_tty(&target, &req, tty, in_rx, out_tx.clone()).await,
            None => with_pipes(&target, &req, in_rx, out_tx.clone()).await,
        };
        let code = code.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "ssh session could not run");
            127
        });
        let _ = out_tx.send((Frame::Exit, code.to_be_bytes().to_vec())).await;
        code
    });
    let mut code = 0;
    while let Some((kind, data)) = out_rx.recv().await {
        wr.write_all(&kind.header(data.len())).await?;
        wr.write_all(&data).await?;
        wr.flush().await?;
        if kind == Frame::Exit {
            code = i32::from_be_bytes(data.try_into().unwrap_or([0, 0, 0, 0]));
            break;
        }
    }
    reader.abort();
    let _ = wr.shutdown().await;
    runner.abort();
    Ok(code)
}

enum Input {
    Data(Vec<u8>),
    Eof,
    Resize(u16, u16),
}

async fn read_frames<R: AsyncRead + Unpin>(rd: &mut R, tx: mpsc::Sender<Input>) {
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
        let input = match Frame::from_byte(head[0]) {
            Some(Frame::Stdin) => Input::Data(data),
            Some(Frame::StdinEof) => Input::Eof,
            Some(Frame::Resize) if data.len() == 4 => Input::Resize(
                u16::from_be_bytes([data[0], data[1]]),
                u16::from_be_bytes([data[2], data[3]]),
            ),
            _ => continue,
        };
        if tx.send(input).await.is_err() {
            return;
        }
    }
    // The client is gone: stdin ends, and the session with it.
    let _ = tx.send(Input::Eof).await;
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt as _;
    status.code().or_else(|| status.signal().map(|n| 128 + n)).unwrap_or(255)
}

fn apply_process_env(cmd: &mut tokio::process::Command, target: &Target, req: &ExecRequest) {
    if let Target::Process { home, env, run_as, .. } = target {
        cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v))).current_dir(home);
        if let Some((uid, gid)) = run_as {
            cmd.uid(*uid).gid(*gid);
        }
        cmd.envs(session_env(req));
    }
}

async fn with_pipes(
    target: &Target,
    req: &ExecRequest,
    mut input: mpsc::Receiver<Input>,
    out: mpsc::Sender<(Frame, Vec<u8>)>,
) -> std::io::Result<i32> {
    let mut cmd = tokio::process::Command::new(target.program());
    cmd.args(target.argv(req))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    apply_process_env(&mut cmd, target, req);
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take();
    let o = pump(child.stdout.take(), Frame::Stdout, out.clone());
    let e = pump(child.stderr.take(), Frame::Stderr, out);
    let mut open = true;
    let status = loop {
        tokio::select! {
            st = child.wait() => break st?,
            i = input.recv(), if open => match i {
                Some(Input::Data(d)) => {
                    if let Some(w) = stdin.as_mut() {
                        if w.write_all(&d).await.is_err() {
                            stdin = None;
                        }
                    }
                }
                Some(Input::Eof) => stdin = None,
                None => {
                    (stdin, open) = (None, false);
                    if let Some(pid) = child.id() {
                        hang_up(pid);
                    }
                }
                Some(Input::Resize(..)) => {}
            },
        }
    };
    let _ = tokio::join!(o, e);
    Ok(exit_code(status))
}

fn pump<R: AsyncRead + Unpin + Send + 'static>(
    src: Option<R>,
    kind: Frame,
    out: mpsc::Sender<(Frame, Vec<u8>)>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(mut src) = src else { return };
        let mut buf = vec![0u8; 32 * 1024];
        while let Ok(n) = src.read(&mut buf).await {
            if n == 0 || out.send((kind, buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
    })
}

async fn with_tty(
    target: &Target,
    req: &ExecRequest,
    tty: wire::ssh::Tty,
    mut input: mpsc::Receiver<Input>,
    out: mpsc::Sender<(Frame, Vec<u8>)>,
) -> std::io::Result<i32> {
    let (pty, pts) = pty_process::open().map_err(std::io::Error::other)?;
    pty.resize(pty_process::Size::new(tty.rows.max(1), tty.cols.max(1)))
        .map_err(std::io::Error::other)?;
    let mut std_cmd = tokio::process::Command::new(target.program());
    std_cmd.args(target.argv(req));
    apply_process_env(&mut std_cmd, target, req);
    let cmd = pty_process::Command::from(std_cmd).kill_on_drop(true);
    let mut child = cmd.spawn(pts).map_err(std::io::Error::other)?;
    let (mut r, mut w) = pty.into_split();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        // EIO once the last holder of the terminal is gone.
        while let Ok(n) = r.read(&mut buf).await {
            if n == 0 || out.send((Frame::Stdout, buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
    });
    let mut open = true;
    let status = loop {
        tokio::select! {
            st = child.wait() => break st?,
            i = input.recv(), if open => match i {
                Some(Input::Data(d)) => { let _ = w.write_all(&d).await; }
                // End of input on a terminal: its EOF character.
                Some(Input::Eof) => { let _ = w.write_all(&[4]).await; }
                // The client is gone: hang up.
                None => {
                    open = false;
                    if let Some(pid) = child.id() {
                        hang_up(pid);
                    }
                }
                Some(Input::Resize(cols, rows)) => {
                    let _ = w.resize(pty_process::Size::new(rows.max(1), cols.max(1)));
                }
            },
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), reader).await;
    Ok(exit_code(status))
}

/// SIGHUP to a session's program (runc passes it on to the command in the container).
fn hang_up(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGHUP,
        );
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    /// What a client sees of a session: stdout, stderr, exit status.
    async fn run(target: Target, req: ExecRequest, stdin: &[u8]) -> (String, String, i32) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let session = tokio::spawn(session(target, req, server));
        let (mut rd, mut wr) = tokio::io::split(client);
        wr.write_all(&Frame::Stdin.header(stdin.len())).await.expect("stdin");
        wr.write_all(stdin).await.expect("stdin");
        wr.write_all(&Frame::StdinEof.header(0)).await.expect("eof");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        loop {
            let mut head = [0u8; 5];
            rd.read_exact(&mut head).await.expect("frame");
            let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let mut data = vec![0u8; len];
            rd.read_exact(&mut data).await.expect("payload");
            match Frame::from_byte(head[0]) {
                Some(Frame::Stdout) => out.extend(data),
                Some(Frame::Stderr) => err.extend(data),
                Some(Frame::Exit) => {
                    let code = i32::from_be_bytes(data.try_into().expect("4 bytes"));
                    assert_eq!(session.await.expect("joins").expect("session"), code);
                    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
                    return (text(out), text(err), code);
                }
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    fn process_target(home: &std::path::Path, run_as: Option<(u32, u32)>) -> Target {
        Target::Process {
            home: home.to_owned(),
            env: vec![("PATH".into(), "/usr/bin:/bin".into()), ("GREETING".into(), "hello".into())],
            run_as,
            port: 61001,
        }
    }

    #[tokio::test]
    async fn a_process_backend_command_runs_as_the_app_in_its_directory_with_its_environment() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let req = ExecRequest {
            command: "echo $GREETING $CLIENT_VAR; pwd; id -u; echo oops >&2; cat; exit 3".into(),
            tty: None,
            env: vec![("CLIENT_VAR".into(), "from-client".into()), ("PATH".into(), "/x".into())],
        };
        let (out, err, code) =
            run(process_target(dir.path(), Some((65534, 65534))), req, b"typed in\n").await;
        let home = dir.path().display().to_string();
        assert_eq!(out, format!("hello from-client\n{home}\n65534\ntyped in\n"));
        assert_eq!((err.as_str(), code), ("oops\n", 3));
    }

    #[tokio::test]
    async fn a_process_backend_session_with_a_terminal_gets_one() {
        let dir = tempfile::tempdir().expect("dir");
        let req = ExecRequest {
            command: "tty; echo term=$TERM".into(),
            tty: Some(wire::ssh::Tty { term: "vt100".into(), cols: 80, rows: 24 }),
            env: vec![],
        };
        let (out, _, code) = run(process_target(dir.path(), None), req, b"").await;
        assert!(out.contains("/dev/pts/"), "{out}");
        assert!(out.contains("term=vt100"), "{out}");
        assert_eq!(code, 0);
    }
}
