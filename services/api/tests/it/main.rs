//! The api over HTTP, on both engines.

mod uaa;
