//! Machine code kept between processes, so that a canister is compiled once per machine
//! rather than at every start of the replica (cranelift is most of what a short
//! `cargo xtask` command spends). Files live in the user's cache directory, one directory
//! per wasmtime build and configuration, readable by the user only; each file ends with the
//! SHA-256 of what precedes it, so a torn or damaged file is recompiled, never run.

use std::{
    fs::{self, DirBuilder, OpenOptions},
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};

/// Modules smaller than this compile in well under a millisecond; caching them would only
/// fill the directory (the fuzzers install thousands).
pub const MIN_MODULE_BYTES: usize = 64 << 10;

pub struct CodeCache {
    dir: PathBuf,
}

impl CodeCache {
    /// The cache for an engine whose compatibility is `engine_id`, under
    /// `$XDG_CACHE_HOME/canister-snapshots` (else `~/.cache/canister-snapshots`); none when
    /// neither is known.
    pub fn for_user(engine_id: u64) -> Option<Self> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|dir| dir.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))?;
        Some(Self {
            dir: base
                .join("canister-snapshots")
                .join(format!("code-{engine_id:016x}")),
        })
    }

    #[cfg(test)]
    pub fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The machine code kept for the module whose prepared bytes hash to `key`, if whole
    /// and in a directory that no one but this user could have written to.
    pub fn read(&self, key: &[u8; 32]) -> Option<Vec<u8>> {
        if !self.private() {
            return None;
        }
        let mut bytes = fs::read(self.path(key)).ok()?;
        let body = bytes.len().checked_sub(32)?;
        if Sha256::digest(&bytes[..body]).as_slice() != &bytes[body..] {
            return None;
        }
        bytes.truncate(body);
        Some(bytes)
    }

    /// Keeps `code` for `key`; a failure only means the next start compiles again.
    pub fn write(&self, key: &[u8; 32], code: &[u8]) {
        let _ = self.try_write(key, code);
    }

    fn try_write(&self, key: &[u8; 32], code: &[u8]) -> std::io::Result<()> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let path = self.path(key);
        let partial = path.with_extension(format!("{}.partial", std::process::id()));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)?;
        file.write_all(code)?;
        file.write_all(&Sha256::digest(code))?;
        drop(file);
        fs::rename(&partial, &path).inspect_err(|_| {
            let _ = fs::remove_file(&partial);
        })
    }

    fn private(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        fs::symlink_metadata(&self.dir)
            .is_ok_and(|dir| dir.is_dir() && dir.uid() == me && dir.mode() & 0o022 == 0)
    }

    fn path(&self, key: &[u8; 32]) -> PathBuf {
        self.dir.join(crate::store::hex(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_code_reads_back_and_damaged_code_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CodeCache {
            dir: dir.path().join("code"),
        };
        let key = [7; 32];
        assert_eq!(cache.read(&key), None);
        cache.write(&key, b"machine code");
        assert_eq!(cache.read(&key).as_deref(), Some(&b"machine code"[..]));
        let mode = |path: &Path| {
            use std::os::unix::fs::PermissionsExt;
            fs::metadata(path).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode(&cache.dir), 0o700);
        assert_eq!(mode(&cache.path(&key)), 0o600);

        let mut damaged = fs::read(cache.path(&key)).unwrap();
        damaged[3] ^= 1;
        fs::write(cache.path(&key), &damaged).unwrap();
        assert_eq!(cache.read(&key), None, "a flipped bit is caught");
        fs::write(cache.path(&key), b"short").unwrap();
        assert_eq!(cache.read(&key), None, "a torn file is caught");

        cache.write(&key, b"machine code");
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&cache.dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(
            cache.read(&key),
            None,
            "a directory others can write is not trusted"
        );
    }
}
