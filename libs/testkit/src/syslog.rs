//! A real syslog server for drain tests: Debian's `rsyslogd` in the foreground with a TCP
//! input (octet-counted and LF framing) writing each raw message as one line of a file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `rsyslogd -n` with a TCP input on `port` writing each raw message as one line of `out`.
pub struct Rsyslog {
    child: Child,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Rsyslog {
    pub async fn start(port: u16) -> Rsyslog {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out.log");
        let conf = dir.path().join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                "global(workDirectory=\"{d}\")\n\
                 module(load=\"imtcp\")\n\
                 template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
                 ruleset(name=\"drain\") {{ action(type=\"omfile\" file=\"{o}\" template=\"raw\") }}\n\
                 input(type=\"imtcp\" port=\"{port}\" ruleset=\"drain\")\n",
                d = dir.path().display(),
                o = out.display(),
            ),
        )
        .expect("conf");
        let rsyslogd = ["/usr/sbin/rsyslogd", "rsyslogd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("rsyslogd");
        let child = Command::new(rsyslogd)
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.path().join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rsyslogd (Debian package rsyslog) must be installed: deploy/test-deps.sh");
        crate::eventually("rsyslog listening", Duration::from_secs(10), || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok().map(|_| ())
        })
        .await
        .expect("rsyslog up");
        Rsyslog { child, out, _dir: dir }
    }

    /// Every message received so far, one per line.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    /// Wait (up to 30 s) until at least `n` messages arrived; panics with what did.
    pub async fn wait_for(&self, what: &str, n: usize) -> Vec<String> {
        crate::eventually(what, Duration::from_secs(30), || async move {
            let l = self.lines();
            (l.len() >= n).then_some(l)
        })
        .await
        .unwrap_or_else(|_| panic!("{what}: rsyslog got {:?}", self.lines()))
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
