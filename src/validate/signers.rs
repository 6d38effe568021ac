//! The set of addresses whose signatures the validator accepts.
//!
//! Normally one: the chain's unsafe-block signer. After a rotation (a new signer read from the L1
//! SystemConfig), the previous signer stays accepted for a grace period (op-node
//! `DefaultSignerGracePeriod` = 3 h), which ends early once a block from the new signer verifies.
//! The zero address never counts: a set without a real address is "unset", and the validator
//! then IGNOREs every block, as op-node does. Reference: `shared/spec/op-p2p.md` §2.5.

use alloy_primitives::Address;

/// How long the previous signer stays accepted after a rotation (op-node, 3 h).
pub const DEFAULT_SIGNER_GRACE_SECS: u64 = 3 * 60 * 60;

/// Result of checking a recovered address against the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerMatch {
    /// No signer is configured.
    Unset,
    /// A current signer.
    Current,
    /// A previous signer still inside its grace period.
    Previous,
    /// Not accepted.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Accepted {
    address: Address,
    /// `None` for a current signer; the end of the grace period (unix s) for a previous one.
    until: Option<u64>,
}

/// Accepted unsafe-block signers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignerSet {
    signers: Vec<Accepted>,
}

impl SignerSet {
    /// A set of current signers (zero addresses and duplicates dropped).
    pub fn new(addresses: impl IntoIterator<Item = Address>) -> Self {
        let mut set = Self::default();
        for address in addresses {
            if !address.is_zero() && !set.signers.iter().any(|s| s.address == address) {
                set.signers.push(Accepted {
                    address,
                    until: None,
                });
            }
        }
        set
    }

    /// Checks `recovered` at time `now` (unix seconds). As in op-node, the set is "unset" when it
    /// has no current signer, even if a previous one is still in its grace period.
    pub fn check(&self, recovered: Address, now: u64) -> SignerMatch {
        if !self.is_configured() {
            return SignerMatch::Unset;
        }
        match self.signers.iter().find(|s| s.address == recovered) {
            Some(Accepted { until: None, .. }) => SignerMatch::Current,
            Some(Accepted {
                until: Some(until), ..
            }) if now < *until => SignerMatch::Previous,
            _ => SignerMatch::Unknown,
        }
    }

    /// True if there is a current signer to check against.
    pub fn is_configured(&self) -> bool {
        self.signers.iter().any(|s| s.until.is_none())
    }

    /// True while some previous signer is in its grace period.
    pub fn has_previous(&self) -> bool {
        self.signers.iter().any(|s| s.until.is_some())
    }

    /// Makes `new` the current signer (op-node `RuntimeConfig.Load` on a changed L1 value).
    ///
    /// The signers that were current stay accepted until `now + grace_secs`, replacing any
    /// earlier previous signer. Rotating to an address that is already current changes nothing;
    /// setting a signer for the first time (no current one) starts no grace period; rotating to
    /// the zero address leaves the set unset.
    pub fn rotate(&mut self, new: Address, now: u64, grace_secs: u64) {
        if self
            .signers
            .iter()
            .any(|s| s.address == new && s.until.is_none())
        {
            return;
        }
        let until = now.saturating_add(grace_secs);
        self.signers
            .retain(|s| s.until.is_none() && s.address != new);
        for s in &mut self.signers {
            s.until = Some(until);
        }
        if !new.is_zero() {
            self.signers.push(Accepted {
                address: new,
                until: None,
            });
        }
    }

    /// Ends every grace period (called once a block from a current signer verifies).
    pub fn confirm_current(&mut self) {
        self.signers.retain(|s| s.until.is_none());
    }

    /// The current signers.
    pub fn current(&self) -> impl Iterator<Item = Address> + '_ {
        self.signers
            .iter()
            .filter(|s| s.until.is_none())
            .map(|s| s.address)
    }
}
