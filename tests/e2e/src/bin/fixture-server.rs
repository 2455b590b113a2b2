//! The binary fixture app: a tiny HTTP server (std only) answering every request with its
//! instance index, for pushing with the binary buildpack. A `version.txt` beside it adds its
//! text to every answer; `crash` there makes it exit at start (a broken release).

use std::io::{Read as _, Write as _};

fn main() {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let index = std::env::var("CF_INSTANCE_INDEX").unwrap_or_default();
    let version = std::fs::read_to_string("version.txt").unwrap_or_default().trim().to_owned();
    if version == "crash" {
        eprintln!("binary fixture: this release crashes at start");
        std::process::exit(3);
    }
    let version = if version.is_empty() { String::new() } else { format!(", version {version}") };
    let listener = std::net::TcpListener::bind(format!("0.0.0.0:{port}")).expect("bind PORT");
    println!("binary fixture listening on {port}");
    for stream in listener.incoming().flatten() {
        let mut s = stream;
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let body = format!("binary fixture, instance {index}{version}\n");
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}
