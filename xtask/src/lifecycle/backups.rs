//! Backup commands: `download`, `upload`, `verify-backup`, `inspect`, `diff` and `prune`.
//! Those that read only directories run without a backend, so a backup reads offline.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use super::{Out, Session, choose, messages};
use crate::backend::{SnapshotId, SnapshotInfo, utc};
use crate::backup::{
    Damaged, Downloading, Source, downloading_marker,
    layout::{Layout, write_atomically},
    manifest::{MANIFEST, Manifest, Origin, is_bookkeeping},
    scratch::Scratch,
};

/// What a download directory already holds.
enum Prior {
    Nothing,
    /// An unfinished download of the same snapshot, its metadata already there.
    Partial,
    /// A finished, intact download of the same snapshot.
    Done(Box<Manifest>),
}

impl Session {
    /// The canister's id and snapshot `id` (the newest when `None`), checked to be its own.
    fn resolve(&mut self, id: Option<&SnapshotId>) -> Result<(String, SnapshotInfo)> {
        let status = self.backend.status();
        self.show();
        let canister = status?.canister;
        if let Some(id) = id {
            check_owner(id, &canister)?;
        }
        let listed = self.backend.snapshot_list();
        self.show();
        let listed = listed?;
        let id = choose(&listed, id)?;
        let info = listed.into_iter().find(|s| s.id == id).expect("chosen");
        Ok((canister, info))
    }

    /// Downloads a snapshot (the newest when none is named) into `dir` and seals it with a
    /// manifest; continues an interrupted download of the same snapshot there.
    pub fn download(&mut self, id: Option<&SnapshotId>, dir: &Path) -> Result<Value> {
        let (canister, info) = self.resolve(id)?;
        let id = info.id.clone();
        let resume = match prior(dir, &canister, &id)? {
            Prior::Done(manifest) => {
                self.say(format!(
                    "  {} already holds snapshot {id}, intact; nothing to download",
                    dir.display()
                ));
                return Ok(summary(dir, &manifest));
            }
            Prior::Partial => {
                self.say(format!("  resuming the download in {}", dir.display()));
                true
            }
            Prior::Nothing => false,
        };
        let marker = Downloading {
            canister_id: canister.clone(),
            snapshot_id: id.to_string(),
        };
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let marker_path = downloading_marker(dir)?;
        write_atomically(&marker_path, &serde_json::to_vec(&marker)?)?;
        let started = Instant::now();
        let downloaded = self.backend.snapshot_download(&id, dir, resume);
        self.show();
        downloaded.with_context(|| {
            format!(
                "the download stopped; run the same command again to resume it in {}",
                dir.display()
            )
        })?;
        let manifest = self.seal(dir, &canister, &id)?;
        std::fs::remove_file(marker_path)?;
        let seconds = started.elapsed().as_secs_f64();
        self.say(format!(
            "  downloaded snapshot {id} of {canister} to {}: {} files, {} in {seconds:.1} s ({}/s)",
            dir.display(),
            manifest.files.len(),
            indicatif::HumanBytes(manifest.bytes()),
            indicatif::HumanBytes((manifest.bytes() as f64 / seconds.max(1e-3)) as u64),
        ));
        Ok(summary(dir, &manifest))
    }

    /// Writes the manifest of a finished download.
    fn seal(&mut self, dir: &Path, canister: &str, id: &SnapshotId) -> Result<Manifest> {
        let layout = Layout::new(dir);
        let metadata = layout.read_metadata()?;
        layout.check_sizes(&metadata)?;
        let (tool, version) = self.backend.tool_version()?;
        self.backend.ran();
        let tools = BTreeMap::from([
            (
                "cargo xtask".to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            ),
            (tool, version),
        ]);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as u64;
        let origin = Origin {
            canister_id: canister.to_owned(),
            snapshot_id: id.to_string(),
            taken_at: metadata.taken_at_timestamp,
            taken_at_utc: utc(metadata.taken_at_timestamp),
            downloaded_at_utc: utc(now),
            source: self.backend.describe(),
            tools,
        };
        Manifest::write(dir, origin)
    }

    /// Checks the backup in `dir`, then uploads it as a new snapshot of the canister.
    pub fn upload(
        &mut self,
        dir: &Path,
        replace: Option<&SnapshotId>,
        unverified: bool,
        any_canister: bool,
    ) -> Result<Value> {
        let manifest = check(dir, unverified)?;
        let status = self.backend.status();
        self.show();
        let canister = status?.canister;
        if let Some(from) = manifest.as_ref().map(|m| &m.origin.canister_id)
            && *from != canister
            && !any_canister
        {
            bail!(
                "{} is a backup of canister {from}, not of chat ({canister}); nothing was uploaded — pass --any-canister to put it on {canister} anyway",
                dir.display()
            );
        }
        if let Some(replace) = replace {
            self.resolve(Some(replace))?;
        }
        let uploaded = self.backend.snapshot_upload(dir, replace);
        self.show();
        let id = uploaded?;
        self.remember_upload(&id, replace, manifest.as_ref())?;
        self.say(format!(
            "  uploaded {} as snapshot {id}; `cargo xtask restore {id}` loads it",
            dir.display()
        ));
        Ok(json!({ "snapshot_id": id, "replaced": replace, "from": dir }))
    }

    /// The uploaded snapshot holds the chat recorded for the one it was downloaded from, if
    /// any, so that `verify` works after restoring it.
    fn remember_upload(
        &mut self,
        id: &SnapshotId,
        replaced: Option<&SnapshotId>,
        manifest: Option<&Manifest>,
    ) -> Result<()> {
        if let Some(replaced) = replaced {
            self.records.dumps.remove(&replaced.to_string());
        }
        let recorded = manifest.and_then(|m| self.records.dumps.get(&m.origin.snapshot_id));
        if let Some(chat) = recorded.cloned() {
            self.records.dumps.insert(id.to_string(), chat);
        }
        self.save()
    }

    /// Downloads snapshot `id` into a temporary directory, for reading.
    fn fetch(&mut self, id: &SnapshotId) -> Result<tempfile::TempDir> {
        self.resolve(Some(id))?;
        let dir = tempfile::tempdir()?;
        let downloaded = self.backend.snapshot_download(id, dir.path(), false);
        self.show();
        downloaded?;
        Ok(dir)
    }

    /// Deletes all but the newest `keep` snapshots of the canister.
    pub fn prune(&mut self, keep: usize, dry_run: bool) -> Result<Value> {
        let listed = self.backend.snapshot_list();
        self.show();
        let mut listed = listed?;
        listed.sort_by(|a, b| a.taken_at.cmp(&b.taken_at));
        let doomed = listed.len().saturating_sub(keep);
        let verb = if dry_run { "would delete" } else { "deleting" };
        for s in &listed[..doomed] {
            self.say(format!(
                "  {verb} {} ({}, taken at {})",
                s.id, s.size, s.taken_at
            ));
            if !dry_run {
                let deleted = self.backend.snapshot_delete(&s.id);
                self.show();
                deleted?;
                self.records.dumps.remove(&s.id.to_string());
                self.save()?;
            }
        }
        for s in &listed[doomed..] {
            self.say(format!("  keeping {} (taken at {})", s.id, s.taken_at));
        }
        let ids = |s: &[SnapshotInfo]| s.iter().map(|s| s.id.to_string()).collect::<Vec<_>>();
        Ok(json!({
            "dry_run": dry_run,
            "deleted": ids(&listed[..doomed]),
            "kept": ids(&listed[doomed..]),
        }))
    }
}

/// A snapshot id names its canister; one of another canister is refused up front.
fn check_owner(id: &SnapshotId, canister: &str) -> Result<()> {
    match id.canister() {
        Some(owner) if owner.to_text() == canister => Ok(()),
        Some(owner) => bail!(
            "snapshot {id} belongs to canister {owner}, not to chat ({canister}); `cargo xtask list` shows chat's snapshots"
        ),
        None => bail!("{id} is not a snapshot id: it names no canister"),
    }
}

/// What `dir` holds, and whether downloading snapshot `id` of `canister` there may go on.
fn prior(dir: &Path, canister: &str, id: &SnapshotId) -> Result<Prior> {
    if !dir.exists() {
        return Ok(Prior::Nothing);
    }
    if !dir.is_dir() {
        bail!("{} is a file; name a new or empty directory", dir.display());
    }
    let marker = downloading_marker(dir)?;
    // Earlier versions kept the marker inside the directory; it moves out, where dfx cannot
    // mistake it for the download's.
    let inside = dir.join(".downloading.json");
    if inside.is_file() && !marker.exists() {
        std::fs::rename(&inside, &marker)
            .with_context(|| format!("cannot move {} beside it", inside.display()))?;
    }
    if marker.is_file() {
        let unfinished: Downloading = serde_json::from_slice(&std::fs::read(&marker)?)
            .with_context(|| {
                format!("{} is damaged; delete {}", marker.display(), dir.display())
            })?;
        if unfinished.snapshot_id != id.to_string() || unfinished.canister_id != canister {
            bail!(
                "{} holds an unfinished download of snapshot {} of {}; finish that one (`cargo xtask download {} -o {}`) or choose another directory",
                dir.display(),
                unfinished.snapshot_id,
                unfinished.canister_id,
                unfinished.snapshot_id,
                dir.display()
            );
        }
        return Ok(if Layout::new(dir).has_metadata() {
            Prior::Partial
        } else {
            Prior::Nothing
        });
    }
    if let Some(manifest) = Manifest::read(dir)? {
        let same = manifest.origin.snapshot_id == id.to_string()
            && manifest.origin.canister_id == canister;
        if same && manifest.problems(dir)?.is_empty() {
            return Ok(Prior::Done(Box::new(manifest)));
        }
        bail!(
            "{} already holds a backup of snapshot {} of {}; choose another directory",
            dir.display(),
            manifest.origin.snapshot_id,
            manifest.origin.canister_id
        );
    }
    if entries(dir)? > 0 {
        bail!(
            "{} is not empty and holds no download; choose a new or empty directory",
            dir.display()
        );
    }
    Ok(Prior::Nothing)
}

/// How many entries `dir` holds, not counting tools' bookkeeping.
fn entries(dir: &Path) -> Result<usize> {
    let mut count = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let name = entry?.file_name();
        if !is_bookkeeping(&name) {
            count += 1;
        }
    }
    Ok(count)
}

fn summary(dir: &Path, manifest: &Manifest) -> Value {
    json!({
        "dir": dir,
        "canister_id": manifest.origin.canister_id,
        "snapshot_id": manifest.origin.snapshot_id,
        "taken_at": manifest.origin.taken_at_utc,
        "module_hash": manifest.module_hash,
        "files": manifest.files.len(),
        "bytes": manifest.bytes(),
    })
}

/// The backup in `dir`, checked: its manifest (and every file against it) when it has one;
/// without one, only that its files are all there, and only when `unverified` allows it.
fn check(dir: &Path, unverified: bool) -> Result<Option<Manifest>> {
    if !dir.is_dir() {
        bail!(
            "no directory {}: name a backup made by `cargo xtask download`",
            dir.display()
        );
    }
    if downloading_marker(dir)?.is_file() {
        return Err(Damaged(format!(
            "{} holds an unfinished download: run the same `cargo xtask download` again to finish it",
            dir.display()
        ))
        .into());
    }
    let manifest = Manifest::read(dir).map_err(|e| {
        Damaged(format!(
            "{} is damaged: {e:#}; nothing was changed",
            dir.display()
        ))
    })?;
    match &manifest {
        Some(manifest) => {
            let problems = manifest.problems(dir)?;
            if !problems.is_empty() {
                return Err(Damaged(format!(
                    "{} is damaged: {}; nothing was changed",
                    dir.display(),
                    problems.join("; ")
                ))
                .into());
            }
        }
        None if !unverified => bail!(
            "{} has no {MANIFEST} (it was not made by `cargo xtask download`), so its integrity cannot be checked; pass --unverified to use it as it is",
            dir.display()
        ),
        None => {}
    }
    let layout = Layout::new(dir);
    let metadata = layout.read_metadata()?;
    layout
        .check_sizes(&metadata)
        .map_err(|e| Damaged(format!("{e:#}")))?;
    Ok(manifest)
}

/// `verify-backup DIR`: every file against the manifest.
pub fn verify_backup(out: Out, dir: &Path) -> Result<Value> {
    let Some(manifest) = check(dir, true)? else {
        bail!(
            "{} has no {MANIFEST}: only backups made by `cargo xtask download` can be verified",
            dir.display()
        );
    };
    out.say(format!(
        "  intact: {} files, {}, snapshot {} of {} taken at {}",
        manifest.files.len(),
        indicatif::HumanBytes(manifest.bytes()),
        manifest.origin.snapshot_id,
        manifest.origin.canister_id,
        manifest.origin.taken_at_utc
    ));
    let mut result = summary(dir, &manifest);
    result["intact"] = json!(true);
    Ok(result)
}

/// The chat in a snapshot, read in `scratch`: a directory as it is (checked against its
/// manifest when it has one), an id downloaded first through `session`.
fn chat_of(
    source: &Source,
    session: Option<&mut Session>,
    scratch: &mut Scratch,
) -> Result<Vec<String>> {
    match source {
        Source::Dir(dir) => {
            check(dir, true)?;
            scratch.chat(dir)
        }
        Source::Id(id) => {
            let session = session.ok_or_else(|| anyhow!("reading {source} needs a backend"))?;
            let dir = session.fetch(id)?;
            scratch.chat(dir.path())
        }
    }
}

/// `inspect`: the chat in a snapshot, loaded into a scratch replica.
pub fn inspect(
    out: Out,
    session: Option<&mut Session>,
    source: &Source,
    show: usize,
    all: bool,
) -> Result<Value> {
    let chat = chat_of(source, session, &mut Scratch::new()?)?;
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
    let listed: Vec<Value> = shown
        .iter()
        .map(|(i, m)| json!({ "index": i, "message": m }))
        .collect();
    Ok(json!({ "source": source.to_string(), "messages": chat.len(), "shown": listed }))
}

/// `diff A B`: the messages B adds to A and the ones it lacks, counted as multisets (a
/// message appearing twice in A and once in B is removed once).
pub fn diff(out: Out, mut session: Option<&mut Session>, a: &Source, b: &Source) -> Result<Value> {
    let mut scratch = Scratch::new()?;
    let before = chat_of(a, session.as_deref_mut(), &mut scratch)?;
    let after = chat_of(b, session, &mut scratch)?;
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
    Ok(json!({
        "from": a.to_string(),
        "to": b.to_string(),
        "removed": removed,
        "added": added,
    }))
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

/// `prune --dir D --keep N`: deletes all but the newest N backups in D (by when their
/// snapshots were taken); anything that is not an intact-manifest backup is left alone.
pub fn prune_dir(out: Out, dir: &Path, keep: usize, dry_run: bool) -> Result<Value> {
    let mut backups: Vec<(Manifest, PathBuf)> = Vec::new();
    let mut left_alone = Vec::new();
    let listing = std::fs::read_dir(dir).with_context(|| {
        format!(
            "cannot read {}: name the directory holding your backups",
            dir.display()
        )
    })?;
    for entry in listing {
        let path = entry?.path();
        match path.is_dir().then(|| Manifest::read(&path)) {
            Some(Ok(Some(manifest))) => backups.push((manifest, path)),
            _ => left_alone.push(path),
        }
    }
    backups.sort_by(|(a, pa), (b, pb)| (a.origin.taken_at, pa).cmp(&(b.origin.taken_at, pb)));
    let doomed = backups.len().saturating_sub(keep);
    let verb = if dry_run { "would delete" } else { "deleting" };
    for (manifest, path) in &backups[..doomed] {
        out.say(format!(
            "  {verb} {} (snapshot {}, taken at {})",
            path.display(),
            manifest.origin.snapshot_id,
            manifest.origin.taken_at_utc
        ));
        if !dry_run {
            std::fs::remove_dir_all(path)
                .with_context(|| format!("cannot delete {}", path.display()))?;
        }
    }
    for (manifest, path) in &backups[doomed..] {
        out.say(format!(
            "  keeping {} (taken at {})",
            path.display(),
            manifest.origin.taken_at_utc
        ));
    }
    for path in &left_alone {
        out.say(format!("  leaving {} alone: not a backup", path.display()));
    }
    let paths = |b: &[(Manifest, PathBuf)]| b.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>();
    Ok(json!({
        "dry_run": dry_run,
        "deleted": paths(&backups[..doomed]),
        "kept": paths(&backups[doomed..]),
        "left_alone": left_alone,
    }))
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

    #[test]
    fn snapshot_ids_of_other_canisters_are_refused() {
        let id: SnapshotId = "000000000000000080000000001000010101".parse().unwrap();
        assert!(check_owner(&id, "bkyz2-fmaaa-aaaaa-qaaaq-cai").is_ok());
        let error = check_owner(&id, "bd3sg-teaaa-aaaaa-qaaba-cai").unwrap_err();
        assert!(
            error.to_string().contains("belongs to canister bkyz2"),
            "{error}"
        );
    }
}
