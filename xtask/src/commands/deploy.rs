//! `cargo xtask deploy`: the chat built and installed, upgraded when already installed.

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{Context, Run};

#[derive(Args)]
pub struct Deploy;

#[derive(Serialize)]
pub struct Deployed {
    pub canister: String,
}

impl Run for Deploy {
    type Output = Deployed;

    fn run(self, cx: &mut Context) -> Result<Deployed> {
        let wasm = super::canister_wasm()?;
        let session = cx.session()?;
        let canister = session.backend.deploy(&wasm)?;
        session.came_back(format!("chat is {canister}"));
        Ok(Deployed { canister })
    }
}
