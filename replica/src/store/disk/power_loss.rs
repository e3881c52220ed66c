//! The power-loss test layer, as SQLite tests its VFS: it follows the state directory's
//! files through `disk`'s calls and knows, at any instant, what a power failure would keep —
//! a file's data as of its last sync, a directory's entries as of its last sync. Turned on
//! by `REPLICA_POWER_LOSS=<dir>`; at a crash point (`fault::point`), just before the process
//! aborts, it writes into `<dir>/<pattern>/` the state directory as each pattern of lost
//! writes would leave it, for the test to reopen:
//!
//! - `unsynced-lost`: every write not followed by its sync is gone (data and names);
//! - `names-kept`: creates, renames and removals all happened, unsynced data is gone;
//! - `data-kept`: all data written is there, unsynced names are not;
//! - `torn-tail`: half of what was appended since a file's sync is there (a torn write).
//!
//! A file is known by its inode and a generation, bumped whenever `disk` creates a file, so
//! an inode the file system reuses is never mistaken for the file it held before.

use std::{
    collections::HashMap,
    ffi::OsString,
    fs::{self, File},
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
    sync::Mutex,
};

/// The environment variable naming where the images of a power loss are written.
pub const POWER_LOSS: &str = "REPLICA_POWER_LOSS";

/// The patterns of lost writes, each written as a directory of that name.
pub const PATTERNS: [&str; 4] = ["unsynced-lost", "names-kept", "data-kept", "torn-tail"];

type Key = (u64, u64);

#[derive(Clone, Copy)]
enum Node {
    File(Key),
    Dir,
}

type Entries = HashMap<OsString, Node>;

struct Model {
    root: PathBuf,
    /// Each directory's entries as of its last sync (or as found when watching began).
    durable_entries: HashMap<PathBuf, Entries>,
    /// Each file's data as of its last sync.
    durable_data: HashMap<Key, Vec<u8>>,
    generations: HashMap<u64, u64>,
}

static MODEL: Mutex<Option<Model>> = Mutex::new(None);

/// Starts following `dir` (the first state directory opened), all of it durable as found.
pub fn watch(dir: &Path) {
    let Some(out) = std::env::var_os(POWER_LOSS) else {
        return;
    };
    let mut model = MODEL.lock().expect("not poisoned");
    if model.is_some() {
        return;
    }
    let root = fs::canonicalize(dir).expect("the state directory exists");
    let mut watched = Model {
        root: root.clone(),
        durable_entries: HashMap::new(),
        durable_data: HashMap::new(),
        generations: HashMap::new(),
    };
    watched.adopt(&root);
    *model = Some(watched);
    crate::fault::before_crash(Box::new(move || write_images(Path::new(&out))));
}

pub fn created(file: &File) {
    with_model(|model| {
        let ino = file.metadata().expect("an open file").ino();
        let generation = model.generations.entry(ino).or_default();
        *generation += 1;
        let key = (ino, *generation);
        model.durable_data.insert(key, Vec::new());
    });
}

pub fn synced(file: &File) {
    with_model(|model| {
        let key = model.key(file.metadata().expect("an open file").ino());
        model.durable_data.insert(key, contents(file));
    });
}

pub fn dir_synced(dir: &Path) {
    with_model(|model| {
        let Ok(dir) = fs::canonicalize(dir) else {
            return;
        };
        if dir.starts_with(&model.root) {
            let entries = model.scan(&dir);
            model.durable_entries.insert(dir, entries);
        }
    });
}

fn with_model(change: impl FnOnce(&mut Model)) {
    if let Some(model) = MODEL.lock().expect("not poisoned").as_mut() {
        change(model);
    }
}

/// A file's whole contents through its descriptor, whichever way it was opened.
fn contents(file: &File) -> Vec<u8> {
    use std::os::fd::AsRawFd;
    fs::read(format!("/proc/self/fd/{}", file.as_raw_fd())).expect("an open file reads")
}

impl Model {
    fn key(&self, ino: u64) -> Key {
        (ino, self.generations.get(&ino).copied().unwrap_or(0))
    }

    /// The directory's entries now.
    fn scan(&self, dir: &Path) -> Entries {
        let mut entries = Entries::new();
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            let node = if meta.is_dir() {
                Node::Dir
            } else {
                Node::File(self.key(meta.ino()))
            };
            entries.insert(entry.file_name(), node);
        }
        entries
    }

    /// Takes `dir` and everything below it as durable, as found.
    fn adopt(&mut self, dir: &Path) {
        let entries = self.scan(dir);
        for (name, node) in &entries {
            let path = dir.join(name);
            match node {
                Node::Dir => self.adopt(&path),
                Node::File(key) => {
                    let data = fs::read(&path).unwrap_or_default();
                    self.durable_data.insert(*key, data);
                }
            }
        }
        self.durable_entries.insert(dir.to_owned(), entries);
    }

    /// Where each file is linked now, by key.
    fn linked(&self, dir: &Path, found: &mut HashMap<Key, PathBuf>) {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                self.linked(&entry.path(), found);
            } else {
                found.insert(self.key(meta.ino()), entry.path());
            }
        }
    }

    /// Writes the tree under `dir` as `pattern` would leave it into `out`.
    fn write(&self, pattern: &str, dir: &Path, out: &Path, linked: &HashMap<Key, PathBuf>) {
        fs::create_dir_all(out).expect("the image directory can be made");
        let entries = match pattern {
            "names-kept" => self.scan(dir),
            _ => self.durable_entries.get(dir).cloned().unwrap_or_default(),
        };
        for (name, node) in entries {
            let (from, to) = (dir.join(&name), out.join(&name));
            match node {
                Node::Dir => self.write(pattern, &from, &to, linked),
                Node::File(key) => {
                    let durable = self.durable_data.get(&key).cloned().unwrap_or_default();
                    let now = linked.get(&key).and_then(|path| fs::read(path).ok());
                    let data = match (pattern, now) {
                        ("data-kept", Some(now)) => now,
                        ("torn-tail", Some(now))
                            if now.len() > durable.len() && now.starts_with(&durable) =>
                        {
                            let torn = durable.len() + (now.len() - durable.len()) / 2;
                            now[..torn].to_vec()
                        }
                        _ => durable,
                    };
                    let mut file = fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&to)
                        .expect("the image file can be made");
                    std::io::Write::write_all(&mut file, &data).expect("the image is written");
                }
            }
        }
    }
}

fn write_images(out: &Path) {
    let model = MODEL.lock().expect("not poisoned");
    let Some(model) = model.as_ref() else { return };
    let mut linked = HashMap::new();
    model.linked(&model.root, &mut linked);
    for pattern in PATTERNS {
        model.write(pattern, &model.root, &out.join(pattern), &linked);
    }
}
