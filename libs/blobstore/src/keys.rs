//! Key validation and the key layout of the platform's namespaces.

use crate::{BlobError, Result};

const MAX_KEY_LEN: usize = 1024;

/// Checks a key: 1-1024 bytes of `/`-separated segments, each non-empty, made of ASCII
/// letters, digits, `.`, `_` and `-`, and not starting with `.` (which also rules out `.`
/// and `..` and keeps dot-names free for the store's own sidecars). No leading `/`.
pub fn validate_key(key: &str) -> Result<()> {
    let invalid = |reason| Err(BlobError::InvalidKey { key: key.to_string(), reason });
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return invalid("must be 1 to 1024 bytes long");
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return invalid("must be relative and have no empty segments");
        }
        if segment.starts_with('.') {
            return invalid("segments must not start with '.'");
        }
        if !segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
            return invalid("segments may only contain letters, digits, '.', '_' and '-'");
        }
    }
    Ok(())
}

fn checked(key: String) -> Result<String> {
    validate_key(&key)?;
    Ok(key)
}

/// `packages/<package_guid>`: the uploaded (and resource-combined) app bits, a zip.
pub fn package_key(package_guid: &str) -> Result<String> {
    checked(format!("packages/{package_guid}"))
}

/// `droplets/<droplet_guid>`: a staged droplet, a tar.gz.
pub fn droplet_key(droplet_guid: &str) -> Result<String> {
    checked(format!("droplets/{droplet_guid}"))
}

/// `buildpacks/<buildpack_guid>`: an admin buildpack zip.
pub fn buildpack_key(buildpack_guid: &str) -> Result<String> {
    checked(format!("buildpacks/{buildpack_guid}"))
}

/// `buildpack_cache/<app_guid>/<stack>`: the build cache of one app on one stack, a tar.gz.
pub fn buildpack_cache_key(app_guid: &str, stack: &str) -> Result<String> {
    checked(format!("buildpack_cache/{app_guid}/{stack}"))
}

/// `resources/<first two hex digits>/<sha1>`: one cached app file (resource matching).
/// The SHA-1 must be 40 hex digits; it is lower-cased.
pub fn resource_key(sha1: &str) -> Result<String> {
    if sha1.len() != 40 || !sha1.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(BlobError::InvalidKey {
            key: sha1.to_string(),
            reason: "a SHA-1 is 40 hex digits",
        });
    }
    let sha1 = sha1.to_ascii_lowercase();
    Ok(format!("resources/{}/{sha1}", &sha1[..2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in ["a", "packages/6f1c-22", "x/y.z/w_1"] {
            assert!(validate_key(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(1025);
        for bad in
            ["", "/abs", "a//b", "a/../b", "..", ".hidden", "a/.b", "a b", "a\\b", "ü", &long, "a/"]
        {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
        assert!(package_key("../x").is_err());
        assert_eq!(
            resource_key("A9993E364706816ABA3E25717850C26C9CD0D89D").ok().as_deref(),
            Some("resources/a9/a9993e364706816aba3e25717850c26c9cd0d89d")
        );
        assert!(resource_key("zz").is_err());
        assert_eq!(
            buildpack_cache_key("app", "bookworm").ok().as_deref(),
            Some("buildpack_cache/app/bookworm")
        );
    }
}
