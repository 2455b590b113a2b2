//! The cell's real operating-system work, as root.

mod container;
mod instances;
mod net;
