//! The cell's real operating-system work, as root.

mod container;
mod disk;
mod evacuation;
mod harness;
mod instances;
mod isolation;
mod net;
