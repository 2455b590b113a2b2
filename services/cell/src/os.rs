//! The operating system as the cell uses it: commands (`ip`, `nft`, `runc`, `mount`, with their
//! batch input) behind one small trait, so the logic above is tested with a recording fake and
//! the real thing is tested for real, as root.

use std::process::Stdio;
use std::sync::Mutex;

use futures::future::BoxFuture;
use tokio::io::AsyncWriteExt as _;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{program} {args}: {message}")]
pub struct OsError {
    pub program: String,
    pub args: String,
    pub message: String,
}

pub trait Os: Send + Sync + 'static {
    /// Run `program args...` to completion; its stdout, or an error with its stderr.
    fn run<'a>(
        &'a self,
        program: &'a str,
        args: &'a [String],
    ) -> BoxFuture<'a, Result<String, OsError>> {
        self.run_input(program, args, "")
    }

    /// [`Os::run`] with `input` on its stdin (`ip -batch -`, `nft -f -`).
    fn run_input<'a>(
        &'a self,
        program: &'a str,
        args: &'a [String],
        input: &'a str,
    ) -> BoxFuture<'a, Result<String, OsError>>;
}

/// The real thing.
pub struct RealOs;

impl Os for RealOs {
    fn run_input<'a>(
        &'a self,
        program: &'a str,
        args: &'a [String],
        input: &'a str,
    ) -> BoxFuture<'a, Result<String, OsError>> {
        Box::pin(async move {
            let fail = |message: String| OsError {
                program: program.into(),
                args: args.join(" "),
                message,
            };
            let mut cmd = tokio::process::Command::new(program);
            cmd.args(args)
                .stdin(if input.is_empty() { Stdio::null() } else { Stdio::piped() })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
            let mut written = Ok(());
            if let Some(mut stdin) = child.stdin.take() {
                written = stdin.write_all(input.as_bytes()).await;
            }
            let out = child.wait_with_output().await.map_err(|e| fail(e.to_string()))?;
            if out.status.success() {
                // A program that succeeded without reading all its input did not do all of it.
                written.map_err(|e| fail(format!("writing its input: {e}")))?;
                Ok(String::from_utf8_lossy(&out.stdout).into_owned())
            } else {
                Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
            }
        })
    }
}

/// Records every command and succeeds (or fails the commands it is told to).
#[derive(Default)]
pub struct RecordingOs {
    pub calls: Mutex<Vec<String>>,
    pub fail_matching: Mutex<Vec<String>>,
}

impl RecordingOs {
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Os for RecordingOs {
    /// Records `program args` and, for input, one `program args: <line>` per line of it.
    fn run_input<'a>(
        &'a self,
        program: &'a str,
        args: &'a [String],
        input: &'a str,
    ) -> BoxFuture<'a, Result<String, OsError>> {
        let line = format!("{program} {}", args.join(" "));
        let mut lines = vec![line.clone()];
        lines.extend(input.lines().map(|l| format!("{line}: {l}")));
        let fail = {
            let f = self.fail_matching.lock().unwrap_or_else(|e| e.into_inner());
            lines.iter().any(|l| f.iter().any(|x| l.contains(x)))
        };
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).extend(lines);
        Box::pin(async move {
            if fail {
                Err(OsError {
                    program: program.into(),
                    args: args.join(" "),
                    message: "refused".into(),
                })
            } else {
                Ok(String::new())
            }
        })
    }
}

/// `["a", "b"]` as owned strings.
pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}
