//! The api's layering, read from its own source: `http` → `domain` → `store`, one way. No
//! module imports another that imports it back, SQL lives only in `store`, and the store and
//! the domain never reach up into the HTTP layer. See docs/adr/0100-api-layers.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `http::apps` for `src/http/apps.rs`, `store` for `src/store/mod.rs`, `lib` for `src/lib.rs`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src").with_extension("");
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let parts: Vec<String> = parts.into_iter().filter(|p| p != "mod").collect();
    if parts.is_empty() {
        "lib".into()
    } else {
        parts.join("::")
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without `#[cfg(test)]` modules (tests may reach anywhere).
fn non_test(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests").map_or(text, |i| &text[..i])
}

/// Every module a file refers to through `crate::a::b` paths (the longest known prefix).
fn references(text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let found = (1..=segs.len().min(2))
            .rev()
            .map(|n| segs[..n].join("::"))
            .find(|m| modules.contains(m))
            .unwrap_or_else(|| "lib".into());
        out.insert(found);
    }
    out
}

struct Crate {
    /// module -> modules it refers to
    deps: BTreeMap<String, BTreeSet<String>>,
    /// module -> source without tests
    text: BTreeMap<String, String>,
}

fn read_crate() -> Crate {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let texts: BTreeMap<String, String> = files
        .iter()
        .map(|f| {
            let t = std::fs::read_to_string(f).expect("read");
            (module_of(&src, f), non_test(&t).to_owned())
        })
        .collect();
    let modules: BTreeSet<String> = texts.keys().cloned().collect();
    let deps = texts
        .iter()
        .map(|(m, t)| {
            let mut d = references(t, &modules);
            d.remove(m);
            (m.clone(), d)
        })
        .collect();
    Crate { deps, text: texts }
}

fn layer(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

#[test]
fn dependencies_point_from_http_to_domain_to_store() {
    let c = read_crate();
    // What each layer may refer to besides itself.
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("store", &["error"][..]),
        ("domain", &["store", "error", "access", "lib"][..]),
        ("error", &[][..]),
    ]);
    let mut wrong = Vec::new();
    for (m, deps) in &c.deps {
        let Some(ok) = allowed.get(layer(m)) else { continue };
        for d in deps {
            if layer(d) != layer(m) && !ok.contains(&layer(d)) {
                wrong.push(format!("{m} -> {d}"));
            }
        }
    }
    assert!(wrong.is_empty(), "references against the layering:\n{}", wrong.join("\n"));
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let c = read_crate();
    // Depth-first search for a cycle; report the first one found.
    fn visit(
        m: &str,
        deps: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|x| x == m) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(m.to_owned());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        stack.push(m.to_owned());
        for d in deps.get(m).into_iter().flatten() {
            // `lib` (the crate root: config, state, assembly) may name every module.
            if d == "lib" {
                continue;
            }
            if let Some(c) = visit(d, deps, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(m.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for m in c.deps.keys() {
        if let Some(cycle) = visit(m, &c.deps, &mut Vec::new(), &mut done) {
            panic!("a cycle between modules: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn sql_lives_only_in_the_store() {
    let c = read_crate();
    let outside: Vec<&String> = c
        .text
        .iter()
        .filter(|(m, t)| {
            layer(m) != "store" && (t.contains("sqlx::query") || t.contains(".begin()"))
        })
        .map(|(m, _)| m)
        .collect();
    assert!(outside.is_empty(), "SQL outside the store: {outside:?}");
}

#[test]
fn the_reader_sees_the_real_graph() {
    // The check above must not pass by reading nothing.
    let c = read_crate();
    assert!(
        c.deps.get("http::apps").is_some_and(|d| d.contains("store::apps")),
        "{:?}",
        c.deps.get("http::apps")
    );
    assert!(c.deps.len() > 30);
}
