//! The binary fixture app: a tiny HTTP server (std only) answering every request with its
//! instance index, for pushing with the binary buildpack.

use std::io::{Read as _, Write as _};

fn main() {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let index = std::env::var("CF_INSTANCE_INDEX").unwrap_or_default();
    let listener = std::net::TcpListener::bind(format!("0.0.0.0:{port}")).expect("bind PORT");
    println!("binary fixture listening on {port}");
    for stream in listener.incoming().flatten() {
        let mut s = stream;
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let body = format!("binary fixture, instance {index}\n");
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}
