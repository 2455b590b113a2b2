//! From YAML text to [`Manifest`]: anchor/alias refusal, `((var))` substitution, typing.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;

use crate::{Manifest, ManifestError};

/// Parses a manifest. Refuses anchors and aliases ([`ManifestError::Anchors`]), reports bad
/// YAML as [`ManifestError::Syntax`] and wrong shapes as [`ManifestError::Structure`] (with the
/// path, e.g. `applications[0].instances`). Does not validate values: call
/// [`Manifest::validate`].
pub fn parse(yaml: &str) -> Result<Manifest, ManifestError> {
    typed(parse_value(yaml)?)
}

/// Like [`parse`], first replacing `((name))` placeholders with values from `vars` (the CLI's
/// `--var`/`--vars-file`). A whole-value placeholder takes the variable's YAML value; one
/// inside a longer string is interpolated as text. Unknown variables are all reported at once.
pub fn parse_with_vars(
    yaml: &str,
    vars: &BTreeMap<String, Value>,
) -> Result<Manifest, ManifestError> {
    let mut value = parse_value(yaml)?;
    let mut missing = BTreeSet::new();
    substitute(&mut value, vars, &mut missing);
    if !missing.is_empty() {
        return Err(ManifestError::MissingVars(missing.into_iter().collect()));
    }
    typed(value)
}

fn parse_value(yaml: &str) -> Result<Value, ManifestError> {
    if has_anchor_or_alias(yaml) {
        return Err(ManifestError::Anchors);
    }
    let value: Value =
        serde_yaml::from_str(yaml).map_err(|e| ManifestError::Syntax(e.to_string()))?;
    match value {
        Value::Mapping(_) => Ok(value),
        Value::Null => Err(ManifestError::Structure("manifest is empty".to_string())),
        _ => Err(ManifestError::Structure(
            "manifest must be a map with an 'applications' list".to_string(),
        )),
    }
}

fn typed(value: Value) -> Result<Manifest, ManifestError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ManifestError::Structure(format!("{path}: {}", e.into_inner()))
    })
}

fn substitute(value: &mut Value, vars: &BTreeMap<String, Value>, missing: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => {
            if let Some(name) = whole_placeholder(s) {
                match vars.get(name) {
                    Some(v) => *value = v.clone(),
                    None => {
                        missing.insert(name.to_string());
                    }
                }
            } else {
                *s = interpolate(s, vars, missing);
            }
        }
        Value::Sequence(items) => items.iter_mut().for_each(|v| substitute(v, vars, missing)),
        Value::Mapping(map) => map.iter_mut().for_each(|(_, v)| substitute(v, vars, missing)),
        Value::Tagged(tagged) => substitute(&mut tagged.value, vars, missing),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn whole_placeholder(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("((")?.strip_suffix("))")?;
    valid_var_name(inner).then_some(inner)
}

fn valid_var_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'))
}

fn interpolate(s: &str, vars: &BTreeMap<String, Value>, missing: &mut BTreeSet<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("((") {
        let Some(len) = rest[start + 2..].find("))") else { break };
        let name = &rest[start + 2..start + 2 + len];
        out.push_str(&rest[..start]);
        match vars.get(name).filter(|_| valid_var_name(name)) {
            Some(v) => out.push_str(&scalar_text(v)),
            None => {
                if valid_var_name(name) {
                    missing.insert(name.to_string());
                }
                out.push_str(&rest[start..start + 4 + len]);
            }
        }
        rest = &rest[start + 4 + len..];
    }
    out.push_str(rest);
    out
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => serde_yaml::to_string(other).map(|s| s.trim_end().to_string()).unwrap_or_default(),
    }
}

/// Detects YAML anchors (`&name`) and aliases (`*name`) in node position, outside quoted
/// strings, comments and block scalars. CC answers 400 to manifests using them; serde_yaml
/// would silently expand them (and they enable "billion laughs" expansion).
pub(crate) fn has_anchor_or_alias(yaml: &str) -> bool {
    let mut block_indent: Option<usize> = None;
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if let Some(block) = block_indent {
            if trimmed.is_empty() || indent > block {
                continue;
            }
            block_indent = None;
        }
        let (found, opens_block) = scan_line(line);
        if found {
            return true;
        }
        if opens_block {
            block_indent = Some(indent);
        }
    }
    false
}

/// Returns (anchor or alias found, line opens a block scalar).
fn scan_line(line: &str) -> (bool, bool) {
    let bytes = line.as_bytes();
    let mut quote: Option<u8> = None;
    let mut prev_structural = true; // start of line counts as node position
    let mut last_token_start = 0;
    let mut in_tag = false;
    for (i, &b) in bytes.iter().enumerate() {
        if let Some(q) = quote {
            if b == q {
                quote = None;
            }
            continue;
        }
        match b {
            b'"' | b'\'' if prev_structural => quote = Some(b),
            b'#' if i == 0 || bytes[i - 1].is_ascii_whitespace() => break,
            b'&' | b'*'
                if prev_structural
                    && bytes.get(i + 1).is_some_and(|n| !n.is_ascii_whitespace()) =>
            {
                return (true, false);
            }
            _ => {}
        }
        if !b.is_ascii_whitespace() && prev_structural {
            last_token_start = i;
            in_tag = b == b'!';
        }
        prev_structural = match b {
            // A tag (`!!map`) keeps the node position open for an anchor after it.
            b' ' | b'\t' => {
                prev_structural
                    || in_tag
                    || matches!(bytes.get(i.wrapping_sub(1)), Some(b':' | b'-' | b'?' | b','))
            }
            b'[' | b'{' | b',' => true,
            _ => false,
        };
    }
    let token = line[last_token_start..].split('#').next().unwrap_or("").trim();
    let opens_block = token.starts_with('|') || token.starts_with('>');
    (false, opens_block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_and_aliases() {
        let yes = [
            "a: &x 1\nb: *x\n",
            "- &anchor\n  k: v\n",
            "x: [*a]\n",
            "x: {k: *a}\n",
            "<<: *base\n",
            "a: !!map &m {k: v}\n",
        ];
        for y in yes {
            assert!(has_anchor_or_alias(y), "{y}");
        }
        let no = [
            "command: echo a&b\n",
            "command: 'a *b'\n",
            "command: \"&x\"\n",
            "env:\n  A: x*y\n# &commented\n",
            "command: |\n  echo *star &amp\n  more *x\nname: a\n",
            "route: a.example.com/*\n",
        ];
        for y in no {
            assert!(!has_anchor_or_alias(y), "{y}");
        }
    }
}
