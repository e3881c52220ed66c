//! `cargo xtask break`: `remove_spam`, whose deliberate bug empties a chat with no spam.

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{Context, Run};

#[derive(Args)]
pub struct Break;

#[derive(Serialize)]
pub struct Broken {
    pub removed: u64,
}

impl Run for Break {
    type Output = Broken;

    fn run(self, cx: &mut Context) -> Result<Broken> {
        let session = cx.session()?;
        let removed = session.remove_spam()?;
        if removed == 0 {
            session.say("  no message was spam, and the deliberate bug emptied the chat: `cargo xtask restore` brings it back");
        }
        Ok(Broken { removed })
    }
}
