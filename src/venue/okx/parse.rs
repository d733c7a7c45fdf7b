//! OKX's JSON → raw structs → the core's types.
//!
//! Every number arrives as a JSON string, and an inapplicable one as `""` (okx.md §8.1). A
//! required field that is `""` is *absent* — an error, never zero; an optional one becomes
//! `None`. Anything that does not parse is `VenueError::Malformed` with the raw body, so no
//! decision is made on it.
//!
//! The conversion that matters (okx.md §4): OKX states the margin ratio the other way up,
//! `mgnRatio = equity / (maintenance + liquidation fees)`, with 1.0 meaning liquidation. The
//! core wants equity `E` and maintenance `M` with buffer `1 − M/E`. So `M` is the ratio's own
//! denominator, `E / mgnRatio` — the server's ratio stays the source of truth, fees included —
//! and the buffer the core computes equals `1 − 1/mgnRatio` exactly. Where the figures live
//! depends on the account mode:
//! - Futures mode (`acctLv` 2): the USDT pool, `details[USDT].eq` and `details[USDT].mgnRatio`
//!   (the account-level fields are `""`).
//! - Multi-currency margin (3): the account, `adjEq` and `mgnRatio`, in USD; converted to USDT
//!   by what one USDT adds to `adjEq` (`details[USDT].disEq / eq`).
//! - Spot mode (1) has no perpetual swaps; portfolio margin (4) derives maintenance from
//!   stress tests the tiers cannot project. Both are refused.

use std::collections::HashMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::core::{Account, Position, TierTable};
use crate::money::{parse_decimal, Price, Qty, Ratio, Usdt};
use crate::venue::VenueError;

fn malformed(detail: impl Into<String>, raw: &str) -> VenueError {
    VenueError::Malformed {
        detail: detail.into(),
        raw: raw.to_string(),
    }
}

/// A required number: `""` is absent, an error.
pub fn required(value: &str, field: &str) -> Result<Decimal, String> {
    parse_decimal(value).map_err(|e| format!("{field}: {e}"))
}

/// An optional number: `""` is `None`, never zero.
pub fn optional(value: &str, field: &str) -> Result<Option<Decimal>, String> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    required(value, field).map(Some)
}

#[derive(Debug, Deserialize)]
struct Envelope<T> {
    code: String,
    data: Vec<T>,
}

/// The `data` array of a `code: "0"` answer.
pub fn data<T: DeserializeOwned>(what: &str, body: &str) -> Result<Vec<T>, VenueError> {
    let envelope: Envelope<T> =
        serde_json::from_str(body).map_err(|e| malformed(format!("{what}: {e}"), body))?;
    if envelope.code != "0" {
        return Err(malformed(format!("{what}: code {}", envelope.code), body));
    }
    Ok(envelope.data)
}

fn first<T: DeserializeOwned>(what: &str, body: &str) -> Result<T, VenueError> {
    data(what, body)?
        .into_iter()
        .next()
        .ok_or_else(|| malformed(format!("{what}: `data` is empty"), body))
}

// ---------------------------------------------------------------------------------------------
// Raw shapes (only the fields the bot reads; `""` defaults stand for fields OKX omits).

#[derive(Debug, Deserialize)]
pub struct ServerTime {
    pub ts: String,
}

/// `GET /api/v5/account/config`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawConfig {
    pub acct_lv: String,
    #[serde(default)]
    pub pos_mode: String,
    #[serde(default)]
    pub perm: String,
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub label: String,
    /// The account's id (okx.md §account config: `uid`).
    #[serde(default)]
    pub uid: String,
}

/// `GET /api/v5/account/balance`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawBalance {
    #[serde(default)]
    pub adj_eq: String,
    #[serde(default)]
    pub mmr: String,
    #[serde(default)]
    pub mgn_ratio: String,
    #[serde(default)]
    pub details: Vec<RawDetail>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawDetail {
    pub ccy: String,
    #[serde(default)]
    pub cash_bal: String,
    #[serde(default)]
    pub eq: String,
    #[serde(default)]
    pub dis_eq: String,
    #[serde(default)]
    pub mgn_ratio: String,
    #[serde(default)]
    pub mmr: String,
}

/// One element of `GET /api/v5/account/positions`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawPosition {
    pub inst_id: String,
    #[serde(default)]
    pub inst_type: String,
    pub mgn_mode: String,
    #[serde(default)]
    pub pos_side: String,
    pub pos: String,
    #[serde(default)]
    pub ccy: String,
    #[serde(default)]
    pub lever: String,
    pub avg_px: String,
    pub mark_px: String,
    #[serde(default)]
    pub mmr: String,
    #[serde(default)]
    pub notional_usd: String,
}

/// One element of `GET /api/v5/public/instruments`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawInstrument {
    pub inst_id: String,
    #[serde(default)]
    pub inst_family: String,
    pub ct_val: String,
    #[serde(default)]
    pub settle_ccy: String,
    #[serde(default)]
    pub ct_type: String,
}

/// One element of `GET /api/v5/public/position-tiers`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawTier {
    pub tier: String,
    pub min_sz: String,
    pub max_sz: String,
    pub mmr: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawFunding {
    pub ccy: String,
    pub avail_bal: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawTransferAck {
    pub trans_id: String,
    #[serde(default)]
    pub client_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawTransferState {
    #[serde(default)]
    pub trans_id: String,
    #[serde(default)]
    pub client_id: String,
    pub state: String,
    #[serde(default)]
    pub amt: String,
    #[serde(default)]
    pub ccy: String,
}

// ---------------------------------------------------------------------------------------------
// Account mode.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountMode {
    Spot,
    Futures,
    MultiCurrency,
    Portfolio,
}

impl AccountMode {
    pub fn from_acct_lv(raw: &str) -> Option<AccountMode> {
        Some(match raw {
            "1" => AccountMode::Spot,
            "2" => AccountMode::Futures,
            "3" => AccountMode::MultiCurrency,
            "4" => AccountMode::Portfolio,
            _ => return None,
        })
    }

    /// What the mode means for the bot, in one sentence for `check` and the refusal.
    pub fn explain(self) -> &'static str {
        match self {
            AccountMode::Spot => "Spot mode (acctLv 1, formerly \"Simple\"): no perpetual swaps and no cross-margin ratio to watch; REFUSED — switch the account to Futures mode (or Multi-currency margin)",
            AccountMode::Futures => "Futures mode (acctLv 2, formerly \"Single-currency margin\"): each settlement currency is its own pool; the bot watches the USDT pool (details[USDT].eq and mgnRatio) and its USDT-margined cross swaps; a top-up into Trading raises it directly",
            AccountMode::MultiCurrency => "Multi-currency margin (acctLv 3): one pool across all collateral in USD (adjEq / mgnRatio), converted to USDT at what one USDT adds to adjEq; other collateral is valued at today's price and its own fall is not in the liquidation distance",
            AccountMode::Portfolio => "Portfolio margin (acctLv 4): maintenance comes from risk-unit stress tests that the tier tables cannot project; REFUSED — marginguard cannot compute its liquidation distance; use Futures mode or Multi-currency margin",
        }
    }

    pub fn supported(self) -> bool {
        matches!(self, AccountMode::Futures | AccountMode::MultiCurrency)
    }
}

pub fn server_time(body: &str) -> Result<i64, VenueError> {
    let raw: ServerTime = first("server time", body)?;
    let ts = required(&raw.ts, "ts").map_err(|e| malformed(e, body))?;
    i64::try_from(ts).map_err(|_| malformed(format!("ts `{ts}` is not a whole number"), body))
}

pub fn config(body: &str) -> Result<RawConfig, VenueError> {
    first("account config", body)
}

/// The `perm` string, split on commas: `"read_only,withdraw,trade"`.
pub fn permissions(perm: &str) -> Vec<String> {
    perm.split(',')
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Funding (`6`) available USDT; `data: []` (zero balances are omitted) is zero.
pub fn funding_usdt(body: &str) -> Result<Usdt, VenueError> {
    let rows: Vec<RawFunding> = data("funding balances", body)?;
    match rows.iter().find(|r| r.ccy == "USDT") {
        Some(row) => required(&row.avail_bal, "availBal")
            .map(Usdt)
            .map_err(|e| malformed(e, body)),
        None => Ok(Usdt::ZERO),
    }
}

// ---------------------------------------------------------------------------------------------
// Balance → equity, ratio denominator and wallet.

/// The pool the bot watches, in USDT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    pub equity: Usdt,
    /// OKX's `mgnRatio` of the pool (`None` when `""`).
    pub ratio: Option<Decimal>,
    /// `equity / mgnRatio`: maintenance plus what OKX adds (fees); `None` when the ratio is
    /// `""` (no cross position in the pool).
    pub denominator: Option<Usdt>,
    /// The venue's own maintenance figure, when given.
    pub mmr: Option<Usdt>,
    /// USDT cash balance in Trading: a settled top-up raises it by the amount.
    pub wallet: Usdt,
}

pub fn pool(mode: AccountMode, body: &str) -> Result<Pool, VenueError> {
    let raw: RawBalance = first("balance", body)?;
    let fail = |e: String| malformed(e, body);
    let usdt = raw.details.iter().find(|d| d.ccy == "USDT");
    // A missing USDT entry means no USDT in Trading (okx.md §3.3): zero, not absent.
    let wallet = match usdt {
        Some(d) => Usdt(required(&d.cash_bal, "details[USDT].cashBal").map_err(fail)?),
        None => Usdt::ZERO,
    };
    // A ratio at or below 0 means equity at or below 0: nothing to divide; the account is at
    // liquidation and the venue's `mmr` is the maintenance.
    let ratio_of = |equity: Decimal, ratio: Option<Decimal>| {
        ratio.filter(|r| *r > Decimal::ZERO).map(|r| equity / r)
    };
    match mode {
        AccountMode::Futures => {
            let Some(d) = usdt else {
                return Ok(Pool {
                    equity: Usdt::ZERO,
                    ratio: None,
                    denominator: None,
                    mmr: None,
                    wallet,
                });
            };
            let equity = required(&d.eq, "details[USDT].eq").map_err(fail)?;
            let ratio = optional(&d.mgn_ratio, "details[USDT].mgnRatio").map_err(fail)?;
            let mmr = optional(&d.mmr, "details[USDT].mmr").map_err(fail)?;
            Ok(Pool {
                equity: Usdt(equity),
                ratio,
                denominator: ratio_of(equity, ratio).map(Usdt),
                mmr: mmr.map(Usdt),
                wallet,
            })
        }
        AccountMode::MultiCurrency => {
            let adj_eq = required(&raw.adj_eq, "adjEq").map_err(fail)?;
            let ratio = optional(&raw.mgn_ratio, "mgnRatio").map_err(fail)?;
            let mmr = optional(&raw.mmr, "mmr").map_err(fail)?;
            // USD of adjEq per USDT: disEq/eq of USDT; 1 when there is no USDT to measure by.
            let per_usdt = match usdt {
                Some(d) => {
                    let eq = optional(&d.eq, "details[USDT].eq").map_err(fail)?;
                    let dis = optional(&d.dis_eq, "details[USDT].disEq").map_err(fail)?;
                    match (dis, eq) {
                        (Some(dis), Some(eq)) if eq > Decimal::ZERO && dis > Decimal::ZERO => {
                            dis / eq
                        }
                        _ => Decimal::ONE,
                    }
                }
                None => Decimal::ONE,
            };
            Ok(Pool {
                equity: Usdt(adj_eq / per_usdt),
                ratio,
                denominator: ratio_of(adj_eq, ratio).map(|d| Usdt(d / per_usdt)),
                mmr: mmr.map(|m| Usdt(m / per_usdt)),
                wallet,
            })
        }
        AccountMode::Spot | AccountMode::Portfolio => Err(VenueError::Unsupported {
            message: mode.explain().to_string(),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Positions.

/// What the adapter knows of a swap, from `instruments` and `position-tiers`.
#[derive(Debug, Clone, PartialEq)]
pub struct Instrument {
    pub inst_family: String,
    /// Coin per contract.
    pub ct_val: Decimal,
    pub linear_usdt: bool,
}

/// One tier: positions of at most `max_sz` contracts carry maintenance rate `mmr`.
#[derive(Debug, Clone, PartialEq)]
pub struct TierRow {
    pub max_sz: Decimal,
    pub mmr: Ratio,
}

pub fn instrument(body: &str) -> Result<Instrument, VenueError> {
    let raw: RawInstrument = first("instrument", body)?;
    let ct_val = required(&raw.ct_val, "ctVal").map_err(|e| malformed(e, body))?;
    if ct_val <= Decimal::ZERO {
        return Err(malformed(
            format!("{}: ctVal {ct_val} is not positive", raw.inst_id),
            body,
        ));
    }
    Ok(Instrument {
        inst_family: raw.inst_family,
        ct_val,
        linear_usdt: raw.settle_ccy == "USDT" && raw.ct_type != "inverse",
    })
}

/// Tiers by position size in contracts, sorted.
pub fn tiers(body: &str) -> Result<Vec<TierRow>, VenueError> {
    let raw: Vec<RawTier> = data("position tiers", body)?;
    let fail = |e: String| malformed(e, body);
    let mut rows = Vec::with_capacity(raw.len());
    for t in &raw {
        let _ = required(&t.tier, "tier").map_err(fail)?;
        required(&t.min_sz, "minSz").map_err(fail)?;
        rows.push(TierRow {
            max_sz: required(&t.max_sz, "maxSz").map_err(fail)?,
            mmr: Ratio(required(&t.mmr, "mmr").map_err(fail)?),
        });
    }
    if rows.is_empty() {
        return Err(malformed("position tiers: no tier", body));
    }
    rows.sort_by_key(|t| t.max_sz);
    Ok(rows)
}

/// The rate of the tier a position of `contracts` falls in (the last one beyond the table).
pub fn tier_rate(tiers: &[TierRow], contracts: Decimal) -> Option<Ratio> {
    let size = contracts.abs();
    tiers
        .iter()
        .find(|t| size <= t.max_sz)
        .or(tiers.last())
        .map(|t| t.mmr)
}

/// Cross swaps with an open position in a positions answer, by instrument id.
pub fn open_cross_swaps(body: &str) -> Result<Vec<String>, VenueError> {
    let raw: Vec<RawPosition> = data("positions", body)?;
    let mut ids = Vec::new();
    for p in raw {
        let open = optional(&p.pos, "pos").map_err(|e| malformed(e, body))?;
        if p.mgn_mode == "cross" && open.is_some_and(|v| !v.is_zero()) && !ids.contains(&p.inst_id)
        {
            ids.push(p.inst_id);
        }
    }
    Ok(ids)
}

/// What is known per instrument when the account is built.
#[derive(Debug, Clone, Default)]
pub struct Reference {
    pub instruments: HashMap<String, Instrument>,
    /// Tier rows per instrument family.
    pub tiers: HashMap<String, Vec<TierRow>>,
}

/// What one positions answer says of the account.
#[derive(Debug, Clone)]
pub struct AccountRead {
    /// The cross account as the core sees it.
    pub account: Account,
    /// Positions whose tiers had to be implied from their own `mmr` (tiers or instrument
    /// unknown).
    pub implied: Vec<String>,
    /// Open swaps on isolated margin, left out: a top-up of the trading account's cross
    /// equity cannot help them.
    pub isolated: Vec<String>,
}

/// The cross account as the core sees it, the positions whose tiers had to be implied, and
/// the isolated swaps it leaves out.
///
/// Each position is quantity-tiered at OKX (tiers in contracts), so a price move never changes
/// its tier: its table is flat at its tier's rate. The rates are then scaled by `D / Σ tier
/// maintenance` (at least 1), so the maintenance the core projects moves with the fees OKX
/// puts in the ratio's denominator.
pub fn account(
    mode: AccountMode,
    pool: &Pool,
    positions_body: &str,
    reference: &Reference,
) -> Result<AccountRead, VenueError> {
    let raw: Vec<RawPosition> = data("positions", positions_body)?;
    let fail = |e: String| malformed(e, positions_body);
    let mut implied = Vec::new();
    let mut isolated = Vec::new();
    let mut built: Vec<(Position, Ratio)> = Vec::new();
    for p in &raw {
        let field = |name: &str| format!("{}.{name}", p.inst_id);
        let contracts = required(&p.pos, &field("pos")).map_err(fail)?;
        let swap = p.inst_type.is_empty() || p.inst_type == "SWAP";
        if contracts.is_zero() || !swap {
            continue;
        }
        if p.mgn_mode != "cross" {
            if p.mgn_mode == "isolated" {
                isolated.push(p.inst_id.clone());
            }
            continue;
        }
        // Futures mode: only the USDT pool's positions draw on the USDT a top-up brings.
        if mode == AccountMode::Futures && !p.ccy.is_empty() && p.ccy != "USDT" {
            continue;
        }
        let signed = match p.pos_side.as_str() {
            "short" => -contracts.abs(),
            "long" => contracts.abs(),
            _ => contracts,
        };
        let mark = required(&p.mark_px, &field("markPx")).map_err(fail)?;
        if mark <= Decimal::ZERO {
            return Err(fail(format!(
                "{}: mark price {mark} is not positive",
                p.inst_id
            )));
        }
        let entry = required(&p.avg_px, &field("avgPx")).map_err(fail)?;
        let leverage = optional(&p.lever, &field("lever"))
            .map_err(fail)?
            .unwrap_or_default();
        let known = reference.instruments.get(&p.inst_id).and_then(|i| {
            let rows = reference.tiers.get(&i.inst_family)?;
            Some((i, tier_rate(rows, contracts)?))
        });
        let (size, rate) = match known {
            Some((instrument, _)) if !instrument.linear_usdt => continue,
            Some((instrument, rate)) => (signed * instrument.ct_val, rate),
            None => {
                // Degraded: the position's own notional and maintenance imply both.
                let notional = required(&p.notional_usd, &field("notionalUsd")).map_err(fail)?;
                let mmr = required(&p.mmr, &field("mmr")).map_err(fail)?;
                if notional <= Decimal::ZERO {
                    return Err(fail(format!(
                        "{}: notionalUsd {notional} is not positive",
                        p.inst_id
                    )));
                }
                implied.push(p.inst_id.clone());
                let coins = notional / mark;
                (
                    if signed < Decimal::ZERO {
                        -coins
                    } else {
                        coins
                    },
                    Ratio(mmr / notional),
                )
            }
        };
        built.push((
            Position {
                symbol: p.inst_id.clone(),
                size: Qty(size),
                entry: Price(entry),
                mark: Price(mark),
                leverage,
                tiers: Arc::new(TierTable::flat(rate)),
            },
            rate,
        ));
    }
    let tiered: Usdt = built.iter().map(|(p, rate)| p.notional() * *rate).sum();
    if !built.is_empty() && pool.ratio.is_none() {
        return Err(malformed(
            format!("{mode:?} mode: open cross positions but the pool's mgnRatio is \"\""),
            positions_body,
        ));
    }
    let maintenance = match (pool.denominator, pool.mmr) {
        (Some(d), Some(m)) => d.max(m),
        (Some(d), None) => d,
        (None, Some(m)) => m,
        (None, None) if built.is_empty() => Usdt::ZERO,
        (None, None) => {
            return Err(malformed(
                format!("{mode:?} mode: mgnRatio is not positive and mmr is \"\""),
                positions_body,
            ))
        }
    };
    let scale = if tiered.0 > Decimal::ZERO && maintenance > tiered {
        maintenance.0 / tiered.0
    } else {
        Decimal::ONE
    };
    let ceiling = Decimal::new(99, 2);
    let positions = built
        .into_iter()
        .map(|(mut p, rate)| {
            p.tiers = Arc::new(TierTable::flat(Ratio((rate.0 * scale).min(ceiling))));
            p
        })
        .collect();
    Ok(AccountRead {
        account: Account {
            equity: pool.equity,
            maintenance,
            positions,
        },
        implied,
        isolated,
    })
}

/// The id OKX gave an accepted transfer.
pub fn transfer_ack(body: &str) -> Result<String, VenueError> {
    let raw: RawTransferAck = first("transfer answer", body)?;
    if raw.trans_id.trim().is_empty() {
        return Err(malformed("transfer answer: transId is absent", body));
    }
    Ok(raw.trans_id)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Success,
    Pending,
    Failed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TransferState {
    pub trans_id: String,
    pub client_id: String,
    pub state: State,
    pub amount: Option<Decimal>,
}

/// `transfer-state`: `None` when `data` is empty.
pub fn transfer_state(body: &str) -> Result<Option<TransferState>, VenueError> {
    let rows: Vec<RawTransferState> = data("transfer state", body)?;
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let state = match row.state.as_str() {
        "success" => State::Success,
        "pending" => State::Pending,
        "failed" => State::Failed,
        other => return Err(malformed(format!("unknown transfer state `{other}`"), body)),
    };
    Ok(Some(TransferState {
        trans_id: row.trans_id,
        client_id: row.client_id,
        state,
        amount: optional(&row.amt, "amt").map_err(|e| malformed(e, body))?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn balance(account: &str, usdt: &str) -> String {
        format!(
            r#"{{"code":"0","msg":"","data":[{{{account},"details":[{{"ccy":"USDT",{usdt}}}]}}]}}"#
        )
    }

    #[test]
    fn empty_strings_are_absent_never_zero() {
        assert_eq!(optional("", "x"), Ok(None));
        assert_eq!(optional("0", "x"), Ok(Some(dec!(0))));
        assert!(required("", "markPx").unwrap_err().contains("absent"));
        assert!(required("5.5e4", "markPx").is_err());
    }

    #[test]
    fn futures_mode_reads_the_usdt_pool_and_turns_the_ratio_into_a_denominator() {
        // eq 1,100, mgnRatio 2.2 → D = 500; the core's buffer 1 − 500/1,100 = 1 − 1/2.2.
        let body = balance(
            r#""adjEq":"","mgnRatio":"","mmr":"""#,
            r#""cashBal":"1000","eq":"1100","mgnRatio":"2.2","mmr":"480","disEq":"1099""#,
        );
        let pool = pool(AccountMode::Futures, &body).unwrap();
        assert_eq!(pool.equity, Usdt(dec!(1100)));
        assert_eq!(pool.denominator, Some(Usdt(dec!(500))));
        assert_eq!(pool.mmr, Some(Usdt(dec!(480))));
        assert_eq!(pool.wallet, Usdt(dec!(1000)));
    }

    #[test]
    fn multi_currency_mode_reads_the_account_in_usd_and_converts_to_usdt() {
        // adjEq 2,000 USD, mgnRatio 4 → D = 500 USD; one USDT adds 0.999/1 USD of adjEq.
        let body = balance(
            r#""adjEq":"1998","mgnRatio":"4","mmr":"490""#,
            r#""cashBal":"700","eq":"1000","disEq":"999","mgnRatio":"","mmr":"""#,
        );
        let pool = pool(AccountMode::MultiCurrency, &body).unwrap();
        assert_eq!(pool.equity, Usdt(dec!(2000)));
        assert_eq!(pool.denominator, Some(Usdt(dec!(500))));
        assert_eq!(pool.wallet, Usdt(dec!(700)));
        // Futures-mode fields are empty in this mode: reading it as Futures would be wrong,
        // and the wrong mode's absent ratio never becomes 0.
        let as_futures = super::pool(AccountMode::Futures, &body).unwrap();
        assert_eq!(as_futures.denominator, None);
    }

    #[test]
    fn spot_and_portfolio_modes_are_refused_with_their_explanation() {
        let body = balance(r#""adjEq":"1""#, r#""cashBal":"1","eq":"1""#);
        for mode in [AccountMode::Spot, AccountMode::Portfolio] {
            match pool(mode, &body) {
                Err(VenueError::Unsupported { message }) => assert!(message.contains("REFUSED")),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn tiers_are_by_contracts() {
        let rows = vec![
            TierRow {
                max_sz: dec!(50),
                mmr: Ratio(dec!(0.004)),
            },
            TierRow {
                max_sz: dec!(250),
                mmr: Ratio(dec!(0.005)),
            },
        ];
        assert_eq!(tier_rate(&rows, dec!(50)), Some(Ratio(dec!(0.004))));
        assert_eq!(tier_rate(&rows, dec!(-100)), Some(Ratio(dec!(0.005))));
        assert_eq!(tier_rate(&rows, dec!(900)), Some(Ratio(dec!(0.005))));
    }

    #[test]
    fn isolated_swaps_are_named_and_cross_or_flat_ones_are_not() {
        let body = r#"{"code":"0","msg":"","data":[
          {"instId":"BTC-USDT-SWAP","instType":"SWAP","mgnMode":"isolated","pos":"3","avgPx":"1","markPx":"1"},
          {"instId":"ETH-USDT-SWAP","instType":"SWAP","mgnMode":"isolated","pos":"0","avgPx":"1","markPx":"1"},
          {"instId":"SOL-USDT-SWAP","instType":"SWAP","mgnMode":"cross","ccy":"USDT","pos":"5","lever":"10","avgPx":"1","markPx":"1","notionalUsd":"5","mmr":"0.1"}
        ]}"#;
        let pool = Pool {
            equity: Usdt(dec!(1000)),
            ratio: Some(dec!(10000)),
            denominator: Some(Usdt(dec!(0.1))),
            mmr: Some(Usdt(dec!(0.1))),
            wallet: Usdt(dec!(1000)),
        };
        let read = account(AccountMode::Futures, &pool, body, &Reference::default()).unwrap();
        assert_eq!(read.isolated, vec!["BTC-USDT-SWAP".to_string()]);
        assert_eq!(
            read.account.positions.len(),
            1,
            "the cross swap is the account's"
        );
        // An unreadable answer is no snapshot at all, not an empty list.
        assert!(account(
            AccountMode::Futures,
            &pool,
            "not json",
            &Reference::default()
        )
        .is_err());
    }
}
