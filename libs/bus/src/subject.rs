//! NATS subject syntax and wildcard matching, shared by the in-process bus and validation.

use crate::BusError;

/// A subject to publish on: dot-separated non-empty tokens, no wildcards, no whitespace.
pub fn validate_subject(subject: &str) -> Result<(), BusError> {
    check_tokens(subject, false)
}

/// A subscription pattern: like a subject, plus `*` tokens and a final `>`.
pub fn validate_pattern(pattern: &str) -> Result<(), BusError> {
    check_tokens(pattern, true)
}

fn check_tokens(s: &str, wildcards: bool) -> Result<(), BusError> {
    let bad = |why| Err(BusError::InvalidSubject(s.to_owned(), why));
    if s.is_empty() {
        return bad("empty");
    }
    let tokens: Vec<&str> = s.split('.').collect();
    for (i, t) in tokens.iter().enumerate() {
        if t.is_empty() {
            return bad("empty token");
        }
        if t.chars().any(char::is_whitespace) {
            return bad("whitespace");
        }
        let is_wild = *t == "*" || *t == ">";
        if is_wild && !wildcards {
            return bad("wildcards are only allowed in subscriptions");
        }
        if *t == ">" && i + 1 != tokens.len() {
            return bad("'>' must be the last token");
        }
        if !is_wild && (t.contains('*') || t.contains('>')) {
            return bad("a wildcard must be a whole token");
        }
    }
    Ok(())
}

/// Whether `subject` is matched by `pattern` (`*` = one token, `>` = one or more tokens).
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut p = pattern.split('.');
    let mut s = subject.split('.');
    loop {
        match (p.next(), s.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_nats() {
        let cases = [
            ("logs.>", "logs.app", true),
            ("logs.>", "logs.app.x", true),
            ("logs.>", "logs", false),
            ("router.*", "router.register", true),
            ("router.*", "router.register.x", false),
            ("a.*.c", "a.b.c", true),
            ("a.*.c", "a.b.d", false),
            ("a.b", "a.b", true),
            ("a.b", "a.bc", false),
            (">", "anything.at.all", true),
        ];
        for (p, s, want) in cases {
            assert_eq!(subject_matches(p, s), want, "{p} vs {s}");
        }
    }

    #[test]
    fn invalid_subjects_are_refused() {
        for s in ["", "a..b", "a.>", "a.*", "a b", "a.b*"] {
            assert!(validate_subject(s).is_err(), "{s:?} accepted");
        }
        for p in ["a.>.b", "a..b", "a.b>"] {
            assert!(validate_pattern(p).is_err(), "{p:?} accepted");
        }
        assert!(validate_pattern("a.*.>").is_ok());
    }
}
