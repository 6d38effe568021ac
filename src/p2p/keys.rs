//! The node's libp2p identity: a secp256k1 key stored as 64 hex characters, as op-node's
//! `--p2p.priv.path` file (created with a fresh random key on first run) or `--p2p.priv.raw`.
//!
//! Read once at start-up, before the swarm is built.

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

/// Loads the key at `path`, creating it (mode 0600 on Unix) with a fresh key if it is missing.
/// An existing file that does not parse is an error, never silently replaced.
pub fn load_or_create(path: &Path) -> Result<Keypair, KeyFileError> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => keypair_from_hex(&text, &origin),
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
