//! Integration tests for `archive`: a hostile corpus built programmatically, plus round trips.

mod corpus;
mod extract_tar;
mod extract_zip;
mod layers;
mod writers;
