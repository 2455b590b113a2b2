//! Invalid manifests: each CC message, all reported at once.

use manifest::parse;

fn messages(yaml: &str) -> Vec<String> {
    let m = parse(yaml).expect("parses");
    m.validate().expect_err("invalid").into_iter().map(|e| e.message).collect()
}

fn app(body: &str) -> String {
    format!("applications:\n- name: a\n{body}")
}

#[test]
fn each_message() {
    let cases: &[(&str, &str)] = &[
        ("  memory: 0M\n", "Process \"web\": Memory must be greater than 0MB"),
        ("  memory: 512K\n", "Process \"web\": Memory must be greater than 0MB"),
        ("  disk_quota: 0G\n", "Process \"web\": Disk quota must be greater than 0MB"),
        ("  memory: 256\n", "Process \"web\": Memory must use a supported unit: B, K, KB, M, MB, G, GB, T, or TB"),
        ("  memory: lots\n", "Process \"web\": Memory is not a number"),
        ("  log-rate-limit-per-second: 5X\n", "Process \"web\": Log rate limit per second must use a supported unit: B, K, KB, M, MB, G, GB, T, or TB"),
        ("  log-rate-limit-per-second: -2\n", "Process \"web\": Log rate limit per second is not a number"),
        ("  instances: -1\n", "Process \"web\": Instances must be greater than or equal to 0"),
        ("  health-check-type: tcp\n", "Process \"web\": Health check type must be \"port\", \"process\", or \"http\""),
        ("  readiness-health-check-type: x\n", "Process \"web\": Readiness health check type must be \"port\", \"process\", or \"http\""),
        ("  health-check-http-endpoint: health\n", "Process \"web\": Health check http endpoint must be a valid URI path"),
        ("  timeout: 0\n", "Process \"web\": Timeout must be greater than or equal to 1"),
        ("  health-check-invocation-timeout: 0\n", "Process \"web\": Health check invocation timeout must be greater than or equal to 1"),
        ("  command: \"\"\n", "Process \"web\": Command must be between 1 and 4096 characters"),
        ("  buildpack: a\n  buildpacks: [b]\n", "Buildpack and Buildpacks fields cannot be used together."),
        ("  docker: {image: x}\n  buildpacks: [b]\n", "Cannot specify both buildpack(s) and docker keys"),
        ("  routes:\n  - route: 'bad route!'\n", "The route 'bad route!' is not a properly formed URL"),
        ("  routes:\n  - route: a.example.com\n    protocol: http3\n", "Route protocol must be 'http1', 'http2' or 'tcp'."),
        ("  routes:\n  - route: a.example.com\n    options: {loadbalancing: random}\n", "Cannot use loadbalancing value 'random' for Route 'a.example.com'; Valid values are: 'round-robin, least-connection'"),
        ("  routes:\n  - route: a.example.com\n    options: {color: red}\n", "Route 'a.example.com' contains invalid route option 'color'. Valid keys: 'loadbalancing'"),
        ("  random-route: true\n  default-route: true\n", "Random-route and default-route may not be used together"),
        ("  processes:\n  - command: x\n", "All Processes must specify a type"),
        ("  processes:\n  - type: w\n  - type: w\n", "Process \"w\" may only be present once"),
        ("  processes:\n  - type: w\n    memory: 0M\n", "Process \"w\": Memory must be greater than 0MB"),
        ("  sidecars:\n  - name: s\n    process_types: [web]\n", "Sidecar \"s\": Command can't be blank"),
        ("  lifecycle: kpack\n", "Lifecycle type must be 'buildpack', 'docker' or 'cnb'"),
    ];
    for (body, expected) in cases {
        let got = messages(&app(body));
        assert!(
            got.iter().any(|m| m == expected),
            "for {body:?} expected {expected:?}, got {got:?}"
        );
    }
}

#[test]
fn name_and_version() {
    assert_eq!(messages("applications:\n- memory: 1G\n"), vec!["Name must not be empty"]);
    assert!(messages("version: 2\napplications:\n- name: a\n").contains(
        &"Unsupported manifest schema version. Currently supported versions: [1].".to_string()
    ));
    assert_eq!(
        messages("applications: []\n"),
        vec!["Cannot parse manifest with no 'applications' field."]
    );
}

#[test]
fn all_errors_of_all_apps_at_once() {
    let m =
        parse("applications:\n- name: a\n  memory: 0M\n  instances: -3\n- name: b\n  timeout: 0\n")
            .expect("parse");
    let errors = m.validate().expect_err("invalid");
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert_eq!(errors[2].app_index, Some(1));
    assert_eq!(errors[2].app_name, "b");
}
