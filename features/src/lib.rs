//! No code: this crate exists for its `Cargo.toml`, which names the features every build of
//! the workspace resolves (see there).
