//! The execution engine (op-reth, op-geth) behind the Engine API: where accepted blocks go when
//! `--l2` is given, and where a sequencer's blocks are built (issue 6; this is its first part:
//! the client).
//!
//! ```text
//!  store writer ──► insertion driver (ordered, bounded) ──► EngineClient ──HTTP+JWT──► engine
//!  producer ──forkchoiceUpdated+attributes / getPayload──► EngineClient
//! ```
//!
//! [`methods`] picks the method version per fork, [`json`] converts payloads between our wire
//! type and the Engine API's JSON, [`client`] sends them.

pub mod client;
pub mod json;
pub mod methods;

pub use alloy_rpc_types_engine::JwtSecret;
pub use client::{EngineClient, EngineError, EngineHead};

/// Reads a JWT secret file in op-node's format: 32 bytes as hex, with or without `0x`,
/// surrounding whitespace ignored.
pub fn read_jwt_secret(path: &std::path::Path) -> Result<JwtSecret, String> {
    JwtSecret::from_file(path).map_err(|e| format!("JWT secret {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_secret_files_in_op_node_format() {
        let dir = tempfile::tempdir().unwrap();
        let hex = "2b5bd2bc1b4e1bd3ef8e41dd3bea9cd1c06d26b1dbb2a7f1c7d9bdbe0d4f8a11";
        for text in [hex.to_owned(), format!("0x{hex}\n"), format!("  {hex}  ")] {
            let path = dir.path().join("jwt.hex");
            std::fs::write(&path, text).unwrap();
            assert_eq!(
                read_jwt_secret(&path).unwrap(),
                JwtSecret::from_hex(hex).unwrap()
            );
        }
        for bad in ["", "0x1234", "zz"] {
            let path = dir.path().join("bad.hex");
            std::fs::write(&path, bad).unwrap();
            assert!(read_jwt_secret(&path).is_err(), "{bad:?}");
        }
        assert!(read_jwt_secret(&dir.path().join("missing")).is_err());
    }
}
