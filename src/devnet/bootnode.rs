//! The devnet's bootnode (`--topology discovery`): an `op-gossip bootnode` process on
//! 127.0.0.1 whose ENR is the only thing the nodes are given. It prints its ENR as its first
//! stdout line; its log goes to `bootnode.log` in the devnet directory.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::DevnetError;

/// How long the bootnode gets to print its ENR.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the bootnode; returns the process (killed when dropped) and its ENR.
pub async fn start(
    binary: &Path,
    rollup: &Path,
    dir: &Path,
) -> Result<(Child, String), DevnetError> {
    let log = std::fs::File::create(dir.join("bootnode.log"))
        .map_err(DevnetError::io("cannot create bootnode.log"))?;
    let mut child = Command::new(binary)
        .arg("bootnode")
        .arg("--rollup.config")
        .arg(rollup)
        .args([
            "--p2p.listen.ip",
            "127.0.0.1",
            "--p2p.discovery.path",
            "memory",
        ])
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .map_err(DevnetError::io("cannot start the bootnode"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| DevnetError::Run("bootnode: no stdout".into()))?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(START_TIMEOUT, lines.next_line())
        .await
        .map_err(|_| DevnetError::Timeout("the bootnode to print its ENR".into()))?
        .map_err(DevnetError::io("reading the bootnode's output"))?
        .filter(|l| l.starts_with("enr:"))
        .ok_or_else(|| DevnetError::Run("the bootnode printed no ENR".into()))?;
    Ok((child, line))
}
