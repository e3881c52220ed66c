//! `cargo xtask diff A B`: what changed between two snapshots (ids, or backup directories read
//! offline) of any canister — the module, the metadata sections, the globals, and the heap
//! and stable memory by 64 KiB page; for a chat, the messages B adds to A and the ones it
//! lacks.

use std::collections::BTreeMap;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{Context, Run};
use crate::backup::{
    Source,
    contents::{Contents, changed_pages},
    layout::{Blob, Layout},
};
use crate::lifecycle::{Out, Scratch, Session, SnapshotDir, messages};
use crate::query::Interface;

#[derive(Args)]
pub struct Diff {
    #[arg(value_name = "A")]
    from: Source,
    #[arg(value_name = "B")]
    to: Source,
}

#[derive(Serialize)]
pub struct Changes {
    pub from: String,
    pub to: String,
    pub module_changed: bool,
    /// Metadata sections added, removed or changed, by name.
    pub metadata_changed: Vec<String>,
    pub globals_changed: bool,
    pub memories: Vec<MemoryChange>,
    /// A chat's messages: those of A that B lacks, and those B adds.
    pub removed: Vec<String>,
    pub added: Vec<String>,
}

#[derive(Serialize)]
pub struct MemoryChange {
    /// `heap` or `stable`.
    pub memory: &'static str,
    pub from_bytes: u64,
    pub to_bytes: u64,
    /// Pages (64 KiB, numbered from 0) that differ, as inclusive ranges.
    pub changed_pages: Vec<(u64, u64)>,
}

impl Run for Diff {
    type Output = Changes;

    fn run(self, cx: &mut Context) -> Result<Changes> {
        let (a, b, out) = (&self.from, &self.to, cx.out);
        let dir_a = SnapshotDir::of(a, session_for(cx, a)?)?;
        let dir_b = SnapshotDir::of(b, session_for(cx, b)?)?;
        let (contents_a, contents_b) = (Contents::read(&dir_a.path)?, Contents::read(&dir_b.path)?);
        let mut changes = Changes {
            from: a.to_string(),
            to: b.to_string(),
            module_changed: contents_a.module_hash != contents_b.module_hash,
            metadata_changed: sections_changed(&contents_a, &contents_b),
            globals_changed: contents_a.globals != contents_b.globals,
            memories: Vec::new(),
            removed: Vec::new(),
            added: Vec::new(),
        };
        for (blob, memory) in [(Blob::Heap, "heap"), (Blob::Stable, "stable")] {
            let (file_a, file_b) = (
                Layout::new(&dir_a.path).blob(blob),
                Layout::new(&dir_b.path).blob(blob),
            );
            changes.memories.push(MemoryChange {
                memory,
                from_bytes: std::fs::metadata(&file_a)?.len(),
                to_bytes: std::fs::metadata(&file_b)?.len(),
                changed_pages: changed_pages(&file_a, &file_b)?,
            });
        }
        say_changes(out, &changes);
        if is_chat(&contents_a) && is_chat(&contents_b) {
            let mut scratch = Scratch::new()?;
            let before = scratch.chat(&dir_a.path)?;
            let after = scratch.chat(&dir_b.path)?;
            let (removed, added) = message_changes(&before, &after);
            for message in &removed {
                out.say(format!("  - {message}"));
            }
            for message in &added {
                out.say(format!("  + {message}"));
            }
            out.say(format!(
                "  {a} → {b}: {} removed, {} added ({} → {})",
                removed.len(),
                added.len(),
                messages(before.len()),
                messages(after.len())
            ));
            changes.removed = removed.into_iter().cloned().collect();
            changes.added = added.into_iter().cloned().collect();
        }
        Ok(changes)
    }
}

/// Whether the snapshot's interface is the chat's (it pages through messages).
fn is_chat(contents: &Contents) -> bool {
    contents
        .candid()
        .and_then(|did| Interface::parse(did).ok())
        .is_some_and(|i| i.has("len") && i.has("page"))
}

fn sections_changed(a: &Contents, b: &Contents) -> Vec<String> {
    let by_name = |c: &Contents| -> BTreeMap<String, (bool, Option<String>, usize)> {
        c.metadata
            .iter()
            .map(|s| (s.name.clone(), (s.public, s.text.clone(), s.bytes)))
            .collect()
    };
    let (a, b) = (by_name(a), by_name(b));
    let mut names: Vec<String> = a.keys().chain(b.keys()).cloned().collect();
    names.sort();
    names.dedup();
    names.retain(|name| a.get(name) != b.get(name));
    names
}

fn say_changes(out: Out, changes: &Changes) {
    let yes_no = |changed: bool| if changed { "changed" } else { "the same" };
    out.say(format!(
        "  module {}; globals {}; metadata {}",
        yes_no(changes.module_changed),
        yes_no(changes.globals_changed),
        if changes.metadata_changed.is_empty() {
            "the same".to_owned()
        } else {
            format!("changed: {}", changes.metadata_changed.join(", "))
        }
    ));
    for memory in &changes.memories {
        let pages: Vec<String> = memory
            .changed_pages
            .iter()
            .map(|&(first, last)| match first == last {
                true => first.to_string(),
                false => format!("{first}–{last}"),
            })
            .collect();
        out.say(format!(
            "  {} memory: {} → {}; {}",
            memory.memory,
            indicatif::HumanBytes(memory.from_bytes),
            indicatif::HumanBytes(memory.to_bytes),
            if pages.is_empty() {
                "no page differs".to_owned()
            } else {
                format!("pages {} differ", pages.join(", "))
            }
        ));
    }
}

/// The backend, for a snapshot named by id; none for a directory.
fn session_for<'c>(cx: &'c mut Context, source: &Source) -> Result<Option<&'c mut Session>> {
    match source {
        Source::Id(_) => cx.session().map(Some),
        Source::Dir(_) => Ok(None),
    }
}

/// The messages of `before` missing from `after`, and those of `after` new to it, each in
/// the order they appear, counted as multisets: a message appearing twice in A and once in B
/// is removed once.
fn message_changes<'a>(
    before: &'a [String],
    after: &'a [String],
) -> (Vec<&'a String>, Vec<&'a String>) {
    let mut count: BTreeMap<&String, i64> = BTreeMap::new();
    for m in before {
        *count.entry(m).or_default() += 1;
    }
    for m in after {
        *count.entry(m).or_default() -= 1;
    }
    let take = |messages: &'a [String], sign: i64| {
        let mut left = count.clone();
        let picked: Vec<&String> = messages
            .iter()
            .filter(|m| {
                let n = left.get_mut(m).expect("counted");
                let pick = *n * sign > 0;
                if pick {
                    *n -= sign;
                }
                pick
            })
            .collect();
        picked
    };
    (take(before, 1), take(after, -1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn changes_count_messages_as_multisets_in_order() {
        let before = texts(&["a", "b", "a", "c"]);
        let after = texts(&["a", "c", "d", "d"]);
        let (removed, added) = message_changes(&before, &after);
        assert_eq!(removed, ["a", "b"]);
        assert_eq!(added, ["d", "d"]);
        let (removed, added) = message_changes(&before, &before);
        assert!(removed.is_empty() && added.is_empty());
    }
}
