//! deletion.
