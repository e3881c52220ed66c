//! The store's one way to the file system: every file the store creates, writes, syncs,
//! renames or removes goes through these functions, so the durability rules live in one
//! place (a file's data is durable once the file is synced; a create, rename or removal
//! once its directory is). Built with the `fault-points` feature, the power-loss test layer
//! (`power_loss`) watches the same calls to know what a power failure would keep.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use crate::error::StoreError;

#[cfg(feature = "fault-points")]
pub mod power_loss;

/// Owner-only: for secrets and the logs that hold callers' requests.
pub const PRIVATE: u32 = 0o600;
pub const SHARED: u32 = 0o644;
/// How long a held lock is waited for before the directory counts as in use.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// Creates `dir` and its missing parents, each made durable in its parent. The first
/// directory made so is the state directory, which the power-loss layer watches.
pub fn create_dirs(dir: &Path) -> Result<(), StoreError> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
    for created in missing.iter().rev() {
        // A relative path's first component has the empty path as its parent: the cwd.
        let parent = created.parent().filter(|p| !p.as_os_str().is_empty());
        sync_dir(parent.unwrap_or(Path::new(".")))?;
    }
    #[cfg(feature = "fault-points")]
    power_loss::watch(dir);
    Ok(())
}

/// The whole file; `NotFound` is the caller's to interpret.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    fs::read(path)
}

pub fn open_read(path: &Path) -> Result<File, StoreError> {
    File::open(path).map_err(StoreError::io(path))
}

/// Opens `path` for appending (and reading), creating it with `mode` if missing.
pub fn open_append(path: &Path, mode: u32) -> Result<File, StoreError> {
    let existed = path.exists();
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(mode)
        .open(path)
        .map_err(StoreError::io(path))?;
    if !existed {
        created(&file);
    }
    Ok(file)
}

/// A new file at `path` holding `bytes`, synced; whatever was there is replaced. On failure
/// nothing is left behind, so a full disk is not made fuller by what could not be written.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
    let _ = fs::remove_file(path);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .and_then(|mut file| {
            created(&file);
            file.write_all(bytes)?;
            sync_file(&file)
        });
    written.map_err(|error| {
        let _ = fs::remove_file(path);
        StoreError::io(path)(error)
    })
}

/// Appends `bytes` with one `write`, so a killed process leaves all of it or a torn tail.
pub fn append(file: &mut File, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    file.write_all(bytes).map_err(StoreError::io(path))
}

pub fn set_len(file: &File, path: &Path, len: u64) -> Result<(), StoreError> {
    file.set_len(len).map_err(StoreError::io(path))
}

/// Makes the file's data (and its length) durable.
pub fn sync(file: &File, path: &Path) -> Result<(), StoreError> {
    sync_file(file).map_err(StoreError::io(path))
}

/// Makes the file at `path` durable, through a descriptor of its own (a sync is the
/// inode's, whoever wrote it).
pub fn sync_path(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|file| sync_file(&file))
        .map_err(StoreError::io(path))
}

fn sync_file(file: &File) -> io::Result<()> {
    file.sync_data()?;
    #[cfg(feature = "fault-points")]
    power_loss::synced(file);
    Ok(())
}

/// Makes the creates, renames and removals in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io(dir))?;
    #[cfg(feature = "fault-points")]
    power_loss::dir_synced(dir);
    Ok(())
}

/// Gives the written file `partial` its final name (durable once the directory is synced);
/// on failure it is removed.
pub fn rename(partial: &Path, path: &Path) -> Result<(), StoreError> {
    fs::rename(partial, path).map_err(|error| {
        let _ = fs::remove_file(partial);
        StoreError::io(path)(error)
    })
}

pub fn remove(path: &Path) -> Result<(), StoreError> {
    fs::remove_file(path).map_err(StoreError::io(path))
}

/// The paths in `dir`.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    fs::read_dir(dir)
        .map_err(StoreError::io(dir))?
        .map(|entry| entry.map(|e| e.path()).map_err(StoreError::io(dir)))
        .collect()
}

/// Writes a small file atomically and durably: a temporary file, synced, renamed over
/// `path`, and the directory synced.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
    let partial = path.with_extension("tmp");
    write_new(&partial, bytes, mode)?;
    crate::fault::point("file:written-not-renamed");
    rename(&partial, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn created(_file: &File) {
    #[cfg(feature = "fault-points")]
    power_loss::created(_file);
}

/// Holds the state directory's lock file `path` for as long as the file is open: a second
/// process is kept out.
pub fn lock(path: &Path) -> Result<File, StoreError> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(StoreError::io(path))?;
    // A program this process is starting holds a copy of the lock until it has loaded
    // (descriptors close on exec, not on fork), so a lock held briefly is waited for.
    let give_up = std::time::Instant::now() + LOCK_PATIENCE;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(fs::TryLockError::WouldBlock) if std::time::Instant::now() < give_up => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked {
                    path: path.parent().unwrap_or(path).to_owned(),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(StoreError::io(path)(e)),
        }
    }
}
