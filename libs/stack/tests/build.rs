//! Builds the real default stack (cached per machine) and checks the runtimes are in it.
//! Needs root and debootstrap; the README's test command provides both.

#[tokio::test]
async fn default_stack_has_the_runtimes() {
    let dir = stack::test_cache_dir();
    let spec = stack::StackSpec::default();
    let rootfs = stack::ensure(&dir, &spec).await.expect("stack builds");
    for bin in ["usr/bin/python3", "usr/bin/node", "usr/bin/npm", "usr/sbin/nginx", "bin/bash"] {
        assert!(rootfs.join(bin).exists(), "{bin} missing from the stack");
    }
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).expect("passwd");
    assert!(passwd.contains("vcap:x:2000:2000"), "no vcap user");
    // A second call finds it complete and returns at once.
    let again = stack::ensure(&dir, &spec).await.expect("cached");
    assert_eq!(again, rootfs);
    assert_eq!(stack::find(&dir, &spec.name).expect("found"), rootfs);
}

#[tokio::test]
async fn trixie_stack_has_the_runtimes_and_go() {
    let dir = stack::test_cache_dir();
    let spec = stack::StackSpec::trixie();
    let rootfs = stack::ensure(&dir, &spec).await.expect("stack builds");
    for bin in ["usr/bin/python3", "usr/bin/node", "usr/bin/go", "usr/sbin/nginx"] {
        assert!(rootfs.join(bin).exists(), "{bin} missing from the trixie stack");
    }
    assert_eq!(stack::find(&dir, "trixie").expect("found"), rootfs);
}
