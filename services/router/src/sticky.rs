//! Sticky sessions as gorouter does them (`setupStickySession`): when a backend sets a
//! `JSESSIONID` cookie the router adds `__VCAP_ID__=<instance id>`, and a request carrying
//! `__VCAP_ID__` goes back to that instance while it is registered and usable.

use axum::http::{header, HeaderMap, HeaderValue};

/// The router's sticky cookie.
pub const VCAP_ID: &str = "__VCAP_ID__";
/// The application's session cookie that turns stickiness on.
pub const SESSION_COOKIE: &str = "JSESSIONID";

/// The `__VCAP_ID__` value a request carries, if any.
pub fn requested_instance(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name.trim() == VCAP_ID).then(|| value.trim().trim_matches('"').to_owned())
        })
        .filter(|v| !v.is_empty())
}

/// Add `__VCAP_ID__=<served>` to a backend response when it sets `JSESSIONID` (copying
/// Path, a non-positive Max-Age, Expires, Secure, SameSite and Partitioned from it), or when
/// the request asked for another instance than the one that served it. Never when the
/// backend set `__VCAP_ID__` itself.
pub fn add_cookie(res: &mut HeaderMap, served: &str, requested: Option<&str>, secure: bool) {
    if served.is_empty() {
        return;
    }
    let mut session: Option<Vec<String>> = None;
    for value in res.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()) {
        let mut parts = value.split(';');
        let name = parts.next().and_then(|nv| nv.split_once('=')).map(|(n, _)| n.trim());
        match name {
            Some(VCAP_ID) => return,
            Some(SESSION_COOKIE) if session.is_none() => {
                session = Some(parts.map(|a| a.trim().to_owned()).collect());
            }
            _ => {}
        }
    }
    let moved = requested.is_some_and(|r| r != served);
    if session.is_none() && !moved {
        return;
    }
    let mut path = "/".to_owned();
    let mut attrs = Vec::new();
    let mut is_secure = secure;
    for attr in session.iter().flatten() {
        let (k, v) =
            attr.split_once('=').map_or((attr.as_str(), ""), |(k, v)| (k.trim(), v.trim()));
        match k.to_ascii_lowercase().as_str() {
            "path" if !v.is_empty() => path = v.to_owned(),
            "max-age" if v.parse::<i64>().is_ok_and(|n| n <= 0) => {
                attrs.push("Max-Age=0".to_owned())
            }
            "expires" if !v.is_empty() => attrs.push(format!("Expires={v}")),
            "secure" => is_secure = true,
            "samesite" if !v.is_empty() => attrs.push(format!("SameSite={v}")),
            "partitioned" => attrs.push("Partitioned".to_owned()),
            _ => {}
        }
    }
    let mut cookie = format!("{VCAP_ID}={served}; Path={path}");
    for a in attrs {
        cookie.push_str("; ");
        cookie.push_str(&a);
    }
    cookie.push_str("; HttpOnly");
    if is_secure {
        cookie.push_str("; Secure");
    }
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.append(header::SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookies(h: &HeaderMap) -> Vec<String> {
        h.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap_or("").to_owned()).collect()
    }

    #[test]
    fn the_request_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; __VCAP_ID__=inst-2"));
        assert_eq!(requested_instance(&h).as_deref(), Some("inst-2"));
        assert_eq!(requested_instance(&HeaderMap::new()), None);
    }

    #[test]
    fn a_session_cookie_gets_a_vcap_id_with_its_attributes() {
        let mut h = HeaderMap::new();
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static(
                "JSESSIONID=abc; Path=/shop; Max-Age=-1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Secure; SameSite=Lax",
            ),
        );
        add_cookie(&mut h, "inst-1", None, false);
        assert_eq!(
            cookies(&h)[1],
            "__VCAP_ID__=inst-1; Path=/shop; Max-Age=0; Expires=Wed, 21 Oct 2037 07:28:00 GMT; SameSite=Lax; HttpOnly; Secure"
        );
    }

    #[test]
    fn no_cookie_without_a_session_unless_the_instance_changed() {
        let mut h = HeaderMap::new();
        add_cookie(&mut h, "inst-1", Some("inst-1"), false);
        assert!(cookies(&h).is_empty());
        add_cookie(&mut h, "inst-1", Some("inst-0"), false);
        assert_eq!(cookies(&h), ["__VCAP_ID__=inst-1; Path=/; HttpOnly"]);
        let mut own = HeaderMap::new();
        own.append(header::SET_COOKIE, HeaderValue::from_static("JSESSIONID=x"));
        own.append(header::SET_COOKIE, HeaderValue::from_static("__VCAP_ID__=mine"));
        add_cookie(&mut own, "inst-1", None, false);
        assert_eq!(cookies(&own).len(), 2, "the app's own __VCAP_ID__ wins");
    }
}
