//! Bybit's JSON → raw structs → the core's types.
//!
//! Every answer is an envelope `{retCode, retMsg, result, retExtInfo, time}`; the HTTP layer
//! checks `retCode` and hands the `result` on as a `Reply`. Numbers arrive as strings (a few as
//! JSON numbers) and are read from the raw token into `Decimal`, never through `f64`. An empty
//! string is *absent*, never zero (shared/exchanges/bybit.md §8.2). Anything that does not parse
//! is `VenueError::Malformed` carrying the raw body: no decision is made on it.

use std::collections::HashMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::core::{Position, Tier, TierTable};
use crate::money::{Price, Qty, Ratio, Usdt};
use crate::venue::VenueError;

pub use crate::venue::common::num::Num;

/// A successful answer: the whole body (for `Malformed`), its `result` and its `time`.
#[derive(Debug)]
pub struct Reply {
    pub body: String,
    pub result: Box<RawValue>,
    /// The envelope's server time (ms), when sent.
    pub time_ms: Option<i64>,
}

impl Reply {
    fn malformed(&self, detail: impl Into<String>) -> VenueError {
        malformed(detail, &self.body)
    }

    fn read<T: DeserializeOwned>(&self, what: &str) -> Result<T, VenueError> {
        serde_json::from_str(self.result.get()).map_err(|e| self.malformed(format!("{what}: {e}")))
    }
}

pub fn malformed(detail: impl Into<String>, raw: &str) -> VenueError {
    VenueError::Malformed {
        detail: detail.into(),
        raw: raw.to_string(),
    }
}

/// The envelope as read; `result` is kept raw.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub ret_code: i64,
    #[serde(default)]
    pub ret_msg: String,
    pub result: Option<Box<RawValue>>,
    pub time: Option<Num>,
}

/// A body with `retCode` 0 as the HTTP layer would hand it on (fixtures, tests).
pub fn reply(body: &str) -> Result<Reply, String> {
    let envelope = envelope(body)?;
    if envelope.ret_code != 0 {
        return Err(format!(
            "retCode {}: {}",
            envelope.ret_code, envelope.ret_msg
        ));
    }
    Ok(Reply {
        body: body.to_string(),
        result: envelope.result.ok_or("no result")?,
        time_ms: envelope.time.as_ref().and_then(|t| t.integer("time").ok()),
    })
}

/// `Err(reason)` when the body is not an envelope at all.
pub fn envelope(body: &str) -> Result<Envelope, String> {
    serde_json::from_str(body).map_err(|e| format!("not a Bybit envelope: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Raw shapes (only the fields the bot reads).

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerTime {
    time_second: Num,
    time_nano: Option<Num>,
}

#[derive(Debug, Deserialize)]
struct WalletBalance {
    list: Vec<WalletAccount>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WalletAccount {
    account_type: String,
    #[serde(rename = "accountMMRate")]
    account_mm_rate: Num,
    total_margin_balance: Num,
    total_maintenance_margin: Num,
    #[serde(default)]
    coin: Vec<WalletCoin>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WalletCoin {
    coin: String,
    wallet_balance: Num,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PositionList {
    list: Vec<RawPosition>,
    #[serde(default)]
    next_page_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawPosition {
    pub symbol: String,
    /// `Buy`, `Sell`, or `""` when flat.
    pub side: String,
    pub size: Num,
    pub avg_price: Num,
    pub mark_price: Num,
    pub position_value: Option<Num>,
    pub leverage: Option<Num>,
    #[serde(rename = "positionIM")]
    pub position_im: Option<Num>,
    #[serde(rename = "positionMM")]
    pub position_mm: Option<Num>,
    pub position_status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountInfo {
    pub unified_margin_status: i64,
    pub margin_mode: String,
}

#[derive(Debug, Deserialize)]
struct CoinBalance {
    balance: CoinBalanceRow,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CoinBalanceRow {
    coin: String,
    transfer_balance: Num,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransferAck {
    transfer_id: Option<String>,
    status: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransferList {
    list: Vec<RawTransferRecord>,
    #[serde(default)]
    next_page_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTransferRecord {
    transfer_id: String,
    coin: String,
    amount: Num,
    from_account_type: String,
    to_account_type: String,
    status: String,
}

/// `GET /v5/user/query-api`, the fields the key policy reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyInfo {
    pub read_only: i64,
    #[serde(default)]
    pub permissions: HashMap<String, Vec<String>>,
    #[serde(default)]
    pub ips: Vec<String>,
    pub deadline_day: Option<i64>,
    pub expired_at: Option<String>,
    pub is_master: Option<bool>,
    /// The account's id (bybit.md §3.8: `userID`).
    #[serde(rename = "userID")]
    pub user_id: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RiskLimit {
    list: Vec<RawRiskTier>,
    #[serde(default)]
    next_page_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRiskTier {
    symbol: String,
    risk_limit_value: Num,
    maintenance_margin: Num,
    initial_margin: Num,
    max_leverage: Num,
    mm_deduction: Option<Num>,
}

// ---------------------------------------------------------------------------------------------
// Raw → figures.

/// Server time in ms: `timeNano / 10⁶` when sent, else `timeSecond × 1000`.
pub fn server_time_ms(reply: &Reply) -> Result<i64, VenueError> {
    let raw: ServerTime = reply.read("server time")?;
    let fail = |e: String| reply.malformed(e);
    if let Some(nano) = &raw.time_nano {
        let nano = nano.decimal("timeNano").map_err(fail)?;
        return i64::try_from((nano / Decimal::from(1_000_000)).trunc())
            .map_err(|_| reply.malformed("timeNano out of range"));
    }
    Ok(raw.time_second.integer("timeSecond").map_err(fail)? * 1000)
}

/// The Unified account's figures. Totals are USD valuations; USDT is taken at par (§8.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnifiedWallet {
    /// `totalMarginBalance`: wallet balance + perp unrealized PnL − spot borrow.
    pub margin_balance: Usdt,
    pub maintenance: Usdt,
    /// `accountMMRate`: liquidation at 1. Truncated to 4 decimals by Bybit (observed).
    pub mm_rate: Ratio,
    /// The USDT coin's `walletBalance`: a settled top-up raises it by exactly the amount.
    pub usdt_wallet: Usdt,
}

impl UnifiedWallet {
    /// The equity the core sees: the margin balance, lowered to what the server's own rate
    /// implies when that is lower. Bybit's denominator is `margin balance − haircut loss + order
    /// loss`; only the rate carries the haircut, and it is truncated, so the smallest denominator
    /// consistent with it is `MM / (rate + 0.0001)`.
    pub fn equity(&self) -> Usdt {
        if self.maintenance.0 <= Decimal::ZERO {
            return self.margin_balance;
        }
        let bound = self.maintenance.0 / (self.mm_rate.0 + Decimal::new(1, 4));
        Usdt(self.margin_balance.0.min(bound))
    }
}

pub fn unified_wallet(reply: &Reply) -> Result<UnifiedWallet, VenueError> {
    let raw: WalletBalance = reply.read("wallet balance")?;
    let fail = |e: String| reply.malformed(e);
    let account = raw
        .list
        .iter()
        .find(|a| a.account_type == "UNIFIED")
        .ok_or_else(|| reply.malformed("wallet balance: no UNIFIED account in the list"))?;
    let usdt_wallet = match account.coin.iter().find(|c| c.coin == "USDT") {
        Some(c) => c
            .wallet_balance
            .decimal("coin[USDT].walletBalance")
            .map_err(fail)?,
        // Asked with coin=USDT: no row means the Unified wallet holds no USDT.
        None => Decimal::ZERO,
    };
    let wallet = UnifiedWallet {
        margin_balance: Usdt(
            account
                .total_margin_balance
                .decimal("totalMarginBalance")
                .map_err(fail)?,
        ),
        maintenance: Usdt(
            account
                .total_maintenance_margin
                .decimal("totalMaintenanceMargin")
                .map_err(fail)?,
        ),
        mm_rate: Ratio(
            account
                .account_mm_rate
                .decimal("accountMMRate")
                .map_err(fail)?,
        ),
        usdt_wallet: Usdt(usdt_wallet),
    };
    if wallet.maintenance.is_sign_negative() || wallet.mm_rate.is_sign_negative() {
        return Err(reply.malformed("wallet balance: negative maintenance or accountMMRate"));
    }
    Ok(wallet)
}

/// One page of positions and the cursor of the next (`None` at the end).
pub fn positions(reply: &Reply) -> Result<(Vec<RawPosition>, Option<String>), VenueError> {
    let raw: PositionList = reply.read("positions")?;
    let cursor = raw.next_page_cursor.filter(|c| !c.is_empty());
    Ok((raw.list, cursor))
}

/// An open position in the core's terms; `None` when flat. `tiers` is looked up by symbol.
pub fn position(
    p: &RawPosition,
    tiers: &HashMap<String, Arc<TierTable>>,
    raw: &str,
) -> Result<Option<Position>, VenueError> {
    let fail = |e: String| malformed(e, raw);
    let field = |name: &str| format!("{}.{name}", p.symbol);
    let size = p.size.decimal(&field("size")).map_err(fail)?;
    let sign = match p.side.as_str() {
        _ if size.is_zero() => return Ok(None),
        "Buy" => Decimal::ONE,
        "Sell" => -Decimal::ONE,
        "" => return Ok(None),
        other => return Err(fail(format!("{}: unknown side `{other}`", p.symbol))),
    };
    let mark = p.mark_price.decimal(&field("markPrice")).map_err(fail)?;
    if mark <= Decimal::ZERO {
        return Err(fail(format!(
            "{}: mark price {mark} is not positive",
            p.symbol
        )));
    }
    let entry = p.avg_price.decimal(&field("avgPrice")).map_err(fail)?;
    let leverage = match p.leverage.as_ref().map(|l| l.optional(&field("leverage"))) {
        Some(Err(e)) => return Err(fail(e)),
        Some(Ok(Some(l))) => l,
        // Absent: the ratio of value to initial margin, when both are known.
        _ => {
            let value = optional(&p.position_value, &field("positionValue")).map_err(fail)?;
            let im = optional(&p.position_im, &field("positionIM")).map_err(fail)?;
            match (value, im) {
                (Some(v), Some(im)) if im > Decimal::ZERO => v.abs() / im,
                _ => Decimal::ZERO,
            }
        }
    };
    let table = tiers
        .get(&p.symbol)
        .cloned()
        .ok_or_else(|| fail(format!("{}: no maintenance tiers known", p.symbol)))?;
    Ok(Some(Position {
        symbol: p.symbol.clone(),
        size: Qty(size.abs() * sign),
        entry: Price(entry),
        mark: Price(mark),
        leverage,
        tiers: table,
    }))
}

fn optional(num: &Option<Num>, field: &str) -> Result<Option<Decimal>, String> {
    match num {
        Some(n) => n.optional(field),
        None => Ok(None),
    }
}

/// The degraded table when a symbol's tiers are unavailable: one flat rate, the position's own
/// `positionMM / positionValue`. `None` when either is absent or the value is zero.
pub fn flat_tiers_from(p: &RawPosition) -> Option<TierTable> {
    let mm = optional(&p.position_mm, "positionMM").ok()??;
    let value = optional(&p.position_value, "positionValue").ok()??.abs();
    if value <= Decimal::ZERO || mm < Decimal::ZERO {
        return None;
    }
    let rate = mm / value;
    (rate < Decimal::ONE).then(|| TierTable::flat(Ratio(rate)))
}

pub fn account_info(reply: &Reply) -> Result<AccountInfo, VenueError> {
    reply.read("account info")
}

/// The Funding wallet's transferable USDT (`balance.transferBalance`).
pub fn funding_usdt(reply: &Reply) -> Result<Usdt, VenueError> {
    let raw: CoinBalance = reply.read("funding balance")?;
    if raw.balance.coin != "USDT" {
        return Err(reply.malformed(format!(
            "funding balance: asked for USDT, got `{}`",
            raw.balance.coin
        )));
    }
    raw.balance
        .transfer_balance
        .decimal("balance.transferBalance")
        .map(Usdt)
        .map_err(|e| reply.malformed(e))
}

/// What a transfer's answer or record says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferState {
    Success,
    Pending,
    Failed,
    /// `STATUS_UNKNOWN`, or no status at all: look it up.
    Unknown,
}

fn transfer_state(status: Option<&str>) -> Result<TransferState, String> {
    Ok(match status {
        Some("SUCCESS") => TransferState::Success,
        Some("PENDING") => TransferState::Pending,
        Some("FAILED") => TransferState::Failed,
        Some("STATUS_UNKNOWN") | None => TransferState::Unknown,
        Some(other) => return Err(format!("unknown transfer status `{other}`")),
    })
}

/// `POST inter-transfer`'s result: the echoed id (must be ours) and the status.
pub fn transfer_ack(reply: &Reply, sent_id: &str) -> Result<TransferState, String> {
    let raw: TransferAck =
        serde_json::from_str(reply.result.get()).map_err(|e| format!("transfer answer: {e}"))?;
    match raw.transfer_id.as_deref() {
        Some(id) if id == sent_id => {}
        Some(other) => {
            return Err(format!(
                "transfer answer names another transferId `{other}`"
            ))
        }
        None => return Err("transfer answer has no transferId".into()),
    }
    transfer_state(raw.status.as_deref())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRecord {
    pub transfer_id: String,
    pub coin: String,
    pub amount: Usdt,
    pub from: String,
    pub to: String,
    pub state: TransferState,
}

pub fn transfer_records(
    reply: &Reply,
) -> Result<(Vec<TransferRecord>, Option<String>), VenueError> {
    let raw: TransferList = reply.read("transfer records")?;
    let fail = |e: String| reply.malformed(e);
    let mut out = Vec::with_capacity(raw.list.len());
    for r in raw.list {
        out.push(TransferRecord {
            amount: Usdt(r.amount.decimal("amount").map_err(fail)?),
            state: transfer_state(Some(&r.status)).map_err(fail)?,
            transfer_id: r.transfer_id,
            coin: r.coin,
            from: r.from_account_type,
            to: r.to_account_type,
        });
    }
    Ok((out, raw.next_page_cursor.filter(|c| !c.is_empty())))
}

pub fn api_key_info(reply: &Reply) -> Result<ApiKeyInfo, VenueError> {
    reply.read("API key info")
}

/// One symbol's maintenance tiers from `GET /v5/market/risk-limit`, and the cursor of the next
/// page. Floors are the previous tier's `riskLimitValue`. The rate's unit is checked against
/// the leverage (§3.11: the doc sample reads as percent, real payloads as fractions): a
/// fraction has `initialMargin × maxLeverage ≈ 1`, a percentage ≈ 100.
pub fn risk_tiers(
    reply: &Reply,
    symbol: &str,
) -> Result<(Vec<RawTierRow>, Option<String>), VenueError> {
    let raw: RiskLimit = reply.read("risk limit")?;
    let fail = |e: String| reply.malformed(e);
    let mut rows = Vec::new();
    for t in raw.list.iter().filter(|t| t.symbol == symbol) {
        let im = t.initial_margin.decimal("initialMargin").map_err(fail)?;
        let max_leverage = t.max_leverage.decimal("maxLeverage").map_err(fail)?;
        let product = im * max_leverage;
        let scale = if (Decimal::new(5, 1)..=Decimal::TWO).contains(&product) {
            Decimal::ONE
        } else if (Decimal::from(50)..=Decimal::from(200)).contains(&product) {
            Decimal::ONE_HUNDRED
        } else {
            return Err(fail(format!(
                "{symbol}: cannot tell whether rates are fractions or percent (initialMargin {im} × maxLeverage {max_leverage} = {product})"
            )));
        };
        rows.push(RawTierRow {
            cap: Usdt(t.risk_limit_value.decimal("riskLimitValue").map_err(fail)?),
            rate: Ratio(
                t.maintenance_margin
                    .decimal("maintenanceMargin")
                    .map_err(fail)?
                    / scale,
            ),
            deduction: match &t.mm_deduction {
                Some(d) => d.optional("mmDeduction").map_err(fail)?.map(Usdt),
                None => None,
            },
        });
    }
    Ok((rows, raw.next_page_cursor.filter(|c| !c.is_empty())))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTierRow {
    /// The tier's position-value cap.
    pub cap: Usdt,
    pub rate: Ratio,
    /// `None` when Bybit sent `""`.
    pub deduction: Option<Usdt>,
}

/// Tier rows → a table. Bybit's own deductions when every tier has one; otherwise the
/// documented recursion (`TierTable::from_rates`, identical to Bybit's formula).
pub fn tier_table(mut rows: Vec<RawTierRow>) -> Result<TierTable, String> {
    if rows.is_empty() {
        return Err("no tiers".into());
    }
    rows.sort_by_key(|r| r.cap);
    let floors: Vec<Usdt> = std::iter::once(Usdt::ZERO)
        .chain(rows.iter().map(|r| r.cap))
        .take(rows.len())
        .collect();
    if rows.iter().all(|r| r.deduction.is_some()) {
        let tiers = rows
            .iter()
            .zip(&floors)
            .map(|(r, floor)| Tier {
                floor: *floor,
                rate: r.rate,
                deduction: r.deduction.unwrap_or_default(),
            })
            .collect();
        TierTable::new(tiers).map_err(|e| e.to_string())
    } else {
        let pairs: Vec<(Usdt, Ratio)> = floors
            .iter()
            .copied()
            .zip(rows.iter().map(|r| r.rate))
            .collect();
        TierTable::from_rates(&pairs).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn num(token: &str) -> Num {
        serde_json::from_str(token).unwrap()
    }

    fn reply(result: &str) -> Reply {
        Reply {
            body: format!(r#"{{"retCode":0,"retMsg":"OK","result":{result}}}"#),
            result: RawValue::from_string(result.to_string()).unwrap(),
            time_ms: None,
        }
    }

    #[test]
    fn empty_strings_are_absent_never_zero() {
        assert!(num(r#""""#).decimal("x").unwrap_err().contains("absent"));
        assert_eq!(num(r#""""#).optional("x"), Ok(None));
        assert_eq!(num(r#""0""#).optional("x"), Ok(Some(Decimal::ZERO)));
        assert!(num(r#""5.5e4""#).decimal("x").is_err());
        assert_eq!(num("1.10").decimal("x"), Ok(dec!(1.10)));
    }

    #[test]
    fn an_empty_mm_rate_is_malformed_with_the_body() {
        let r = reply(
            r#"{"list":[{"accountType":"UNIFIED","accountMMRate":"","totalMarginBalance":"1","totalMaintenanceMargin":"0","coin":[]}]}"#,
        );
        match unified_wallet(&r) {
            Err(VenueError::Malformed { detail, raw }) => {
                assert!(detail.contains("accountMMRate"), "{detail}");
                assert_eq!(raw, r.body);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn equity_follows_the_servers_rate_when_it_carries_a_haircut() {
        // 6,000 margin balance, 225 maintenance: 225/6000 = 0.0375 exactly.
        let plain = UnifiedWallet {
            margin_balance: Usdt(dec!(6000)),
            maintenance: Usdt(dec!(225)),
            mm_rate: Ratio(dec!(0.0375)),
            usdt_wallet: Usdt(dec!(6000)),
        };
        // 225 / 0.0376 = 5984.04…: the truncation slack costs 0.27 %.
        assert!(plain.equity() < Usdt(dec!(5985)) && plain.equity() > Usdt(dec!(5984)));
        // A haircut loss of 1,000 shows only in the rate: 225/5000 = 0.045.
        let haircut = UnifiedWallet {
            mm_rate: Ratio(dec!(0.045)),
            ..plain
        };
        assert!(haircut.equity() <= Usdt(dec!(5000)) && haircut.equity() > Usdt(dec!(4988)));
        let flat = UnifiedWallet {
            maintenance: Usdt::ZERO,
            mm_rate: Ratio::ZERO,
            ..plain
        };
        assert_eq!(flat.equity(), Usdt(dec!(6000)));
    }

    #[test]
    fn tiers_use_bybits_deductions_or_the_recursion() {
        let rows = vec![
            RawTierRow {
                cap: Usdt(dec!(250000)),
                rate: Ratio(dec!(0.005)),
                deduction: None,
            },
            RawTierRow {
                cap: Usdt(dec!(50000)),
                rate: Ratio(dec!(0.004)),
                deduction: None,
            },
        ];
        let table = tier_table(rows).unwrap();
        assert_eq!(table.tiers()[1].floor, Usdt(dec!(50000)));
        assert_eq!(table.tiers()[1].deduction, Usdt(dec!(50)));
        assert_eq!(table.maintenance(Usdt(dec!(60000))), Usdt(dec!(250)));
    }

    #[test]
    fn percent_rates_are_recognised() {
        let r = reply(
            r#"{"category":"inverse","list":[{"id":1,"symbol":"BTCUSD","riskLimitValue":"150","maintenanceMargin":"0.5","initialMargin":"1","isLowestRisk":1,"maxLeverage":"100.00","mmDeduction":""}]}"#,
        );
        let (rows, cursor) = risk_tiers(&r, "BTCUSD").unwrap();
        assert_eq!(rows[0].rate, Ratio(dec!(0.005)));
        assert_eq!(rows[0].deduction, None);
        assert_eq!(cursor, None);
    }

    #[test]
    fn the_transfer_answer_must_echo_our_id() {
        let r = reply(r#"{"transferId":"a","status":"SUCCESS"}"#);
        assert_eq!(transfer_ack(&r, "a"), Ok(TransferState::Success));
        assert!(transfer_ack(&r, "b").is_err());
        let r = reply(r#"{"transferId":"a"}"#);
        assert_eq!(transfer_ack(&r, "a"), Ok(TransferState::Unknown));
    }
}
