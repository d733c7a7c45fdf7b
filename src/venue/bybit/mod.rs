//! Bybit v5, Unified Trading Account in cross margin (`REGULAR_MARGIN`), topped up from the
//! Funding wallet.
//!
//! Architecture invariant: only this folder knows Bybit's JSON, paths and signing. The snapshot
//! reads the Unified wallet (`accountType=UNIFIED`: margin balance, maintenance, `accountMMRate`,
//! the USDT wallet balance), the linear USDT positions with their marks, and the Funding
//! wallet's transferable USDT. The account mode (`/v5/account/info`) is read hourly and anything
//! but a UTA in `REGULAR_MARGIN` is refused — never from the deprecated position `tradeMode`.
//! Maintenance tiers come from the public `/v5/market/risk-limit`, cached per symbol and
//! refreshed hourly; when a symbol's tiers cannot be had, that position gets a flat table at its
//! own `positionMM / positionValue` and a warning says so.
//!
//! The transfer is `inter-transfer` FUND → UNIFIED whose `transferId` is the rescue's
//! `TransferKey` as a UUID: a resend of the same rescue carries the same id, Bybit refuses a
//! second execution with 131214 "TransferId exist", and that answer means "exists: look it up",
//! never failure. An unknown outcome is looked up by that id before anything else.
//!
//! Layout: `credential` (key and secret, redacted), `signing` (pure HMAC over Bybit's pre-sign
//! string), `http` (timestamps, clock offset, per-endpoint budgets, 10002/10006/403), `parse`
//! (raw JSON → core types), `error` (codes → `VenueError`), `config`, `stream` (the ticker
//! and private WebSocket streams, read into marks and account events).

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
use serde::Serialize;

use crate::clock::Clock;
use crate::core::{Account, TierTable};
use crate::money::Usdt;
use crate::time::Timestamp;
use crate::venue::streaming::streamed;
use crate::venue::{
    KeyPermissions, TransferKey, TransferReceipt, TransferRequest, TransferRules, TransferStatus,
    Venue, VenueError, VenueSnapshot,
};
pub use config::{BybitSettings, Profile};
pub use credential::Credentials;

use http::{HttpClient, Payload};
use parse::{RawPosition, TransferState};

/// How often the tiers and the account mode are read again.
const REFRESH_EVERY: Duration = Duration::from_secs(3600);
/// After a failed tier read, wait this long before asking again (the flat table stands in).
const TIER_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Positions per page (Bybit's maximum) and pages per read.
const PAGE: &str = "200";
const MAX_PAGES: usize = 5;
/// The lookup window starts this long before the rescue was decided (Bybit's records are
/// second-granular and a lookup covers `[startTime, startTime + 7 d]`).
const LOOKUP_BEFORE_MS: i64 = 10 * 60_000;

pub struct BybitVenue {
    /// Shared with the private stream, whose auth expires on the server's clock.
    http: Arc<HttpClient>,
    profile: Profile,
    assumed_reserve: Usdt,
    tiers: Mutex<HashMap<String, CachedTiers>>,
    /// When the account mode was last found supported.
    mode_checked: Mutex<Option<Instant>>,
    /// The transfers this process has sent: key → (transferId, amount), kept before sending.
    sent: Mutex<HashMap<TransferKey, (String, Usdt)>>,
}

#[derive(Clone)]
enum CachedTiers {
    Venue(Instant, Arc<TierTable>),
    /// The read failed at this instant; positions get a flat table until it is retried.
    Failed(Instant),
}

/// The account's mode, as `check` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountMode {
    pub unified_margin_status: i64,
    pub margin_mode: String,
}

impl AccountMode {
    pub fn describe(&self) -> String {
        let uta = match self.unified_margin_status {
            1 => "classic account (not unified)",
            3 => "UTA 1.0",
            4 => "UTA 1.0 (pro)",
            5 => "UTA 2.0",
            6 => "UTA 2.0 (pro)",
            _ => "unknown account kind",
        };
        let margin = match self.margin_mode.as_str() {
            "REGULAR_MARGIN" => "cross margin",
            "ISOLATED_MARGIN" => "isolated margin",
            "PORTFOLIO_MARGIN" => "portfolio margin",
            _ => "unknown margin mode",
        };
        format!(
            "{uta} (unifiedMarginStatus {}), {margin} ({})",
            self.unified_margin_status, self.margin_mode
        )
    }

    /// `Err(message)` for anything but a UTA in `REGULAR_MARGIN`.
    pub fn supported(&self) -> Result<(), String> {
        if !matches!(self.unified_margin_status, 3..=6) {
            return Err(format!(
                "the Bybit account is a {}; marginguard supports a Unified Trading Account in cross margin only — upgrade to UTA",
                self.describe()
            ));
        }
        if self.margin_mode != "REGULAR_MARGIN" {
            return Err(format!(
                "the Bybit account is in {}; marginguard supports cross margin (REGULAR_MARGIN) only, where the whole Unified wallet backs the positions — switch the margin mode to Cross Margin",
                self.describe()
            ));
        }
        Ok(())
    }
}

/// The transfer body, in the field order of the docs (and of the reference's Vector C).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TransferBody<'a> {
    transfer_id: &'a str,
    coin: &'static str,
    amount: &'a str,
    from_account_type: &'static str,
    to_account_type: &'static str,
}

/// The exact JSON body of a FUND → UNIFIED USDT transfer.
pub fn transfer_body(transfer_id: &str, amount: Usdt) -> String {
    let amount = amount.0.normalize().to_string();
    let body = TransferBody {
        transfer_id,
        coin: "USDT",
        amount: &amount,
        from_account_type: "FUND",
        to_account_type: "UNIFIED",
    };
    // Serializing a struct of strings cannot fail.
    serde_json::to_string(&body).unwrap_or_default()
}

impl BybitVenue {
    /// The venue as the engine reads it: streamed when the settings name streams (tickers
    /// and account pushes over WebSocket, the account re-priced locally), polled otherwise.
    pub fn open(settings: &BybitSettings, clock: Clock) -> Box<dyn Venue> {
        let venue = Self::new(settings, clock.clone());
        let Some(config) = settings.stream.clone() else {
            return Box::new(venue);
        };
        let http = venue.http.clone();
        let offset = {
            let http = http.clone();
            Box::new(move || http.offset_ms())
        };
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

    pub fn new(settings: &BybitSettings, clock: Clock) -> Self {
        Self {
            http: Arc::new(HttpClient::new(
                settings.http.clone(),
                settings.credentials.clone(),
                clock,
            )),
            profile: settings.profile,
            assumed_reserve: settings.assumed_reserve,
            tiers: Mutex::new(HashMap::new()),
            mode_checked: Mutex::new(None),
            sent: Mutex::new(HashMap::new()),
        }
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    pub async fn account_mode(&self) -> Result<AccountMode, VenueError> {
        let reply = self
            .http
            .call(&http::ACCOUNT_INFO, Payload::Query(&[]))
            .await?;
        let info = parse::account_info(&reply)?;
        Ok(AccountMode {
            unified_margin_status: info.unified_margin_status,
            margin_mode: info.margin_mode,
        })
    }

    async fn ensure_supported_mode(&self) -> Result<(), VenueError> {
        let fresh = matches!(*self.mode_checked.lock().expect("mode lock"),
            Some(at) if at.elapsed() < REFRESH_EVERY);
        if fresh {
            return Ok(());
        }
        let mode = self.account_mode().await?;
        mode.supported()
            .map_err(|message| VenueError::Unsupported { message })?;
        *self.mode_checked.lock().expect("mode lock") = Some(Instant::now());
        Ok(())
    }

    /// Every open linear USDT position, all pages.
    async fn positions(&self) -> Result<(Vec<RawPosition>, Option<i64>, String), VenueError> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        let mut oldest: Option<i64> = None;
        let mut bodies = String::new();
        for _ in 0..MAX_PAGES {
            let mut params = vec![
                ("category", "linear".to_string()),
                ("settleCoin", "USDT".to_string()),
                ("limit", PAGE.to_string()),
            ];
            if let Some(c) = &cursor {
                params.push(("cursor", c.clone()));
            }
            let reply = self
                .http
                .call(&http::POSITIONS, Payload::Query(&params))
                .await?;
            let (page, next) = parse::positions(&reply)?;
            oldest = min_time(oldest, reply.time_ms);
            bodies.push_str(&reply.body);
            all.extend(page);
            match next {
                Some(next) if cursor.as_ref() != Some(&next) => cursor = Some(next),
                _ => break,
            }
        }
        Ok((all, oldest, bodies))
    }

    async fn reserve(&self) -> Result<Usdt, VenueError> {
        if !self.profile.has_asset_api() {
            return Ok(self.assumed_reserve);
        }
        let params = [
            ("accountType", "FUND".to_string()),
            ("coin", "USDT".to_string()),
            ("toAccountType", "UNIFIED".to_string()),
        ];
        let reply = self
            .http
            .call(&http::FUNDING_BALANCE, Payload::Query(&params))
            .await?;
        parse::funding_usdt(&reply)
    }

    /// One symbol's tiers from the public risk-limit endpoint.
    async fn fetch_tiers(&self, symbol: &str) -> Result<TierTable, VenueError> {
        let mut rows = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut params = vec![
                ("category", "linear".to_string()),
                ("symbol", symbol.to_string()),
            ];
            if let Some(c) = &cursor {
                params.push(("cursor", c.clone()));
            }
            let reply = self
                .http
                .call(&http::RISK_LIMIT, Payload::Query(&params))
                .await?;
            let (page, next) = parse::risk_tiers(&reply, symbol)?;
            rows.extend(page);
            match next {
                Some(next) if cursor.as_ref() != Some(&next) => cursor = Some(next),
                _ => break,
            }
        }
        parse::tier_table(rows).map_err(|e| VenueError::Malformed {
            detail: format!("{symbol} risk limits: {e}"),
            raw: String::new(),
        })
    }

    /// Tables for every symbol held: cached ones, fresh reads, or the flat stand-in — and the
    /// symbols that got the stand-in.
    async fn tiers_for(
        &self,
        positions: &[RawPosition],
    ) -> (HashMap<String, Arc<TierTable>>, Vec<String>) {
        let mut out = HashMap::new();
        let mut stand_ins = Vec::new();
        for p in positions {
            if out.contains_key(&p.symbol) {
                continue;
            }
            let cached = self
                .tiers
                .lock()
                .expect("tiers lock")
                .get(&p.symbol)
                .cloned();
            let table = match cached {
                Some(CachedTiers::Venue(at, table)) if at.elapsed() < REFRESH_EVERY => Some(table),
                Some(CachedTiers::Failed(at)) if at.elapsed() < TIER_RETRY_AFTER => None,
                _ => match self.fetch_tiers(&p.symbol).await {
                    Ok(table) => {
                        let table = Arc::new(table);
                        self.tiers.lock().expect("tiers lock").insert(
                            p.symbol.clone(),
                            CachedTiers::Venue(Instant::now(), table.clone()),
                        );
                        Some(table)
                    }
                    Err(error) => {
                        tracing::warn!(symbol = %p.symbol, %error,
                            "risk-limit tiers unavailable: this position's maintenance is taken as a flat rate (its positionMM / positionValue) until they can be read again");
                        self.tiers
                            .lock()
                            .expect("tiers lock")
                            .insert(p.symbol.clone(), CachedTiers::Failed(Instant::now()));
                        None
                    }
                },
            };
            let stand_in = table.is_none();
            match table.or_else(|| parse::flat_tiers_from(p).map(Arc::new)) {
                Some(table) => {
                    if stand_in {
                        stand_ins.push(p.symbol.clone());
                    }
                    out.insert(p.symbol.clone(), table);
                }
                None => {
                    tracing::warn!(symbol = %p.symbol, "no tiers and no positionMM/positionValue to stand in for them");
                }
            }
        }
        (out, stand_ins)
    }

    /// Looks a transfer up by its `transferId`.
    async fn lookup(&self, request: &TransferRequest) -> Result<TransferStatus, VenueError> {
        let id = request.key.uuid();
        let start = request.created_at.as_millis() + self.http.offset_ms() - LOOKUP_BEFORE_MS;
        let params = [("transferId", id.clone()), ("startTime", start.to_string())];
        let reply = self
            .http
            .call(&http::TRANSFER_LIST, Payload::Query(&params))
            .await?;
        let (records, _) = parse::transfer_records(&reply)?;
        let suffix = format!("_{id}");
        let record = match records.iter().find(|r| r.transfer_id == id) {
            Some(r) => r,
            None => match records.iter().find(|r| r.transfer_id.ends_with(&suffix)) {
                Some(r) => {
                    tracing::warn!(key = %request.key, transfer_id = %r.transfer_id, "matched a transfer record by its UUID suffix only");
                    r
                }
                None => return Ok(TransferStatus::NotFound),
            },
        };
        let ours = record.coin == "USDT"
            && record.from == "FUND"
            && record.to == "UNIFIED"
            && record.amount == request.amount;
        if !ours {
            tracing::error!(key = %request.key, transfer_id = %record.transfer_id, coin = %record.coin,
                amount = %record.amount, from = %record.from, to = %record.to,
                "the transfer record with our id does not match the request; the wallet check will tell whether money landed");
        }
        Ok(match record.state {
            TransferState::Success => TransferStatus::Settled,
            TransferState::Pending | TransferState::Unknown => TransferStatus::Pending,
            TransferState::Failed => {
                TransferStatus::Failed(format!("Bybit reports transfer {id} FAILED"))
            }
        })
    }

    fn demo_refusal(&self, what: &str) -> VenueError {
        VenueError::Unsupported {
            message: format!(
                "{what} needs Bybit's asset endpoints (/v5/asset/transfer/*), which demo trading does not have; run the demo in dry-run, or use profile = \"testnet\" to exercise transfers"
            ),
        }
    }
}

fn min_time(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[async_trait]
impl Venue for BybitVenue {
    fn kind(&self) -> &'static str {
        "bybit"
    }

    /// A repeated `transferId` is refused with 131214, so a lost transfer is resent under
    /// its own id instead of being released after a grace period.
    fn may_still_act_for(&self) -> Duration {
        self.http.may_still_act_for()
    }

    fn refuses_duplicate_keys(&self) -> bool {
        true
    }

    fn transfer_rules(&self) -> TransferRules {
        // Transfer precision is undocumented (131210 "Amount accuracy error" exists); cents are
        // safe for USDT. inter-transfer between one UID's wallets settles at once.
        TransferRules {
            step: Usdt(Decimal::new(1, 2)),
            settlement: Duration::from_secs(5),
        }
    }

    async fn snapshot(&self) -> Result<VenueSnapshot, VenueError> {
        let started = self.http.local_now();
        self.ensure_supported_mode().await?;
        let wallet_params = [
            ("accountType", "UNIFIED".to_string()),
            ("coin", "USDT".to_string()),
        ];
        // Positions first, then the wallet: the wallet's totals are then at least as new as the
        // marks, so equity never lags the positions it is compared with.
        let read_account = async {
            let positions = self.positions().await?;
            let wallet = self
                .http
                .call(&http::WALLET_BALANCE, Payload::Query(&wallet_params))
                .await?;
            Ok::<_, VenueError>((positions, wallet))
        };
        let (((positions, positions_time, positions_body), wallet_reply), reserve) =
            tokio::try_join!(read_account, self.reserve())?;
        let wallet = parse::unified_wallet(&wallet_reply)?;
        let (tiers, stand_in_tiers) = self.tiers_for(&positions).await;
        let mut core_positions = Vec::with_capacity(positions.len());
        for p in &positions {
            if let Some(status) = p.position_status.as_deref().filter(|s| *s != "Normal") {
                tracing::warn!(symbol = %p.symbol, status, "Bybit reports this position as being liquidated or auto-deleveraged");
            }
            if let Some(position) = parse::position(p, &tiers, &positions_body)? {
                core_positions.push(position);
            }
        }
        // The figures are as old as the oldest answer; in the local clock's terms.
        let as_of = min_time(wallet_reply.time_ms, positions_time)
            .map(|server| Timestamp(server - self.http.offset_ms()).min(self.http.local_now()))
            .unwrap_or(started);
        Ok(VenueSnapshot {
            as_of,
            account: Account {
                equity: wallet.equity(),
                maintenance: wallet.maintenance,
                positions: core_positions,
            },
            wallet_balance: wallet.usdt_wallet,
            reserve_available: reserve,
            shadowed: Usdt::ZERO,
            stand_in_tiers,
            // Bybit's isolated margin is an account mode, refused before any snapshot.
            unguarded: Vec::new(),
        })
    }

    async fn transfer(&self, request: &TransferRequest) -> Result<TransferReceipt, VenueError> {
        if !self.profile.has_asset_api() {
            return Err(self.demo_refusal("a transfer"));
        }
        if request.amount.0 <= Decimal::ZERO {
            return Err(VenueError::Rejected {
                code: "amount".into(),
                message: format!("refusing to transfer {}", request.amount),
            });
        }
        let id = request.key.uuid();
        // Kept before sending: whatever happens next, this rescue is known by this id.
        self.sent
            .lock()
            .expect("sent lock")
            .insert(request.key, (id.clone(), request.amount));
        let body = transfer_body(&id, request.amount);
        tracing::info!(key = %request.key, transfer_id = %id, amount = %request.amount, "sending inter-transfer FUND → UNIFIED");
        let status = match self.http.call(&http::TRANSFER, Payload::Json(&body)).await {
            Ok(reply) => match parse::transfer_ack(&reply, &id) {
                Ok(TransferState::Success) => TransferStatus::Settled,
                Ok(TransferState::Pending | TransferState::Unknown) => TransferStatus::Pending,
                Ok(TransferState::Failed) => {
                    return Err(VenueError::Rejected {
                        code: "FAILED".into(),
                        message: format!("Bybit answered transfer {id} with status FAILED"),
                    })
                }
                Err(reason) => {
                    return Err(VenueError::OutcomeUnknown {
                        detail: format!("{reason}; raw body: {}", error::short(&reply.body)),
                    })
                }
            },
            Err(VenueError::Rejected { code, message })
                if code == error::TRANSFER_ID_EXISTS.to_string() =>
            {
                tracing::warn!(key = %request.key, transfer_id = %id, %message,
                    "Bybit says this transferId exists (131214): the transfer was already made; looking it up");
                self.lookup(request)
                    .await
                    .map_err(|e| VenueError::OutcomeUnknown {
                        detail: format!(
                            "transferId {id} exists (131214) but its lookup failed: {e}"
                        ),
                    })?
            }
            Err(error) => return Err(error),
        };
        if let TransferStatus::Failed(reason) = status {
            return Err(VenueError::Rejected {
                code: "FAILED".into(),
                message: reason,
            });
        }
        Ok(TransferReceipt {
            venue_id: Some(id),
            status,
        })
    }

    async fn transfer_status(
        &self,
        request: &TransferRequest,
    ) -> Result<TransferStatus, VenueError> {
        if !self.profile.has_asset_api() {
            return Err(self.demo_refusal("a transfer lookup"));
        }
        self.lookup(request).await
    }

    /// The pre-flight: clock skew, account mode, hosts, then the key.
    async fn permissions(&self) -> Result<KeyPermissions, VenueError> {
        let mut notes = Vec::new();
        let offset = self.http.sync_clock().await?;
        notes.push(offset.describe("Bybit", None, 1000));
        let mode = self.account_mode().await?;
        mode.supported()
            .map_err(|message| VenueError::Unsupported { message })?;
        notes.push(format!("account: {}", mode.describe()));
        notes.push(format!(
            "host: {} ({}), key {}…",
            self.http.base_url(),
            self.profile.name(),
            self.http.api_key_prefix()
        ));
        if !self.profile.has_asset_api() {
            notes.push(format!(
                "demo trading has no transfer endpoints (/v5/asset/transfer/*) and no key-info endpoint: the key cannot be checked and no top-up can be made here — dry-run only (reserve assumed {} USDT); use profile = \"testnet\" to exercise transfers",
                self.assumed_reserve
            ));
            return Ok(KeyPermissions {
                can_withdraw: false,
                can_transfer: false,
                ip_restricted: false,
                account_id: None,
                notes,
            });
        }
        let reply = self
            .http
            .call(&http::QUERY_API, Payload::Query(&[]))
            .await?;
        let info = parse::api_key_info(&reply)?;
        Ok(key_permissions(&info, notes))
    }
}

/// The key policy (bybit.md §3.8): `Withdraw` anywhere means it can withdraw; a transfer needs
/// a read-write key with `Wallet → AccountTransfer`; no bound IP is a warning, with the 90-day
/// expiry spelled out; permissions the bot never uses are named.
pub fn key_permissions(info: &parse::ApiKeyInfo, mut notes: Vec<String>) -> KeyPermissions {
    let can_withdraw = info
        .permissions
        .values()
        .any(|list| list.iter().any(|p| p == "Withdraw"));
    let has_transfer = info
        .permissions
        .get("Wallet")
        .is_some_and(|list| list.iter().any(|p| p == "AccountTransfer"));
    let read_only = info.read_only != 0;
    if read_only {
        notes.push("the key is read-only: it can watch but not transfer (fine for a dry run; refused live) — create a read-write key".into());
    }
    if !has_transfer {
        notes.push(
            "the key lacks Wallet → AccountTransfer, which the FUND → UNIFIED transfer needs"
                .into(),
        );
    }
    let ip_restricted = !info.ips.is_empty() && !info.ips.iter().any(|ip| ip.trim() == "*");
    if !ip_restricted {
        let mut expiry = "Bybit invalidates keys without a bound IP 90 days after creation (and 7 days after a password change)".to_string();
        if let Some(days) = info.deadline_day {
            expiry.push_str(&format!("; this one has {days} day(s) left"));
        }
        if let Some(at) = info
            .expired_at
            .as_deref()
            .filter(|a| !a.starts_with("1970"))
        {
            expiry.push_str(&format!(", expiring at {at}"));
        }
        notes.push(format!(
            "no IP bound: {expiry} — bind it to this machine's address"
        ));
    }
    let mut extra: Vec<String> = info
        .permissions
        .iter()
        .flat_map(|(group, list)| {
            list.iter()
                .filter(move |p| !(group == "Wallet" && *p == "AccountTransfer"))
                .filter(|p| *p != "Withdraw")
                .map(move |p| format!("{group}/{p}"))
        })
        .collect();
    extra.sort();
    if !extra.is_empty() {
        notes.push(format!(
            "the key also allows {}, which marginguard never uses; a narrower key is safer",
            extra.join(", ")
        ));
    }
    if info.is_master == Some(true) {
        notes.push("this is a master-account key; a sub-account key (its own FUND and UNIFIED wallets) limits what a leak could reach".into());
    }
    KeyPermissions {
        can_withdraw,
        can_transfer: !read_only && has_transfer,
        ip_restricted,
        account_id: info.user_id.map(|id| id.to_string()),
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transfer_body_is_the_references_vector_c() {
        let body = transfer_body(
            "0b3f5b0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b",
            Usdt(Decimal::new(10000, 2)),
        );
        assert_eq!(
            body,
            r#"{"transferId":"0b3f5b0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b","coin":"USDT","amount":"100","fromAccountType":"FUND","toAccountType":"UNIFIED"}"#
        );
        assert!(transfer_body("x", Usdt(Decimal::new(12345, 2))).contains(r#""amount":"123.45""#));
    }

    #[test]
    fn only_a_uta_in_cross_margin_is_supported() {
        let mode = |status, margin: &str| AccountMode {
            unified_margin_status: status,
            margin_mode: margin.into(),
        };
        assert!(mode(5, "REGULAR_MARGIN").supported().is_ok());
        assert!(mode(6, "REGULAR_MARGIN").supported().is_ok());
        let isolated = mode(5, "ISOLATED_MARGIN").supported().unwrap_err();
        assert!(isolated.contains("isolated margin"), "{isolated}");
        assert!(mode(5, "PORTFOLIO_MARGIN").supported().is_err());
        let classic = mode(1, "REGULAR_MARGIN").supported().unwrap_err();
        assert!(classic.contains("classic"), "{classic}");
    }

    fn info(read_only: i64, wallet: &[&str], ips: &[&str]) -> parse::ApiKeyInfo {
        let mut permissions = HashMap::new();
        permissions.insert(
            "Wallet".to_string(),
            wallet.iter().map(|s| s.to_string()).collect(),
        );
        parse::ApiKeyInfo {
            read_only,
            permissions,
            ips: ips.iter().map(|s| s.to_string()).collect(),
            deadline_day: Some(83),
            expired_at: Some("2026-10-01T00:00:00Z".into()),
            is_master: Some(false),
            user_id: Some(1448939),
        }
    }

    #[test]
    fn key_policy() {
        let good = key_permissions(&info(0, &["AccountTransfer"], &["1.2.3.4"]), vec![]);
        assert!(!good.can_withdraw && good.can_transfer && good.ip_restricted);
        assert!(good.notes.is_empty(), "{:?}", good.notes);
        let withdraw = key_permissions(
            &info(0, &["AccountTransfer", "Withdraw"], &["1.2.3.4"]),
            vec![],
        );
        assert!(withdraw.can_withdraw);
        let read_only = key_permissions(&info(1, &["AccountTransfer"], &["1.2.3.4"]), vec![]);
        assert!(!read_only.can_transfer);
        let no_transfer = key_permissions(&info(0, &[], &["1.2.3.4"]), vec![]);
        assert!(!no_transfer.can_transfer);
        let open = key_permissions(&info(0, &["AccountTransfer"], &["*"]), vec![]);
        assert!(!open.ip_restricted);
        let note = open.notes.join("\n");
        assert!(
            note.contains("90 days") && note.contains("83 day(s) left"),
            "{note}"
        );
    }
}
