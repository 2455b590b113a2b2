//! The environment of an app instance: the LRP's own variables, then CF's (PORT,
//! VCAP_APPLICATION with this instance's index and guid, CF_INSTANCE_*, MEMORY_LIMIT, HOME,
//! ...). The same on both backends but for where the app runs ([`Place`]): in a container it
//! listens on 8080 under `/home/vcap`; as a plain process on its host port in its instance
//! directory.

use std::collections::BTreeMap;

use wire::lrp::LrpStart;

/// Where an instance runs, as its environment tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The port the app listens on (`PORT`).
    pub app_port: u16,
    /// The host port routers reach it on (`CF_INSTANCE_PORT`).
    pub host_port: u16,
    /// `CF_INSTANCE_INTERNAL_IP`.
    pub internal_ip: String,
    /// The droplet's `home/vcap` as the app sees it.
    pub vcap_root: String,
    pub path: String,
}

impl Place {
    /// In a runc container: port 8080 under `/home/vcap` on the stack's PATH.
    pub fn container(internal_ip: String, host_port: u16) -> Self {
        Self {
            app_port: crate::net::APP_PORT,
            host_port,
            internal_ip,
            vcap_root: "/home/vcap".into(),
            path: "/usr/local/bin:/usr/bin:/bin".into(),
        }
    }
}

/// `KEY=value` lines of the instance's environment, sorted by key.
pub fn app_env(start: &LrpStart, external_ip: &str, at: &Place) -> Vec<String> {
    let d = &start.desired;
    let port = at.app_port;
    let mut env: BTreeMap<String, String> = d.env.clone();
    let mut vcap: serde_json::Value = env
        .get("VCAP_APPLICATION")
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    if let Some(o) = vcap.as_object_mut() {
        o.insert("instance_id".into(), start.instance_guid.clone().into());
        o.insert("instance_index".into(), start.index.into());
        o.insert("host".into(), "0.0.0.0".into());
        o.insert("port".into(), port.into());
    }
    let index = start.index.to_string();
    let ports = format!("[{{\"external\":{},\"internal\":{port}}}]", at.host_port);
    let root = &at.vcap_root;
    for (k, v) in [
        ("PORT", port.to_string()),
        ("VCAP_APP_PORT", port.to_string()),
        ("VCAP_APP_HOST", "0.0.0.0".into()),
        ("VCAP_APPLICATION", vcap.to_string()),
        ("CF_INSTANCE_INDEX", index.clone()),
        ("INSTANCE_INDEX", index),
        ("CF_INSTANCE_GUID", start.instance_guid.clone()),
        ("INSTANCE_GUID", start.instance_guid.clone()),
        ("CF_INSTANCE_IP", external_ip.to_owned()),
        ("CF_INSTANCE_INTERNAL_IP", at.internal_ip.clone()),
        ("CF_INSTANCE_PORT", at.host_port.to_string()),
        ("CF_INSTANCE_ADDR", format!("{external_ip}:{}", at.host_port)),
        ("CF_INSTANCE_PORTS", ports),
        ("MEMORY_LIMIT", format!("{}m", d.memory_mb)),
        ("HOME", format!("{root}/app")),
        ("TMPDIR", format!("{root}/tmp")),
        ("DEPS_DIR", format!("{root}/deps")),
        ("USER", "vcap".into()),
        ("LANG", "C.UTF-8".into()),
        ("PATH", at.path.clone()),
    ] {
        env.entry(k.to_owned()).or_insert(v);
    }
    // The platform's own values win over user-provided ones for these (VCAP_APPLICATION is
    // the api's, with this instance's fields added).
    env.insert("VCAP_APPLICATION".into(), vcap.to_string());
    env.insert("PORT".into(), port.to_string());
    env.insert("CF_INSTANCE_GUID".into(), start.instance_guid.clone());
    env.insert("INSTANCE_GUID".into(), start.instance_guid.clone());
    env.insert("CF_INSTANCE_INDEX".into(), start.index.to_string());
    env.insert("INSTANCE_INDEX".into(), start.index.to_string());
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// A docker image's instance: the image's own variables join the platform's, which win but
/// for `PATH`, `HOME` and `USER`, which are the image's when it sets them (the stack's values
/// mean nothing in another root filesystem).
pub fn with_image_env(env: Vec<String>, image: &[String]) -> Vec<String> {
    const IMAGE_WINS: [&str; 3] = ["PATH", "HOME", "USER"];
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for line in image {
        if let Some((k, v)) = line.split_once('=') {
            out.insert(k.to_owned(), v.to_owned());
        }
    }
    for line in env {
        if let Some((k, v)) = line.split_once('=') {
            if !(IMAGE_WINS.contains(&k) && out.contains_key(k)) {
                out.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    out.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_images_variables_join_the_platforms_which_win_but_for_path_home_and_user() {
        let platform =
            vec!["PORT=9000".into(), "PATH=/usr/bin".into(), "HOME=/home/vcap/app".into()];
        let image = ["PORT=1".into(), "PATH=/opt/bin".into(), "LANG=de".into()];
        let env = as_map(&with_image_env(platform, &image));
        assert_eq!(env["PORT"], "9000");
        assert_eq!(env["PATH"], "/opt/bin");
        assert_eq!(env["HOME"], "/home/vcap/app");
        assert_eq!(env["LANG"], "de");
    }

    fn start() -> LrpStart {
        let desired = serde_json::from_value(serde_json::json!({
            "process_guid": "p", "log_guid": "app", "instances": 1, "memory_mb": 256,
            "disk_mb": 512, "stack": "bookworm", "start_command": "serve",
            "image": {"droplet_guid": "d", "droplet_url": "u", "droplet_sha256": "s"},
            "health_check": {"type": "port"},
            "env": {
                "PORT": "9999", "GREETING": "hi",
                "VCAP_APPLICATION": "{\"application_name\":\"web\",\"port\":1}"
            }
        }))
        .expect("desired");
        LrpStart { desired, index: 2, instance_guid: "ig".into() }
    }

    fn as_map(env: &[String]) -> BTreeMap<String, String> {
        env.iter()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn in_a_container_the_app_listens_on_8080_under_home_vcap() {
        let env =
            as_map(&app_env(&start(), "10.0.0.5", &Place::container("10.254.0.7".into(), 61003)));
        for (k, v) in [
            ("PORT", "8080"),
            ("VCAP_APP_PORT", "8080"),
            ("CF_INSTANCE_PORT", "61003"),
            ("CF_INSTANCE_ADDR", "10.0.0.5:61003"),
            ("CF_INSTANCE_PORTS", "[{\"external\":61003,\"internal\":8080}]"),
            ("CF_INSTANCE_INTERNAL_IP", "10.254.0.7"),
            ("CF_INSTANCE_INDEX", "2"),
            ("HOME", "/home/vcap/app"),
            ("TMPDIR", "/home/vcap/tmp"),
            ("DEPS_DIR", "/home/vcap/deps"),
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            ("MEMORY_LIMIT", "256m"),
            ("GREETING", "hi"),
        ] {
            assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}");
        }
        let vcap: serde_json::Value = serde_json::from_str(&env["VCAP_APPLICATION"]).expect("json");
        assert_eq!(
            (
                vcap["port"].as_u64(),
                vcap["instance_index"].as_u64(),
                vcap["application_name"].as_str()
            ),
            (Some(8080), Some(2), Some("web"))
        );
    }

    #[test]
    fn as_a_process_the_app_listens_on_its_host_port_in_its_directory() {
        let at = Place {
            app_port: 61005,
            host_port: 61005,
            internal_ip: "127.0.0.1".into(),
            vcap_root: "/data/instances/abc/home/vcap".into(),
            path: "/opt/bin:/usr/bin".into(),
        };
        let env = as_map(&app_env(&start(), "127.0.0.1", &at));
        for (k, v) in [
            ("PORT", "61005"),
            ("VCAP_APP_PORT", "61005"),
            ("CF_INSTANCE_PORT", "61005"),
            ("CF_INSTANCE_PORTS", "[{\"external\":61005,\"internal\":61005}]"),
            ("CF_INSTANCE_INTERNAL_IP", "127.0.0.1"),
            ("HOME", "/data/instances/abc/home/vcap/app"),
            ("TMPDIR", "/data/instances/abc/home/vcap/tmp"),
            ("DEPS_DIR", "/data/instances/abc/home/vcap/deps"),
            ("PATH", "/opt/bin:/usr/bin"),
            ("USER", "vcap"),
        ] {
            assert_eq!(env.get(k).map(String::as_str), Some(v), "{k}");
        }
        let vcap: serde_json::Value = serde_json::from_str(&env["VCAP_APPLICATION"]).expect("json");
        assert_eq!(vcap["port"].as_u64(), Some(61005));
    }
}
