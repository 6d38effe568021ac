//! The node's libp2p identity: a secp256k1 key stored as 64 hex characters, as op-node's
//! `--p2p.priv.path` file (created with a fresh random key on first run) or `--p2p.priv.raw`.
//!
//! Read once at start-up, before the swarm is built. A key file that group or others may access
//! is used, with a warning in ssh's words ([`permission_warning`], also applied to the sequencer
//! key file); a file created here is 0600.

use std::path::Path;

use libp2p::identity::{self, Keypair};

/// Why the node key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or creating the file failed.
    #[error("node key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The contents are not a 32-byte secp256k1 secret in hex.
    #[error("node key {origin}: expected 64 hex characters of a secp256k1 secret key")]
    Malformed {
        /// Where the key came from.
        origin: String,
    },
}

/// Parses a hex secret (optional 0x, surrounding whitespace ignored).
pub fn keypair_from_hex(text: &str, origin: &str) -> Result<Keypair, KeyFileError> {
    let malformed = || KeyFileError::Malformed {
        origin: origin.to_owned(),
    };
    let mut bytes = alloy_primitives::hex::decode(text.trim()).map_err(|_| malformed())?;
    let secret =
        identity::secp256k1::SecretKey::try_from_bytes(&mut bytes).map_err(|_| malformed())?;
    Ok(identity::secp256k1::Keypair::from(secret).into())
}

/// The warning for a secret key file that group or others may access (any of the mode's `0o077`
/// bits, as ssh checks), worded like ssh's: "permissions 0644 for FILE are too open". `None` for
/// a private file, a file that cannot be read, or on systems without Unix modes.
pub fn permission_warning(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Some(format!(
                "permissions {mode:04o} for {} are too open: a private key must not be \
                 accessible by group or others (chmod 600 it)",
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    None
}

/// Loads the key at `path`, creating it (mode 0600 on Unix) with a fresh key if it is missing.
/// An existing file that does not parse is an error, never silently replaced; one that group or
/// others may access is used with a warning in the log ([`permission_warning`]).
pub fn load_or_create(path: &Path) -> Result<Keypair, KeyFileError> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            if let Some(warning) = permission_warning(path) {
                tracing::warn!("node key: {warning}");
            }
            keypair_from_hex(&text, &origin)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keypair = identity::secp256k1::Keypair::generate();
            let hex = alloy_primitives::hex::encode(keypair.secret().to_bytes());
            write_private(path, &hex).map_err(|source| KeyFileError::Io {
                path: origin,
                source,
            })?;
            Ok(keypair.into())
        }
        Err(source) => Err(KeyFileError::Io {
            path: origin,
            source,
        }),
    }
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, contents.as_bytes())
}
