//! What `paasd dev` needs from the host, and getting it on the first start: runc containers
//! need root, `runc`, `nft` and `ip`, and building the stack needs `debootstrap`. As root on a
//! Debian machine the missing packages are installed with apt-get (saying so; `--no-install`
//! skips it); otherwise apps run as plain processes, and the start says why and what to run.

use std::path::Path;

use anyhow::Context as _;

/// A program the runc backend needs, and the Debian package that has it.
const NEEDED: [(&str, &str); 3] = [("runc", "runc"), ("nft", "nftables"), ("ip", "iproute2")];

/// What the host has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub root: bool,
    /// Programs found on `PATH`.
    pub found: Vec<String>,
    /// The stack is built already (then `debootstrap` is not needed).
    pub stack_built: bool,
    pub apt: bool,
}

impl Probe {
    pub fn of_this_host(stack_built: bool) -> Self {
        let on_path = |p: &str| {
            std::env::var_os("PATH")
                .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(p).is_file()))
        };
        let found = ["runc", "nft", "ip", "debootstrap", "apt-get"]
            .into_iter()
            .filter(|p| on_path(p))
            .map(str::to_owned)
            .collect();
        Self { root: cell::is_root(), found, stack_built, apt: on_path("apt-get") }
    }

    fn has(&self, program: &str) -> bool {
        self.found.iter().any(|f| f == program)
    }

    /// Debian packages missing for runc containers.
    fn missing(&self) -> Vec<&'static str> {
        let mut m: Vec<&'static str> =
            NEEDED.iter().filter(|(p, _)| !self.has(p)).map(|(_, pkg)| *pkg).collect();
        if !self.stack_built && !self.has("debootstrap") {
            m.push("debootstrap");
        }
        m
    }
}

/// What to do before starting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Everything the configured backend needs is here.
    Ready,
    /// Install these Debian packages, then run apps in runc containers.
    Install(Vec<&'static str>),
    /// Run apps as plain processes, for this reason (with what to do about it).
    Processes(String),
}

/// The plan for the cell backend `backend` (`auto`, `runc` or `process`).
pub fn plan(p: &Probe, backend: &str, may_install: bool) -> Plan {
    if backend == "process" {
        return Plan::Ready;
    }
    let missing = p.missing();
    if missing.is_empty() && p.root {
        return Plan::Ready;
    }
    if !p.root {
        return Plan::Processes(
            "apps run in runc containers only as root: run `sudo paasd dev` for containers".into(),
        );
    }
    let list = missing.join(" ");
    if may_install && p.apt {
        return Plan::Install(missing);
    }
    let why = if p.apt {
        format!("{list} not installed (--no-install): run `apt-get install {list}` for containers")
    } else {
        format!("{list} not installed and no apt-get here: install them for containers")
    };
    Plan::Processes(why)
}

/// Install `packages` with apt-get, saying so.
pub async fn install(packages: &[&str]) -> anyhow::Result<()> {
    println!(
        "Installing {} with apt-get for runc containers (first start only; --no-install skips this)...",
        packages.join(", ")
    );
    let apt = |args: Vec<&str>| {
        let mut c = tokio::process::Command::new("apt-get");
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    let update = apt(vec!["update", "-qq"]).status().await.context("running apt-get update")?;
    anyhow::ensure!(update.success(), "apt-get update failed ({update})");
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend_from_slice(packages);
    let done = apt(args).status().await.context("running apt-get install")?;
    anyhow::ensure!(
        done.success(),
        "apt-get install {} failed ({done}); install them by hand, or start with \
         PAAS_CELL_BACKEND=process to run apps as plain processes",
        packages.join(" ")
    );
    Ok(())
}

/// What plain processes need from the host, said once at start.
pub const PROCESS_HINT: &str = "apps then use this host's programs: nginx for static sites, \
    python3 for Python, node and npm for Node.js (apt-get install nginx-light python3 nodejs npm)";

/// Whether the default stack is built under `stacks_dir`.
pub fn stack_built(stacks_dir: &Path) -> bool {
    stack::find(stacks_dir, stack::DEFAULT_STACK).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(root: bool, found: &[&str], stack_built: bool) -> Probe {
        Probe {
            root,
            found: found.iter().map(|s| s.to_string()).collect(),
            stack_built,
            apt: found.contains(&"apt-get"),
        }
    }

    #[test]
    fn a_fresh_debian_root_installs_what_containers_need() {
        let fresh = host(true, &["ip", "apt-get"], false);
        assert_eq!(
            plan(&fresh, "auto", true),
            Plan::Install(vec!["runc", "nftables", "debootstrap"])
        );
        let built = host(true, &["ip", "apt-get"], true);
        assert_eq!(plan(&built, "auto", true), Plan::Install(vec!["runc", "nftables"]));
        let ready = host(true, &["runc", "nft", "ip", "apt-get"], true);
        assert_eq!(plan(&ready, "auto", true), Plan::Ready);
        assert_eq!(plan(&ready, "runc", true), Plan::Ready);
    }

    #[test]
    fn without_root_or_apt_or_consent_apps_run_as_processes_and_it_says_what_to_do() {
        let Plan::Processes(why) = plan(&host(false, &["runc", "nft", "ip"], true), "auto", true)
        else {
            panic!("not root")
        };
        assert!(why.contains("sudo paasd dev"), "{why}");
        let Plan::Processes(why) = plan(&host(true, &["ip", "apt-get"], true), "auto", false)
        else {
            panic!("--no-install")
        };
        assert!(why.contains("apt-get install runc nftables"), "{why}");
        let Plan::Processes(why) = plan(&host(true, &["ip"], true), "auto", true) else {
            panic!("no apt")
        };
        assert!(why.contains("no apt-get"), "{why}");
        assert_eq!(plan(&host(false, &[], false), "process", true), Plan::Ready);
    }
}
