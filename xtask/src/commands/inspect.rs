//! `cargo xtask inspect`: what a snapshot holds (an id, or a backup directory read offline),
//! for any canister — module hash, memory sizes, metadata sections with the Candid
//! interface, globals, chunk store; `--query` asks a query of it in a scratch replica, typed
//! by its own interface; a chat's messages are shown.

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{Context, Run};
use crate::backup::{Source, contents::Contents};
use crate::lifecycle::{Out, Scratch, SnapshotDir, messages};
use crate::query::{Check, Interface};

#[derive(Args)]
pub struct Inspect {
    #[arg(value_name = "ID|DIR")]
    source: Source,
    /// Ask this query of the snapshot, as 'METHOD ARGS' in Candid text.
    #[arg(long, value_name = "'METHOD ARGS'")]
    query: Option<Check>,
    /// Show every message of a chat, not only the first and last.
    #[arg(long)]
    all: bool,
    /// How many messages of a chat to show from each end.
    #[arg(long, default_value_t = 3)]
    show: usize,
}

#[derive(Serialize)]
pub struct Inspected {
    pub source: String,
    pub contents: Contents,
    /// The query asked and its reply as Candid text.
    pub answer: Option<Answer>,
    /// A chat's message count, and the messages shown.
    pub messages: Option<usize>,
    pub shown: Vec<Shown>,
}

#[derive(Serialize)]
pub struct Answer {
    pub query: String,
    pub reply: String,
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
        let session = match &self.source {
            Source::Id(_) => Some(cx.session()?),
            Source::Dir(_) => None,
        };
        let dir = SnapshotDir::of(&self.source, session)?;
        let out = cx.out;
        let contents = Contents::read(&dir.path)?;
        say_contents(out, &self.source, &contents);
        let interface = match contents.candid() {
            Some(did) => Some(Interface::parse(did)?),
            None => None,
        };
        let mut scratch = Scratch::new()?;
        let mut inspected = Inspected {
            source: self.source.to_string(),
            contents,
            answer: None,
            messages: None,
            shown: Vec::new(),
        };
        if let Some(query) = &self.query {
            let reply = scratch.ask(&dir.path, query)?;
            let reply = interface
                .as_ref()
                .and_then(|i| i.show(&query.method, &reply))
                .or_else(|| {
                    candid::IDLArgs::from_bytes(&reply)
                        .ok()
                        .map(|a| a.to_string())
                })
                .unwrap_or_else(|| format!("(a reply that does not decode: {reply:?})"));
            out.say(format!("  {query} → {reply}"));
            inspected.answer = Some(Answer {
                query: query.to_string(),
                reply,
            });
        } else if interface.is_some_and(|i| i.has("len") && i.has("page")) {
            let chat = scratch.chat(&dir.path)?;
            inspected.messages = Some(chat.len());
            inspected.shown = show_chat(out, &self.source, &chat, self.show, self.all);
        }
        Ok(inspected)
    }
}

fn say_contents(out: Out, source: &Source, contents: &Contents) {
    let size = |bytes: u64| indicatif::HumanBytes(bytes).to_string();
    out.say(format!(
        "  {source}: taken at {}, canister version {}",
        contents.taken_at, contents.canister_version
    ));
    out.say(format!(
        "  module {} ({}), heap {}, stable memory {}",
        contents.module_hash,
        size(contents.module_bytes),
        size(contents.heap_bytes),
        size(contents.stable_bytes)
    ));
    for section in &contents.metadata {
        let visibility = if section.public { "public" } else { "private" };
        out.say(format!(
            "  metadata {} ({visibility}, {} bytes)",
            section.name, section.bytes
        ));
    }
    if let Some(did) = contents.candid() {
        for line in did.lines() {
            out.say(format!("    {line}"));
        }
    }
    out.say(format!(
        "  globals: {}; chunk store: {} chunks; certified data: {} bytes",
        if contents.globals.is_empty() {
            "none".to_owned()
        } else {
            contents.globals.join(", ")
        },
        contents.chunks.len(),
        contents.certified_data.len() / 2
    ));
}

/// The first and last `show` messages (or all), numbered from 1.
fn show_chat(out: Out, source: &Source, chat: &[String], show: usize, all: bool) -> Vec<Shown> {
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
    shown
        .into_iter()
        .map(|(index, message)| Shown {
            index,
            message: message.clone(),
        })
        .collect()
}
