//! The one container driver of the platform, shared by the stager and the cell: the OCI
//! runtime spec of a container (`spec`), runc (`runc`), overlay roots (`overlay`), disk use
//! (`disk`), and the [`Host`] trait in front of everything else that touches the host (mounts,
//! ownership, process groups, network namespaces, port mappings), with a real implementation
//! and a recording fake.
//!
//! It must never decide policy (which limits, which mounts, which ports: its callers do), never
//! keep state between calls, and never reach the host except through [`Host`] and [`runc`].

pub mod disk;
pub mod host;
pub mod net;
pub mod overlay;
pub mod runc;
pub mod spec;

pub use host::{Host, HostError, Op, RealHost, RecordingHost, Signal};
pub use overlay::Overlay;
pub use spec::{ContainerSpec, Limits, MountSet, Net};
