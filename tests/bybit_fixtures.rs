//! Bybit's documented sample payloads (tests/fixtures/bybit) parse through the adapter into the
//! figures the docs print; empty strings stay absent.

use std::collections::HashMap;
use std::sync::Arc;

use rust_decimal_macros::dec;

use marginguard::core::TierTable;
use marginguard::money::{Price, Qty, Ratio, Usdt};
use marginguard::venue::bybit::parse::{self, Reply, TransferState};
use marginguard::venue::bybit::{key_permissions, AccountMode};

fn fixture(name: &str) -> Reply {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bybit")
        .join(name);
    let body = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse::reply(&body).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn server_time_in_ms_from_time_nano() {
    let reply = fixture("server_time.json");
    assert_eq!(parse::server_time_ms(&reply).unwrap(), 1_688_639_403_423);
    assert_eq!(reply.time_ms, Some(1_688_639_403_423));
}

#[test]
fn wallet_balance_gives_the_unified_totals() {
    let wallet = parse::unified_wallet(&fixture("wallet_balance.json")).unwrap();
    assert_eq!(wallet.margin_balance, Usdt(dec!(3.00326056)));
    assert_eq!(wallet.maintenance, Usdt::ZERO);
    assert_eq!(wallet.mm_rate, Ratio::ZERO);
    // The sample holds BTC only: no USDT in the Unified wallet.
    assert_eq!(wallet.usdt_wallet, Usdt::ZERO);
    assert_eq!(wallet.equity(), Usdt(dec!(3.00326056)));
}

#[test]
fn the_position_sample_maps_with_an_empty_liq_price_left_absent() {
    let reply = fixture("position_list.json");
    let (list, cursor) = parse::positions(&reply).unwrap();
    assert_eq!(cursor, None, "an empty cursor is the end");
    let mut tiers = HashMap::new();
    tiers.insert(
        "BTCUSD".to_string(),
        Arc::new(TierTable::flat(Ratio(dec!(0.005)))),
    );
    let p = parse::position(&list[0], &tiers, &reply.body)
        .unwrap()
        .unwrap();
    assert_eq!(p.size, Qty(dec!(-300)), "Sell is short");
    assert_eq!(p.mark, Price(dec!(28224.50)));
    assert_eq!(p.entry, Price(dec!(27464.50441675)));
    assert_eq!(p.leverage, dec!(10));
    // The flat stand-in for missing tiers: positionMM / positionValue.
    let flat = parse::flat_tiers_from(&list[0]).unwrap();
    assert_eq!(
        flat.tiers()[0].rate,
        Ratio(dec!(0.0000015) / dec!(0.01092319))
    );
}

#[test]
fn account_info_without_envelope_time_is_a_supported_uta_in_cross_margin() {
    let reply = fixture("account_info.json");
    assert_eq!(reply.time_ms, None);
    let info = parse::account_info(&reply).unwrap();
    let mode = AccountMode {
        unified_margin_status: info.unified_margin_status,
        margin_mode: info.margin_mode,
    };
    assert!(mode.supported().is_ok());
    assert!(
        mode.describe().contains("UTA 1.0 (pro)"),
        "{}",
        mode.describe()
    );
}

#[test]
fn coin_balance_reads_the_transferable_amount() {
    assert_eq!(
        parse::funding_usdt(&fixture("coin_balance.json")).unwrap(),
        Usdt(dec!(11999))
    );
}

#[test]
fn transfer_answer_and_records() {
    let ack = fixture("inter_transfer.json");
    assert_eq!(
        parse::transfer_ack(&ack, "42c0cfb0-6bca-c242-bc76-4e6df6cbab16"),
        Ok(TransferState::Success)
    );
    let (records, cursor) = parse::transfer_records(&fixture("inter_transfer_list.json")).unwrap();
    assert!(cursor.is_some());
    let r = &records[0];
    assert_eq!(
        r.transfer_id,
        "selfTransfer_a1091cc7-9364-4b74-8de1-18f02c6f2d5c"
    );
    assert_eq!(r.amount, Usdt(dec!(5000)));
    assert_eq!((r.from.as_str(), r.to.as_str()), ("SPOT", "UNIFIED"));
    assert_eq!(r.state, TransferState::Success);
}

#[test]
fn the_docs_key_is_read_only_so_it_cannot_transfer() {
    let info = parse::api_key_info(&fixture("query_api.json")).unwrap();
    let p = key_permissions(&info, vec![]);
    assert!(!p.can_withdraw);
    assert!(!p.can_transfer, "readOnly 1 wins over AccountTransfer");
    assert!(p.ip_restricted);
    let notes = p.notes.join("\n");
    assert!(notes.contains("read-only"), "{notes}");
    assert!(notes.contains("ContractTrade/Order"), "{notes}");
    assert!(notes.contains("master-account key"), "{notes}");
}

#[test]
fn percent_risk_limits_with_an_empty_deduction() {
    let (rows, _) = parse::risk_tiers(&fixture("risk_limit.json"), "BTCUSD").unwrap();
    assert_eq!(rows[0].rate, Ratio(dec!(0.005)));
    assert_eq!(
        rows[0].deduction, None,
        "an empty mmDeduction is absent, not zero"
    );
    let table = parse::tier_table(rows).unwrap();
    assert_eq!(table.tiers().len(), 1);
}
