//! The `op-gossip` binary: parse the command line and hand over to the library.

use clap::Parser;

/// Allocations at least this large are always served by their own `mmap` and given back to the
/// OS when freed. glibc's default threshold starts at 128 KiB but rises to the size of every
/// large block freed, up to 32 MiB: after a peer's 10 MiB gossip body (decompressed for its
/// message id, then freed) such bodies come from the heap, which does not shrink, and the node
/// kept ~80 MiB under a compression-bomb flood that never holds more than ~40 MiB at once. A
/// fixed 1 MiB threshold costs an `mmap` per large body, microseconds next to the decompression.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: libc::c_int = 1 << 20;

/// glibc malloc arenas at most. By default every thread that meets contention gets its own arena
/// (up to 8 per core), and each keeps the memory freed into it: the validation, blocking-pool and
/// tokio worker threads each held a few MiB of freed message buffers, which showed as peak RSS
/// under a bomb flood (`scripts/bench-bombs.sh`). Two arenas (one per core here) bound that at
/// the cost of some lock contention between threads allocating at once.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENA_MAX: libc::c_int = 2;

fn main() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
        libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX);
    }
    let cli = op_gossip::cli::Cli::parse();
    if let Err(e) = op_gossip::cli::run(cli) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
