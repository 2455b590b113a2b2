//! From the builder's output to the droplet: process types (Procfile over `bin/release`),
//! `staging_info.yml`, the `/home/vcap` tree and its `.tgz`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::StageError;

/// What the builder reported in its output directory.
#[derive(Debug, Clone, PartialEq)]
pub struct BuilderOutput {
    pub detected_buildpack: String,
    pub buildpack_index: usize,
    pub detect_output: String,
    pub process_types: BTreeMap<String, String>,
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default().trim().to_owned()
}

/// The failure the builder wrote, if any (`error_id` line, message line).
pub fn builder_failure(output: &Path) -> Option<StageError> {
    let text = std::fs::read_to_string(output.join("failure")).ok()?;
    let mut lines = text.lines();
    let id = lines.next()?.trim().to_owned();
    let message = lines.next().unwrap_or("").trim().to_owned();
    Some(StageError::Failed { error_id: id, message })
}

/// Reads the builder's results; `Procfile` entries override `default_process_types`.
pub fn read_output(output: &Path, app: &Path) -> Result<BuilderOutput, StageError> {
    let release = std::fs::read_to_string(output.join("release.yml")).unwrap_or_default();
    let mut process_types = release_process_types(&release).map_err(|e| {
        StageError::failed(
            "BuildpackReleaseFailed",
            format!("bin/release printed invalid YAML: {e}"),
        )
    })?;
    if let Ok(procfile) = std::fs::read_to_string(app.join("Procfile")) {
        process_types.extend(parse_procfile(&procfile));
    }
    Ok(BuilderOutput {
        detected_buildpack: read(output, "detected_buildpack"),
        buildpack_index: read(output, "buildpack_index").parse().unwrap_or(0),
        detect_output: read(output, "detect_output"),
        process_types,
    })
}

fn release_process_types(yaml: &str) -> Result<BTreeMap<String, String>, serde_yaml::Error> {
    #[derive(serde::Deserialize, Default)]
    struct Release {
        #[serde(default)]
        default_process_types: Option<BTreeMap<String, String>>,
    }
    if yaml.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let r: Option<Release> = serde_yaml::from_str(yaml)?;
    Ok(r.and_then(|r| r.default_process_types).unwrap_or_default())
}

/// `type: command` lines; blank lines and `#` comments ignored.
pub fn parse_procfile(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .filter(|(k, v)| {
            !k.is_empty()
                && !v.is_empty()
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
        .collect()
}

/// `staging_info.yml` as CF writes it.
pub fn staging_info(detected: &str, start_command: &str) -> String {
    #[derive(serde::Serialize)]
    struct Info<'a> {
        detected_buildpack: &'a str,
        start_command: &'a str,
    }
    serde_yaml::to_string(&Info { detected_buildpack: detected, start_command }).unwrap_or_default()
}

/// Moves app and deps under `droplet_dir` (the future `/home/vcap`), adds the empty dirs and
/// `staging_info.yml`, and writes the `.tgz`. Returns (sha256, size).
pub fn pack(
    app: &Path,
    deps: &Path,
    droplet_dir: &Path,
    info: &str,
    tgz: &Path,
) -> Result<archive::Written, StageError> {
    let io = |e: std::io::Error| StageError::platform(format!("droplet: {e}"));
    std::fs::create_dir_all(droplet_dir).map_err(io)?;
    std::fs::rename(app, droplet_dir.join("app")).map_err(io)?;
    std::fs::rename(deps, droplet_dir.join("deps")).map_err(io)?;
    for d in ["profile.d", "tmp", "logs"] {
        std::fs::create_dir_all(droplet_dir.join(d)).map_err(io)?;
    }
    std::fs::write(droplet_dir.join("staging_info.yml"), info).map_err(io)?;
    archive::write_tar_gz(droplet_dir, tgz)
        .map_err(|e| StageError::platform(format!("droplet: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procfile_overrides_release() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (out, app) = (dir.path().join("out"), dir.path().join("app"));
        std::fs::create_dir_all(&out).expect("mkdir");
        std::fs::create_dir_all(&app).expect("mkdir");
        std::fs::write(
            out.join("release.yml"),
            "---\ndefault_process_types:\n  web: node server.js\n  worker: w\n",
        )
        .expect("write");
        std::fs::write(app.join("Procfile"), "# c\nweb: npm start\n\nbad line\n").expect("write");
        std::fs::write(out.join("detected_buildpack"), "nodejs\n").expect("write");
        let o = read_output(&out, &app).expect("read");
        assert_eq!(o.process_types["web"], "npm start");
        assert_eq!(o.process_types["worker"], "w");
        assert_eq!(o.detected_buildpack, "nodejs");
    }

    #[test]
    fn bad_release_yaml_is_a_release_failure() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("release.yml"), "default_process_types: [").expect("write");
        let e = read_output(dir.path(), dir.path()).expect_err("must fail");
        assert!(e.to_string().starts_with("BuildpackReleaseFailed"), "{e}");
    }

    #[test]
    fn builder_failure_file_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("failure"), "NoAppDetectedError\nAn app was not\n")
            .expect("write");
        let e = builder_failure(dir.path()).expect("failure");
        assert_eq!(e.to_string(), "NoAppDetectedError - An app was not");
    }
}
