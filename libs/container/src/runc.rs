//! The runc driver: `runc run` as a child whose stdout and stderr are the container's output,
//! and `kill`, `delete --force`, `list` and `state` run to completion.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::host::{HostError, Signal};

/// How to run a container in the foreground.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub id: String,
    pub bundle: PathBuf,
    /// `--keep`: leave the stopped container (and its cgroups, with their OOM counts) until
    /// it is deleted.
    pub keep: bool,
    /// `--pid-file`: runc writes it once the container's process runs.
    pub pid_file: Option<PathBuf>,
    /// Kill runc when the child handle is dropped.
    pub kill_on_drop: bool,
}

impl Run {
    /// The arguments after `runc`.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["run".to_owned()];
        if self.keep {
            args.push("--keep".into());
        }
        if let Some(p) = &self.pid_file {
            args.extend(["--pid-file".into(), p.display().to_string()]);
        }
        args.extend(["--bundle".into(), self.bundle.display().to_string(), self.id.clone()]);
        args
    }

    /// Starts it: no stdin, stdout and stderr piped; the child's exit status is the
    /// container's.
    pub fn spawn(&self) -> std::io::Result<tokio::process::Child> {
        tokio::process::Command::new("runc")
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(self.kill_on_drop)
            .spawn()
    }
}

/// One container as `runc list` and `runc state` describe it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct State {
    pub id: String,
    #[serde(default)]
    pub pid: i64,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub bundle: PathBuf,
}

async fn runc(args: &[&str]) -> Result<String, HostError> {
    let line = format!("runc {}", args.join(" "));
    let out = tokio::process::Command::new("runc")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| HostError::new(&line, e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(HostError::new(&line, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// `runc kill [--all] <id> <signal>`.
pub async fn kill(id: &str, signal: Signal, all: bool) -> Result<(), HostError> {
    let mut args = vec!["kill"];
    if all {
        args.push("--all");
    }
    args.extend([id, signal.name()]);
    runc(&args).await.map(|_| ())
}

/// `runc delete --force <id>`.
pub async fn delete(id: &str) -> Result<(), HostError> {
    runc(&["delete", "--force", id]).await.map(|_| ())
}

/// [`delete`] for a thread that may block (a `Drop` outside any runtime).
pub fn delete_blocking(id: &str) {
    let _ = std::process::Command::new("runc")
        .args(["delete", "--force", id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `runc list -f json`: every container runc knows (none when it knows none).
pub async fn list() -> Result<Vec<State>, HostError> {
    parse_list(&runc(&["list", "-f", "json"]).await?)
}

/// `runc state <id>`.
pub async fn state(id: &str) -> Result<State, HostError> {
    let text = runc(&["state", id]).await?;
    serde_json::from_str(&text).map_err(|e| HostError::new(&format!("runc state {id}"), e))
}

/// runc prints `null` when it knows no container.
fn parse_list(text: &str) -> Result<Vec<State>, HostError> {
    let list: Option<Vec<State>> =
        serde_json::from_str(text).map_err(|e| HostError::new("runc list -f json", e))?;
    Ok(list.unwrap_or_default())
}

/// The containers in `list` whose bundle lies under `dir`.
pub fn under<'a>(list: &'a [State], dir: &'a Path) -> impl Iterator<Item = &'a State> {
    list.iter().filter(move |s| s.bundle.starts_with(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_arguments() {
        let r = Run {
            id: "c1".into(),
            bundle: "/i/bundle".into(),
            keep: true,
            pid_file: Some("/i/pid".into()),
            kill_on_drop: false,
        };
        assert_eq!(
            r.args(),
            ["run", "--keep", "--pid-file", "/i/pid", "--bundle", "/i/bundle", "c1"]
        );
        let plain = Run { id: "c2".into(), bundle: "/b".into(), ..Run::default() };
        assert_eq!(plain.args(), ["run", "--bundle", "/b", "c2"]);
    }

    #[test]
    fn list_output_is_parsed_and_filtered_by_bundle() {
        assert!(parse_list("null").expect("null").is_empty());
        let text = r#"[{"ociVersion":"1.0.2","id":"a","pid":7,"status":"running","bundle":"/cell/instances/a/bundle","rootfs":"/x","created":"2026-01-01T00:00:00Z","owner":"root"},
                      {"id":"b","pid":0,"status":"stopped","bundle":"/other/b/bundle"}]"#;
        let list = parse_list(text).expect("list");
        assert_eq!(list.len(), 2);
        assert_eq!((list[0].pid, list[0].status.as_str()), (7, "running"));
        let mine: Vec<&str> =
            under(&list, Path::new("/cell/instances")).map(|s| s.id.as_str()).collect();
        assert_eq!(mine, ["a"]);
        assert!(parse_list("{").is_err());
    }
}
