//! Manifests, indexes and image configs in both spellings (OCI and Docker schema 2), read
//! leniently: only the fields the platform needs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{OciError, Reference, ARCH, OS};

pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// What a manifest request accepts, best first.
pub(crate) const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// A blob of an image: its media type, digest and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
}

#[derive(Debug, Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(Debug, Deserialize)]
struct IndexEntry {
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
}

/// Any manifest document: an index (`manifests`) or an image manifest (`config`, `layers`).
#[derive(Debug, Deserialize)]
pub(crate) struct Document {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<IndexEntry>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

/// What a manifest document turned out to be.
pub(crate) enum Kind {
    /// The digest of the linux/amd64 manifest of an index.
    Index(String),
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
}

impl Document {
    pub(crate) fn parse(
        body: &[u8],
        image: &Reference,
        header_type: &str,
    ) -> Result<Kind, OciError> {
        let unsupported =
            |message: String| OciError::Unsupported { image: image.to_string(), message };
        let doc: Document = serde_json::from_slice(body)
            .map_err(|e| unsupported(format!("the manifest is not valid JSON ({e})")))?;
        let media = doc.media_type.clone().unwrap_or_else(|| header_type.to_owned());
        if doc.schema_version == 1
            || media.starts_with("application/vnd.docker.distribution.manifest.v1")
        {
            return Err(unsupported(
                "Docker schema 1 manifests are not supported; push the image again with a current Docker or skopeo".into(),
            ));
        }
        if let Some(list) = doc.manifests {
            if !media.is_empty() && media != OCI_INDEX && media != DOCKER_LIST {
                return Err(unsupported(format!("unknown index type '{media}'")));
            }
            return pick(list, image).map(Kind::Index);
        }
        let (Some(config), Some(layers)) = (doc.config, doc.layers) else {
            return Err(unsupported(format!("unknown manifest type '{media}'")));
        };
        if !media.is_empty() && media != OCI_MANIFEST && media != DOCKER_MANIFEST {
            return Err(unsupported(format!("unknown manifest type '{media}'")));
        }
        for l in &layers {
            layer_compression(&l.media_type).map_err(unsupported)?;
        }
        Ok(Kind::Image { config, layers })
    }
}

/// The linux/amd64 entry of an index.
fn pick(list: Vec<IndexEntry>, image: &Reference) -> Result<String, OciError> {
    let mut offers = Vec::new();
    for e in list {
        let Some(p) = e.platform else { continue };
        if p.os == OS && p.architecture == ARCH {
            return Ok(e.digest);
        }
        // Attestation manifests (`unknown/unknown`) are not platforms.
        if p.os != "unknown" {
            offers.push(format!("{}/{}", p.os, p.architecture));
        }
    }
    let offers = if offers.is_empty() { "no platform".to_owned() } else { offers.join(", ") };
    Err(OciError::NoPlatform { image: image.to_string(), offers })
}

/// Whether a layer of this media type is gzip-compressed (`Ok(true)`) or a plain tar.
pub fn layer_compression(media_type: &str) -> Result<bool, String> {
    match media_type {
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip" => Ok(true),
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.docker.image.rootfs.diff.tar" => Ok(false),
        other => Err(format!("layers of type '{other}' are not supported (only tar and tar+gzip)")),
    }
}

/// What the platform runs of an image: its process, user, environment and ports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    /// `user[:group]` as in the image (names or numbers); empty is root.
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub working_dir: String,
    /// TCP ports the image exposes, in ascending order.
    #[serde(default)]
    pub exposed_ports: Vec<u16>,
}

#[derive(Debug, Deserialize)]
struct ConfigBlob {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    config: Option<RunConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig {
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
}

impl ImageConfig {
    /// The run config of an image config blob; an image for another platform is refused.
    pub(crate) fn parse(body: &[u8], image: &Reference) -> Result<Self, OciError> {
        let blob: ConfigBlob = serde_json::from_slice(body).map_err(|e| OciError::Unsupported {
            image: image.to_string(),
            message: format!("the image config is not valid JSON ({e})"),
        })?;
        if blob.os != OS || blob.architecture != ARCH {
            return Err(OciError::NoPlatform {
                image: image.to_string(),
                offers: format!("{}/{}", blob.os, blob.architecture),
            });
        }
        let c = blob.config.unwrap_or_default();
        let mut exposed_ports: Vec<u16> = c
            .exposed_ports
            .unwrap_or_default()
            .keys()
            .filter_map(|k| {
                let (port, proto) = k.split_once('/').unwrap_or((k, "tcp"));
                (proto == "tcp").then(|| port.parse().ok()).flatten()
            })
            .collect();
        exposed_ports.sort_unstable();
        Ok(Self {
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            user: c.user.unwrap_or_default(),
            env: c.env.unwrap_or_default(),
            working_dir: c.working_dir.unwrap_or_default(),
            exposed_ports,
        })
    }

    /// The image's process: entrypoint then cmd.
    pub fn argv(&self) -> Vec<String> {
        self.entrypoint.iter().chain(&self.cmd).cloned().collect()
    }

    /// The process as one shell-quoted line (a droplet's `web` process type).
    pub fn command_line(&self) -> String {
        self.argv().iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
    }
}

fn quote(a: &str) -> String {
    if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
        a.to_owned()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

/// An image resolved to one linux/amd64 manifest, every document verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The reference pinned to the manifest's digest.
    pub reference: Reference,
    /// `sha256:…` of the image manifest.
    pub digest: String,
    pub config: ImageConfig,
    pub layers: Vec<Descriptor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Reference {
        Reference::parse("127.0.0.1:5000/app:1").expect("ref")
    }

    #[test]
    fn the_run_config_of_a_docker_config_blob() {
        let blob = br#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bin/httpd"],"Cmd":["-f","-p","8080"],"User":"1000:1000","Env":["PATH=/bin"],"WorkingDir":"/srv","ExposedPorts":{"9000/tcp":{},"8080/tcp":{},"53/udp":{}}}}"#;
        let c = ImageConfig::parse(blob, &image()).expect("config");
        assert_eq!(c.argv(), ["/bin/httpd", "-f", "-p", "8080"]);
        assert_eq!(c.exposed_ports, [8080, 9000]);
        assert_eq!((c.user.as_str(), c.working_dir.as_str()), ("1000:1000", "/srv"));
        assert_eq!(
            ImageConfig { cmd: vec!["sh".into(), "-c".into(), "echo 'hi' $X".into()], ..c }
                .command_line(),
            r#"/bin/httpd sh -c 'echo '\''hi'\'' $X'"#
        );
    }

    #[test]
    fn another_platform_is_refused_with_what_it_is() {
        let blob = br#"{"architecture":"arm64","os":"linux"}"#;
        let e = ImageConfig::parse(blob, &image()).expect_err("arm64");
        assert!(e.to_string().contains("offers linux/arm64"), "{e}");
        let index = br#"{"schemaVersion":2,"manifests":[{"digest":"sha256:1","platform":{"os":"linux","architecture":"arm64"}},{"digest":"sha256:2","platform":{"os":"unknown","architecture":"unknown"}}]}"#;
        let Err(e) = Document::parse(index, &image(), OCI_INDEX) else { panic!("picked") };
        assert_eq!(
            e.to_string(),
            "image 127.0.0.1:5000/app:1 has no linux/amd64 variant (it offers linux/arm64)"
        );
    }

    #[test]
    fn schema_1_and_zstd_layers_are_refused() {
        let v1 = br#"{"schemaVersion":1,"fsLayers":[]}"#;
        assert!(Document::parse(v1, &image(), "").is_err());
        let zstd = br#"{"schemaVersion":2,"config":{"digest":"sha256:c","size":1},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"sha256:l","size":1}]}"#;
        let Err(e) = Document::parse(zstd, &image(), OCI_MANIFEST) else { panic!("zstd") };
        assert!(e.to_string().contains("tar+zstd"), "{e}");
    }
}
