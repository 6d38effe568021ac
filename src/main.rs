//! The `op-gossip` binary: parse the command line and hand over to the library.

use clap::Parser;

fn main() {
    let cli = op_gossip::cli::Cli::parse();
    if let Err(e) = op_gossip::cli::run(cli) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
