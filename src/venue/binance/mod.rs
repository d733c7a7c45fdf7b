//! Binance USDⓈ-M futures, cross margin, topped up from the Spot wallet.
//!
//! Architecture invariant: only this folder knows Binance's JSON, paths and signing. The
//! snapshot reads the futures account (cross wallet), its positions (marks, entries,
//! maintenance) and the Spot wallet's free USDT; tiers come from `leverageBracket`, refreshed
//! hourly. The transfer is a universal transfer `MAIN_UMFUTURE`; Binance takes no client id, so
//! a transfer whose answer never came is found again in the transfer history by asset, amount
//! and time (`reconcile`), never resent blindly.
//!
//! Layout: `credential` (key and secret, redacted), `signing` (pure HMAC), `http` (timestamps,
//! clock offset, weight budgets, 429/418), `parse` (raw JSON → core types), `error` (codes →
//! `VenueError` with retry semantics), `reconcile` (history row ↔ request), `config`.

pub mod config;
pub mod credential;
pub mod error;
pub mod http;
pub mod parse;
pub mod reconcile;
pub mod signing;
pub mod stream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rust_decimal::Decimal;

use crate::clock::Clock;
use crate::core::TierTable;
use crate::money::Usdt;
use crate::venue::streaming::streamed;
use crate::venue::{
    KeyPermissions, TransferKey, TransferReceipt, TransferRequest, TransferRules, TransferStatus,
    Venue, VenueError, VenueSnapshot,
};
pub use config::{BinanceSettings, Profile};
pub use credential::Credentials;

use http::HttpClient;
use parse::RowStatus;

/// Each symbol's maintenance tiers.
type TierTables = HashMap<String, Arc<TierTable>>;

/// How often the brackets and the account mode are read again.
const REFRESH_EVERY: Duration = Duration::from_secs(3600);
/// At most this many pages of 100 history rows per lookup.
const MAX_HISTORY_PAGES: i64 = 5;

pub struct BinanceVenue {
    http: Arc<HttpClient>,
    profile: Profile,
    tiers: Mutex<Option<(Instant, TierTables)>>,
    /// When the account mode was last found supported.
    mode_checked: Mutex<Option<Instant>>,
    book: Mutex<TransferBook>,
}

/// What this process knows of its transfers: the venue's id of each that answered, and which
/// history row each request has claimed (one row never settles two requests).
#[derive(Debug, Default)]
struct TransferBook {
    tran_ids: HashMap<TransferKey, i64>,
    claimed: HashMap<i64, TransferKey>,
}

/// The account's mode, as `check` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountMode {
    pub multi_assets: bool,
    pub hedge: bool,
}

impl BinanceVenue {
    pub fn new(settings: &BinanceSettings, clock: Clock) -> Self {
        Self {
            http: Arc::new(HttpClient::new(
                settings.http.clone(),
                settings.credentials.clone(),
                clock,
            )),
            profile: settings.profile,
            tiers: Mutex::new(None),
            mode_checked: Mutex::new(None),
            book: Mutex::new(TransferBook::default()),
        }
    }

    /// The venue as the engine reads it: streamed when the settings name streams (marks and
    /// account events over WebSocket, the account re-priced locally), polled otherwise.
    pub fn open(settings: &BinanceSettings, clock: Clock) -> Box<dyn Venue> {
        let venue = Self::new(settings, clock.clone());
        let Some(config) = settings.stream.clone() else {
            return Box::new(venue);
        };
        let http = venue.http.clone();
        let offset = {
            let http = http.clone();
            Box::new(move || http.offset().map(|o| o.offset_ms).unwrap_or(0))
        };
        streamed(
            Box::new(venue),
            clock,
            config.settings,
            offset,
            move |board| {
                let marks = stream::MarkStream::new(&config.ws_url, board);
                let account = stream::AccountStream {
                    base: config.ws_url.clone(),
                    http,
                };
                (marks, account)
            },
        )
    }

    /// The HTTP client, for the weight and clock figures.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Reads the position mode flags; refuses Multi-Assets mode, whose totals are USD across
    /// assets with haircuts — not the USDT pool this adapter computes.
    pub async fn account_mode(&self) -> Result<AccountMode, VenueError> {
        let body = self.http.call(&http::ACCOUNT_CONFIG, &[]).await?;
        let raw = parse::account_config(&body)?;
        let multi_assets = raw
            .multi_assets_margin
            .ok_or_else(|| VenueError::Malformed {
                detail: "accountConfig: multiAssetsMargin is missing".into(),
                raw: body.clone(),
            })?;
        Ok(AccountMode {
            multi_assets,
            hedge: raw.dual_side_position.unwrap_or(false),
        })
    }

    async fn ensure_supported_mode(&self) -> Result<(), VenueError> {
        let fresh = matches!(*self.mode_checked.lock().expect("mode lock"),
            Some(at) if at.elapsed() < REFRESH_EVERY);
        if fresh {
            return Ok(());
        }
        let mode = self.account_mode().await?;
        if mode.multi_assets {
            return Err(VenueError::Unsupported {
                message: "the USDⓈ-M account is in Multi-Assets mode (margin shared across assets, in USD, with haircuts); marginguard supports single-asset mode only — switch it off under Futures → Preferences → Asset Mode".into(),
            });
        }
        *self.mode_checked.lock().expect("mode lock") = Some(Instant::now());
        Ok(())
    }

    async fn tiers_for(
        &self,
        symbols: &[String],
    ) -> Result<HashMap<String, Arc<TierTable>>, VenueError> {
        let cached = self.tiers.lock().expect("tiers lock").clone();
        if let Some((at, tables)) = cached {
            let covers = symbols.iter().all(|s| tables.contains_key(s));
            if at.elapsed() < REFRESH_EVERY && covers {
                return Ok(tables);
            }
        }
        let body = self.http.call(&http::LEVERAGE_BRACKET, &[]).await?;
        let tables = parse::brackets(&body)?;
        *self.tiers.lock().expect("tiers lock") = Some((Instant::now(), tables.clone()));
        Ok(tables)
    }

    /// The history rows of `MAIN_UMFUTURE` transfers since `start` (server ms).
    async fn history_since(&self, start: i64) -> Result<Vec<parse::HistoryRow>, VenueError> {
        let mut rows = Vec::new();
        for page in 1..=MAX_HISTORY_PAGES {
            let body = self
                .http
                .call(
                    &http::TRANSFER_HISTORY,
                    &[
                        ("type", "MAIN_UMFUTURE".into()),
                        ("startTime", start.to_string()),
                        ("current", page.to_string()),
                        ("size", "100".into()),
                    ],
                )
                .await?;
            let (page_rows, total) = parse::history(&body)?;
            let empty = page_rows.is_empty();
            rows.extend(page_rows);
            if empty || page * 100 >= total {
                break;
            }
        }
        Ok(rows)
    }

    fn unsupported_here(&self, what: &str) -> VenueError {
        VenueError::Unsupported {
            message: format!(
                "{what} needs Binance's wallet API (/sapi), which the `{}` profile does not have; run it in dry-run",
                self.profile.name()
            ),
        }
    }
}

#[async_trait]
impl Venue for BinanceVenue {
    fn kind(&self) -> &'static str {
        "binance"
    }

    fn transfer_rules(&self) -> TransferRules {
        // The maximum decimals of `amount` are not documented (binance.md §9); cents are
        // safe for USDT. Universal transfers into futures settle within seconds.
        TransferRules {
            step: Usdt(Decimal::new(1, 2)),
            settlement: Duration::from_secs(5),
        }
    }

    async fn snapshot(&self) -> Result<VenueSnapshot, VenueError> {
        let as_of = self.http.local_now();
        self.ensure_supported_mode().await?;
        let spot_params = [("omitZeroBalances", "true".to_string())];
        let (account, positions, spot) = tokio::try_join!(
            self.http.call(&http::FUTURES_ACCOUNT, &[]),
            self.http.call(&http::POSITION_RISK, &[]),
            self.http.call(&http::SPOT_ACCOUNT, &spot_params),
        )?;
        let wallet = parse::cross_wallet(&account)?;
        let symbols = parse::position_symbols(&positions);
        let tiers = self.tiers_for(&symbols).await?;
        let (account, unguarded) = parse::cross_account_and_isolated(wallet, &positions, &tiers)?;
        let reserve = parse::spot_free_usdt(&spot)?;
        Ok(VenueSnapshot {
            as_of,
            account,
            wallet_balance: wallet,
            reserve_available: reserve,
            shadowed: Usdt::ZERO,
            stand_in_tiers: Vec::new(),
            unguarded,
        })
    }

    async fn transfer(&self, request: &TransferRequest) -> Result<TransferReceipt, VenueError> {
        if !self.profile.has_wallet_api() {
            return Err(self.unsupported_here("a transfer"));
        }
        if request.amount.0 <= Decimal::ZERO {
            return Err(VenueError::Rejected {
                code: "amount".into(),
                message: format!("refusing to transfer {}", request.amount),
            });
        }
        let amount = request.amount.0.normalize().to_string();
        let body = self
            .http
            .call(
                &http::TRANSFER,
                &[
                    ("type", "MAIN_UMFUTURE".into()),
                    ("asset", "USDT".into()),
                    ("amount", amount),
                ],
            )
            .await?;
        // A 2xx without a readable id may still have moved the money: unknown, not malformed.
        let tran_id = parse::tran_id(&body).map_err(|e| VenueError::OutcomeUnknown {
            detail: format!("the transfer was answered 2xx but the answer does not parse: {e}"),
        })?;
        let mut book = self.book.lock().expect("book lock");
        book.tran_ids.insert(request.key, tran_id);
        book.claimed.insert(tran_id, request.key);
        tracing::info!(key = %request.key, tran_id, amount = %request.amount, "binance accepted the transfer");
        Ok(TransferReceipt {
            venue_id: Some(tran_id.to_string()),
            status: TransferStatus::Pending,
        })
    }

    async fn transfer_status(
        &self,
        request: &TransferRequest,
    ) -> Result<TransferStatus, VenueError> {
        if !self.profile.has_wallet_api() {
            return Err(self.unsupported_here("a transfer lookup"));
        }
        let created_at_server = request.created_at.as_millis() + self.offset_ms();
        let rows = self
            .history_since(created_at_server - reconcile::WINDOW_BEFORE_MS)
            .await?;
        let mut book = self.book.lock().expect("book lock");
        let intent = reconcile::Intent {
            key: request.key,
            amount: request.amount,
            created_at_server,
            tran_id: book.tran_ids.get(&request.key).copied(),
            acts_within_ms: i64::try_from(self.http.may_still_act_for().as_millis())
                .unwrap_or(i64::MAX),
        };
        let Some(row) = reconcile::find_row(&rows, &intent, &book.claimed) else {
            return Ok(TransferStatus::NotFound);
        };
        let tran_id = row.tran_id;
        book.claimed.insert(tran_id, request.key);
        book.tran_ids.insert(request.key, tran_id);
        Ok(match row.status {
            RowStatus::Confirmed => TransferStatus::Settled,
            RowStatus::Pending => TransferStatus::Pending,
            RowStatus::Failed => {
                TransferStatus::Failed(format!("Binance reports transfer {tran_id} FAILED"))
            }
        })
    }

    fn may_still_act_for(&self) -> Duration {
        self.http.may_still_act_for()
    }

    fn matched_id(&self, key: TransferKey) -> Option<String> {
        let book = self.book.lock().expect("book lock");
        book.tran_ids.get(&key).map(|id| id.to_string())
    }

    fn remember(&self, key: TransferKey, venue_id: &str) {
        let Ok(tran_id) = venue_id.parse::<i64>() else {
            tracing::warn!(key = %key, venue_id, "journal holds a venue id that is not a Binance tranId");
            return;
        };
        let mut book = self.book.lock().expect("book lock");
        book.tran_ids.insert(key, tran_id);
        book.claimed.insert(tran_id, key);
    }

    async fn permissions(&self) -> Result<KeyPermissions, VenueError> {
        let mut notes = Vec::new();
        let offset = self.http.sync_clock().await?;
        notes.push(offset.describe("Binance", None, 1000));
        let mode = self.account_mode().await?;
        notes.push(format!(
            "account mode: {}, {} position mode",
            if mode.multi_assets {
                "Multi-Assets (NOT supported)"
            } else {
                "single-asset (USDT pool)"
            },
            if mode.hedge { "hedge" } else { "one-way" }
        ));
        notes.push(format!(
            "hosts: profile {}, key {}…",
            self.profile.name(),
            self.http.api_key_prefix()
        ));
        if !self.profile.has_wallet_api() {
            notes.push("testnet: there is no wallet API (/sapi) here, so key restrictions cannot be read and transfers are never made; dry-run only".into());
            return Ok(KeyPermissions {
                can_withdraw: false,
                can_transfer: false,
                ip_restricted: false,
                account_id: None,
                notes,
            });
        }
        let body = self.http.call(&http::API_RESTRICTIONS, &[]).await?;
        let raw = parse::restrictions(&body)?;
        let spot = self
            .http
            .call(&http::SPOT_ACCOUNT, &[("omitZeroBalances", "true".into())])
            .await?;
        let mut permissions = key_permissions(&raw, notes)?;
        permissions.account_id = parse::spot_uid(&spot)?;
        Ok(permissions)
    }
}

impl BinanceVenue {
    fn offset_ms(&self) -> i64 {
        self.http.offset().map(|o| o.offset_ms).unwrap_or(0)
    }
}

/// The key policy (binance.md §3.10): a missing flag is unknown, and unknown counts against
/// the key; a portfolio-margin key is refused; permissions the bot does not need are named.
pub fn key_permissions(
    raw: &parse::ApiRestrictions,
    mut notes: Vec<String>,
) -> Result<KeyPermissions, VenueError> {
    if raw.enable_portfolio_margin_trading == Some(true) && raw.enable_futures != Some(true) {
        return Err(VenueError::Unsupported {
            message: "the key belongs to a portfolio-margin account (portfolio-margin trading on, Futures API off); marginguard supports classic USDⓈ-M cross margin only".into(),
        });
    }
    if raw.enable_withdrawals.is_none() {
        notes.push(
            "enableWithdrawals is missing from Binance's answer: treated as able to withdraw"
                .into(),
        );
    }
    if raw.permits_universal_transfer.is_none() {
        notes.push(
            "permitsUniversalTransfer is missing from Binance's answer: treated as not allowed"
                .into(),
        );
    }
    let extra: Vec<&str> = [
        (
            raw.enable_internal_transfer,
            "internal (sub-account) transfer",
        ),
        (
            raw.enable_spot_and_margin_trading,
            "spot and margin trading",
        ),
        (raw.enable_margin, "margin loans"),
        (raw.enable_vanilla_options, "options"),
    ]
    .into_iter()
    .filter(|(flag, _)| *flag == Some(true))
    .map(|(_, name)| name)
    .collect();
    if !extra.is_empty() {
        notes.push(format!(
            "the key also allows {}, which marginguard never uses; a narrower key is safer",
            extra.join(", ")
        ));
    }
    if raw.enable_reading == Some(false) {
        notes.push("reading is disabled on this key; snapshots will fail".into());
    }
    Ok(KeyPermissions {
        can_withdraw: raw.enable_withdrawals.unwrap_or(true),
        can_transfer: raw.permits_universal_transfer == Some(true),
        ip_restricted: raw.ip_restrict == Some(true),
        account_id: None,
        notes,
    })
}
