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

#[cfg(unix)]
fn chmod(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The Anvil/Hardhat account #5 key the tests sign with (`tests/common`).
const SEQUENCER_KEY: &str = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba";

#[cfg(unix)]
#[test]
fn a_key_file_others_may_read_is_used_with_a_warning() {
    use op_gossip::p2p::keys::permission_warning;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opnode_p2p_priv.txt");
    let created = load_or_create(&path).unwrap();
    assert_eq!(permission_warning(&path), None, "created 0600");

    chmod(&path, 0o644);
    let warning = permission_warning(&path).expect("a warning");
    assert!(
        warning.contains(&format!(
            "permissions 0644 for {} are too open",
            path.display()
        )),
        "{warning}"
    );
    // Still used: the same identity.
    assert_eq!(
        load_or_create(&path).unwrap().public().to_peer_id(),
        created.public().to_peer_id()
    );
    for (mode, open) in [
        (0o640, true),
        (0o604, true),
        (0o660, true),
        (0o600, false),
        (0o400, false),
    ] {
        chmod(&path, mode);
        assert_eq!(permission_warning(&path).is_some(), open, "{mode:o}");
    }
}

#[cfg(unix)]
#[test]
fn the_sequencer_key_warns_on_the_command_line_and_in_an_open_file() {
    use op_gossip::cli::node::load_sequencer_key;
    // Hex on the command line is in the process list; from the environment it is not.
    let (_, warnings) = load_sequencer_key(SEQUENCER_KEY, false).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("process list"), "{warnings:?}");
    assert!(
        warnings[0].contains("OP_NODE_P2P_SEQUENCER_KEY"),
        "{warnings:?}"
    );
    let (_, warnings) = load_sequencer_key(SEQUENCER_KEY, true).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");

    // A file: silent when private, a warning when group or others may read it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sequencer.key");
    std::fs::write(&path, format!("{SEQUENCER_KEY}\n")).unwrap();
    chmod(&path, 0o600);
    let file = path.to_str().unwrap();
    let (signer, warnings) = load_sequencer_key(file, false).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        signer.address(),
        load_sequencer_key(SEQUENCER_KEY, true).unwrap().0.address()
    );
    chmod(&path, 0o644);
    let (_, warnings) = load_sequencer_key(file, false).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("permissions 0644 for"), "{warnings:?}");
    // A bad file is an error that does not echo its contents.
    std::fs::write(&path, "0xnot-a-key").unwrap();
    let err = load_sequencer_key(file, false).unwrap_err().to_string();
    assert!(!err.contains("not-a-key"), "{err}");
}

/// The node binary says it on stderr, before it starts serving.
#[cfg(unix)]
#[test]
fn the_node_warns_about_open_key_files_and_keys_in_argv_on_stderr() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("node.key");
    load_or_create(&key).unwrap();
    chmod(&key, 0o644);
    let mut child = Command::new(env!("CARGO_BIN_EXE_op-gossip"))
        .args(["node", "--chain", "devnet", "--datadir"])
        .arg(dir.path().join("data"))
        .arg("--p2p.priv.path")
        .arg(&key)
        .args([
            "--p2p.sequencer.key",
            SEQUENCER_KEY,
            "--sequencer.on-request",
            "--p2p.listen.ip",
            "127.0.0.1",
            "--p2p.listen.tcp",
            "0",
            "--rpc.disable",
        ])
        .env("RUST_LOG", "warn")
        .env_remove("OP_NODE_P2P_SEQUENCER_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    // Read on a thread: the test gives up after 30 s instead of hanging on a silent child.
    let (tx, rx) = std::sync::mpsc::sync_channel(256);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let wanted = [
        format!("permissions 0644 for {} are too open", key.display()),
        "--p2p.sequencer.key is given as hex on the command line".to_owned(),
    ];
    let mut seen = [false, false];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !seen.iter().all(|s| *s) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            break;
        };
        for (want, seen) in wanted.iter().zip(seen.iter_mut()) {
            *seen |= line.contains(want.as_str()) && line.contains("WARN");
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(seen, [true, true], "expected on stderr: {wanted:?}");
}
