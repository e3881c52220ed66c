//! `cargo xtask deploy`: a canister created if needed and its code installed, upgraded
//! when already installed: the chat built by `cargo xtask build`, or (on the embedded
//! replica) any module given with `--wasm`; dfx and icp build what their project files say.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;

use super::{Context, Run};

#[derive(Args)]
pub struct Deploy {
    /// The module to install on the embedded replica [default: the chat, built].
    #[arg(long, value_name = "FILE")]
    wasm: Option<PathBuf>,
}

#[derive(Serialize)]
pub struct Deployed {
    pub canister: String,
}

impl Run for Deploy {
    type Output = Deployed;

    fn run(self, cx: &mut Context) -> Result<Deployed> {
        let wasm = match self.wasm {
            Some(wasm) => wasm,
            None if cx.canister().is_chat() => super::canister_wasm()?,
            None if cx.session()?.backend.name() == "embedded" => bail!(
                "the embedded replica installs the module you give it: `cargo xtask deploy --canister {} --wasm FILE`",
                cx.canister()
            ),
            // dfx and icp build the canister from dfx.json or icp.yaml.
            None => PathBuf::new(),
        };
        let session = cx.session()?;
        let canister = session.backend.deploy(&session.canister, &wasm)?;
        session.came_back(format!("{} is {canister}", session.canister));
        Ok(Deployed { canister })
    }
}
