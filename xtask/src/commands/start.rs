//! `cargo xtask start`: a clean local network (dfx, icp) or an empty embedded replica.

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{Context, Run};
use crate::records::Records;

#[derive(Args)]
pub struct Start;

#[derive(Serialize)]
pub struct Started {
    pub backend: String,
}

impl Run for Start {
    type Output = Started;

    fn run(self, cx: &mut Context) -> Result<Started> {
        let session = cx.session()?;
        let started = session.backend.clean_start();
        session.show();
        started?;
        session.records = Records::default();
        session.save()?;
        let backend = session.backend.describe();
        session.say(format!("  started clean: {backend}"));
        Ok(Started { backend })
    }
}
