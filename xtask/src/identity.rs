//! Who the xtask is on the embedded replica: an Ed25519 key of its own, kept beside the
//! replica's state as PKCS#8 PEM (as dfx and icp-cli keep theirs), readable by its owner only,
//! created on first use. Its self-authenticating principal controls the canisters the
//! embedded backend creates, so the anonymous principal — whom any web page can send calls as
//! while `cargo xtask serve` runs — controls none of them.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use candid::Principal;

/// The key's file in a state directory.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("identity.pem")
}

/// The principal of the identity kept in `state_dir`, created there if it has none.
pub fn load_or_create(state_dir: &Path) -> Result<Principal> {
    let path = path(state_dir);
    if !path.exists() {
        create(&path)?;
    }
    let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{} is the xtask's secret key but others can read it (mode {mode:o}); make it the owner's alone with `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    let pem = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let key = ic_ed25519::PrivateKey::deserialize_pkcs8_pem(&pem).map_err(|e| {
        anyhow::anyhow!(
            "{} is not an Ed25519 key in PKCS#8 PEM ({e:?}); delete it and a new one is made (its canisters then need a new controller)",
            path.display()
        )
    })?;
    Ok(principal_of(&key))
}

pub fn principal_of(key: &ic_ed25519::PrivateKey) -> Principal {
    Principal::self_authenticating(key.public_key().serialize_rfc8410_der())
}

/// Writes a new key, mode 0600 from its creation; never overwrites one.
fn create(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let key = ic_ed25519::PrivateKey::generate();
    let pem = key.serialize_pkcs8_pem(ic_ed25519::PrivateKeyFormat::Pkcs8v1);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(pem.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_is_made_once_kept_private_and_refused_when_exposed() {
        let dir = tempfile::tempdir().unwrap();
        let me = load_or_create(dir.path()).unwrap();
        assert_eq!(
            load_or_create(dir.path()).unwrap(),
            me,
            "the same key next time"
        );
        assert_ne!(me, Principal::anonymous());
        let file = path(dir.path());
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let error = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(error.contains("others can read it (mode 640)"), "{error}");
        assert!(error.contains("chmod 600"), "{error}");
    }
}
