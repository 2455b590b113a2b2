//! Docker images on this cell (docs/adr/1200-docker-images.md): layers pulled by digest into
//! a blob cache shared by every image and app (`<dir>/blobs/<hex>`, each verified while it
//! downloads), applied with the archive rules and whiteouts into one read-only root per image
//! (`<dir>/images/<manifest hex>/rootfs`, the image's root user mapped to vcap), and
//! garbage-collected: an image no instance has used for `ttl` goes, and then every blob no
//! remaining image needs.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use wire::lrp::DockerImage;

use crate::backend::DockerRun;

const COMPLETE: &str = ".complete";
const LAYERS: &str = "layers";

pub struct DockerImages {
    dir: PathBuf,
    registry: oci::Registry,
    ttl: Duration,
    /// Instances using each image (by manifest hex), and pulls under way.
    users: Mutex<HashMap<String, usize>>,
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// One instance's use of an image; [`DockerImages::release`] ends it.
#[derive(Debug)]
pub struct Held(String);

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

impl DockerImages {
    pub fn new(dir: PathBuf, insecure: Vec<String>, ttl: Duration) -> Self {
        Self {
            dir,
            registry: oci::Registry::new(insecure),
            ttl,
            users: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
        }
    }

    /// The image's root (pulled and unpacked on first use) and what runs in it, held for
    /// the instance until [`DockerImages::release`].
    pub async fn prepare(
        &self,
        image: &DockerImage,
        command: &str,
    ) -> Result<(DockerRun, Held), String> {
        let reference = oci::Reference::parse(&image.image).map_err(|e| e.to_string())?;
        let Some(hex) = reference.digest.as_deref().and_then(|d| d.strip_prefix("sha256:")) else {
            return Err(format!("image {reference} is not pinned to a digest"));
        };
        let hex = hex.to_owned();
        let held = self.hold(&hex);
        let root = match self.unpacked(&reference, image, &hex).await {
            Ok(r) => r,
            Err(e) => {
                self.release(held).await;
                return Err(e);
            }
        };
        let c = &image.config;
        let args = if command.is_empty() {
            let argv: Vec<String> = c.entrypoint.iter().chain(&c.cmd).cloned().collect();
            if argv.is_empty() {
                self.release(held).await;
                return Err(format!("image {reference} has neither an entrypoint nor a command; give the app one (paas push -c)"));
            }
            argv
        } else {
            vec!["/bin/sh".into(), "-c".into(), command.to_owned()]
        };
        let (uid, gid) = match user_ids(&root, &c.user) {
            Ok(ids) => ids,
            Err(e) => {
                self.release(held).await;
                return Err(e);
            }
        };
        let cwd = if c.working_dir.is_empty() { "/".to_owned() } else { c.working_dir.clone() };
        Ok((DockerRun { rootfs: root, args, uid, gid, cwd }, held))
    }

    fn hold(&self, hex: &str) -> Held {
        *self.users.lock().unwrap_or_else(|e| e.into_inner()).entry(hex.to_owned()).or_default() +=
            1;
        Held(hex.to_owned())
    }

    /// An instance is done with its image: it is marked used now, and what has gone unused
    /// for longer than the cache's time to live is removed.
    pub async fn release(&self, held: Held) {
        {
            let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = users.get_mut(&held.0) {
                *n = n.saturating_sub(1);
            }
        }
        let mark = self.dir.join("images").join(&held.0).join(COMPLETE);
        let _ = std::fs::File::options()
            .write(true)
            .open(&mark)
            .and_then(|f| f.set_modified(SystemTime::now()));
        if let Err(e) = self.gc().await {
            tracing::warn!(error = %e, "image cache collection failed");
        }
    }

    /// Remove images unused for longer than the time to live, then unreferenced blobs.
    pub async fn gc(&self) -> Result<(), String> {
        let images = self.dir.join("images");
        let mut keep_blobs = BTreeSet::new();
        let Ok(entries) = std::fs::read_dir(&images) else { return Ok(()) };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let in_use = self
                .users
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&name)
                .copied()
                .unwrap_or(0)
                > 0;
            let last = std::fs::metadata(e.path().join(COMPLETE)).and_then(|m| m.modified()).ok();
            let stale = last.is_none_or(|t| t.elapsed().unwrap_or_default() >= self.ttl);
            if !in_use && stale && !self.pulling(&name) {
                tracing::info!(image = %name, "removing unused docker image");
                tokio::fs::remove_dir_all(e.path()).await.map_err(io(&e.path()))?;
                continue;
            }
            if let Ok(list) = std::fs::read_to_string(e.path().join(LAYERS)) {
                keep_blobs.extend(list.lines().map(str::to_owned));
            }
        }
        let blobs = self.dir.join("blobs");
        let Ok(entries) = std::fs::read_dir(&blobs) else { return Ok(()) };
        let pulling = !self.inflight.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !pulling && !keep_blobs.contains(&name) {
                let _ = tokio::fs::remove_file(e.path()).await;
            }
        }
        Ok(())
    }

    fn pulling(&self, hex: &str) -> bool {
        self.inflight.lock().unwrap_or_else(|e| e.into_inner()).contains_key(hex)
    }

    /// `<dir>/images/<hex>/rootfs`, made once (concurrent starts of one image wait for it).
    async fn unpacked(
        &self,
        reference: &oci::Reference,
        image: &DockerImage,
        hex: &str,
    ) -> Result<PathBuf, String> {
        let dir = self.dir.join("images").join(hex);
        if dir.join(COMPLETE).exists() {
            return Ok(dir.join("rootfs"));
        }
        let gate = {
            let mut m = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            m.entry(hex.to_owned()).or_default().clone()
        };
        let made = {
            let _one = gate.lock().await;
            if dir.join(COMPLETE).exists() {
                Ok(())
            } else {
                self.pull(reference, image, &dir).await
            }
        };
        self.inflight.lock().unwrap_or_else(|e| e.into_inner()).remove(hex);
        made.map(|()| dir.join("rootfs"))
    }

    async fn pull(
        &self,
        reference: &oci::Reference,
        image: &DockerImage,
        dir: &Path,
    ) -> Result<(), String> {
        let creds = (!image.username.is_empty()).then(|| oci::Credentials {
            username: image.username.clone(),
            password: image.password.clone(),
        });
        let session = self.registry.session(reference, creds);
        let resolved = session.resolve().await.map_err(|e| e.to_string())?;
        let blobs = self.dir.join("blobs");
        tokio::fs::create_dir_all(&blobs).await.map_err(io(&blobs))?;
        let mut files = Vec::new();
        for l in &resolved.layers {
            let hex = l.digest.trim_start_matches("sha256:");
            let path = blobs.join(hex);
            if !path.exists() {
                let part = blobs.join(format!(".{hex}.part"));
                session.fetch_blob(&l.digest, l.size, &part).await.map_err(|e| e.to_string())?;
                tokio::fs::rename(&part, &path).await.map_err(io(&path))?;
            }
            files.push((hex.to_owned(), path));
        }
        let work = dir.with_file_name(format!(
            ".{}-unpack",
            dir.file_name().and_then(|n| n.to_str()).unwrap_or("x")
        ));
        let _ = tokio::fs::remove_dir_all(&work).await;
        let (w, layers) = (work.clone(), files.clone());
        let applied = tokio::task::spawn_blocking(move || apply_all(&w, &layers))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        if let Err(e) = applied {
            let _ = tokio::fs::remove_dir_all(&work).await;
            return Err(format!("unpacking image {reference}: {e}"));
        }
        let list: String = files.iter().map(|(h, _)| format!("{h}\n")).collect();
        tokio::fs::write(work.join(LAYERS), list).await.map_err(io(&work))?;
        tokio::fs::write(work.join(COMPLETE), b"").await.map_err(io(&work))?;
        let _ = tokio::fs::remove_dir_all(dir).await;
        tokio::fs::rename(&work, dir).await.map_err(io(dir))?;
        Ok(())
    }
}

/// Apply the layers, lowest first, into `<work>/rootfs`.
fn apply_all(work: &Path, layers: &[(String, PathBuf)]) -> Result<(), String> {
    let root = work.join("rootfs");
    std::fs::create_dir_all(&root).map_err(io(&root))?;
    // As root, files keep their owners with the image's root mapped to vcap; otherwise
    // (tests without root) they belong to the cell's user.
    let map_root_to = nix_is_root().then_some((stack::VCAP_UID, stack::VCAP_GID));
    let options = archive::LayerOptions { map_root_to };
    let limits = archive::Limits {
        max_total_bytes: 8 << 30,
        max_files: 1_000_000,
        ..archive::Limits::default()
    };
    for (hex, path) in layers {
        archive::apply_layer(path, &root, &limits, &options)
            .map_err(|e| format!("layer sha256:{hex}: {e}"))?;
    }
    Ok(())
}

fn nix_is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// The uid and gid an image's `user[:group]` runs as: root (or no user) is vcap, whom the
/// image's root files belong to; names are looked up in the image's `/etc/passwd` and
/// `/etc/group`.
pub fn user_ids(root: &Path, user: &str) -> Result<(u32, u32), String> {
    let (u, g) = user.split_once(':').map_or((user, None), |(u, g)| (u, Some(g)));
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
    let lookup = |table: &str, name: &str, field: usize| -> Option<(u32, u32)> {
        table.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&name) && f.len() > 3)
                .then(|| Some((f[2].parse().ok()?, f[field].parse().ok()?)))
                .flatten()
        })
    };
    let (uid, mut gid) = match u {
        "" | "root" | "0" => (0, 0),
        n if n.chars().all(|c| c.is_ascii_digit()) => {
            let uid: u32 =
                n.parse().map_err(|_| format!("image user '{user}' is not a valid uid"))?;
            let gid = passwd
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() > 3 && f[2] == n).then(|| f[3].parse().ok()).flatten()
                })
                .unwrap_or(uid);
            (uid, gid)
        }
        name => lookup(&passwd, name, 3)
            .ok_or_else(|| format!("image user '{name}' is not in the image's /etc/passwd"))?,
    };
    if let Some(g) = g {
        gid = if g.chars().all(|c| c.is_ascii_digit()) {
            g.parse().map_err(|_| format!("image group '{g}' is not a valid gid"))?
        } else {
            let group = std::fs::read_to_string(root.join("etc/group")).unwrap_or_default();
            group
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.first() == Some(&g) && f.len() > 2).then(|| f[2].parse().ok()).flatten()
                })
                .ok_or_else(|| format!("image group '{g}' is not in the image's /etc/group"))?
        };
    }
    let map = |id: u32, vcap: u32| if id == 0 { vcap } else { id };
    Ok((map(uid, stack::VCAP_UID), map(gid, stack::VCAP_GID)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_users_resolve_and_root_becomes_vcap() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("etc")).expect("etc");
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nwww:x:33:34::/srv:/bin/sh\n",
        )
        .expect("passwd");
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").expect("group");
        let r = dir.path();
        assert_eq!(user_ids(r, ""), Ok((2000, 2000)));
        assert_eq!(user_ids(r, "root"), Ok((2000, 2000)));
        assert_eq!(user_ids(r, "www"), Ok((33, 34)));
        assert_eq!(user_ids(r, "33"), Ok((33, 34)));
        assert_eq!(user_ids(r, "1000"), Ok((1000, 1000)));
        assert_eq!(user_ids(r, "www:staff"), Ok((33, 50)));
        assert_eq!(user_ids(r, "1000:0"), Ok((1000, 2000)));
        assert!(user_ids(r, "nobody")
            .expect_err("unknown")
            .contains("not in the image's /etc/passwd"));
    }

    #[tokio::test]
    async fn unused_images_and_their_blobs_are_collected_and_used_ones_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let images = DockerImages::new(dir.path().to_owned(), vec![], Duration::ZERO);
        for (img, layers) in [("a", "l1\nl2\n"), ("b", "l2\nl3\n")] {
            let d = dir.path().join("images").join(img);
            std::fs::create_dir_all(d.join("rootfs")).expect("rootfs");
            std::fs::write(d.join(LAYERS), layers).expect("layers");
            std::fs::write(d.join(COMPLETE), b"").expect("complete");
        }
        std::fs::create_dir_all(dir.path().join("blobs")).expect("blobs");
        for b in ["l1", "l2", "l3", "stray"] {
            std::fs::write(dir.path().join("blobs").join(b), b).expect("blob");
        }
        let held = images.hold("b");
        images.gc().await.expect("gc");
        let names = |sub: &str| -> BTreeSet<String> {
            std::fs::read_dir(dir.path().join(sub))
                .expect("dir")
                .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(names("images"), BTreeSet::from(["b".to_owned()]));
        assert_eq!(names("blobs"), BTreeSet::from(["l2".to_owned(), "l3".to_owned()]));
        images.release(held).await;
        assert!(names("images").is_empty());
        assert!(names("blobs").is_empty());
    }
}
