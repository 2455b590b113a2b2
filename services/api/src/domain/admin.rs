//! The admin password: given by the operator, or generated once and kept in the data dir.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use rand::Rng as _;

pub use crate::store::users::ADMIN_USER;
const FILE: &str = "admin-password";

/// The admin password to use, and `Some((user, password))` when it was settled just now (to
/// be printed once). An existing stored password wins over a configured one only if none is
/// configured; a configured password replaces the stored one.
pub fn settle_password(
    data_dir: &Path,
    configured: Option<&str>,
) -> std::io::Result<Option<(String, String)>> {
    let file = data_dir.join(FILE);
    let stored =
        std::fs::read_to_string(&file).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let (password, new) = match (configured, stored) {
        (Some(c), Some(s)) if c == s => return Ok(None),
        (Some(c), _) => (c.to_owned(), true),
        (None, Some(_)) => return Ok(None),
        (None, None) => (generate(), true),
    };
    write_private(&file, &password)?;
    Ok(new.then(|| (ADMIN_USER.to_owned(), password)))
}

/// The stored admin password, if any.
pub fn stored_password(data_dir: &Path) -> Option<String> {
    std::fs::read_to_string(data_dir.join(FILE))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn generate() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..24).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

fn write_private(file: &Path, content: &str) -> std::io::Result<()> {
    let tmp = file.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (user, pw) = settle_password(dir.path(), None).expect("settle").expect("created");
        assert_eq!(user, "admin");
        assert_eq!(pw.len(), 24);
        assert_eq!(settle_password(dir.path(), None).expect("again"), None);
        assert_eq!(stored_password(dir.path()).as_deref(), Some(pw.as_str()));
    }

    #[test]
    fn configured_password_is_stored_and_reported_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = settle_password(dir.path(), Some("hunter2-hunter2")).expect("settle");
        assert_eq!(first, Some(("admin".into(), "hunter2-hunter2".into())));
        assert_eq!(settle_password(dir.path(), Some("hunter2-hunter2")).expect("again"), None);
    }
}
