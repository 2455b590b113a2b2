//! `[scheme://]host.domain[:port][/path]` route strings of manifests.

/// A route string split into its parts. `host_and_domain` is resolved against existing
/// domains by the API using [`RouteSpec::candidates`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// `http`, `tcp`, ... when given (informational; CC ignores it).
    pub scheme: Option<String>,
    /// Lower-cased `host.domain`, e.g. `myapp.apps.example.com` or `*.example.com`.
    pub host_and_domain: String,
    pub port: Option<u16>,
    /// `""` or a path starting with `/`, without a trailing `/`.
    pub path: String,
}

/// A route string that is not a properly formed URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("The route '{0}' is not a properly formed URL")]
pub struct RouteError(pub String);

impl RouteSpec {
    /// `(host, domain)` pairs to try in order: the whole name as a domain with an empty
    /// host, then the first label as host and the rest as domain.
    pub fn candidates(&self) -> Vec<(String, String)> {
        let mut out = vec![(String::new(), self.host_and_domain.clone())];
        if let Some((host, domain)) = self.host_and_domain.split_once('.') {
            out.push((host.to_string(), domain.to_string()));
        }
        out
    }
}

/// Parses a manifest route string.
pub fn parse_route(route: &str) -> Result<RouteSpec, RouteError> {
    let invalid = || RouteError(route.to_string());
    let text = route.trim();
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => {
            let ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
            if !ok {
                return Err(invalid());
            }
            (Some(scheme.to_ascii_lowercase()), rest)
        }
        None => (None, text),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (name, port) = match authority.rsplit_once(':') {
        Some((name, port)) => (name, Some(port.parse::<u16>().map_err(|_| invalid())?)),
        None => (authority, None),
    };
    let labels_ok = !name.is_empty()
        && name.split('.').enumerate().all(|(i, label)| {
            !label.is_empty()
                && (label == "*" && i == 0
                    || label.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_')))
        });
    let path_ok = path.chars().all(|c| !c.is_whitespace() && c != '?' && c != '#');
    if !labels_ok || !path_ok {
        return Err(invalid());
    }
    Ok(RouteSpec {
        scheme,
        host_and_domain: name.to_ascii_lowercase(),
        port,
        path: path.trim_end_matches('/').to_string(),
    })
}
