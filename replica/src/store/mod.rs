//! Persistence: one state directory holding content-addressed objects (memory pages, wasm
//! modules, chunks) in immutable pack files, plus one manifest that names the committed state.
//!
//! A commit writes the new objects as a pack (fsync, rename), then the manifest (temp file,
//! fsync, rename, fsync of the directory): a kill at any instant leaves the previous manifest
//! or the new one, never a mix. Objects are addressed by their SHA-256, which doubles as the
//! checksum checked on every read. An exclusive lock keeps a second process out.
//!
//! Between commits, the journal holds what happened since (see `journal`): a commit is a
//! checkpoint, after which the journal starts empty.

mod disk;
mod journal;
mod pack;
mod side_log;

use std::{
    collections::{HashMap, HashSet},
    fs::{self, File},
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::fault;
#[cfg(feature = "fault-points")]
pub use disk::power_loss;
use journal::Journal;
pub use journal::{JournalSyncer, Record};
use pack::{Pack, PackWriter};
pub use side_log::SideLog;

/// The SHA-256 of an object.
pub type Hash = [u8; 32];

pub fn hash(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

const MANIFEST: &str = "state";
const MANIFEST_MAGIC: &[u8; 4] = b"CSST";
const FORMAT_VERSION: u32 = 1;
const LOCK: &str = "lock";
/// Files kept beside the state: `CSKF ‖ SHA-256(contents) ‖ contents`.
const KEPT_MAGIC: &[u8; 4] = b"CSKF";
const PACKS: &str = "packs";

/// An open state directory.
pub struct Store {
    dir: PathBuf,
    _lock: File,
    packs: HashMap<u64, Pack>,
    /// Where each stored object is: pack number and position in it.
    index: HashMap<Hash, (u64, pack::Entry)>,
    next_pack: u64,
    pending: PackWriter,
    journal: Journal,
    /// The side logs handed out, which every commit makes durable first.
    side_logs: std::sync::Mutex<Vec<PathBuf>>,
}

/// What opening a state directory finds: the last checkpoint's manifest and the journal's
/// records since (some may predate the checkpoint: the manifest says which it covers).
pub struct Opened {
    pub store: Store,
    pub manifest: Option<Vec<u8>>,
    pub journal: Vec<Record>,
}

impl Store {
    /// Opens (creating if needed) the state directory.
    pub fn open(dir: &Path) -> Result<Opened, StoreError> {
        disk::create_dirs(dir)?;
        disk::create_dirs(&dir.join(PACKS))?;
        let lock = disk::lock(&dir.join(LOCK))?;
        let manifest = read_manifest(&dir.join(MANIFEST))?;
        let (journal, records) = Journal::open(dir)?;
        let mut store = Self {
            dir: dir.to_owned(),
            _lock: lock,
            packs: HashMap::new(),
            index: HashMap::new(),
            next_pack: 0,
            pending: PackWriter::default(),
            journal,
            side_logs: Default::default(),
        };
        store.load_packs()?;
        Ok(Opened {
            store,
            manifest,
            journal: records,
        })
    }

    /// Appends a record to the journal; returns its sequence number.
    pub fn log(&mut self, record: &[u8]) -> Result<u64, StoreError> {
        self.journal.append(record)
    }

    /// How many records the journal holds since the last commit.
    pub fn logged(&self) -> usize {
        self.journal.records()
    }

    /// The sequence number of the last record logged (0 before any).
    pub fn last_logged(&self) -> u64 {
        self.journal.next_sequence() - 1
    }

    /// Numbers new records after `sequence`, which a commit covered.
    pub fn continue_after(&mut self, sequence: u64) {
        self.journal.continue_after(sequence);
    }

    /// The committed state as on disk: the last checkpoint's manifest and the journal's
    /// records (what a reopen would find).
    pub fn committed(&self) -> Result<(Option<Vec<u8>>, Vec<Record>), StoreError> {
        let manifest = read_manifest(&self.dir.join(MANIFEST))?;
        Ok((manifest, self.journal.read_back()?))
    }

    /// Makes the journal durable against power loss.
    pub fn sync_journal(&mut self) -> Result<(), StoreError> {
        self.journal.sync()
    }

    /// A handle that makes the journal durable from another thread.
    pub fn journal_syncer(&self) -> Result<JournalSyncer, StoreError> {
        self.journal.syncer()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The side log `name` kept with the state, created empty the first time. Every commit
    /// makes it durable before the manifest: what its holder wrote before a checkpoint
    /// survives a power loss with the checkpoint (what it wrote after is the journal's to
    /// recover).
    pub fn side_log(&self, name: &str) -> Result<SideLog, StoreError> {
        let path = self.dir.join(name);
        let mut logs = self.side_logs.lock().expect("not poisoned");
        if !logs.contains(&path) {
            logs.push(path.clone());
        }
        SideLog::open(path)
    }

    /// A small file beside the state, written by `create` (durably, with a checksum) the
    /// first time; returns its path and contents, checked against the checksum.
    pub fn keep_file(
        &self,
        name: &str,
        create: impl FnOnce() -> Result<Vec<u8>, StoreError>,
    ) -> Result<(PathBuf, Vec<u8>), StoreError> {
        let path = self.dir.join(name);
        check_private(&path)?;
        match disk::read(&path) {
            Ok(bytes) if bytes.starts_with(KEPT_MAGIC) => {
                let body = bytes.get(36..).unwrap_or_default();
                if bytes.len() < 36 || hash(body) != bytes[4..36] {
                    return Err(StoreError::Corrupt {
                        path,
                        what: "its checksum does not match its contents".into(),
                    });
                }
                Ok((path, body.to_vec()))
            }
            Ok(unsealed) => {
                // Written before files carried a checksum: seal it now.
                disk::replace(&path, &sealed(&unsealed), disk::PRIVATE)?;
                Ok((path, unsealed))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let bytes = create()?;
                disk::replace(&path, &sealed(&bytes), disk::PRIVATE)?;
                Ok((path, bytes))
            }
            Err(e) => Err(StoreError::io(&path)(e)),
        }
    }

    /// Stores `bytes` (at the next commit) and returns its hash.
    pub fn put(&mut self, bytes: &[u8]) -> Hash {
        let hash = hash(bytes);
        self.put_hashed(hash, bytes);
        hash
    }

    /// Stores `bytes` whose hash the caller already computed.
    pub fn put_hashed(&mut self, hash: Hash, bytes: &[u8]) {
        if !self.index.contains_key(&hash) {
            self.pending.add(hash, bytes);
        }
    }

    /// Reads an object, checking it against its hash.
    pub fn get(&self, hash: &Hash) -> Result<Vec<u8>, StoreError> {
        if let Some(bytes) = self.pending.get(hash) {
            return Ok(bytes.to_vec());
        }
        let (number, entry) = self.index.get(hash).ok_or_else(|| StoreError::Corrupt {
            path: self.dir.join(MANIFEST),
            what: format!("it names object {} that no pack holds", hex(hash)),
        })?;
        self.packs[number].read(entry, hash)
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.index.contains_key(hash) || self.pending.get(hash).is_some()
    }

    /// Makes the pending objects and `manifest` durable, atomically; the journal then starts
    /// empty (`manifest` must cover every record logged).
    pub fn commit(&mut self, manifest: &[u8]) -> Result<(), StoreError> {
        fault::point("commit:start");
        if !self.pending.is_empty() {
            let number = self.next_pack;
            let path = self.pack_path(number);
            let pack = std::mem::take(&mut self.pending).write(&path)?;
            for (hash, entry) in pack.entries() {
                self.index.insert(*hash, (number, *entry));
            }
            self.packs.insert(number, pack);
            self.next_pack += 1;
            fault::point("commit:pack-written");
        }
        for log in self.side_logs.lock().expect("not poisoned").iter() {
            disk::sync_path(log)?;
        }
        write_manifest(&self.dir, manifest)?;
        fault::point("commit:manifest-written");
        self.journal.clear()?;
        fault::point("commit:journal-cleared");
        Ok(())
    }

    /// Deletes packs that hold none of the `live` objects: what deleted snapshots, replaced
    /// memory and interrupted commits left behind.
    pub fn collect_garbage(&mut self, live: &HashSet<Hash>) -> Result<(), StoreError> {
        let dead: Vec<u64> = self
            .packs
            .iter()
            .filter(|(_, pack)| pack.entries().all(|(hash, _)| !live.contains(hash)))
            .map(|(number, _)| *number)
            .collect();
        for number in dead {
            let pack = self.packs.remove(&number).expect("listed above");
            for (hash, _) in pack.entries() {
                self.index.remove(hash);
            }
            disk::remove(&self.pack_path(number))?;
        }
        // Removals need no sync: a pack that comes back after a power loss is collected again.
        Ok(())
    }

    fn pack_path(&self, number: u64) -> PathBuf {
        self.dir.join(PACKS).join(format!("{number:016}.pack"))
    }

    fn load_packs(&mut self) -> Result<(), StoreError> {
        let dir = self.dir.join(PACKS);
        for path in disk::list(&dir)? {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.ends_with(".tmp") {
                // An interrupted commit: its manifest was never written.
                disk::remove(&path)?;
                continue;
            }
            let Some(number) = name.strip_suffix(".pack").and_then(|n| n.parse().ok()) else {
                continue;
            };
            let pack = Pack::open(&path)?;
            for (hash, entry) in pack.entries() {
                self.index.insert(*hash, (number, *entry));
            }
            self.packs.insert(number, pack);
            self.next_pack = self.next_pack.max(number + 1);
        }
        Ok(())
    }
}

fn read_manifest(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let bytes = match disk::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(path)(e)),
    };
    let corrupt = |what: &str| StoreError::Corrupt {
        path: path.to_owned(),
        what: what.into(),
    };
    if bytes.len() < 40 || &bytes[..4] != MANIFEST_MAGIC {
        return Err(corrupt("not a replica state manifest"));
    }
    let version = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(StoreError::Version {
            path: path.to_owned(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let (checksum, body) = bytes[8..].split_at(32);
    if hash(body) != checksum {
        return Err(corrupt("its checksum does not match its contents"));
    }
    Ok(Some(body.to_vec()))
}

fn write_manifest(dir: &Path, body: &[u8]) -> Result<(), StoreError> {
    let mut bytes = Vec::with_capacity(40 + body.len());
    bytes.extend_from_slice(MANIFEST_MAGIC);
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&hash(body));
    bytes.extend_from_slice(body);
    disk::replace(&dir.join(MANIFEST), &bytes, disk::PRIVATE)
}

/// Refuses a kept file (they hold secret keys) that others than its owner can read.
fn check_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    match fs::metadata(path) {
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => Err(StoreError::Exposed {
            path: path.to_owned(),
            mode: meta.permissions().mode() & 0o777,
        }),
        _ => Ok(()),
    }
}

fn sealed(contents: &[u8]) -> Vec<u8> {
    [KEPT_MAGIC.as_slice(), &hash(contents), contents].concat()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
