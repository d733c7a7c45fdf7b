//! The venue boundary: one trait the engine talks to, one folder per venue behind it.
//!
//! Architecture invariant: no venue's JSON, paths or signing leave its folder. The engine sees
//! only the types in this file — figures already converted into the core's terms.

pub mod binance;
pub mod bybit;
pub mod common;
pub mod dry_run;
pub mod okx;
pub mod sim;
pub mod streaming;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::core::Account;
use crate::money::Usdt;
use crate::time::Timestamp;

/// What a venue says about the watched account and the reserve, in the core's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct VenueSnapshot {
    /// When the venue produced these figures (its clock, corrected for skew).
    pub as_of: Timestamp,
    pub account: Account,
    /// The futures/trading wallet balance without unrealized PnL: a settled top-up raises it
    /// by the amount, which is how the engine verifies that money landed.
    pub wallet_balance: Usdt,
    /// What the reserve wallet could send right now.
    pub reserve_available: Usdt,
    /// Dry-run only: would-be transfers folded into these figures, so logs can say so.
    pub shadowed: Usdt,
    /// Symbols whose maintenance tiers could not be read and were stood in for by the
    /// position's own figures (a flat rate): the snapshot is degraded, and a top-up sized on
    /// it says so in its log line and its journal reason.
    pub stand_in_tiers: Vec<String>,
    /// Open positions left out of `account` because a top-up of the cross wallet cannot
    /// help them (isolated margin): named so the operator hears they are not guarded.
    pub unguarded: Vec<String>,
}

/// The idempotency key of one rescue: 128 bits, rendered as a UUID for Bybit's `transferId`
/// and as 32 hex characters for OKX's `clientId`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransferKey(pub u128);

impl TransferKey {
    /// Derived from the account, the decision instant and a sequence number: unique per
    /// rescue, and reproducible under the simulator.
    pub fn derive(account: &str, at: Timestamp, sequence: u64, salt: u64) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(account.as_bytes());
        hasher.update(at.as_millis().to_be_bytes());
        hasher.update(sequence.to_be_bytes());
        hasher.update(salt.to_be_bytes());
        let digest = hasher.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        // Stamp the UUID version-4/variant bits so strict UUID parsers accept it.
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Self(u128::from_be_bytes(bytes))
    }

    pub fn compact(&self) -> String {
        format!("{:032x}", self.0)
    }

    pub fn uuid(&self) -> String {
        let h = self.compact();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

impl fmt::Debug for TransferKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransferKey({})", self.compact())
    }
}

impl fmt::Display for TransferKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.compact())
    }
}

/// Reserve → futures wallet, in the settlement asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    pub key: TransferKey,
    pub amount: Usdt,
    /// When the decision was made; venues without client ids (Binance) match history by it.
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferStatus {
    Pending,
    Settled,
    Failed(String),
    /// The venue has no record of it (yet).
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferReceipt {
    /// The venue's own id for the transfer, when it gives one.
    pub venue_id: Option<String>,
    pub status: TransferStatus,
}

/// What the API key may do; `check` refuses keys that can withdraw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPermissions {
    pub can_withdraw: bool,
    pub can_transfer: bool,
    pub ip_restricted: bool,
    /// The venue's own id for the account the key belongs to (Binance `uid`, Bybit `userID`,
    /// OKX `uid`), where the venue tells it: the journal keys caps by it, so renaming an
    /// account in the config does not reset its 24 h spend.
    pub account_id: Option<String>,
    pub notes: Vec<String>,
}

/// How the venue moves money: the transfer precision and how long settlement usually takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferRules {
    pub step: Usdt,
    pub settlement: Duration,
}

/// Whether repeating the failed call is safe — decided where the error is made, so no call
/// site guesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Nothing happened; the same call may be made again.
    Safe,
    /// The call may have taken effect; look it up before anything else.
    AfterReconcile,
    /// Repeating cannot help.
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VenueError {
    #[error("venue unreachable: {detail}")]
    Unreachable { detail: String },
    #[error("outcome unknown (the request may have taken effect): {detail}")]
    OutcomeUnknown { detail: String },
    #[error("rejected by the venue: {code}: {message}")]
    Rejected { code: String, message: String },
    #[error("rate limited{}", retry_after.map(|d| format!(", retry after {d:?}")).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    #[error("authentication failed: {message}")]
    Auth { message: String },
    #[error("malformed response ({detail}); raw body: {raw}")]
    Malformed { detail: String, raw: String },
    #[error("unsupported account: {message}")]
    Unsupported { message: String },
    #[error("the venue has closed: {reason}")]
    Closed { reason: String },
}

impl VenueError {
    pub fn retry(&self) -> Retry {
        match self {
            VenueError::Unreachable { .. } | VenueError::RateLimited { .. } => Retry::Safe,
            VenueError::OutcomeUnknown { .. } => Retry::AfterReconcile,
            VenueError::Rejected { .. }
            | VenueError::Auth { .. }
            | VenueError::Malformed { .. }
            | VenueError::Unsupported { .. }
            | VenueError::Closed { .. } => Retry::Never,
        }
    }
}

/// Every venue — real, simulated, or the dry-run wrapper — behind one trait.
#[async_trait]
pub trait Venue: Send + Sync {
    /// "sim", "binance", …: for logs.
    fn kind(&self) -> &'static str;

    fn transfer_rules(&self) -> TransferRules;

    /// The account and the reserve, now.
    async fn snapshot(&self) -> Result<VenueSnapshot, VenueError>;

    /// Moves `request.amount` from the reserve into the futures wallet.
    async fn transfer(&self, request: &TransferRequest) -> Result<TransferReceipt, VenueError>;

    /// Looks a transfer up by its key (or, where the venue has no client ids, by its amount
    /// and time window).
    async fn transfer_status(
        &self,
        request: &TransferRequest,
    ) -> Result<TransferStatus, VenueError>;

    async fn permissions(&self) -> Result<KeyPermissions, VenueError>;

    /// Hands the venue what the journal knows of a past transfer — its venue id — after a
    /// restart, so a lookup never matches one venue record to two rescues. Venues whose
    /// lookups go by the idempotency key need nothing, hence the default.
    fn remember(&self, _key: TransferKey, _venue_id: &str) {}

    /// The venue's id of the record a lookup matched to `key`, for the journal to keep (so
    /// the claim survives a restart). Venues that look up by the idempotency key need not say.
    fn matched_id(&self, _key: TransferKey) -> Option<String> {
        None
    }

    /// Whether the venue refuses a second transfer under the same key (Bybit's `transferId`).
    /// Then a transfer whose outcome is unknown and that the venue does not show can be sent
    /// again under its own key at once — if the first did land, the second is refused.
    fn refuses_duplicate_keys(&self) -> bool {
        false
    }

    /// How long after a transfer call begins the venue may still act on it: the adapter's own
    /// waits and retries and the request's validity at the venue (Binance's `recvWindow`).
    /// Until then plus the settlement time, a lookup that misses the transfer proves nothing.
    fn may_still_act_for(&self) -> Duration {
        Duration::ZERO
    }

    /// Returns when the venue has news that may move a decision (a streamed mark, an account
    /// event), so the engine decides now instead of at its next poll. Venues read by polling
    /// alone never have news.
    async fn changed(&self) {
        std::future::pending::<()>().await
    }

    /// How often the venue's figures refresh while they are streamed: with it the rescue
    /// horizon is the stream's cadence plus the settlement, not the poll interval. `None`
    /// while the figures come from polling.
    fn observation_interval(&self) -> Option<Duration> {
        None
    }

    /// How the venue's figures arrive, for the operator (metrics, the status page, a
    /// "stream fell back" alert). `None` for a venue that only polls.
    fn feed(&self) -> Option<FeedHealth> {
        None
    }
}

/// The state of a streamed venue's feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedHealth {
    /// The marks price the account (decisions on every mark); `false`: REST polling.
    pub streaming: bool,
    /// Why it polls, while it does.
    pub fallback_reason: Option<String>,
    /// Times the streamed account drifted beyond `drift_alert` from a REST read.
    pub drifts: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_renders_for_every_venue() {
        let key = TransferKey::derive("acct", Timestamp(1), 0, 0);
        let uuid = key.uuid();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4", "version nibble");
        let compact = key.compact();
        assert_eq!(compact.len(), 32);
        assert!(compact.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(uuid.replace('-', ""), compact);
    }

    #[test]
    fn keys_differ_per_rescue_and_repeat_per_input() {
        let a = TransferKey::derive("acct", Timestamp(1), 0, 0);
        assert_eq!(a, TransferKey::derive("acct", Timestamp(1), 0, 0));
        assert_ne!(a, TransferKey::derive("acct", Timestamp(1), 1, 0));
        assert_ne!(a, TransferKey::derive("other", Timestamp(1), 0, 0));
    }

    #[test]
    fn only_unknown_outcomes_need_reconciling() {
        let unknown = VenueError::OutcomeUnknown {
            detail: "timeout".into(),
        };
        assert_eq!(unknown.retry(), Retry::AfterReconcile);
        let rejected = VenueError::Rejected {
            code: "-5013".into(),
            message: "insufficient".into(),
        };
        assert_eq!(rejected.retry(), Retry::Never);
    }
}
