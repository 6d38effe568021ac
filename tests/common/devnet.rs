//! Running the `op-gossip devnet` command and reading its report.

use std::process::Command;

use serde_json::Value;

/// Runs `op-gossip devnet` with `args`, requires exit status 0, and returns its JSON report.
pub fn run_devnet(args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_op-gossip"))
        .arg("devnet")
        .args(args)
        .arg("--report")
        .arg(&report)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap()
}
