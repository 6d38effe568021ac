//! `op-gossip node` as an operator starts it: without `--datadir` it keeps its data in a
//! per-chain directory under the user's data directory and writes nothing where it was started;
//! a store of another chain or a damaged store stops it at start with a clear error, no panic,
//! and the store left as it was.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use op_gossip::node::STORE_FILE;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// A rollup.json of the devnet, optionally with another chain id or genesis hash.
fn rollup(dir: &Path, name: &str, edit: impl FnOnce(&mut Value)) -> std::path::PathBuf {
    let mut json = op_gossip::devnet::devnet_rollup_json(1_700_000_000);
    edit(&mut json);
    let path = dir.join(name);
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

/// `op-gossip node` on loopback with no RPC, in `cwd`, with `envs`, and `args` after `node`.
fn node(cwd: &Path, envs: &[(&str, &Path)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_op-gossip"));
    cmd.current_dir(cwd)
        .env_remove("XDG_DATA_HOME")
        .env_remove("OP_GOSSIP_DATADIR")
        .env("RUST_LOG", "info")
        .args(["--p2p.unsafe.block.signer", common::DEV_ADDRESS, "node"])
        .args(args)
        .args([
            "--p2p.listen.ip",
            "127.0.0.1",
            "--p2p.listen.tcp",
            "0",
            "--rpc.disable",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

/// Starts `cmd`, waits until it logged a line containing `until`, then stops it (SIGTERM) and
/// returns every line it logged.
fn run_until(mut cmd: Command, until: &str) -> Vec<String> {
    let mut child: Child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    // Bounded: a node logs a few dozen lines before it listens; the reader waits beyond 1024.
    let (tx, rx) = mpsc::sync_channel(1024);
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + WAIT;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no log line with {until:?} in {lines:#?}"));
        let found = line.contains(until);
        lines.push(line);
        if found {
            break;
        }
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    assert!(status.success(), "graceful stop: {status:?}\n{lines:#?}");
    lines
}

/// Runs `cmd` to its end; returns its exit code and stderr.
fn run_to_exit(mut cmd: Command) -> (i32, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn without_datadir_the_store_goes_to_the_per_chain_default_and_nothing_to_the_working_dir() {
    let cwd = tempfile::tempdir().unwrap();
    let xdg = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();

    // XDG_DATA_HOME set: $XDG_DATA_HOME/op-gossip/<chain>; the first line names the store.
    let lines = run_until(
        node(
            cwd.path(),
            &[("XDG_DATA_HOME", xdg.path()), ("HOME", home.path())],
            &["--chain", "devnet"],
        ),
        "listening",
    );
    let expected = xdg.path().join("op-gossip").join("devnet");
    let store = expected.join(STORE_FILE);
    assert!(
        lines[0].contains("starting") && lines[0].contains(&store.display().to_string()),
        "first line: {}",
        lines[0]
    );
    assert!(store.is_file());
    assert!(expected.join("opnode_p2p_priv.txt").is_file());
    assert!(
        entries(home.path()).is_empty(),
        "XDG_DATA_HOME wins over HOME"
    );

    // Only HOME: ~/.local/share/op-gossip/<chain>; a rollup.json's chain is named by its id.
    let rollup = rollup(files.path(), "rollup.json", |_| {});
    let rollup = rollup.to_str().unwrap();
    run_until(
        node(
            cwd.path(),
            &[("HOME", home.path())],
            &["--rollup.config", rollup],
        ),
        "listening",
    );
    let expected = home
        .path()
        .join(".local/share/op-gossip/chain-901")
        .join(STORE_FILE);
    assert!(expected.is_file(), "{}", expected.display());

    assert!(
        entries(cwd.path()).is_empty(),
        "the working directory got {:?}",
        entries(cwd.path())
    );
}

#[test]
fn a_store_of_another_chain_stops_the_node_naming_both_and_stays_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let datadir = dir.path().join("data");
    let datadir_arg = datadir.to_str().unwrap();
    let ours = rollup(dir.path(), "ours.json", |_| {});
    run_until(
        node(
            dir.path(),
            &[],
            &[
                "--rollup.config",
                ours.to_str().unwrap(),
                "--datadir",
                datadir_arg,
            ],
        ),
        "listening",
    );
    let store = datadir.join(STORE_FILE);
    let before = std::fs::read(&store).unwrap();

    let other_id = rollup(dir.path(), "other-id.json", |j| {
        j["l2_chain_id"] = 902.into()
    });
    let other_genesis = rollup(dir.path(), "other-genesis.json", |j| {
        j["genesis"]["l2"]["hash"] = format!("0x{}", "ab".repeat(32)).into();
    });
    for (rollup, theirs) in [
        (&other_id, "chain id 902"),
        (&other_genesis, &format!("0x{}", "ab".repeat(32))),
    ] {
        let (code, stderr) = run_to_exit(node(
            dir.path(),
            &[],
            &[
                "--rollup.config",
                rollup.to_str().unwrap(),
                "--datadir",
                datadir_arg,
            ],
        ));
        assert_ne!(code, 0, "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            stderr.contains("belongs to chain id 901") && stderr.contains(theirs),
            "{stderr}"
        );
        assert_eq!(std::fs::read(&store).unwrap(), before, "store untouched");
    }
}

#[test]
fn a_damaged_store_stops_the_node_with_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let datadir = dir.path().join("data");
    let datadir_arg = datadir.to_str().unwrap();
    let ours = rollup(dir.path(), "ours.json", |_| {});
    let args = [
        "--rollup.config",
        ours.to_str().unwrap(),
        "--datadir",
        datadir_arg,
    ];
    run_until(node(dir.path(), &[], &args), "listening");
    let store = datadir.join(STORE_FILE);
    let whole = std::fs::read(&store).unwrap();

    let mut zeroed = whole.clone();
    zeroed[..512].fill(0);
    for (what, bytes) in [
        ("truncated", &whole[..whole.len() / 2]),
        ("zeroed header", &zeroed[..]),
    ] {
        std::fs::write(&store, bytes).unwrap();
        let (code, stderr) = run_to_exit(node(dir.path(), &[], &args));
        assert_ne!(code, 0, "{what}: {stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        assert!(
            stderr.contains(&format!("block store {} is damaged", store.display()))
                && stderr.contains("Move its directory away"),
            "{what}: {stderr}"
        );
    }
}
