//! OKX v5, cross-margin perpetual swaps, topped up from the Funding account (`6`) into the
//! Trading account (`18`).
//!
//! Architecture invariant: only this folder knows OKX's JSON, paths and signing. The snapshot
//! reads the account mode (hourly; Spot and Portfolio margin are refused), the Trading balance
//! (the margin ratio, turned right way up in `parse`), the swap positions and Funding's USDT.
//! Maintenance tiers come from `public/position-tiers` and contract sizes from
//! `public/instruments`, cached for an hour; when either cannot be read the position's own
//! `notionalUsd` and `mmr` imply them, and a warning says so.
//!
//! The transfer carries `clientId` = the rescue's key (32 hex characters). The intent is kept
//! before the request leaves; a transfer with an unknown outcome is looked up in
//! `transfer-state` by that `clientId` before anything else, and resent (with the same
//! `clientId`) only once the lookup proves it absent — OKX does not document that a repeated
//! `clientId` is refused (okx.md §3.6). 58111 (transfers paused while funding fees are
//! charged) is waited out and retried within the tick.
//!
//! Layout: `credential` (key, secret, passphrase; redacted), `signing` (pure HMAC/Base64),
//! `http` (timestamps, clock offset, per-endpoint budgets, 50011, 50102, demo header),
//! `parse` (raw JSON → core types, per account mode), `error` (codes → `VenueError`),
//! `stream` (the mark and account WebSocket protocols), `config`.
//!
//! Streamed (the default on OKX's own hosts): marks arrive on `mark-price` and account events
//! on the private channels, and the REST snapshot is re-priced locally between REST reads
//! (`venue::streaming`).

pub mod config;
pub mod credential;
pub mod error;
pub mod http;
pub mod parse;
pub mod signing;
pub mod stream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rust_decimal::Decimal;

use crate::clock::Clock;
use crate::money::Usdt;
use crate::venue::streaming::streamed;
use crate::venue::{
    KeyPermissions, Retry, TransferKey, TransferReceipt, TransferRequest, TransferRules,
    TransferStatus, Venue, VenueError, VenueSnapshot,
};
pub use config::{OkxSettings, StreamConfig};
pub use credential::Credentials;
pub use parse::AccountMode;

use http::HttpClient;

/// How often the account mode, instruments and tiers are read again.
const REFRESH_EVERY: Duration = Duration::from_secs(3600);
/// After a failed tier or instrument read, how long to use the implied figures before trying
/// again.
const RETRY_REFERENCE_AFTER: Duration = Duration::from_secs(60);
/// Waits between attempts when OKX answers 58111 (funding fees being charged).
pub const FUNDING_FEE_WAITS: [Duration; 3] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

pub struct OkxVenue {
    /// Shared with the private stream, whose login is stamped with its corrected clock.
    http: Arc<HttpClient>,
    region: String,
    mode: Mutex<Option<(Instant, AccountMode)>>,
    reference: Mutex<Reference>,
    intents: Mutex<HashMap<TransferKey, Intent>>,
    funding_fee_waits: Vec<Duration>,
}

#[derive(Default)]
struct Reference {
    known: parse::Reference,
    fetched: HashMap<String, Instant>,
    failed_at: Option<Instant>,
}

/// What this process knows of one transfer, recorded before it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub client_id: String,
    pub amount: Usdt,
    pub state: IntentState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntentState {
    /// Recorded; the request is leaving or has left without an answer yet.
    Sending,
    /// OKX answered `code: "0"` with this `transId`.
    Accepted(String),
    /// The answer never came or said "maybe".
    Unknown,
}

impl OkxVenue {
    /// The venue as the engine reads it: streamed when the settings name streams (marks and
    /// account events over WebSocket, the account re-priced locally), polled otherwise.
    pub fn open(settings: &OkxSettings, clock: Clock) -> Box<dyn Venue> {
        let venue = Self::new(settings, clock.clone());
        let Some(config) = settings.stream.clone() else {
            return Box::new(venue);
        };
        let offset = {
            let http = venue.http.clone();
            Box::new(move || http.offset().map(|o| o.offset_ms).unwrap_or(0))
        };
        let http = venue.http.clone();
        let credentials = settings.credentials.clone();
        streamed(
            Box::new(venue),
            clock,
            config.settings,
            offset,
            move |board| {
                let marks = stream::MarkStream::new(&config.public_url, board);
                let account = stream::AccountStream::new(&config.private_url, http, credentials);
                (marks, account)
            },
        )
    }

    pub fn new(settings: &OkxSettings, clock: Clock) -> Self {
        Self {
            http: Arc::new(HttpClient::new(
                settings.http.clone(),
                settings.credentials.clone(),
                clock,
            )),
            region: settings.region.clone(),
            mode: Mutex::new(None),
            reference: Mutex::new(Reference::default()),
            intents: Mutex::new(HashMap::new()),
            funding_fee_waits: FUNDING_FEE_WAITS.to_vec(),
        }
    }

    /// Shorter 58111 waits (tests).
    pub fn with_funding_fee_waits(mut self, waits: Vec<Duration>) -> Self {
        self.funding_fee_waits = waits;
        self
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// What this process recorded for a transfer key.
    pub fn intent(&self, key: &TransferKey) -> Option<Intent> {
        self.intents.lock().expect("intents lock").get(key).cloned()
    }

    /// Reads `account/config`.
    pub async fn account_config(&self) -> Result<parse::RawConfig, VenueError> {
        let body = self.http.call(&http::ACCOUNT_CONFIG, "", None).await?;
        parse::config(&body)
    }

    fn mode_of(raw: &parse::RawConfig) -> Result<AccountMode, VenueError> {
        let mode =
            AccountMode::from_acct_lv(&raw.acct_lv).ok_or_else(|| VenueError::Unsupported {
                message: format!(
                    "unknown OKX account mode acctLv = `{}`; marginguard knows 1 to 4",
                    raw.acct_lv
                ),
            })?;
        if !mode.supported() {
            return Err(VenueError::Unsupported {
                message: mode.explain().to_string(),
            });
        }
        Ok(mode)
    }

    async fn supported_mode(&self) -> Result<AccountMode, VenueError> {
        if let Some((at, mode)) = *self.mode.lock().expect("mode lock") {
            if at.elapsed() < REFRESH_EVERY {
                return Ok(mode);
            }
        }
        let mode = Self::mode_of(&self.account_config().await?)?;
        *self.mode.lock().expect("mode lock") = Some((Instant::now(), mode));
        Ok(mode)
    }

    /// Instruments and tiers for these swaps, from the cache or the public endpoints. A read
    /// that fails leaves the position to be implied from its own figures, with a warning.
    async fn reference_for(&self, ids: &[String]) -> parse::Reference {
        let (missing, retry_allowed) = {
            let r = self.reference.lock().expect("reference lock");
            let missing: Vec<String> = ids
                .iter()
                .filter(|id| {
                    r.fetched
                        .get(*id)
                        .is_none_or(|at| at.elapsed() >= REFRESH_EVERY)
                })
                .cloned()
                .collect();
            let allowed = r
                .failed_at
                .is_none_or(|at| at.elapsed() >= RETRY_REFERENCE_AFTER);
            (missing, allowed)
        };
        if !missing.is_empty() && retry_allowed {
            for id in missing {
                match self.fetch_reference(&id).await {
                    Ok((instrument, rows)) => {
                        let mut r = self.reference.lock().expect("reference lock");
                        r.known.tiers.insert(instrument.inst_family.clone(), rows);
                        r.known.instruments.insert(id.clone(), instrument);
                        r.fetched.insert(id, Instant::now());
                    }
                    Err(error) => {
                        tracing::warn!(inst_id = %id, %error, "OKX tiers or instrument unreadable: maintenance tiers implied from the position's own notionalUsd and mmr until the next try (60 s)");
                        self.reference.lock().expect("reference lock").failed_at =
                            Some(Instant::now());
                        break;
                    }
                }
            }
        }
        self.reference.lock().expect("reference lock").known.clone()
    }

    async fn fetch_reference(
        &self,
        inst_id: &str,
    ) -> Result<(parse::Instrument, Vec<parse::TierRow>), VenueError> {
        let body = self
            .http
            .call(
                &http::INSTRUMENTS,
                &format!("instType=SWAP&instId={inst_id}"),
                None,
            )
            .await?;
        let instrument = parse::instrument(&body)?;
        let body = self
            .http
            .call(
                &http::POSITION_TIERS,
                &format!(
                    "instType=SWAP&tdMode=cross&instFamily={}",
                    instrument.inst_family
                ),
                None,
            )
            .await?;
        Ok((instrument, parse::tiers(&body)?))
    }

    /// `transfer-state` by `clientId`. Empty `data`, 51000 and 58129 mean "not found".
    async fn lookup(&self, client_id: &str) -> Result<Option<parse::TransferState>, VenueError> {
        match self
            .http
            .call(
                &http::TRANSFER_STATE,
                &format!("clientId={client_id}"),
                None,
            )
            .await
        {
            Ok(body) => parse::transfer_state(&body),
            Err(VenueError::Rejected { code, .. })
                if error::NOT_FOUND_CODES.contains(&code.as_str()) =>
            {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    fn set_state(&self, key: TransferKey, state: IntentState) {
        if let Some(intent) = self.intents.lock().expect("intents lock").get_mut(&key) {
            intent.state = state;
        }
    }

    /// How long OKX may still act on a transfer call: every 58111 retry is a call of its own
    /// after its wait, and only the last could have been taken.
    fn transfer_may_act_for(&self) -> Duration {
        let waits: Duration = self.funding_fee_waits.iter().sum();
        let calls = u32::try_from(self.funding_fee_waits.len() + 1).unwrap_or(u32::MAX);
        // Every attempt but the last was refused before processing; only the last can still
        // be taken, until its timestamp's validity runs out.
        waits + self.http.attempt_span().saturating_mul(calls) + http::OKX_TIMESTAMP_VALIDITY
    }

    /// Sends the POST, waiting out 58111. `Ok(transId)` when OKX accepted it.
    async fn post_transfer(&self, key: TransferKey, body: &str) -> Result<String, VenueError> {
        let mut waits = self.funding_fee_waits.iter();
        loop {
            match self.http.call(&http::TRANSFER, "", Some(body)).await {
                Ok(answer) => {
                    // A 2xx that does not say which transfer it made may still have made it.
                    return parse::transfer_ack(&answer).map_err(|e| VenueError::OutcomeUnknown {
                        detail: format!(
                            "the transfer was answered but the answer does not parse: {e}"
                        ),
                    });
                }
                Err(VenueError::Rejected { code, message }) if code == error::FUNDING_FEE_PAUSE => {
                    let Some(wait) = waits.next() else {
                        // Refused before processing: nothing moved; the next tick may try again.
                        return Err(VenueError::Unreachable {
                            detail: format!(
                                "{code}: {message} (still paused after {} tries); nothing moved",
                                self.funding_fee_waits.len() + 1
                            ),
                        });
                    };
                    tracing::warn!(%key, ?wait, "OKX pauses transfers while funding fees are charged (58111); waiting and retrying");
                    tokio::time::sleep(*wait).await;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// Spawns the two connections when the engine first waits on the venue.
fn status_of(state: &parse::TransferState) -> TransferStatus {
    match state.state {
        parse::State::Success => TransferStatus::Settled,
        parse::State::Pending => TransferStatus::Pending,
        parse::State::Failed => {
            TransferStatus::Failed(format!("OKX reports transfer {} failed", state.trans_id))
        }
    }
}

/// The body of the Funding → Trading transfer, compact, in the reference's field order.
pub fn transfer_body(amount: Usdt, client_id: &str) -> String {
    format!(
        r#"{{"ccy":"USDT","amt":"{}","from":"6","to":"18","type":"0","clientId":"{client_id}"}}"#,
        amount.0.normalize()
    )
}

#[async_trait]
impl Venue for OkxVenue {
    fn may_still_act_for(&self) -> Duration {
        self.transfer_may_act_for()
    }

    fn kind(&self) -> &'static str {
        "okx"
    }

    fn transfer_rules(&self) -> TransferRules {
        // Cents are within USDT's transfer precision; Funding → Trading settles in seconds.
        TransferRules {
            step: Usdt(Decimal::new(1, 2)),
            settlement: Duration::from_secs(5),
        }
    }

    async fn snapshot(&self) -> Result<VenueSnapshot, VenueError> {
        let as_of = self.http.local_now();
        let mode = self.supported_mode().await?;
        let (balance, positions, funding) = tokio::try_join!(
            self.http.call(&http::BALANCE, "ccy=USDT", None),
            self.http.call(&http::POSITIONS, "instType=SWAP", None),
            self.http.call(&http::FUNDING_BALANCES, "ccy=USDT", None),
        )?;
        let pool = parse::pool(mode, &balance)?;
        let reserve = parse::funding_usdt(&funding)?;
        let ids = parse::open_cross_swaps(&positions)?;
        let reference = self.reference_for(&ids).await;
        let read = parse::account(mode, &pool, &positions, &reference)?;
        if !read.implied.is_empty() {
            tracing::debug!(implied = ?read.implied, "tiers implied from the positions' own figures");
        }
        Ok(VenueSnapshot {
            as_of,
            account: read.account,
            wallet_balance: pool.wallet,
            reserve_available: reserve,
            shadowed: Usdt::ZERO,
            stand_in_tiers: read.implied,
            unguarded: read.isolated,
        })
    }

    async fn transfer(&self, request: &TransferRequest) -> Result<TransferReceipt, VenueError> {
        if request.amount.0 <= Decimal::ZERO {
            return Err(VenueError::Rejected {
                code: "amount".into(),
                message: format!("refusing to transfer {}", request.amount),
            });
        }
        let client_id = request.key.compact();
        // A key already sent: look it up before anything else; resend only if proven absent.
        if let Some(previous) = self.intent(&request.key) {
            if let Some(found) = self.lookup(&previous.client_id).await? {
                tracing::info!(key = %request.key, trans_id = %found.trans_id, "transfer already known to OKX; not sent again");
                return Ok(TransferReceipt {
                    venue_id: Some(found.trans_id.clone()),
                    status: status_of(&found),
                });
            }
            tracing::warn!(key = %request.key, "transfer-state has no record of this clientId; sending it again with the same clientId");
        }
        self.intents.lock().expect("intents lock").insert(
            request.key,
            Intent {
                client_id: client_id.clone(),
                amount: request.amount,
                state: IntentState::Sending,
            },
        );
        let body = transfer_body(request.amount, &client_id);
        match self.post_transfer(request.key, &body).await {
            Ok(trans_id) => {
                self.set_state(request.key, IntentState::Accepted(trans_id.clone()));
                tracing::info!(key = %request.key, %trans_id, amount = %request.amount, "okx accepted the transfer");
                // `code: "0"` is not proof (okx.md §3.6): ask transfer-state once right away.
                let status = match self.lookup(&client_id).await {
                    Ok(Some(found)) => status_of(&found),
                    _ => TransferStatus::Pending,
                };
                Ok(TransferReceipt {
                    venue_id: Some(trans_id),
                    status,
                })
            }
            Err(error) if error.retry() == Retry::AfterReconcile => {
                self.set_state(request.key, IntentState::Unknown);
                Err(error)
            }
            Err(error) => {
                // Refused before processing: nothing moved, nothing to remember.
                self.intents
                    .lock()
                    .expect("intents lock")
                    .remove(&request.key);
                Err(error)
            }
        }
    }

    async fn transfer_status(
        &self,
        request: &TransferRequest,
    ) -> Result<TransferStatus, VenueError> {
        let client_id = request.key.compact();
        Ok(match self.lookup(&client_id).await? {
            Some(found) => {
                if found.amount.is_some_and(|a| a != request.amount.0) {
                    tracing::warn!(key = %request.key, okx_amount = ?found.amount, amount = %request.amount, "transfer-state reports another amount for this clientId");
                }
                status_of(&found)
            }
            None => TransferStatus::NotFound,
        })
    }

    /// The pre-flight: clock skew, account mode, key permissions, host.
    async fn permissions(&self) -> Result<KeyPermissions, VenueError> {
        let mut notes = Vec::new();
        let offset = self.http.sync_clock().await?;
        notes.push(offset.describe("OKX", Some("OKX refuses more than 30 s"), 5000));
        let raw = self.account_config().await?;
        let mode = Self::mode_of(&raw)?;
        *self.mode.lock().expect("mode lock") = Some((Instant::now(), mode));
        notes.push(format!("account mode: {}", mode.explain()));
        notes.push(format!(
            "position mode: {}",
            match raw.pos_mode.as_str() {
                "long_short_mode" => "long/short",
                "net_mode" => "net",
                other => other,
            }
        ));
        let perms = parse::permissions(&raw.perm);
        notes.push(format!("key permissions: {}", perms.join(", ")));
        if raw.ip.trim().is_empty() {
            notes.push("a key with Trade permission and no IP binding expires after 14 days without use; bind it to this machine's address".into());
        }
        let settings = self.http.settings();
        notes.push(format!(
            "host: region {}{}, key {}…",
            self.region,
            if settings.demo {
                ", demo trading (x-simulated-trading: 1)"
            } else {
                ""
            },
            self.http.key_prefix()
        ));
        Ok(KeyPermissions {
            can_withdraw: perms.iter().any(|p| p == "withdraw"),
            can_transfer: perms.iter().any(|p| p == "trade"),
            ip_restricted: !raw.ip.trim().is_empty(),
            account_id: Some(raw.uid.trim().to_string()).filter(|uid| !uid.is_empty()),
            notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transfer_body_matches_the_reference_vector() {
        let body = transfer_body(Usdt(Decimal::new(2550, 2)), "topup0001");
        assert_eq!(
            body,
            r#"{"ccy":"USDT","amt":"25.5","from":"6","to":"18","type":"0","clientId":"topup0001"}"#
        );
        let prehash = signing::prehash(
            "2020-12-08T09:08:57.715Z",
            "POST",
            "/api/v5/asset/transfer",
            &body,
        );
        assert_eq!(
            signing::sign(b"22582BD0CFF14C41EDBF1AB98506286D", &prehash),
            "wtG2LdPDVQbCtoXERSICc+BnwuKjFHsVMgXr2M79e7U="
        );
    }

    #[test]
    fn the_client_id_is_the_key_within_okx_limits() {
        let key = TransferKey::derive("okx-main", crate::time::Timestamp(1), 0, 0);
        let id = key.compact();
        assert_eq!(id.len(), 32);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
