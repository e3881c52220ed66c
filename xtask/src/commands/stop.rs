//! `cargo xtask stop`: the local network shut down (dfx, icp); the embedded replica keeps
//! its state on disk.

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{Context, Run};

#[derive(Args)]
pub struct Stop;

#[derive(Serialize)]
pub struct Stopped {
    pub stopped: bool,
}

impl Run for Stop {
    type Output = Stopped;

    fn run(self, cx: &mut Context) -> Result<Stopped> {
        let session = cx.session()?;
        let done = session.backend.shut_down();
        session.show();
        done?;
        session.say(format!("  stopped: {}", session.backend.describe()));
        Ok(Stopped { stopped: true })
    }
}
