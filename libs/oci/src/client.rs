//! The registry client: one [`Registry`] per process (a connection pool and the list of
//! insecure registries), one [`Session`] per image (its credentials and the token the
//! registry's challenge led to).

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt as _;
use reqwest::header::{ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt as _;

use crate::auth::{self, Challenge};
use crate::manifest::{self, Document, Kind};
use crate::reference::check_digest;
use crate::{ImageConfig, OciError, Reference, Resolved};

/// Largest manifest or config document read.
const MAX_DOCUMENT: usize = 4 << 20;

/// A user name and password for a private registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

/// A client of Docker Registry HTTP API v2 registries.
#[derive(Clone)]
pub struct Registry {
    http: reqwest::Client,
    /// Registries (`host[:port]`) reached over plain HTTP besides loopback ones.
    insecure: Vec<String>,
}

impl Registry {
    pub fn new(insecure: Vec<String>) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .no_proxy()
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { http, insecure }
    }

    /// A session for `image` with optional credentials.
    pub fn session(&self, image: &Reference, creds: Option<Credentials>) -> Session {
        let plain = image.is_loopback() || self.insecure.iter().any(|h| h == &image.registry);
        let scheme = if plain { "http" } else { "https" };
        Session {
            http: self.http.clone(),
            base: format!("{scheme}://{}/v2/{}", image.endpoint(), image.repository),
            plain,
            image: image.clone(),
            creds,
            auth: tokio::sync::Mutex::new(None),
        }
    }

    /// [`Session::resolve`] in a new session.
    pub async fn resolve(
        &self,
        image: &Reference,
        creds: Option<Credentials>,
    ) -> Result<Resolved, OciError> {
        self.session(image, creds).resolve().await
    }
}

/// Requests about one image, sharing their authorization.
pub struct Session {
    http: reqwest::Client,
    base: String,
    plain: bool,
    image: Reference,
    creds: Option<Credentials>,
    auth: tokio::sync::Mutex<Option<String>>,
}

impl Session {
    /// The linux/amd64 image of the reference: manifest (through an index if there is one),
    /// config and layer list, each document checked against its digest.
    pub async fn resolve(&self) -> Result<Resolved, OciError> {
        let first = self.image.manifest_ref().to_owned();
        let pinned = self.image.digest.clone();
        let (kind, digest) = self.manifest(&first, pinned.as_deref()).await?;
        let (kind, digest) = match kind {
            Kind::Index(platform) => {
                check_digest(&platform)
                    .map_err(|()| self.unsupported("an index entry has no sha256 digest"))?;
                let (kind, _) = self.manifest(&platform, Some(&platform)).await?;
                (kind, platform)
            }
            image => (image, digest),
        };
        let Kind::Image { config, layers } = kind else {
            return Err(self.unsupported("an index points to another index"));
        };
        let body = self.document(&config.digest, "config").await?;
        let config = ImageConfig::parse(&body, &self.image)?;
        for l in &layers {
            check_digest(&l.digest)
                .map_err(|()| self.unsupported("a layer has no sha256 digest"))?;
        }
        Ok(Resolved { reference: self.image.pinned(&digest), digest, config, layers })
    }

    fn unsupported(&self, message: &str) -> OciError {
        OciError::Unsupported { image: self.image.to_string(), message: message.to_owned() }
    }

    /// A manifest document by tag or digest; its kind and its digest (checked against
    /// `expected` and the registry's `Docker-Content-Digest`).
    async fn manifest(
        &self,
        reference: &str,
        expected: Option<&str>,
    ) -> Result<(Kind, String), OciError> {
        let res =
            self.get(&format!("{}/manifests/{reference}", self.base), manifest::ACCEPT).await?;
        let header_type = header(&res, "content-type");
        let claimed = header(&res, "docker-content-digest");
        let body = self.read_small(res).await?;
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
        for want in
            [expected.map(str::to_owned), Some(claimed).filter(|c| c.starts_with("sha256:"))]
                .into_iter()
                .flatten()
        {
            if want != actual {
                return Err(self.mismatch("manifest", &want, &actual));
            }
        }
        let kind = Document::parse(&body, &self.image, &header_type)?;
        Ok((kind, actual))
    }

    fn mismatch(&self, what: &str, expected: &str, actual: &str) -> OciError {
        OciError::DigestMismatch {
            image: self.image.to_string(),
            what: what.to_owned(),
            expected: expected.to_owned(),
            actual: actual.to_owned(),
        }
    }

    /// A small blob (the config), verified.
    async fn document(&self, digest: &str, what: &str) -> Result<Vec<u8>, OciError> {
        check_digest(digest).map_err(|()| self.unsupported("the config has no sha256 digest"))?;
        let res = self.get(&format!("{}/blobs/{digest}", self.base), "*/*").await?;
        let body = self.read_small(res).await?;
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
        if actual != digest {
            return Err(self.mismatch(what, digest, &actual));
        }
        Ok(body)
    }

    /// Stream the blob `digest` into `dest`, checking its digest (and that it is no larger
    /// than `size`, when known); a blob that does not match is removed. Its size.
    pub async fn fetch_blob(&self, digest: &str, size: u64, dest: &Path) -> Result<u64, OciError> {
        let io = |e: std::io::Error| OciError::Io(format!("{}: {e}", dest.display()));
        let file = tokio::fs::File::create(dest).await.map_err(io)?;
        let fetched = self.stream_blob(digest, size, Some((file, dest))).await;
        if fetched.is_err() {
            let _ = tokio::fs::remove_file(dest).await;
        }
        fetched
    }

    /// Read the blob `digest` through, checking its digest and size as [`Self::fetch_blob`]
    /// does, keeping nothing. Its size.
    pub async fn verify_blob(&self, digest: &str, size: u64) -> Result<u64, OciError> {
        self.stream_blob(digest, size, None).await
    }

    async fn stream_blob(
        &self,
        digest: &str,
        size: u64,
        mut sink: Option<(tokio::fs::File, &Path)>,
    ) -> Result<u64, OciError> {
        check_digest(digest).map_err(|()| self.unsupported("a blob has no sha256 digest"))?;
        let res = self.get(&format!("{}/blobs/{digest}", self.base), "*/*").await?;
        let res = self.check(res)?;
        let mut hash = Sha256::new();
        let mut n = 0u64;
        let mut body = res.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.registry(format!("reading blob {digest}: {e}")))?;
            n += chunk.len() as u64;
            if size > 0 && n > size {
                return Err(self.mismatch(
                    &format!("layer {digest}"),
                    &format!("{size} bytes"),
                    "more",
                ));
            }
            hash.update(&chunk);
            if let Some((file, dest)) = sink.as_mut() {
                let io = |e: std::io::Error| OciError::Io(format!("{}: {e}", dest.display()));
                file.write_all(&chunk).await.map_err(io)?;
            }
        }
        if let Some((file, dest)) = sink.as_mut() {
            file.flush().await.map_err(|e| OciError::Io(format!("{}: {e}", dest.display())))?;
        }
        let actual = format!("sha256:{}", hex::encode(hash.finalize_reset()));
        if actual != digest {
            return Err(self.mismatch(&format!("layer {digest}"), digest, &actual));
        }
        Ok(n)
    }

    fn registry(&self, message: String) -> OciError {
        OciError::Registry { registry: self.image.registry.clone(), message }
    }

    /// A successful answer, or the error its status means.
    fn check(&self, res: Response) -> Result<Response, OciError> {
        match res.status() {
            s if s.is_success() => Ok(res),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(OciError::Unauthorized {
                registry: self.image.registry.clone(),
                image: self.image.to_string(),
                status: res.status().as_u16(),
            }),
            StatusCode::NOT_FOUND => Err(OciError::NotFound {
                registry: self.image.registry.clone(),
                image: self.image.to_string(),
            }),
            s => Err(self.registry(format!("{} answered {s}", res.url()))),
        }
    }

    async fn read_small(&self, res: Response) -> Result<Vec<u8>, OciError> {
        let res = self.check(res)?;
        let mut body = res.bytes_stream();
        let mut out = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.registry(e.to_string()))?;
            if out.len() + chunk.len() > MAX_DOCUMENT {
                return Err(self.unsupported("a manifest or config is larger than 4 MiB"));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// GET with the session's authorization; a 401 is answered once by following the
    /// registry's challenge (Basic, or a Bearer token from its token service).
    async fn get(&self, url: &str, accept: &str) -> Result<Response, OciError> {
        let mut auth = self.auth.lock().await.clone();
        for attempt in 0..2 {
            let mut req = self.http.get(url).header(ACCEPT, accept);
            if let Some(a) = &auth {
                req = req.header(AUTHORIZATION, a);
            }
            let res = req.send().await.map_err(|e| self.registry(without_url(&e)))?;
            if res.status() != StatusCode::UNAUTHORIZED || attempt == 1 {
                return Ok(res);
            }
            let challenge = res.headers().get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok());
            let Some(challenge) = challenge.and_then(auth::parse) else { return Ok(res) };
            let fresh = self.authorize(challenge).await?;
            *self.auth.lock().await = Some(fresh.clone());
            auth = Some(fresh);
        }
        Err(self.registry("no answer".into()))
    }

    fn unauthorized(&self, status: u16) -> OciError {
        OciError::Unauthorized {
            registry: self.image.registry.clone(),
            image: self.image.to_string(),
            status,
        }
    }

    /// The `Authorization` value the challenge asks for.
    async fn authorize(&self, challenge: Challenge) -> Result<String, OciError> {
        let basic = self.creds.as_ref().map(|c| {
            let raw = format!("{}:{}", c.username, c.password);
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
        });
        let (realm, service, scope) = match challenge {
            Challenge::Basic => return basic.ok_or_else(|| self.unauthorized(401)),
            Challenge::Bearer { realm, service, scope } => (realm, service, scope),
        };
        let mut url = url::Url::parse(&realm)
            .map_err(|e| self.registry(format!("token service '{realm}': {e}")))?;
        if url.scheme() != "https" && !(url.scheme() == "http" && self.plain) {
            return Err(self.registry(format!("token service '{realm}' is not https")));
        }
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = &service {
                q.append_pair("service", s);
            }
            let scope =
                scope.unwrap_or_else(|| format!("repository:{}:pull", self.image.repository));
            q.append_pair("scope", &scope);
        }
        let mut req = self.http.get(url);
        if let Some(b) = &basic {
            req = req.header(AUTHORIZATION, b);
        }
        let res = req.send().await.map_err(|e| self.registry(without_url(&e)))?;
        if matches!(res.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(self.unauthorized(res.status().as_u16()));
        }
        if !res.status().is_success() {
            return Err(self.registry(format!("token service answered {}", res.status())));
        }
        #[derive(serde::Deserialize)]
        struct Token {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
        }
        let t: Token = res.json().await.map_err(|e| self.registry(format!("token: {e}")))?;
        let token = t.token.or(t.access_token).filter(|t| !t.is_empty());
        token
            .map(|t| format!("Bearer {t}"))
            .ok_or_else(|| self.registry("the token service sent no token".into()))
    }
}

fn header(res: &Response, name: &str) -> String {
    res.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// A transport error without the URL (which may carry a token service's query).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "");
    }
    if e.is_connect() {
        s = format!("cannot connect ({s})");
    }
    s
}
