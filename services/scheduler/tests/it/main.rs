//! The scheduler on both engines: storage, the instance lifecycle with a clock the test moves,
//! the auction with cells in memory, convergence, and the HTTP API with component tokens.

mod api;
mod engine;
mod fake;
mod leader;
mod moves;
mod repo;
