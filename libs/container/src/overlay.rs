//! Overlay roots: layers read-only below, one writable upper layer per container.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

/// An overlay mount: `lower` (topmost first) under `upper`, with overlayfs's `work` dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub target: PathBuf,
}

impl Overlay {
    /// The mount data: `lowerdir=a:b,upperdir=u,workdir=w`.
    pub fn options(&self) -> String {
        let lower: Vec<String> = self.lower.iter().map(|l| l.display().to_string()).collect();
        format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            self.upper.display(),
            self.work.display()
        )
    }

    /// Mounts it (root only).
    pub fn mount(&self) -> std::io::Result<()> {
        nix::mount::mount(
            Some("overlay"),
            &self.target,
            Some("overlay"),
            MsFlags::empty(),
            Some(self.options().as_str()),
        )
        .map_err(std::io::Error::from)
    }
}

/// Lazily unmounts `target` (`umount -l`): it goes once nothing uses it any more.
pub fn unmount(target: &Path) -> std::io::Result<()> {
    nix::mount::umount2(target, MntFlags::MNT_DETACH).map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_name_the_lower_layers_topmost_first() {
        let o = Overlay {
            lower: vec!["/l".into(), "/s".into()],
            upper: "/i/upper".into(),
            work: "/i/work".into(),
            target: "/i/rootfs".into(),
        };
        assert_eq!(o.options(), "lowerdir=/l:/s,upperdir=/i/upper,workdir=/i/work");
    }
}
