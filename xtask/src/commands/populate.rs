//! `cargo xtask populate`: messages appended to the chat.

use anyhow::{Context as _, Result};
use candid::{IDLArgs, IDLValue};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::{Context, Run};
use crate::lifecycle::{GREETING, Session};

#[derive(Args)]
pub struct Populate {
    #[arg(long, conflicts_with = "message")]
    messages: Option<u64>,
    message: Vec<String>,
}

#[derive(Serialize)]
pub struct Populated {
    pub appended: u64,
}

impl Run for Populate {
    type Output = Populated;

    fn run(self, cx: &mut Context) -> Result<Populated> {
        let session = cx.session()?;
        let appended = match self.messages {
            Some(count) => numbered(session, count)?,
            None if self.message.is_empty() => given(session, &[GREETING.to_owned()])?,
            None => given(session, &self.message)?,
        };
        Ok(Populated { appended })
    }
}

fn given(session: &mut Session, messages: &[String]) -> Result<u64> {
    for message in messages {
        session.append(message)?;
    }
    Ok(messages.len() as u64)
}

/// `count` messages numbered from 1, with a progress bar rather than a line each.
fn numbered(session: &mut Session, count: u64) -> Result<u64> {
    let bar = ProgressBar::new(count).with_style(
        ProgressStyle::with_template("  {bar:40} {pos}/{len} messages, {per_sec}, {eta} left")
            .expect("valid template"),
    );
    for n in 1..=count {
        let args = IDLArgs::new(&[IDLValue::Text(format!("message {n}"))]);
        session
            .backend
            .call(&session.canister, "append", &args, false)
            .with_context(|| format!("appending message {n} of {count}"))?;
        session.backend.ran();
        bar.inc(1);
    }
    bar.finish_and_clear();
    session.say(format!("  appended {count} messages"));
    Ok(count)
}
