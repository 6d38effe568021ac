//! The adversary's kinds of misbehaviour (`op-gossip devnet --adversary <kind>`), and which of
//! them op-node's rules must ban.

/// How the adversary misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdversaryKind {
    /// Well-formed blocks signed by a key that is not the chain's signer.
    InvalidSig,
    /// Blocks signed by the sequencer key but invalid ([`super::forge::Defect`]).
    InvalidBlock,
    /// Many distinct valid blocks at one height the sequencer already published.
    Equivocate,
    /// payload_by_number requests at a high rate to every target.
    SpamReqResp,
    /// Messages whose decompressed size is over the 10 MiB limit.
    Oversize,
}

impl AdversaryKind {
    /// Every kind.
    pub const ALL: [Self; 5] = [
        Self::InvalidSig,
        Self::InvalidBlock,
        Self::Equivocate,
        Self::SpamReqResp,
        Self::Oversize,
    ];

    /// The flag value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidSig => "invalid-sig",
            Self::InvalidBlock => "invalid-block",
            Self::Equivocate => "equivocate",
            Self::SpamReqResp => "spam-reqresp",
            Self::Oversize => "oversize",
        }
    }

    /// Whether op-node's rules ban this adversary: every gossip kind does (a REJECT it answers
    /// for); a req/resp client is never scored, so the spammer can only be rate limited.
    pub fn should_be_banned(self) -> bool {
        self != Self::SpamReqResp
    }

    pub(super) fn needs_sequencer_key(self) -> bool {
        matches!(self, Self::InvalidBlock | Self::Equivocate)
    }
}

impl std::fmt::Display for AdversaryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AdversaryKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<_> = Self::ALL.iter().map(|k| k.as_str()).collect();
                format!("adversary {s:?}: expected one of {}", all.join(", "))
            })
    }
}
