//! Binance's JSON → raw structs → the core's types.
//!
//! Numbers arrive as strings (`"23.72469206"`) and, in a few places, as JSON numbers
//! (`leverageBracket`'s `0.0065`). Both are read from the raw token into `Decimal`, never
//! through `f64`; an empty string or `null` is *absent*, never zero. Anything that does not
//! parse is `VenueError::Malformed` with the raw body: no decision is made on it.

use std::collections::HashMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::core::{Account, Position, Tier, TierTable};
use crate::money::{Price, Qty, Ratio, Usdt};
use crate::venue::VenueError;

pub use crate::venue::common::num::Num;

fn malformed(detail: impl Into<String>, raw: &str) -> VenueError {
    VenueError::Malformed {
        detail: detail.into(),
        raw: raw.to_string(),
    }
}

/// Deserializes `body` or says why not, with the body attached.
pub fn json<T: DeserializeOwned>(what: &str, body: &str) -> Result<T, VenueError> {
    serde_json::from_str(body).map_err(|e| malformed(format!("{what}: {e}"), body))
}

// ---------------------------------------------------------------------------------------------
// Raw shapes (only the fields the bot reads; others are ignored).

/// `GET /fapi/v1/time`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerTime {
    pub server_time: Num,
}

/// `GET /fapi/v3/account`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FuturesAccount {
    pub total_cross_wallet_balance: Num,
    pub total_cross_un_pnl: Option<Num>,
}

/// One element of `GET /fapi/v3/positionRisk`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PositionRisk {
    pub symbol: String,
    #[serde(default)]
    pub position_side: Option<String>,
    pub position_amt: Num,
    pub entry_price: Num,
    pub mark_price: Num,
    pub un_realized_profit: Num,
    pub notional: Num,
    #[serde(default)]
    pub margin_asset: Option<String>,
    #[serde(default)]
    pub isolated_wallet: Option<Num>,
    #[serde(default)]
    pub isolated_margin: Option<Num>,
    #[serde(default)]
    pub position_initial_margin: Option<Num>,
    #[serde(default)]
    pub maint_margin: Option<Num>,
}

/// `GET /api/v3/account`.
#[derive(Debug, Deserialize)]
pub struct SpotAccount {
    pub balances: Vec<SpotBalance>,
    /// The account's id (binance.md §3.7 sample: `"uid": 354937868`).
    #[serde(default)]
    pub uid: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct SpotBalance {
    pub asset: String,
    pub free: Num,
}

/// `POST /sapi/v1/asset/transfer`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferAck {
    pub tran_id: Num,
}

/// `GET /sapi/v1/asset/transfer`.
#[derive(Debug, Deserialize)]
pub struct TransferHistory {
    pub total: Num,
    #[serde(default)]
    pub rows: Vec<RawHistoryRow>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawHistoryRow {
    pub asset: String,
    pub amount: Num,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub status: String,
    pub tran_id: Num,
    pub timestamp: Num,
}

/// `GET /sapi/v1/account/apiRestrictions`. Every flag optional: the field set has changed
/// over time, and a missing flag must read as "unknown", not as `false`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiRestrictions {
    pub ip_restrict: Option<bool>,
    pub enable_withdrawals: Option<bool>,
    pub permits_universal_transfer: Option<bool>,
    pub enable_internal_transfer: Option<bool>,
    pub enable_futures: Option<bool>,
    pub enable_reading: Option<bool>,
    pub enable_spot_and_margin_trading: Option<bool>,
    pub enable_margin: Option<bool>,
    pub enable_vanilla_options: Option<bool>,
    pub enable_portfolio_margin_trading: Option<bool>,
}

/// `GET /fapi/v1/accountConfig`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountConfig {
    pub multi_assets_margin: Option<bool>,
    pub dual_side_position: Option<bool>,
}

/// One symbol of `GET /fapi/v1/leverageBracket`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SymbolBrackets {
    pub symbol: String,
    pub brackets: Vec<RawBracket>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawBracket {
    pub notional_floor: Num,
    pub maint_margin_ratio: Num,
    pub cum: Num,
}

// ---------------------------------------------------------------------------------------------
// Raw → core.

pub fn server_time(body: &str) -> Result<i64, VenueError> {
    let raw: ServerTime = json("server time", body)?;
    raw.server_time
        .integer("serverTime")
        .map_err(|e| malformed(e, body))
}

/// Every symbol's maintenance tiers, with Binance's own `cum` as the deduction. The docs send
/// an object when `symbol` is given and an array without; both are accepted.
pub fn brackets(body: &str) -> Result<HashMap<String, Arc<TierTable>>, VenueError> {
    let list: Vec<SymbolBrackets> = match body.trim_start().as_bytes().first() {
        Some(b'{') => vec![json("leverage brackets", body)?],
        _ => json("leverage brackets", body)?,
    };
    let mut tables = HashMap::with_capacity(list.len());
    for symbol in list {
        let mut tiers = Vec::with_capacity(symbol.brackets.len());
        for bracket in &symbol.brackets {
            let read = |num: &Num, field: &str| {
                num.decimal(&format!("{}.{field}", symbol.symbol))
                    .map_err(|e| malformed(e, body))
            };
            tiers.push(Tier {
                floor: Usdt(read(&bracket.notional_floor, "notionalFloor")?),
                rate: Ratio(read(&bracket.maint_margin_ratio, "maintMarginRatio")?),
                deduction: Usdt(read(&bracket.cum, "cum")?),
            });
        }
        tiers.sort_by_key(|tier| tier.floor);
        let table = TierTable::new(tiers)
            .map_err(|e| malformed(format!("{} brackets: {e}", symbol.symbol), body))?;
        tables.insert(symbol.symbol, Arc::new(table));
    }
    Ok(tables)
}

/// The account's `uid` from the spot account, if the venue sent one.
pub fn spot_uid(body: &str) -> Result<Option<String>, VenueError> {
    let raw: SpotAccount = json("spot account", body)?;
    Ok(raw.uid.map(|uid| uid.to_string()))
}

/// Free USDT in the Spot wallet. With `omitZeroBalances=true` an absent row means zero.
pub fn spot_free_usdt(body: &str) -> Result<Usdt, VenueError> {
    let raw: SpotAccount = json("spot account", body)?;
    match raw.balances.iter().find(|b| b.asset == "USDT") {
        Some(balance) => balance
            .free
            .decimal("balances[USDT].free")
            .map(Usdt)
            .map_err(|e| malformed(e, body)),
        None => Ok(Usdt::ZERO),
    }
}

/// The cross wallet balance of the USDT pool (`totalCrossWalletBalance`, "only for USDT
/// asset" in single-asset mode).
pub fn cross_wallet(body: &str) -> Result<Usdt, VenueError> {
    let raw: FuturesAccount = json("futures account", body)?;
    raw.total_cross_wallet_balance
        .decimal("totalCrossWalletBalance")
        .map(Usdt)
        .map_err(|e| malformed(e, body))
}

/// A position on isolated margin: its own isolated wallet or margin is not zero.
fn is_isolated(p: &PositionRisk) -> Result<bool, String> {
    let field = format!("{}.isolatedWallet", p.symbol);
    let amounts = [&p.isolated_wallet, &p.isolated_margin]
        .into_iter()
        .flatten()
        .map(|n| n.decimal(&field))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(amounts.iter().any(|v| !v.is_zero()))
}

/// The USDT cross account as the core sees it: equity is the cross wallet plus the cross
/// positions' unrealized PnL (both at the marks of this same `positionRisk` answer), and
/// maintenance the sum of their `maintMargin` (shared/exchanges/binance.md §4.3). Isolated
/// positions and other margin assets are left out: a top-up of the cross wallet cannot help
/// them and they do not draw on it.
pub fn cross_account(
    wallet: Usdt,
    positions_body: &str,
    tiers: &HashMap<String, Arc<TierTable>>,
) -> Result<Account, VenueError> {
    cross_account_and_isolated(wallet, positions_body, tiers).map(|(account, _)| account)
}

/// As `cross_account`, with the open USDT positions it leaves out for being on isolated
/// margin (named, so the operator hears they are not guarded), from the one parse.
pub fn cross_account_and_isolated(
    wallet: Usdt,
    positions_body: &str,
    tiers: &HashMap<String, Arc<TierTable>>,
) -> Result<(Account, Vec<String>), VenueError> {
    let raw: Vec<PositionRisk> = json("positions", positions_body)?;
    let mut isolated = Vec::new();
    let fail = |e: String| malformed(e, positions_body);
    let mut positions = Vec::new();
    let mut pnl = Usdt::ZERO;
    let mut maintenance = Usdt::ZERO;
    for p in &raw {
        let field = |name: &str| format!("{}.{name}", p.symbol);
        let mut size = p
            .position_amt
            .decimal(&field("positionAmt"))
            .map_err(fail)?;
        if size.is_zero() {
            continue;
        }
        if p.margin_asset.as_deref().is_some_and(|a| a != "USDT") {
            continue;
        }
        if is_isolated(p).map_err(fail)? {
            isolated.push(p.symbol.clone());
            continue;
        }
        // In hedge mode a SHORT position's amount is negative; make sure of the sign.
        if p.position_side.as_deref() == Some("SHORT") && size > Decimal::ZERO {
            size = -size;
        }
        let mark = p.mark_price.decimal(&field("markPrice")).map_err(fail)?;
        let entry = p.entry_price.decimal(&field("entryPrice")).map_err(fail)?;
        if mark <= Decimal::ZERO {
            return Err(fail(format!(
                "{}: mark price {mark} is not positive",
                p.symbol
            )));
        }
        let notional = p.notional.decimal(&field("notional")).map_err(fail)?;
        let unrealized = p
            .un_realized_profit
            .decimal(&field("unRealizedProfit"))
            .map_err(fail)?;
        let maint = p
            .maint_margin
            .as_ref()
            .ok_or_else(|| fail(format!("{}: maintMargin is missing", p.symbol)))?
            .decimal(&field("maintMargin"))
            .map_err(fail)?;
        // Binance's initial margin is notional / leverage, so the leverage in force is their
        // ratio (derived: V3 positionRisk no longer carries `leverage`).
        let leverage = match &p.position_initial_margin {
            Some(im) => {
                let im = im.decimal(&field("positionInitialMargin")).map_err(fail)?;
                if im > Decimal::ZERO {
                    notional.abs() / im
                } else {
                    Decimal::ZERO
                }
            }
            None => Decimal::ZERO,
        };
        let table = tiers.get(&p.symbol).cloned().ok_or_else(|| {
            fail(format!(
                "{}: no maintenance brackets known for this symbol",
                p.symbol
            ))
        })?;
        pnl += Usdt(unrealized);
        maintenance += Usdt(maint);
        positions.push(Position {
            symbol: p.symbol.clone(),
            size: Qty(size),
            entry: Price(entry),
            mark: Price(mark),
            leverage,
            tiers: table,
        });
    }
    let account = Account {
        equity: wallet + pnl,
        maintenance,
        positions,
    };
    Ok((account, isolated))
}

/// Symbols with an open position in a `positionRisk` answer (to refresh missing brackets).
pub fn position_symbols(body: &str) -> Vec<String> {
    serde_json::from_str::<Vec<PositionRisk>>(body)
        .map(|list| list.into_iter().map(|p| p.symbol).collect())
        .unwrap_or_default()
}

pub fn tran_id(body: &str) -> Result<i64, VenueError> {
    let raw: TransferAck = json("transfer answer", body)?;
    raw.tran_id
        .integer("tranId")
        .map_err(|e| malformed(e, body))
}

/// Status of a universal transfer, as the history reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowStatus {
    Confirmed,
    Pending,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub tran_id: i64,
    pub asset: String,
    pub amount: Usdt,
    /// Server milliseconds.
    pub timestamp: i64,
    pub status: RowStatus,
}

/// One page of history: its rows and the total the venue reports.
pub fn history(body: &str) -> Result<(Vec<HistoryRow>, i64), VenueError> {
    let raw: TransferHistory = json("transfer history", body)?;
    let fail = |e: String| malformed(e, body);
    let total = raw.total.integer("total").map_err(fail)?;
    let mut rows = Vec::with_capacity(raw.rows.len());
    for row in raw.rows {
        if row.kind.as_deref().is_some_and(|k| k != "MAIN_UMFUTURE") {
            continue;
        }
        let status = match row.status.as_str() {
            "CONFIRMED" => RowStatus::Confirmed,
            "PENDING" => RowStatus::Pending,
            "FAILED" => RowStatus::Failed,
            other => return Err(fail(format!("unknown transfer status `{other}`"))),
        };
        rows.push(HistoryRow {
            tran_id: row.tran_id.integer("tranId").map_err(fail)?,
            asset: row.asset,
            amount: Usdt(row.amount.decimal("amount").map_err(fail)?),
            timestamp: row.timestamp.integer("timestamp").map_err(fail)?,
            status,
        });
    }
    Ok((rows, total))
}

pub fn restrictions(body: &str) -> Result<ApiRestrictions, VenueError> {
    json("API key restrictions", body)
}

pub fn account_config(body: &str) -> Result<AccountConfig, VenueError> {
    json("account config", body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn num(token: &str) -> Num {
        serde_json::from_str(token).unwrap()
    }

    #[test]
    fn numbers_read_from_the_raw_token() {
        assert_eq!(num(r#""23.72469206""#).decimal("x"), Ok(dec!(23.72469206)));
        assert_eq!(num("0.0065").decimal("x"), Ok(dec!(0.0065)));
        // 0.1 + 0.2 territory: a float would not give this back exactly.
        assert_eq!(
            num("0.30000000000000004").decimal("x"),
            Ok(dec!(0.30000000000000004))
        );
        assert_eq!(num("13526853623").integer("x"), Ok(13_526_853_623));
    }

    #[test]
    fn empty_and_null_are_absent_not_zero() {
        assert!(num(r#""""#)
            .decimal("markPrice")
            .unwrap_err()
            .contains("absent"));
        assert!(num("null")
            .decimal("markPrice")
            .unwrap_err()
            .contains("absent"));
        assert!(num(r#""1e9""#).decimal("x").is_err());
        assert!(num("true").decimal("x").is_err());
    }

    #[test]
    fn malformed_positions_carry_the_raw_body() {
        let tiers = HashMap::new();
        let body = r#"[{"symbol":"BTCUSDT","positionAmt":"1","entryPrice":"1","markPrice":"","unRealizedProfit":"0","notional":"1","maintMargin":"0"}]"#;
        match cross_account(Usdt::ZERO, body, &tiers) {
            Err(VenueError::Malformed { detail, raw }) => {
                assert!(detail.contains("markPrice"), "{detail}");
                assert_eq!(raw, body);
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
        assert!(matches!(
            cross_account(Usdt::ZERO, "<html>502</html>", &tiers),
            Err(VenueError::Malformed { .. })
        ));
    }

    #[test]
    fn isolated_and_flat_positions_are_left_out() {
        let mut tiers = HashMap::new();
        tiers.insert(
            "BTCUSDT".to_string(),
            Arc::new(TierTable::flat(Ratio(dec!(0.004)))),
        );
        let body = r#"[
          {"symbol":"BTCUSDT","positionSide":"BOTH","positionAmt":"1","entryPrice":"100","markPrice":"90","unRealizedProfit":"-10","notional":"90","isolatedWallet":"0","positionInitialMargin":"9","maintMargin":"0.36"},
          {"symbol":"ETHUSDT","positionSide":"BOTH","positionAmt":"2","entryPrice":"10","markPrice":"10","unRealizedProfit":"0","notional":"20","isolatedWallet":"5","positionInitialMargin":"2","maintMargin":"0.1"},
          {"symbol":"XRPUSDT","positionSide":"BOTH","positionAmt":"0","entryPrice":"0","markPrice":"1","unRealizedProfit":"0","notional":"0","isolatedWallet":"0","maintMargin":"0"}
        ]"#;
        let account = cross_account(Usdt(dec!(50)), body, &tiers).unwrap();
        assert_eq!(account.equity, Usdt(dec!(40)));
        assert_eq!(account.maintenance, Usdt(dec!(0.36)));
        assert_eq!(account.positions.len(), 1);
        assert_eq!(account.positions[0].leverage, dec!(10));
        // …and the isolated one is named, so the operator hears it is not guarded.
        let (_, isolated) = cross_account_and_isolated(Usdt(dec!(50)), body, &tiers).unwrap();
        assert_eq!(isolated, vec!["ETHUSDT".to_string()]);
    }
}
