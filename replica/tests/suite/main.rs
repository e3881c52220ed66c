//! The replica's integration tests, as one test binary: one link of wasmtime and ic-agent
//! rather than one per file, and one process whose tests all run in parallel. Tests that
//! need a process of their own (crash points, kills, `ulimit -f`, aborts) re-run this
//! binary with `--exact <module>::child`.

mod common;
#[path = "common/http_client.rs"]
mod http_client;

mod agent;
mod bad_input;
mod calls;
mod chat_lifecycle;
mod command_line;
mod crash;
mod dfx_sequence;
mod dirty_pages;
mod disk_full;
mod execution;
mod http;
mod icp_cli;
mod journal;
mod ledgers;
mod lifecycle_rules;
mod load;
mod motoko;
mod pocket_ic;
mod pocket_ic_clients;
mod serve_killed;
mod snapshots;
mod store;
mod tasks;
mod transfer;
