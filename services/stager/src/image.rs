//! OCI images for droplets: an image layout (`oci-layout`, `index.json`, `blobs/sha256/..`)
//! under `<work_dir>/oci` holding, per droplet, a manifest naming the stack layer (written
//! once per stack and cached) and the droplet layer (the droplet re-rooted at `/home/vcap`,
//! plus the launcher), and a config with user vcap, env, the launcher as entrypoint and the
//! start command as cmd. See ADR 0701.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::StageError;

const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// A written layer: compressed digest and size, uncompressed digest (`diff_id`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Layer {
    pub digest: String,
    pub size: u64,
    pub diff_id: String,
}

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
    pub async fn write(
        &self,
        stack: &str,
        droplet: &Path,
        start: &str,
    ) -> Result<String, StageError> {
        let _guard = self.lock.lock().await;
        let (this, stack, droplet, start) =
            (self.clone(), stack.to_owned(), droplet.to_owned(), start.to_owned());
        tokio::task::spawn_blocking(move || this.write_blocking(&stack, &droplet, &start))
            .await
            .map_err(|e| StageError::platform(e.to_string()))?
            .map_err(|e| StageError::platform(format!("image: {e}")))
    }

    fn write_blocking(&self, stack: &str, droplet: &Path, start: &str) -> std::io::Result<String> {
        std::fs::create_dir_all(self.dir.join("blobs/sha256"))?;
        std::fs::write(self.dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let base = self.stack_layer(stack)?;
        let app = self.write_layer(|tar| droplet_layer(tar, droplet))?;
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "User": format!("{}:{}", stack::VCAP_UID, stack::VCAP_GID),
                "Env": ["HOME=/home/vcap/app", "TMPDIR=/home/vcap/tmp", "DEPS_DIR=/home/vcap/deps",
                        "LANG=C.UTF-8", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PORT=8080"],
                "Entrypoint": [stack::LAUNCHER_PATH],
                "Cmd": [start],
                "WorkingDir": "/home/vcap/app",
                "ExposedPorts": {"8080/tcp": {}}
            },
            "rootfs": {"type": "layers", "diff_ids": [base.diff_id, app.diff_id]},
            "history": [{"created_by": format!("paas stack {stack}")}, {"created_by": "paas stager: droplet"}]
        });
        let config = self.put_blob(&serde_json::to_vec(&config)?)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": CONFIG, "digest": config.0, "size": config.1},
            "layers": [
                {"mediaType": LAYER, "digest": base.digest, "size": base.size},
                {"mediaType": LAYER, "digest": app.digest, "size": app.size}
            ]
        });
        let (digest, size) = self.put_blob(&serde_json::to_vec(&manifest)?)?;
        let name = format!("droplet-{}", &app.diff_id.trim_start_matches("sha256:")[..32]);
        self.add_to_index(&digest, size, &name)?;
        Ok(digest)
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
            tar.append_dir_all(".", &rootfs)
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
        let mut index: serde_json::Value = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| json!({"schemaVersion": 2, "manifests": []}));
        let entry = json!({"mediaType": MANIFEST, "digest": digest, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": name}});
        if let Some(list) = index["manifests"].as_array_mut() {
            list.retain(|m| m["digest"] != digest);
            list.push(entry);
        }
        let tmp = self.dir.join(".index.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&index)?)?;
        std::fs::rename(tmp, path)
    }
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
