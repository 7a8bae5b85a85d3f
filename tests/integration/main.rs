//! Integration tests of pond: one binary, one module per concern.

mod common;

mod backends;
mod check;
mod cli;
#[cfg(feature = "cluster")]
mod cluster;
mod compaction;
mod concurrency;
mod freshness;
mod generated_ingest;
mod generated_pruning;
mod groups;
mod interop;
mod keyed;
mod optimizer;
mod pruning;
mod release;
mod reopen;
mod roundtrip;
mod runs;
mod s3_server;
mod sql;
mod union;
mod validation;
