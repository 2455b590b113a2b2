//! The operating system as the cell uses it: commands (`ip`, `nft`, `runc`, `mount`) behind
//! one small trait, so the logic above is tested with a recording fake and the real thing is
//! tested for real, as root.

use std::sync::Mutex;

use futures::future::BoxFuture;

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
    ) -> BoxFuture<'a, Result<String, OsError>>;
}

/// The real thing.
pub struct RealOs;

impl Os for RealOs {
    fn run<'a>(
        &'a self,
        program: &'a str,
        args: &'a [String],
    ) -> BoxFuture<'a, Result<String, OsError>> {
        Box::pin(async move {
            let fail = |message: String| OsError {
                program: program.into(),
                args: args.join(" "),
                message,
            };
            let out = tokio::process::Command::new(program)
                .args(args)
                .output()
                .await
                .map_err(|e| fail(e.to_string()))?;
            if out.status.success() {
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
    fn run<'a>(
        &'a self,
        program: &'a str,
        args: &'a [String],
    ) -> BoxFuture<'a, Result<String, OsError>> {
        let line = format!("{program} {}", args.join(" "));
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push(line.clone());
        let fail = self
            .fail_matching
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|f| line.contains(f));
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
