//! `cargo xtask status`: the canister's id, status and module hash.

use anyhow::Result;
use clap::Args;

use super::{Context, Run};
use crate::backend;

#[derive(Args)]
pub struct Status;

impl Run for Status {
    type Output = backend::Status;

    fn run(self, cx: &mut Context) -> Result<backend::Status> {
        let session = cx.session()?;
        let status = session.backend.status(&session.canister);
        session.show();
        let status = status?;
        session.say(format!(
            "  {} is {}, module {}",
            status.canister,
            status.status,
            status.module_hash.as_deref().unwrap_or("none")
        ));
        Ok(status)
    }
}
