//! The cell's real operating-system work, as root.

mod container;
mod harness;
mod instances;
mod isolation;
mod net;
