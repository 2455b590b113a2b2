//! OCI images for droplets: an image layout (`oci-layout`, `index.json`, `blobs/sha256/..`)
//! holding, per droplet, a manifest naming the stack layer (written once per stack and
//! cached) and the droplet layer (the droplet re-rooted at `/home/vcap`, plus the launcher),
//! and a config with user vcap, env, the launcher as entrypoint and the start command as cmd.
//! The stager keeps its images under `<work_dir>/oci` (ADR 0701); the api makes one per
//! export ([`ImageStore::export_droplet`], ADR 1201): a tar of an OCI image layout holding
//! only that image, runnable anywhere (`umoci unpack` + runc), after which only the stack
//! layer stays in the api's layout.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::write::GzEncoder;
use flate2::Compression;
use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, Digest as OciDigest, HistoryBuilder, ImageConfiguration,
    ImageConfigurationBuilder, ImageIndex, ImageIndexBuilder, ImageManifestBuilder, MediaType, Os,
    RootFsBuilder,
};
use oci_spec::OciSpecError;
use sha2::{Digest, Sha256};

/// A written layer: compressed digest and size, uncompressed digest (`diff_id`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Layer {
    pub digest: String,
    pub size: u64,
    pub diff_id: String,
}

/// An image's blobs as [`ImageStore::build_image`] wrote them.
struct Built {
    /// The manifest's digest and size.
    manifest: (String, u64),
    /// The config's digest.
    config: String,
    /// The droplet's layer.
    app: Layer,
}

/// An OCI image layout of droplet images, one writer at a time.
#[derive(Clone)]
pub struct ImageStore {
    dir: PathBuf,
    stacks_dir: PathBuf,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl ImageStore {
    pub fn new(dir: PathBuf, stacks_dir: PathBuf) -> Self {
        Self { dir, stacks_dir, lock: Arc::new(tokio::sync::Mutex::new(())) }
    }

    pub fn layout_dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the stack's layer now (once per stack), so the first staging does not wait for
    /// it. Failures are left for the first real image write to report.
    pub async fn warm(&self, stack: &str) {
        let _guard = self.lock.lock().await;
        let (this, stack) = (self.clone(), stack.to_owned());
        let done = tokio::task::spawn_blocking(move || this.stack_layer(&stack)).await;
        if let Ok(Err(e)) = done {
            tracing::debug!(error = %e, "stack layer not written ahead of time");
        }
    }

    /// Writes the image of `droplet` on `stack`; returns the manifest digest (`sha256:...`).
    pub async fn write(&self, stack: &str, droplet: &Path, start: &str) -> std::io::Result<String> {
        let _guard = self.lock.lock().await;
        let (this, stack, droplet, start) =
            (self.clone(), stack.to_owned(), droplet.to_owned(), start.to_owned());
        tokio::task::spawn_blocking(move || this.write_blocking(&stack, &droplet, &start))
            .await
            .map_err(std::io::Error::other)?
            .map_err(|e| std::io::Error::new(e.kind(), format!("image: {e}")))
    }

    /// Write the image of `droplet` on `stack` as a tar of an OCI image layout holding only
    /// that image (tagged `latest`) to `dest`; returns its manifest digest. Only the stack's
    /// layer stays in this layout afterwards.
    pub async fn export_droplet(
        &self,
        stack: &str,
        droplet: &Path,
        start: &str,
        dest: &Path,
    ) -> std::io::Result<String> {
        let _guard = self.lock.lock().await;
        let (this, stack, droplet, start, dest) =
            (self.clone(), stack.to_owned(), droplet.to_owned(), start.to_owned(), dest.to_owned());
        tokio::task::spawn_blocking(move || {
            let image = this.build_image(&stack, &droplet, &start)?;
            let exported = this.export_blocking(&image.manifest.0, &dest);
            for digest in [&image.manifest.0, &image.config, &image.app.digest] {
                if let Err(e) = std::fs::remove_file(this.blob_path(digest)) {
                    tracing::warn!(digest, error = %e, "exported image blob not removed");
                }
            }
            exported.map(|()| image.manifest.0)
        })
        .await
        .map_err(std::io::Error::other)?
        .map_err(|e| std::io::Error::new(e.kind(), format!("image: {e}")))
    }

    fn export_blocking(&self, digest: &str, dest: &Path) -> std::io::Result<()> {
        let manifest_bytes = std::fs::read(self.blob_path(digest))?;
        let manifest: oci_spec::image::ImageManifest =
            serde_json::from_slice(&manifest_bytes).map_err(std::io::Error::other)?;
        let mut entry = descriptor(MediaType::ImageManifest, digest, manifest_bytes.len() as u64)?;
        let ref_name = ("org.opencontainers.image.ref.name".to_owned(), "latest".to_owned());
        entry.set_annotations(Some([ref_name].into_iter().collect()));
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .manifests(vec![entry])
            .build()
            .map_err(std::io::Error::other)?;
        let mut tar = tar::Builder::new(BufWriter::new(File::create(dest)?));
        let mut add = |name: &str, bytes: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            h.set_size(bytes.len() as u64);
            tar.append_data(&mut h, name, bytes)
        };
        add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        add("index.json", &serde_json::to_vec(&index)?)?;
        let blobs = std::iter::once(digest.to_owned())
            .chain(std::iter::once(manifest.config().digest().to_string()))
            .chain(manifest.layers().iter().map(|l| l.digest().to_string()));
        for d in blobs {
            let name = format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
            tar.append_path_with_name(self.blob_path(&d), name)?;
        }
        tar.into_inner()?.flush()
    }

    fn write_blocking(&self, stack: &str, droplet: &Path, start: &str) -> std::io::Result<String> {
        let image = self.build_image(stack, droplet, start)?;
        let (digest, size) = image.manifest;
        let name = format!("droplet-{}", &image.app.diff_id.trim_start_matches("sha256:")[..32]);
        self.add_to_index(&digest, size, &name)?;
        Ok(digest)
    }

    /// The blobs of one droplet's image (the stack layer's included), not yet in the index.
    fn build_image(&self, stack: &str, droplet: &Path, start: &str) -> std::io::Result<Built> {
        std::fs::create_dir_all(self.dir.join("blobs/sha256"))?;
        std::fs::write(self.dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let base = self.stack_layer(stack)?;
        let app = self.write_layer(|tar| droplet_layer(tar, droplet))?;
        let config = image_config(stack, start, &base, &app).map_err(std::io::Error::other)?;
        let config = self.put_blob(&serde_json::to_vec(&config)?)?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(descriptor(MediaType::ImageConfig, &config.0, config.1)?)
            .layers(vec![
                descriptor(MediaType::ImageLayerGzip, &base.digest, base.size)?,
                descriptor(MediaType::ImageLayerGzip, &app.digest, app.size)?,
            ])
            .build()
            .map_err(std::io::Error::other)?;
        let manifest = self.put_blob(&serde_json::to_vec(&manifest)?)?;
        Ok(Built { manifest, config: config.0, app })
    }

    /// The stack's layer, written once and remembered by the stack's fingerprint.
    fn stack_layer(&self, stack: &str) -> std::io::Result<Layer> {
        let rootfs = stack::find(&self.stacks_dir, stack).map_err(std::io::Error::other)?;
        let fingerprint = std::fs::read_to_string(self.stacks_dir.join(stack).join(".complete"))
            .unwrap_or_default();
        let memo = self.dir.join(format!("stack-{stack}.json"));
        if let Ok(text) = std::fs::read_to_string(&memo) {
            if let Ok((fp, layer)) = serde_json::from_str::<(String, Layer)>(&text) {
                if fp == fingerprint && self.blob_path(&layer.digest).is_file() {
                    return Ok(layer);
                }
            }
        }
        let layer = self.write_layer(|tar| {
            tar.mode(tar::HeaderMode::Complete);
            tar.follow_symlinks(false);
            append_tree(tar, &rootfs, Path::new(""))
        })?;
        std::fs::write(&memo, serde_json::to_vec(&(fingerprint, &layer))?)?;
        Ok(layer)
    }

    fn write_layer<F>(&self, fill: F) -> std::io::Result<Layer>
    where
        F: FnOnce(&mut tar::Builder<Tee<GzEncoder<Tee<BufWriter<File>>>>>) -> std::io::Result<()>,
    {
        let tmp = self.dir.join(format!("blobs/.tmp-{}", uuid::Uuid::new_v4().simple()));
        let file = Tee::new(BufWriter::new(File::create(&tmp)?));
        let mut tar = tar::Builder::new(Tee::new(GzEncoder::new(file, Compression::fast())));
        let result = fill(&mut tar).and_then(|_| tar.into_inner());
        let raw = match result {
            Ok(raw) => raw,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let (gz, diff_id) = raw.finish_tee();
        let (mut file, digest, size) = gz.finish()?.finish_tee_sized();
        file.flush()?;
        let layer = Layer {
            digest: format!("sha256:{digest}"),
            size,
            diff_id: format!("sha256:{diff_id}"),
        };
        std::fs::rename(&tmp, self.blob_path(&layer.digest))?;
        Ok(layer)
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
    }

    fn put_blob(&self, bytes: &[u8]) -> std::io::Result<(String, u64)> {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
        std::fs::write(self.blob_path(&digest), bytes)?;
        Ok((digest, bytes.len() as u64))
    }

    fn add_to_index(&self, digest: &str, size: u64, name: &str) -> std::io::Result<()> {
        let path = self.dir.join("index.json");
        let mut index: ImageIndex =
            match std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
                Some(index) => index,
                None => ImageIndexBuilder::default()
                    .schema_version(2u32)
                    .manifests(Vec::new())
                    .build()
                    .map_err(std::io::Error::other)?,
            };
        let mut entry = descriptor(MediaType::ImageManifest, digest, size)?;
        let ref_name = ("org.opencontainers.image.ref.name".to_owned(), name.to_owned());
        entry.set_annotations(Some([ref_name].into_iter().collect()));
        let mut list = index.manifests().clone();
        list.retain(|m| m.digest().to_string() != digest);
        list.push(entry);
        index.set_manifests(list);
        let tmp = self.dir.join(".index.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&index)?)?;
        std::fs::rename(tmp, path)
    }
}

/// A content descriptor of the blob `digest` (`sha256:...`) of `size` bytes.
fn descriptor(media_type: MediaType, digest: &str, size: u64) -> std::io::Result<Descriptor> {
    let digest: OciDigest = digest.parse().map_err(std::io::Error::other)?;
    Ok(Descriptor::new(media_type, size, digest))
}

/// The image's config: user vcap, the app's environment, the launcher as entrypoint and the
/// start command as cmd, port 8080, the stack and droplet layers.
fn image_config(
    stack: &str,
    start: &str,
    base: &Layer,
    app: &Layer,
) -> Result<ImageConfiguration, OciSpecError> {
    let env = [
        "HOME=/home/vcap/app",
        "TMPDIR=/home/vcap/tmp",
        "DEPS_DIR=/home/vcap/deps",
        "LANG=C.UTF-8",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "PORT=8080",
    ];
    let config = ConfigBuilder::default()
        .user(format!("{}:{}", stack::VCAP_UID, stack::VCAP_GID))
        .env(env.map(str::to_owned).to_vec())
        .entrypoint(vec![stack::LAUNCHER_PATH.to_owned()])
        .cmd(vec![start.to_owned()])
        .working_dir("/home/vcap/app")
        .exposed_ports(vec!["8080/tcp".to_owned()])
        .build()?;
    let history = |by: String| HistoryBuilder::default().created_by(by).build();
    ImageConfigurationBuilder::default()
        .architecture(Arch::Amd64)
        .os(Os::Linux)
        .config(config)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![base.diff_id.clone(), app.diff_id.clone()])
                .build()?,
        )
        .history(vec![
            history(format!("paas stack {stack}"))?,
            history("paas stager: droplet".to_owned())?,
        ])
        .build()
}

/// `root/rel` and everything under it, in name order (the same tree gives the same layer),
/// without device nodes, fifos and sockets: a runtime makes `/dev` itself, and image
/// unpackers (ours included) refuse them.
fn append_tree<W: Write>(
    tar: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
) -> std::io::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(root.join(rel))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let rel = rel.join(name);
        let path = root.join(&rel);
        let kind = std::fs::symlink_metadata(&path)?.file_type();
        if kind.is_dir() {
            tar.append_path_with_name(&path, &rel)?;
            append_tree(tar, root, &rel)?;
        } else if kind.is_file() || kind.is_symlink() {
            tar.append_path_with_name(&path, &rel)?;
        }
    }
    Ok(())
}

/// The droplet's entries under `home/vcap/`, and the launcher at its mount path.
fn droplet_layer<W: Write>(tar: &mut tar::Builder<W>, droplet: &Path) -> std::io::Result<()> {
    let mut src = tar::Archive::new(flate2::read::GzDecoder::new(File::open(droplet)?));
    for entry in src.entries()? {
        let mut entry = entry?;
        let rel = entry.path()?.into_owned();
        let rel = rel.strip_prefix("./").unwrap_or(&rel).to_owned();
        let path = Path::new("home/vcap").join(&rel);
        let mut header = entry.header().clone();
        match entry.header().entry_type() {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry.link_name()?.map(|t| t.into_owned()).unwrap_or_default();
                tar.append_link(&mut header, &path, target)?;
            }
            _ => {
                let mut body = Vec::new();
                entry.read_to_end(&mut body)?;
                tar.append_data(&mut header, &path, body.as_slice())?;
            }
        }
    }
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o755);
    header.set_size(stack::LAUNCHER.len() as u64);
    header.set_mtime(0);
    tar.append_data(
        &mut header,
        stack::LAUNCHER_PATH.trim_start_matches('/'),
        stack::LAUNCHER.as_bytes(),
    )
}

/// A writer that hashes and counts what passes through.
pub struct Tee<W> {
    inner: W,
    hash: Sha256,
    size: u64,
}

impl<W: Write> Tee<W> {
    fn new(inner: W) -> Self {
        Self { inner, hash: Sha256::new(), size: 0 }
    }
    fn finish_tee(self) -> (W, String) {
        (self.inner, hex::encode(self.hash.finalize()))
    }
    fn finish_tee_sized(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hash.finalize()), self.size)
    }
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_stack_tree_goes_in_name_order_without_special_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc/ssl")).expect("dirs");
        std::fs::create_dir_all(root.join("dev/pts")).expect("dirs");
        std::fs::write(root.join("etc/hostname"), "stack\n").expect("file");
        std::fs::write(root.join("etc/b"), "b").expect("file");
        std::os::unix::fs::symlink("/proc/self/fd", root.join("dev/fd")).expect("symlink");
        let fifo = std::process::Command::new("mkfifo")
            .arg(root.join("dev/initctl"))
            .status()
            .expect("mkfifo");
        assert!(fifo.success());
        let mut tar = tar::Builder::new(Vec::new());
        tar.follow_symlinks(false);
        append_tree(&mut tar, root, Path::new("")).expect("tree");
        let bytes = tar.into_inner().expect("tar");
        let mut archive = tar::Archive::new(bytes.as_slice());
        let names: Vec<(String, tar::EntryType)> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                (e.path().expect("path").display().to_string(), e.header().entry_type())
            })
            .collect();
        let dir = tar::EntryType::Directory;
        assert_eq!(
            names,
            vec![
                ("dev".to_owned(), dir),
                ("dev/fd".to_owned(), tar::EntryType::Symlink),
                ("dev/pts".to_owned(), dir),
                ("etc".to_owned(), dir),
                ("etc/b".to_owned(), tar::EntryType::Regular),
                ("etc/hostname".to_owned(), tar::EntryType::Regular),
                ("etc/ssl".to_owned(), dir),
            ]
        );
    }

    #[test]
    fn the_config_and_descriptors_are_as_written_by_hand_before() {
        let layer = |n: &str| Layer {
            digest: format!("sha256:{}", n.repeat(64)),
            size: 7,
            diff_id: format!("sha256:{}", n.repeat(64)),
        };
        let (base, app) = (layer("a"), layer("b"));
        let config =
            serde_json::to_value(image_config("bookworm", "run me", &base, &app).expect("config"));
        assert_eq!(
            config.expect("json"),
            json!({
                "architecture": "amd64",
                "os": "linux",
                "config": {
                    "User": "2000:2000",
                    "Env": ["HOME=/home/vcap/app", "TMPDIR=/home/vcap/tmp", "DEPS_DIR=/home/vcap/deps",
                            "LANG=C.UTF-8", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PORT=8080"],
                    "Entrypoint": [stack::LAUNCHER_PATH],
                    "Cmd": ["run me"],
                    "WorkingDir": "/home/vcap/app",
                    "ExposedPorts": {"8080/tcp": {}}
                },
                "rootfs": {"type": "layers", "diff_ids": [base.diff_id, app.diff_id]},
                "history": [{"created_by": "paas stack bookworm"}, {"created_by": "paas stager: droplet"}]
            })
        );
        let d = descriptor(MediaType::ImageLayerGzip, &base.digest, 7).expect("descriptor");
        assert_eq!(
            serde_json::to_value(d).expect("json"),
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": base.digest, "size": 7})
        );
        let m = descriptor(MediaType::ImageManifest, &base.digest, 7).expect("descriptor");
        assert_eq!(m.media_type().to_string(), "application/vnd.oci.image.manifest.v1+json");
        let c = descriptor(MediaType::ImageConfig, &base.digest, 7).expect("descriptor");
        assert_eq!(c.media_type().to_string(), "application/vnd.oci.image.config.v1+json");
        assert!(descriptor(MediaType::ImageConfig, "nonsense", 7).is_err());
    }
}
