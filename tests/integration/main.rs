//! Integration tests of pond: one binary, one module per concern.

mod common;

mod check;
mod cli;
mod concurrency;
mod interop;
mod optimizer;
mod pruning;
mod reopen;
mod roundtrip;
mod sql;
mod validation;
