//! `cargo xtask inspect`: the chat in a snapshot (an id, or a backup directory read
//! offline), loaded into a scratch replica.

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{Context, Run};
use crate::backup::Source;
use crate::lifecycle::{Scratch, chat_of, messages};

#[derive(Args)]
pub struct Inspect {
    #[arg(value_name = "ID|DIR")]
    source: Source,
    /// Show every message, not only the first and last.
    #[arg(long)]
    all: bool,
    /// How many messages to show from each end.
    #[arg(long, default_value_t = 3)]
    show: usize,
}

#[derive(Serialize)]
pub struct Inspected {
    pub source: String,
    pub messages: usize,
    pub shown: Vec<Shown>,
}

/// A message shown, and where it stands in the chat (from 0).
#[derive(Serialize)]
pub struct Shown {
    pub index: usize,
    pub message: String,
}

impl Run for Inspect {
    type Output = Inspected;

    fn run(self, cx: &mut Context) -> Result<Inspected> {
        let (source, show, all) = (&self.source, self.show, self.all);
        let session = match source {
            Source::Id(_) => Some(cx.session()?),
            Source::Dir(_) => None,
        };
        let chat = chat_of(source, session, &mut Scratch::new()?)?;
        let out = cx.out;
        out.say(format!("  {source} holds {}", messages(chat.len())));
        let shown: Vec<(usize, &String)> = if all || chat.len() <= 2 * show {
            chat.iter().enumerate().collect()
        } else {
            let first = chat.iter().enumerate().take(show);
            first
                .chain(chat.iter().enumerate().skip(chat.len() - show))
                .collect()
        };
        let mut previous = None;
        for (i, message) in &shown {
            if previous.is_some_and(|p| p + 1 != *i) {
                out.say(format!("  … {} more …", i - previous.unwrap_or(0) - 1));
            }
            out.say(format!("  {:>6}  {message}", i + 1));
            previous = Some(*i);
        }
        let shown = shown
            .into_iter()
            .map(|(index, message)| Shown {
                index,
                message: message.clone(),
            })
            .collect();
        Ok(Inspected {
            source: source.to_string(),
            messages: chat.len(),
            shown,
        })
    }
}
