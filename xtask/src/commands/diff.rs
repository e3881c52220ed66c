//! `cargo xtask diff A B`: the messages B adds to A and the ones it lacks, for two
//! snapshots (ids, or backup directories read offline).

use std::collections::BTreeMap;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use super::{Context, Run};
use crate::backup::Source;
use crate::lifecycle::{Scratch, Session, SnapshotDir, messages};

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
    pub removed: Vec<String>,
    pub added: Vec<String>,
}

impl Run for Diff {
    type Output = Changes;

    /// Counted as multisets: a message appearing twice in A and once in B is removed once.
    fn run(self, cx: &mut Context) -> Result<Changes> {
        let (a, b, out) = (&self.from, &self.to, cx.out);
        let mut scratch = Scratch::new()?;
        let before = scratch.chat(&SnapshotDir::of(a, session_for(cx, a)?)?.path)?;
        let after = scratch.chat(&SnapshotDir::of(b, session_for(cx, b)?)?.path)?;
        let (removed, added) = changes(&before, &after);
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
        let owned = |list: Vec<&String>| list.into_iter().cloned().collect();
        Ok(Changes {
            from: a.to_string(),
            to: b.to_string(),
            removed: owned(removed),
            added: owned(added),
        })
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
/// the order they appear.
fn changes<'a>(before: &'a [String], after: &'a [String]) -> (Vec<&'a String>, Vec<&'a String>) {
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
    let removed = take(before, 1);
    let added = take(after, -1);
    (removed, added)
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
        let (removed, added) = changes(&before, &after);
        assert_eq!(removed, ["a", "b"]);
        assert_eq!(added, ["d", "d"]);
        let (removed, added) = changes(&before, &before);
        assert!(removed.is_empty() && added.is_empty());
    }
}
