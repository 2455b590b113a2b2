//! stager
