//! The test service broker as a process: `test-broker PORT USER PASSWORD` serves the
//! Open Service Broker API on 127.0.0.1:PORT (see `testkit::broker`).

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, user, password] = args.as_slice() else {
        eprintln!("usage: test-broker PORT USER PASSWORD");
        std::process::exit(2);
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port.parse::<u16>().expect("port")))
        .await
        .expect("bind");
    println!("test broker listening on http://{}", listener.local_addr().expect("addr"));
    testkit::broker::serve(listener, user.clone(), password.clone()).await;
}
