//! Unit table and route strings.

use manifest::{
    format_log_rate, format_mb, parse_log_rate, parse_route, parse_size_bytes, parse_size_mb,
    SizeError,
};

#[test]
fn unit_table() {
    let table: &[(&str, u64)] = &[
        ("1B", 1),
        ("1b", 1),
        ("1K", 1024),
        ("1kb", 1024),
        ("2M", 2 << 20),
        ("2MB", 2 << 20),
        ("1G", 1 << 30),
        ("1gb", 1 << 30),
        ("1T", 1 << 40),
        ("1TB", 1 << 40),
        ("1.5G", 3 << 29),
        (" 256 M ", 256 << 20),
    ];
    for (text, bytes) in table {
        assert_eq!(parse_size_bytes(text), Ok(*bytes), "{text}");
    }
    assert_eq!(parse_size_mb("1G"), Ok(1024));
    assert_eq!(parse_size_mb("1023K"), Ok(0));
    assert_eq!(parse_size_bytes("256"), Err(SizeError::InvalidUnit));
    assert_eq!(parse_size_bytes("1P"), Err(SizeError::InvalidUnit));
    assert_eq!(parse_size_bytes("M"), Err(SizeError::NotNumeric));
    assert_eq!(parse_size_bytes("-1G"), Err(SizeError::NotNumeric));
    assert_eq!(parse_size_bytes("1.2.3M"), Err(SizeError::NotNumeric));
    assert_eq!(parse_log_rate("-1"), Ok(-1));
    assert_eq!(parse_log_rate("0"), Ok(0));
    assert_eq!(parse_log_rate("16K"), Ok(16384));
    assert_eq!(parse_log_rate("-5"), Err(SizeError::NotNumeric));
    assert_eq!(
        (format_mb(1024), format_mb(256), format_mb(0)),
        ("1G".into(), "256M".into(), "0M".into())
    );
    assert_eq!(
        (format_log_rate(-1), format_log_rate(16384), format_log_rate(100)),
        ("-1".into(), "16K".into(), "100B".into())
    );
}

#[test]
fn route_strings() {
    let r = parse_route("myapp.apps.example.com").expect("plain");
    assert_eq!(
        (r.host_and_domain.as_str(), r.port, r.path.as_str()),
        ("myapp.apps.example.com", None, "")
    );
    assert_eq!(
        r.candidates(),
        vec![
            (String::new(), "myapp.apps.example.com".to_string()),
            ("myapp".to_string(), "apps.example.com".to_string())
        ]
    );
    let r = parse_route("https://Shop.Example.com:8443/cart/").expect("full");
    assert_eq!(r.scheme.as_deref(), Some("https"));
    assert_eq!(
        (r.host_and_domain.as_str(), r.port, r.path.as_str()),
        ("shop.example.com", Some(8443), "/cart")
    );
    assert_eq!(parse_route("tcp.example.com:1024").expect("tcp").port, Some(1024));
    assert!(parse_route("*.example.com").is_ok());
    for bad in
        ["", "bad route", "a..b", "a.com:99999", "a.com:x", "://a.com", "a.*.com", "a.com/p?q"]
    {
        let err = parse_route(bad).expect_err(bad);
        assert_eq!(err.to_string(), format!("The route '{bad}' is not a properly formed URL"));
    }
}
