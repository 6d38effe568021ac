//! The discovery file (`--p2p.discovery.path`): our last ENR (so its sequence number only grows
//! across restarts) and the node table (so a restart finds its peers without the bootnodes).
//!
//! Read once at start, written by the service when the local record changes and every
//! [`super::service::PERSIST_INTERVAL`]. A small text file, one record a line, replaced
//! atomically (write a temporary file, fsync, rename, fsync the folder), so a crash leaves the
//! old file or the new one, never half of one. Reading is bounded ([`MAX_FILE_BYTES`],
//! [`MAX_PERSISTED_NODES`]); a line that does not parse is skipped and counted, never fatal.
//!
//! ```text
//! # op-gossip discovery v1
//! local enr:-Iu4Q…
//! node enr:-J24Q…
//! ```

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use discv5::Enr;

/// Records of the table kept across restarts: more than a full table of a small network and
/// enough to rejoin a large one (discv5's table holds at most 256 buckets × 16, almost all of
/// them empty in practice; lighthouse persists its whole table the same way).
pub const MAX_PERSISTED_NODES: usize = 512;
/// The file is never read past this size: 512 records of at most 300 bytes in base64 (discv5's
/// record limit) are about 200 KiB.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
const HEADER: &str = "# op-gossip discovery v1";
/// The file's name in the data directory.
pub const FILE_NAME: &str = "discovery.txt";

/// Where the table lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableStore {
    /// `memory`: nothing kept; the sequence number restarts from 1.
    Memory,
    /// A file.
    File(PathBuf),
}

impl TableStore {
    /// `--p2p.discovery.path`: `memory`, or a file path (default: `discovery.txt` in the data
    /// directory). An existing directory (op-node's default is a database directory, so an
    /// operator may pass one) gets the file inside it.
    pub fn from_flag(value: Option<&str>, data_dir: &Path) -> Self {
        match value {
            Some("memory") => Self::Memory,
            Some(path) if Path::new(path).is_dir() => Self::File(Path::new(path).join(FILE_NAME)),
            Some(path) => Self::File(PathBuf::from(path)),
            None => Self::File(data_dir.join(FILE_NAME)),
        }
    }
}

/// What was kept.
#[derive(Debug, Clone, Default)]
pub struct Persisted {
    /// Our last ENR.
    pub local: Option<Enr>,
    /// Table records (≤ [`MAX_PERSISTED_NODES`]).
    pub nodes: Vec<Enr>,
    /// Lines skipped because they did not parse.
    pub skipped: usize,
}

/// Why the file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// I/O.
    #[error("discovery file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PersistError + '_ {
    move |source| PersistError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Reads the file; a missing file is an empty table.
pub fn load(store: &TableStore) -> Result<Persisted, PersistError> {
    let TableStore::File(path) = store else {
        return Ok(Persisted::default());
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Persisted::default()),
        Err(e) => return Err(io(path)(e)),
    };
    let mut text = String::new();
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(io(path))?;
    text.push_str(&String::from_utf8_lossy(&bytes));
    Ok(parse(&text))
}

/// Parses the file's text (bounded by the caller).
pub fn parse(text: &str) -> Persisted {
    let mut out = Persisted::default();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (kind, value) = line.split_once(' ').unwrap_or((line, ""));
        match (kind, Enr::from_str(value.trim())) {
            ("local", Ok(enr)) => out.local = Some(enr),
            ("node", Ok(enr)) if out.nodes.len() < MAX_PERSISTED_NODES => out.nodes.push(enr),
            ("node", Ok(_)) => {}
            _ => out.skipped += 1,
        }
    }
    out
}

/// The file's text.
pub fn render(local: &Enr, nodes: &[Enr]) -> String {
    let mut text = format!("{HEADER}\nlocal {}\n", local.to_base64());
    for enr in nodes.iter().take(MAX_PERSISTED_NODES) {
        text.push_str("node ");
        text.push_str(&enr.to_base64());
        text.push('\n');
    }
    text
}

/// Replaces the file atomically (blocking: call it from the blocking pool).
pub fn save(store: &TableStore, local: &Enr, nodes: &[Enr]) -> Result<(), PersistError> {
    let TableStore::File(path) = store else {
        return Ok(());
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io(path))?;
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(render(local, nodes).as_bytes())
            .map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    // The rename is durable once the folder is.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The sequence number of our new record: the kept one's if nothing changed, one more if the
/// content differs (so a peer holding the old record takes the new one), 1 for a first start.
pub fn next_seq(kept: Option<&Enr>, fresh: &Enr) -> u64 {
    match kept {
        None => fresh.seq().max(1),
        // Same keys and values (the sequence number is not part of the content map).
        Some(old) if old.iter().eq(fresh.iter()) => old.seq(),
        Some(old) => old.seq().saturating_add(1).max(fresh.seq()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::records::{LocalRecord, discv5_key, local_enr};

    fn enr(i: u8, seq: u64, tcp: u16) -> Enr {
        let mut secret = [i; 32];
        let kp = libp2p::identity::Keypair::from(libp2p::identity::secp256k1::Keypair::from(
            libp2p::identity::secp256k1::SecretKey::try_from_bytes(&mut secret).unwrap(),
        ));
        let record = LocalRecord {
            ip: Some("127.0.0.1".parse().unwrap()),
            udp: 30303,
            tcp,
            chain_id: 10,
        };
        local_enr(&discv5_key(&kp).unwrap(), &record, seq).unwrap()
    }

    #[test]
    fn round_trip_through_a_file_and_garbage_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let store = TableStore::File(dir.path().join("sub/discovery.txt"));
        assert!(load(&store).unwrap().nodes.is_empty());
        let nodes: Vec<Enr> = (1..=3).map(|i| enr(i, 1, 9000)).collect();
        save(&store, &enr(9, 4, 9222), &nodes).unwrap();
        let back = load(&store).unwrap();
        assert_eq!(back.local.as_ref().map(Enr::seq), Some(4));
        assert_eq!(back.nodes, nodes);
        let garbled = format!(
            "{}node enr:xx\nbogus\nlocal \n",
            render(&enr(9, 4, 9222), &nodes)
        );
        let parsed = parse(&garbled);
        assert_eq!((parsed.nodes.len(), parsed.skipped), (3, 3));
        assert_eq!(load(&TableStore::Memory).unwrap().nodes.len(), 0);
    }

    #[test]
    fn table_is_bounded() {
        let one = enr(1, 1, 9000);
        let nodes = vec![one; MAX_PERSISTED_NODES + 10];
        assert_eq!(
            parse(&render(&enr(2, 1, 1), &nodes)).nodes.len(),
            MAX_PERSISTED_NODES
        );
    }

    #[test]
    fn sequence_only_grows() {
        let first = enr(1, 1, 9222);
        assert_eq!(next_seq(None, &first), 1);
        // Same content: same number.
        assert_eq!(next_seq(Some(&enr(1, 7, 9222)), &first), 7);
        // Changed content (another port): one more.
        assert_eq!(next_seq(Some(&enr(1, 7, 9333)), &first), 8);
    }

    #[test]
    fn flag_values() {
        let data = Path::new("/data");
        assert_eq!(
            TableStore::from_flag(Some("memory"), data),
            TableStore::Memory
        );
        assert_eq!(
            TableStore::from_flag(None, data),
            TableStore::File(PathBuf::from("/data/discovery.txt"))
        );
        let dir = tempfile::tempdir().unwrap();
        let given = dir.path().to_str().unwrap();
        assert_eq!(
            TableStore::from_flag(Some(given), data),
            TableStore::File(dir.path().join(FILE_NAME))
        );
    }
}
