//! Dry-run against a real venue: reads pass through, transfers are recorded instead of sent.
//!
//! Why a wrapper: dry-run is chosen once, at wiring, and nothing below knows about it. The
//! would-be transfers are folded into later snapshots as a shadow (equity and wallet up,
//! reserve down), so the decisions that follow are the ones the live bot would have made —
//! and every snapshot says how much of it is shadow.

use std::sync::Mutex;

use async_trait::async_trait;

use crate::money::Usdt;
use crate::venue::{
    KeyPermissions, TransferKey, TransferReceipt, TransferRequest, TransferRules, TransferStatus,
    Venue, VenueError, VenueSnapshot,
};

pub struct DryRun {
    inner: Box<dyn Venue>,
    shadow: Mutex<Vec<(TransferKey, Usdt)>>,
}

impl DryRun {
    pub fn new(inner: Box<dyn Venue>) -> Self {
        Self {
            inner,
            shadow: Mutex::new(Vec::new()),
        }
    }

    fn shadow_total(&self) -> Usdt {
        self.shadow
            .lock()
            .expect("shadow lock")
            .iter()
            .map(|(_, amount)| *amount)
            .sum()
    }
}

#[async_trait]
impl Venue for DryRun {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn transfer_rules(&self) -> TransferRules {
        self.inner.transfer_rules()
    }

    async fn snapshot(&self) -> Result<VenueSnapshot, VenueError> {
        let mut snapshot = self.inner.snapshot().await?;
        let shadow = self.shadow_total();
        snapshot.account.equity += shadow;
        snapshot.wallet_balance += shadow;
        snapshot.reserve_available = (snapshot.reserve_available - shadow).max(Usdt::ZERO);
        snapshot.shadowed = shadow;
        Ok(snapshot)
    }

    async fn transfer(&self, request: &TransferRequest) -> Result<TransferReceipt, VenueError> {
        tracing::info!(
            venue = self.inner.kind(),
            amount = %request.amount,
            key = %request.key,
            "dry-run: would transfer {} USDT from the reserve into the futures wallet",
            request.amount
        );
        self.shadow
            .lock()
            .expect("shadow lock")
            .push((request.key, request.amount));
        Ok(TransferReceipt {
            venue_id: None,
            status: TransferStatus::Settled,
        })
    }

    async fn transfer_status(
        &self,
        request: &TransferRequest,
    ) -> Result<TransferStatus, VenueError> {
        let known = self
            .shadow
            .lock()
            .expect("shadow lock")
            .iter()
            .any(|(key, _)| *key == request.key);
        Ok(if known {
            TransferStatus::Settled
        } else {
            TransferStatus::NotFound
        })
    }

    async fn permissions(&self) -> Result<KeyPermissions, VenueError> {
        self.inner.permissions().await
    }

    fn remember(&self, key: TransferKey, venue_id: &str) {
        self.inner.remember(key, venue_id);
    }

    fn matched_id(&self, key: TransferKey) -> Option<String> {
        self.inner.matched_id(key)
    }

    fn refuses_duplicate_keys(&self) -> bool {
        self.inner.refuses_duplicate_keys()
    }

    fn may_still_act_for(&self) -> std::time::Duration {
        self.inner.may_still_act_for()
    }

    async fn changed(&self) {
        self.inner.changed().await
    }

    fn observation_interval(&self) -> Option<std::time::Duration> {
        self.inner.observation_interval()
    }

    fn feed(&self) -> Option<crate::venue::FeedHealth> {
        self.inner.feed()
    }
}
