//! Image references as `docker pull` reads them: `[registry/]repository[:tag][@digest]`, with
//! Docker Hub (`docker.io`, `library/` for single names) and the tag `latest` as defaults.

use std::fmt;

use crate::OciError;

const HUB: &str = "docker.io";
const HUB_ENDPOINT: &str = "registry-1.docker.io";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host (and port) as written, `docker.io` by default.
    pub registry: String,
    /// Repository path, e.g. `library/nginx`.
    pub repository: String,
    /// Tag; `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    /// `sha256:<hex>` when pinned.
    pub digest: Option<String>,
}

impl Reference {
    pub fn parse(s: &str) -> Result<Self, OciError> {
        let bad = |why: &str| OciError::Reference(s.to_owned(), why.to_owned());
        if s.is_empty() || s.len() > 4096 || s.chars().any(char::is_whitespace) {
            return Err(bad("empty, too long or contains spaces"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                check_digest(d).map_err(|()| bad("a digest must be sha256: and 64 hex digits"))?;
                (r, Some(d.to_owned()))
            }
            None => (s, None),
        };
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(rest[slash + i + 1..].to_owned())),
            None => (rest, None),
        };
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && !t.starts_with(['.', '-'])
                && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !ok {
                return Err(bad("a tag is up to 128 letters, digits, '_', '.' or '-'"));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_owned(), path.to_owned())
            }
            _ if !name.contains('/') => (HUB.to_owned(), format!("library/{name}")),
            _ => (HUB.to_owned(), name.to_owned()),
        };
        let repo_ok = !repository.is_empty()
            && repository.split('/').all(|part| {
                !part.is_empty()
                    && part.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                    })
            });
        if !repo_ok {
            return Err(bad(
                "a repository name is lower-case letters, digits, '.', '_', '-' and '/'",
            ));
        }
        let tag = if tag.is_none() && digest.is_none() { Some("latest".to_owned()) } else { tag };
        Ok(Self { registry, repository, tag, digest })
    }

    /// The host the registry API is reached at (Docker Hub's differs from its name).
    pub fn endpoint(&self) -> &str {
        if self.registry == HUB {
            HUB_ENDPOINT
        } else {
            &self.registry
        }
    }

    /// What a manifest is asked for by: the digest when pinned, else the tag.
    pub fn manifest_ref(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }

    /// The same image pinned to `digest` (`registry/repository@sha256:…`).
    pub fn pinned(&self, digest: &str) -> Self {
        Self { tag: None, digest: Some(digest.to_owned()), ..self.clone() }
    }

    /// Whether the registry is on this host (plain HTTP allowed).
    pub fn is_loopback(&self) -> bool {
        let host = self.registry.rsplit_once(':').map_or(self.registry.as_str(), |(h, p)| {
            if p.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                self.registry.as_str()
            }
        });
        matches!(host, "localhost" | "127.0.0.1" | "[::1]") || host.starts_with("127.")
    }
}

/// `sha256:` and 64 lower-case hex digits.
pub(crate) fn check_digest(d: &str) -> Result<(), ()> {
    match d.strip_prefix("sha256:") {
        Some(h)
            if h.len() == 64
                && h.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)) =>
        {
            Ok(())
        }
        _ => Err(()),
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn docker_hub_defaults() {
        assert_eq!(r("nginx").to_string(), "docker.io/library/nginx:latest");
        assert_eq!(r("team/app:1.2").to_string(), "docker.io/team/app:1.2");
        assert_eq!(r("nginx").endpoint(), "registry-1.docker.io");
    }

    #[test]
    fn registries_ports_tags_and_digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let x = r(&format!("127.0.0.1:5000/team/app:v1@{d}"));
        assert_eq!(x.registry, "127.0.0.1:5000");
        assert_eq!(x.repository, "team/app");
        assert_eq!(x.tag.as_deref(), Some("v1"));
        assert_eq!(x.manifest_ref(), d);
        assert!(x.is_loopback());
        let y = r("localhost/app");
        assert_eq!((y.registry.as_str(), y.tag.as_deref()), ("localhost", Some("latest")));
        let z = r("registry.example.com:443/app");
        assert!(!z.is_loopback());
        assert_eq!(z.pinned(&d).to_string(), format!("registry.example.com:443/app@{d}"));
    }

    #[test]
    fn bad_references_are_refused() {
        for s in ["", "UPPER/case", "app:", "app@sha256:abc", "a b", "app:-x", "reg:5000/"] {
            assert!(Reference::parse(s).is_err(), "{s}");
        }
    }
}
