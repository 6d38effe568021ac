//! Snappy in its two forms: raw *block* format for gossip messages, *framed* format for
//! payload_by_number response bodies.
//!
//! First step of the gossip-in path: the declared length is read from the block header and
//! bounded to 66 B..10 MiB *before* any buffer is allocated, so a 20-byte message claiming 4 GiB
//! costs nothing. Reference: `shared/spec/op-p2p.md` §2.1 and §6.1.

use std::io::{Read, Write};

use super::{MAX_GOSSIP_SIZE_BYTES, MIN_GOSSIP_SIZE_BYTES};

/// Why a compressed buffer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)] // variant fields are named for what they carry
pub enum SnappyError {
    /// The block header (a uvarint length) is malformed.
    #[error("invalid snappy length header: {0}")]
    BadHeader(snap::Error),
    /// The declared decompressed length is over the limit.
    #[error("declared decompressed length {declared} exceeds the limit of {limit} bytes")]
    TooLarge { declared: u64, limit: usize },
    /// The declared decompressed length is under the minimum.
    #[error(
        "declared decompressed length {declared} is below the minimum of {MIN_GOSSIP_SIZE_BYTES} bytes"
    )]
    TooSmall { declared: usize },
    /// The compressed body is corrupt or disagrees with its header.
    #[error("corrupt snappy data: {0}")]
    Corrupt(snap::Error),
    /// The body decompressed to another length than its header declared.
    #[error("corrupt snappy data: decoded {written} bytes, header declared {declared}")]
    LengthMismatch { written: usize, declared: usize },
    /// Reading a framed stream failed other than with a snappy error (not expected: it is read
    /// from memory).
    #[error("corrupt snappy stream: {0}")]
    Stream(std::io::ErrorKind),
}

/// Reads the decompressed length a raw snappy block declares, without decompressing.
///
/// Mirrors golang/snappy `DecodedLen`: a uvarint of at most 2^32 − 1.
pub fn declared_len(compressed: &[u8]) -> Result<usize, SnappyError> {
    snap::raw::decompress_len(compressed).map_err(SnappyError::BadHeader)
}

/// Decompresses a gossip message: header checked against `[66, 10 MiB]` first, then exactly the
/// declared number of bytes allocated and filled.
pub fn decompress_gossip(compressed: &[u8]) -> Result<Vec<u8>, SnappyError> {
    let declared = declared_len(compressed)?;
    if declared > MAX_GOSSIP_SIZE_BYTES {
        return Err(SnappyError::TooLarge {
            declared: declared as u64,
            limit: MAX_GOSSIP_SIZE_BYTES,
        });
    }
    if declared < MIN_GOSSIP_SIZE_BYTES {
        return Err(SnappyError::TooSmall { declared });
    }
    decompress_block_bounded(compressed, MAX_GOSSIP_SIZE_BYTES)
}

/// Decompresses a raw snappy block whose declared length is at most `limit`, with no minimum
/// (used by the message-id function, which hashes any valid block up to 10 MiB).
pub fn decompress_block_bounded(compressed: &[u8], limit: usize) -> Result<Vec<u8>, SnappyError> {
    let declared = declared_len(compressed)?;
    if declared > limit {
        return Err(SnappyError::TooLarge {
            declared: declared as u64,
            limit,
        });
    }
    let mut out = vec![0u8; declared];
    let written = snap::raw::Decoder::new()
        .decompress(compressed, &mut out)
        .map_err(SnappyError::Corrupt)?;
    if written != declared {
        return Err(SnappyError::LengthMismatch { written, declared });
    }
    Ok(out)
}

/// Compresses into the raw block format (what gossip publishes).
pub fn compress_block(data: &[u8]) -> Vec<u8> {
    // snap only fails for inputs over 2^32 − 1 bytes, far beyond any message we build.
    snap::raw::Encoder::new()
        .compress_vec(data)
        .unwrap_or_default()
}

/// Compresses into the framed format (what req/resp responses carry).
pub fn compress_framed(data: &[u8]) -> Vec<u8> {
    let mut enc = snap::write::FrameEncoder::new(Vec::with_capacity(data.len() / 2 + 64));
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.into_inner().unwrap_or_default()
}

/// Decompresses a framed stream (CRC-checked), refusing more than `limit` decompressed bytes.
pub fn decompress_framed(compressed: &[u8], limit: usize) -> Result<Vec<u8>, SnappyError> {
    let mut out = Vec::new();
    // Read one byte past the limit so "exactly at the limit" and "over it" can be told apart.
    let reader = snap::read::FrameDecoder::new(compressed).take(limit as u64 + 1);
    let mut reader = reader;
    reader.read_to_end(&mut out).map_err(|e| {
        // snap's frame reader reports its own errors inside the io::Error.
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<snap::Error>())
        {
            Some(snap) => SnappyError::Corrupt(snap.clone()),
            None => SnappyError::Stream(e.kind()),
        }
    })?;
    if out.len() > limit {
        return Err(SnappyError::TooLarge {
            declared: out.len() as u64,
            limit,
        });
    }
    Ok(out)
}
