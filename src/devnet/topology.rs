//! How the devnet's nodes meet: the dial pairs of each topology (or, for `discovery`, none:
//! the nodes find each other through a bootnode).

use std::collections::HashSet;

/// How nodes are connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// Every node dials every other.
    Full,
    /// Node i dials node i+1 (and the last the first).
    Ring,
    /// Every node dials `degree` others chosen by a seeded generator.
    Random {
        /// Peers each node dials.
        degree: usize,
    },
    /// Nobody dials: one bootnode, every node given only its ENR, discv5 does the rest.
    Discovery,
}

impl std::str::FromStr for Topology {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "full" => Ok(Self::Full),
            "ring" => Ok(Self::Ring),
            "discovery" => Ok(Self::Discovery),
            other => other
                .strip_prefix("random:")
                .and_then(|d| d.parse().ok())
                .filter(|&d| d > 0)
                .map(|degree| Self::Random { degree })
                .ok_or_else(|| {
                    format!(
                        "topology {other:?}: expected full, ring, discovery or random:<degree ≥ 1>"
                    )
                }),
        }
    }
}

impl std::fmt::Display for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full => f.write_str("full"),
            Self::Ring => f.write_str("ring"),
            Self::Random { degree } => write!(f, "random:{degree}"),
            Self::Discovery => f.write_str("discovery"),
        }
    }
}

impl Topology {
    /// The (dialer, dialee) pairs for `n` nodes; no duplicates, no self-loops.
    pub fn edges(self, n: usize, seed: u64) -> Vec<(usize, usize)> {
        let mut edges = HashSet::new();
        match self {
            Self::Full => {
                for i in 1..n {
                    for j in 0..i {
                        edges.insert((i, j));
                    }
                }
            }
            Self::Ring if n > 1 => {
                for i in 0..n {
                    let j = (i + 1) % n;
                    if !edges.contains(&(j, i)) {
                        edges.insert((i, j));
                    }
                }
            }
            Self::Ring | Self::Discovery => {}
            Self::Random { degree } => {
                let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
                let mut next = move || {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state
                };
                for i in 0..n {
                    let mut picked = 0;
                    let mut tries = 0;
                    while picked < degree.min(n.saturating_sub(1)) && tries < 100 * n {
                        tries += 1;
                        let j = (next() % n as u64) as usize;
                        if j != i && !edges.contains(&(i, j)) && !edges.contains(&(j, i)) {
                            edges.insert((i, j));
                            picked += 1;
                        }
                    }
                }
            }
        }
        let mut edges: Vec<_> = edges.into_iter().collect();
        edges.sort_unstable();
        edges
    }
}
