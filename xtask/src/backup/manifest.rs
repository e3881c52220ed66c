//! A backup's manifest (`manifest.json`): where the snapshot came from and the size and
//! SHA-256 of every file, per MiB for large ones, so that a check names the file and the
//! MiB that changed. The manifest carries its own checksum, so damage to it is named too.

use std::{
    collections::BTreeMap,
    io::Read,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::layout::{Blob, write_atomically};
use crate::project;

pub const MANIFEST: &str = "manifest.json";
const FORMAT: &str = "canister-snapshots backup 1";
/// Whether `name` is a file a tool keeps for itself in a snapshot directory — icp-cli's lock
/// and progress files, dfx's upload progress, `<new snapshot id in hex>.json`, and our own
/// `*.partial`, which a write cut short between writing and renaming leaves — never part of
/// a backup, never "extra".
pub fn is_bookkeeping(name: &std::ffi::OsStr) -> bool {
    const ICP: [&str; 4] = [
        ".lock",
        ".download_progress.json",
        ".download_progress.json.tmp",
        ".upload_progress.json",
    ];
    let name = name.to_string_lossy();
    let dfx_upload = name
        .strip_suffix(".json")
        .is_some_and(|id| id.len() >= 16 && id.chars().all(|c| c.is_ascii_hexdigit()));
    ICP.contains(&name.as_ref()) || dfx_upload || name.ends_with(".partial")
}
/// The piece size of the per-MiB hashes.
const PIECE: usize = 1 << 20;

/// Where a backup came from; the manifest adds the files.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Origin {
    pub canister_id: String,
    pub snapshot_id: String,
    /// When the snapshot was taken, nanoseconds since the epoch.
    pub taken_at: u64,
    pub taken_at_utc: String,
    pub downloaded_at_utc: String,
    /// Which backend and network it was downloaded through.
    pub source: String,
    /// Tool → version, for whoever restores it years later.
    pub tools: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: String,
    #[serde(flatten)]
    pub origin: Origin,
    /// SHA-256 of `wasm_module.bin`: the module the snapshot restores (the IC's module hash).
    pub module_hash: Option<String>,
    pub files: Vec<FileEntry>,
}

impl Manifest {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the backup directory, `/`-separated.
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// SHA-256 of each MiB, for files over one MiB.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pieces: Vec<String>,
}

/// What is stored: the manifest and the SHA-256 of its canonical JSON.
#[derive(Serialize, Deserialize)]
struct Sealed {
    manifest: Manifest,
    sha256: String,
}

impl Manifest {
    /// Hashes every file in `dir` and writes the manifest there.
    pub fn write(dir: &Path, origin: Origin) -> Result<Manifest> {
        let files = files_in(dir)?
            .iter()
            .map(|path| hash_file(dir, path))
            .collect::<Result<Vec<_>>>()?;
        let module_hash = files
            .iter()
            .find(|f| f.path == Blob::Module.file_name())
            .map(|f| f.sha256.clone());
        let manifest = Manifest {
            format: FORMAT.into(),
            origin,
            module_hash,
            files,
        };
        let sealed = Sealed {
            sha256: seal(&manifest)?,
            manifest: manifest.clone(),
        };
        write_atomically(&dir.join(MANIFEST), &serde_json::to_vec_pretty(&sealed)?)?;
        Ok(manifest)
    }

    /// The manifest in `dir`; `None` when there is none, an error when it is damaged.
    pub fn read(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(MANIFEST);
        let Ok(bytes) = std::fs::read(&path) else {
            return Ok(None);
        };
        let sealed: Sealed = serde_json::from_slice(&bytes)
            .with_context(|| format!("{MANIFEST} is damaged: it no longer parses"))?;
        if seal(&sealed.manifest)? != sealed.sha256 {
            bail!("{MANIFEST} is damaged: its contents do not match its own checksum");
        }
        if sealed.manifest.format != FORMAT {
            bail!(
                "{MANIFEST} is in format `{}`; this xtask reads `{FORMAT}`",
                sealed.manifest.format
            );
        }
        Ok(Some(sealed.manifest))
    }

    /// Every way `dir` differs from the manifest, one line each naming the file.
    pub fn problems(&self, dir: &Path) -> Result<Vec<String>> {
        if !dir.join(MANIFEST).is_file() {
            return Ok(vec![format!("{MANIFEST} is missing")]);
        }
        let mut problems = Vec::new();
        let present = files_in(dir)?;
        for entry in &self.files {
            if !present.contains(&PathBuf::from(&entry.path)) {
                problems.push(format!("{} is missing", entry.path));
                continue;
            }
            let actual = hash_file(dir, Path::new(&entry.path))?;
            if let Some(problem) = entry.difference(&actual) {
                problems.push(problem);
            }
        }
        for path in present {
            let name = slashed(&path);
            if !self.files.iter().any(|e| e.path == name) {
                problems.push(format!("{name} is an extra file, not in the manifest"));
            }
        }
        Ok(problems)
    }
}

impl FileEntry {
    /// How `actual` (the file as it is now) differs from this entry, if it does.
    fn difference(&self, actual: &FileEntry) -> Option<String> {
        if actual.size < self.size {
            return Some(format!(
                "{} is truncated: {} of {} bytes",
                self.path, actual.size, self.size
            ));
        }
        if actual.size > self.size {
            return Some(format!(
                "{} has {} bytes, {} more than the manifest's {}",
                self.path,
                actual.size,
                actual.size - self.size,
                self.size
            ));
        }
        if actual.sha256 == self.sha256 {
            return None;
        }
        let changed: Vec<String> = self
            .pieces
            .iter()
            .zip(&actual.pieces)
            .enumerate()
            .filter(|(_, (want, got))| want != got)
            .map(|(i, _)| {
                let start = i * PIECE;
                let end = (start + PIECE).min(self.size as usize) - 1;
                format!("bytes {start}–{end}")
            })
            .collect();
        Some(if changed.is_empty() {
            format!(
                "{}'s contents differ from the manifest (SHA-256)",
                self.path
            )
        } else {
            format!(
                "{}'s contents differ from the manifest in {}",
                self.path,
                changed.join(", ")
            )
        })
    }
}

fn seal(manifest: &Manifest) -> Result<String> {
    Ok(project::hex(&Sha256::digest(serde_json::to_vec(manifest)?)))
}

/// The backup's files, relative to `dir`, sorted: everything but the manifest and tools'
/// bookkeeping.
fn files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    collect(dir, Path::new(""), &mut found)
        .with_context(|| format!("cannot read {}", dir.display()))?;
    found.sort();
    Ok(found)
}

fn collect(root: &Path, relative: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(root.join(relative))? {
        let entry = entry?;
        let name = entry.file_name();
        let path = relative.join(&name);
        if entry.file_type()?.is_dir() {
            collect(root, &path, found)?;
        } else if relative.as_os_str().is_empty() && (name == MANIFEST || is_bookkeeping(&name)) {
            continue;
        } else {
            found.push(path);
        }
    }
    Ok(())
}

fn slashed(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Size, SHA-256 and (over one MiB) per-MiB SHA-256 of one file.
fn hash_file(dir: &Path, relative: &Path) -> Result<FileEntry> {
    let path = dir.join(relative);
    let mut file =
        std::fs::File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let (mut whole, mut pieces, mut size) = (Sha256::new(), Vec::new(), 0u64);
    let mut buffer = vec![0; PIECE];
    loop {
        let n = read_piece(&mut file, &mut buffer)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        whole.update(&buffer[..n]);
        pieces.push(project::hex(&Sha256::digest(&buffer[..n])));
        size += n as u64;
    }
    if pieces.len() <= 1 {
        pieces.clear();
    }
    Ok(FileEntry {
        path: slashed(relative),
        size,
        sha256: project::hex(&whole.finalize()),
        pieces,
    })
}

/// Fills `buffer` unless the file ends first; returns how much it read.
fn read_piece(file: &mut std::fs::File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            canister_id: "bkyz2-fmaaa-aaaaa-qaaaq-cai".into(),
            snapshot_id: "000000000000000080000000001000010101".into(),
            taken_at: 1,
            taken_at_utc: "1970-01-01 00:00:00 UTC".into(),
            downloaded_at_utc: "1970-01-01 00:00:00 UTC".into(),
            source: "test".into(),
            tools: BTreeMap::new(),
        }
    }

    fn backup() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("metadata.json"), b"{}").unwrap();
        std::fs::write(dir.path().join("wasm_memory.bin"), vec![7u8; 3 * PIECE + 5]).unwrap();
        std::fs::create_dir(dir.path().join("wasm_chunk_store")).unwrap();
        std::fs::write(dir.path().join("wasm_chunk_store/ab.bin"), b"chunk").unwrap();
        Manifest::write(dir.path(), origin()).unwrap();
        dir
    }

    fn problems(dir: &Path) -> Vec<String> {
        Manifest::read(dir).unwrap().unwrap().problems(dir).unwrap()
    }

    #[test]
    fn an_intact_backup_has_no_problems_and_bookkeeping_is_ignored() {
        let dir = backup();
        std::fs::write(dir.path().join(".lock"), b"").unwrap();
        assert_eq!(problems(dir.path()), Vec::<String>::new());
        let manifest = Manifest::read(dir.path()).unwrap().unwrap();
        assert_eq!(manifest.files.len(), 3);
        assert_eq!(manifest.files[2].pieces.len(), 4);
    }

    #[test]
    fn a_flipped_byte_is_named_with_its_mib() {
        let dir = backup();
        let path = dir.path().join("wasm_memory.bin");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[2 * PIECE + 10] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(
            problems(dir.path()),
            ["wasm_memory.bin's contents differ from the manifest in bytes 2097152–3145727"]
        );
    }

    #[test]
    fn missing_extra_and_truncated_files_are_named() {
        let dir = backup();
        std::fs::remove_file(dir.path().join("wasm_chunk_store/ab.bin")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"hi").unwrap();
        let memory = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("wasm_memory.bin"))
            .unwrap();
        memory.set_len(100).unwrap();
        assert_eq!(
            problems(dir.path()),
            [
                "wasm_chunk_store/ab.bin is missing",
                "wasm_memory.bin is truncated: 100 of 3145733 bytes",
                "notes.txt is an extra file, not in the manifest",
            ]
        );
    }

    #[test]
    fn a_damaged_manifest_is_named() {
        let dir = backup();
        let path = dir.path().join(MANIFEST);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("bkyz2", "bkyz3", 1)).unwrap();
        let error = Manifest::read(dir.path()).unwrap_err().to_string();
        assert!(error.contains("manifest.json is damaged"), "{error}");
        std::fs::write(&path, &text[..text.len() / 2]).unwrap();
        assert!(Manifest::read(dir.path()).is_err());
    }
}
