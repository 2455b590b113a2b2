//! Idle keep-alive connections to backends, one pool per worker thread. Only a connection
//! whose last response ended exactly where its framing said, with nothing after it, is put
//! back; anything doubtful is dropped instead.

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// Idle backend connections kept per backend and worker, and for how long.
const POOL_PER_BACKEND: usize = 100;
const POOL_IDLE: Duration = Duration::from_secs(90);

/// Idle connections by backend address, each with when it went idle.
type Idle = HashMap<String, Vec<(TcpStream, Instant)>, crate::table::Fast>;

/// Idle keep-alive connections to backends, for one worker thread.
#[derive(Default)]
pub struct BackendPool {
    idle: Mutex<Idle>,
}

impl BackendPool {
    /// A usable idle connection to `addr`, if one is kept.
    pub(super) fn take(&self, addr: &str) -> Option<TcpStream> {
        loop {
            let (conn, since) = {
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                idle.get_mut(addr)?.pop()?
            };
            let age = since.elapsed();
            if age > POOL_IDLE {
                continue;
            }
            // Data or EOF on an idle connection (the backend closed it, or sent more than
            // its last response framed): it cannot carry a request. Without readiness from
            // the event loop this costs no system call.
            let mut probe = [0u8; 1];
            match conn.try_read(&mut probe) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(conn),
                _ => continue,
            }
        }
    }

    /// Drop connections idle longer than [`POOL_IDLE`].
    pub fn sweep(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|_, list| {
            list.retain(|(_, since)| since.elapsed() <= POOL_IDLE);
            !list.is_empty()
        });
    }

    pub(super) fn put(&self, addr: &str, conn: TcpStream) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        // Looked up before inserted: the key is copied only for a backend's first connection.
        match idle.get_mut(addr) {
            Some(list) if list.len() >= POOL_PER_BACKEND => {}
            Some(list) => list.push((conn, Instant::now())),
            None => {
                idle.insert(addr.to_owned(), vec![(conn, Instant::now())]);
            }
        }
    }
}
