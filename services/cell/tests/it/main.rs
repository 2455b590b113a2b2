//! The cell's real operating-system work, as root: runc containers and plain processes.

/// One test per backend for each behaviour named (an `async fn(Backend)` in the same module):
/// `<behaviour>::runc` and `<behaviour>::process`.
macro_rules! on_both_backends {
    ($($behaviour:ident),+ $(,)?) => {$(
        mod $behaviour {
            #[tokio::test]
            async fn runc() {
                super::$behaviour(crate::harness::Backend::Runc).await;
            }

            #[tokio::test]
            async fn process() {
                super::$behaviour(crate::harness::Backend::Process).await;
            }
        }
    )+};
}

mod container;
mod disk;
mod evacuation;
mod harness;
mod instances;
mod isolation;
mod net;
mod process;
mod restart;
mod routes;
