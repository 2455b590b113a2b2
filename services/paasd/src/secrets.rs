//! Secrets `paasd dev` generates once and keeps in the data directory, and hiding secrets in
//! printed configuration.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use rand::RngCore as _;

/// Read the secret in `file`, or create it (mode 0600) with 32 random bytes as hex.
pub fn load_or_create(file: &Path) -> anyhow::Result<String> {
    if let Ok(s) = std::fs::read_to_string(file) {
        let s = s.trim().to_owned();
        if !s.is_empty() {
            return Ok(s);
        }
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let tmp = file.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(secret.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, file)?;
    Ok(secret)
}

/// Hide what must not be shown in printed configuration: every non-empty `*secret*` or
/// `*password*` value, and the password in a database URL.
pub fn hide(v: &mut toml::Value) {
    let toml::Value::Table(t) = v else { return };
    for (key, value) in t.iter_mut() {
        match value {
            toml::Value::String(s) if s.is_empty() => {}
            toml::Value::String(s) if key.contains("secret") || key.contains("password") => {
                *s = "(hidden)".into();
            }
            toml::Value::String(s) if key.ends_with("url") => {
                if let Some(shown) = without_password(s) {
                    *s = shown;
                }
            }
            toml::Value::Table(_) => hide(value),
            _ => {}
        }
    }
}

/// `scheme://user:password@host...` → `scheme://user:(hidden)@host...`.
fn without_password(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let (userinfo, host) = rest.split_once('@')?;
    let (user, _) = userinfo.split_once(':')?;
    Some(format!("{scheme}://{user}:(hidden)@{host}"))
}

#[cfg(test)]
mod hide_tests {
    use super::*;

    #[test]
    fn secrets_passwords_and_url_passwords_are_hidden() {
        let mut v: toml::Value = toml::from_str(
            "[api]\nadmin_password = \"pw1\"\ninternal_client_secret = \"s1\"\n\
             database_url = \"postgres://paas:pw2@db:5432/paas\"\n\
             external_url = \"http://127.0.0.1:9000\"\n\
             [router]\nroute_services_secret = \"\"\nindex = 3\n",
        )
        .expect("toml");
        hide(&mut v);
        let text = toml::to_string(&v).expect("toml");
        for gone in ["pw1", "s1", "pw2"] {
            assert!(!text.contains(gone), "{gone} shown: {text}");
        }
        assert!(text.contains("postgres://paas:(hidden)@db:5432/paas"), "{text}");
        assert!(text.contains("http://127.0.0.1:9000"), "{text}");
        assert!(text.contains("route_services_secret = \"\""), "empty stays empty: {text}");
    }
}
