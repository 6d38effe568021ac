//! Node keys as op-node keeps them: a hex file created on first run, reused afterwards, and a
//! clear error (never a silent replacement) for a damaged file.

use op_gossip::p2p::keys::{keypair_from_hex, load_or_create};

#[test]
fn a_key_file_is_created_once_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("opnode_p2p_priv.txt");
    let first = load_or_create(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim().len(), 64, "32 bytes of hex");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let again = load_or_create(&path).unwrap();
    assert_eq!(first.public().to_peer_id(), again.public().to_peer_id());
    assert_eq!(
        keypair_from_hex(&text, "t").unwrap().public().to_peer_id(),
        first.public().to_peer_id()
    );
}

#[test]
fn a_damaged_key_file_is_an_error_and_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.txt");
    std::fs::write(&path, "not hex at all").unwrap();
    let err = load_or_create(&path).unwrap_err().to_string();
    assert!(err.contains("key.txt") && err.contains("64 hex"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "not hex at all");
    assert!(
        keypair_from_hex(&"00".repeat(32), "zero").is_err(),
        "zero is not a valid secret"
    );
}
