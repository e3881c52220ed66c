//! The xtask's integration tests, as one test binary (one link, every test in parallel): the
//! xtask binary run as a user runs it, on the embedded backend, through the real icp-cli,
//! and through stand-ins for dfx and icp-cli (`tests/sdk/`).

mod common;

mod backups;
mod canisters;
mod first_run;
mod icp_backups;
mod icp_sets;
mod identity;
mod lifecycle;
mod sdks;
