//! Configuration in three layers: the type's defaults, then a TOML file, then environment
//! variables. An invalid value stops start-up with one line naming the key and the problem.
//!
//! Environment variables are `<PREFIX>_<PATH>` with the path's dots written as underscores:
//! `PAAS_API_ADDR` sets `api.addr`, `PAAS_DATA_DIR` sets `data_dir`. The path is resolved
//! against the keys the defaults have, so keys may themselves contain underscores. A value is
//! read as the type the default has (number, bool, list as comma-separated text, string).

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;
use toml::{Table, Value};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid configuration: {path}: {message}")]
    Toml { path: String, message: String },
    #[error("invalid configuration: {key} (from {var}): {message}")]
    Env { key: String, var: String, message: String },
    #[error("invalid configuration: {key}: {message}")]
    Value { key: String, message: String },
}

impl ConfigError {
    /// A semantic check failed after parsing (`key` names the setting).
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Value { key: key.into(), message: message.into() }
    }
}

/// Load `T` from its defaults, the optional TOML file and the environment.
pub fn load<T>(file: Option<&Path>, prefix: &str) -> Result<T, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
{
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let text = match file {
        Some(p) => Some((
            p.display().to_string(),
            std::fs::read_to_string(p)
                .map_err(|source| ConfigError::Read { path: p.display().to_string(), source })?,
        )),
        None => None,
    };
    load_from(text.as_ref().map(|(p, t)| (p.as_str(), t.as_str())), prefix, &vars)
}

/// [`load`] with the file text and environment given, for tests.
pub fn load_from<T>(
    file: Option<(&str, &str)>,
    prefix: &str,
    vars: &[(String, String)],
) -> Result<T, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
{
    let defaults = Value::try_from(T::default())
        .map_err(|e| ConfigError::invalid("<defaults>", e.to_string()))?;
    let mut merged = match defaults {
        Value::Table(t) => t,
        _ => return Err(ConfigError::invalid("<defaults>", "not a table")),
    };
    if let Some((path, text)) = file {
        let table: Table = toml::from_str(text).map_err(|e| ConfigError::Toml {
            path: path.to_owned(),
            message: e.message().to_owned() + &span_hint(text, e.span()),
        })?;
        merge(&mut merged, table);
    }
    let shape = merged.clone();
    let want = format!("{}_", prefix.trim_end_matches('_'));
    for (var, raw) in vars {
        let Some(rest) = var.strip_prefix(&want) else { continue };
        let Some((path, template)) = resolve(&shape, &rest.to_ascii_lowercase()) else {
            continue;
        };
        let value = parse_like(template, raw).map_err(|message| ConfigError::Env {
            key: path.join("."),
            var: var.clone(),
            message,
        })?;
        set(&mut merged, &path, value);
    }
    let de = Value::Table(merged);
    serde_path_to_error::deserialize(de).map_err(|e| ConfigError::Value {
        key: e.path().to_string(),
        message: first_line(&e.into_inner().to_string()),
    })
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_owned()
}

fn span_hint(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(s) => {
            let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

fn merge(into: &mut Table, from: Table) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Table(a)), Value::Table(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// Find the key path whose underscore-joined form is `flat`; returns it with the value there.
fn resolve<'a>(table: &'a Table, flat: &str) -> Option<(Vec<String>, &'a Value)> {
    for (k, v) in table {
        if flat == k {
            return Some((vec![k.clone()], v));
        }
        if let (Some(rest), Value::Table(sub)) = (flat.strip_prefix(&format!("{k}_")), v) {
            if let Some((mut path, val)) = resolve(sub, rest) {
                path.insert(0, k.clone());
                return Some((path, val));
            }
        }
    }
    None
}

fn parse_like(template: &Value, raw: &str) -> Result<Value, String> {
    Ok(match template {
        Value::Integer(_) => Value::Integer(
            raw.trim().parse().map_err(|_| format!("expected a whole number, got {raw:?}"))?,
        ),
        Value::Float(_) => {
            Value::Float(raw.trim().parse().map_err(|_| format!("expected a number, got {raw:?}"))?)
        }
        Value::Boolean(_) => Value::Boolean(match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => return Err(format!("expected true or false, got {raw:?}")),
        }),
        Value::Array(_) => Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        Value::Table(_) => return Err("a section cannot be set from one variable".into()),
        _ => Value::String(raw.to_owned()),
    })
}

fn set(table: &mut Table, path: &[String], value: Value) {
    match path {
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            if let Some(Value::Table(sub)) = table.get_mut(first) {
                set(sub, rest, value);
            }
        }
        [] => {}
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Api {
        addr: SocketAddr,
        max_upload_mb: u64,
    }
    impl Default for Api {
        fn default() -> Self {
            Self { addr: "127.0.0.1:9000".parse().expect("addr"), max_upload_mb: 1024 }
        }
    }
    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Top {
        data_dir: String,
        api: Api,
        services: Vec<String>,
        json_logs: bool,
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    #[test]
    fn layers_apply_in_order() {
        let toml = "data_dir = \"/from/file\"\n[api]\nmax_upload_mb = 5\n";
        let c: Top = load_from(
            Some(("paasd.toml", toml)),
            "PAAS",
            &env(&[
                ("PAAS_API_ADDR", "0.0.0.0:1"),
                ("PAAS_SERVICES", "api, router"),
                ("OTHER", "x"),
            ]),
        )
        .expect("load");
        assert_eq!(c.data_dir, "/from/file");
        assert_eq!(c.api.max_upload_mb, 5);
        assert_eq!(c.api.addr, "0.0.0.0:1".parse().expect("addr"));
        assert_eq!(c.services, vec!["api", "router"]);
    }

    #[test]
    fn invalid_values_name_the_key() {
        let err = load_from::<Top>(None, "PAAS", &env(&[("PAAS_API_ADDR", "nonsense")]))
            .expect_err("must fail");
        assert_eq!(
            err.to_string(),
            "invalid configuration: api.addr: invalid socket address syntax"
        );

        let err = load_from::<Top>(None, "PAAS", &env(&[("PAAS_API_MAX_UPLOAD_MB", "lots")]))
            .expect_err("must fail");
        assert!(
            err.to_string().contains("api.max_upload_mb (from PAAS_API_MAX_UPLOAD_MB)"),
            "{err}"
        );

        let err = load_from::<Top>(Some(("f.toml", "[api]\nport = 3\n")), "PAAS", &[])
            .expect_err("must fail");
        assert!(err.to_string().contains("api"), "{err}");
        assert!(err.to_string().contains("port"), "{err}");

        let err = load_from::<Top>(Some(("f.toml", "data_dir = \n")), "PAAS", &[])
            .expect_err("must fail");
        assert!(err.to_string().starts_with("invalid configuration: f.toml:"), "{err}");
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
