//! Binance's documented sample payloads (tests/fixtures/binance) parse through the adapter
//! into the figures the docs print.

use std::collections::HashMap;
use std::sync::Arc;

use rust_decimal_macros::dec;

use marginguard::core::TierTable;
use marginguard::money::{Ratio, Usdt};
use marginguard::venue::binance::{key_permissions, parse};
use marginguard::venue::VenueError;

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/binance")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn futures_account_gives_the_cross_wallet() {
    assert_eq!(
        parse::cross_wallet(&fixture("account_v3.json")).unwrap(),
        Usdt(dec!(103.12345678))
    );
}

#[test]
fn positions_map_into_the_core_account() {
    let mut tiers = HashMap::new();
    tiers.insert(
        "ADAUSDT".to_string(),
        Arc::new(TierTable::flat(Ratio(dec!(0.0065)))),
    );
    let account =
        parse::cross_account(Usdt(dec!(100)), &fixture("position_risk_v3.json"), &tiers).unwrap();
    assert_eq!(account.equity, Usdt(dec!(100.76427700)));
    assert_eq!(account.maintenance, Usdt(dec!(0.08004280)));
    let p = &account.positions[0];
    assert_eq!(p.symbol, "ADAUSDT");
    assert_eq!(p.size.0, dec!(30));
    assert_eq!(p.mark.0, dec!(0.41047590));
    assert_eq!(p.entry.0, dec!(0.385));
    // 12.314277 / 0.61571385 = 20x
    assert_eq!(p.leverage, dec!(20));
}

#[test]
fn brackets_are_json_numbers_read_exactly() {
    let tables = parse::brackets(&fixture("leverage_bracket_symbol.json")).unwrap();
    let tier = &tables["ETHUSDT"].tiers()[0];
    assert_eq!(tier.rate, Ratio(dec!(0.0065)));
    assert_eq!(tier.deduction, Usdt::ZERO);
}

#[test]
fn spot_account_without_usdt_has_zero_free() {
    assert_eq!(
        parse::spot_free_usdt(&fixture("spot_account.json")).unwrap(),
        Usdt::ZERO
    );
}

#[test]
fn transfer_answer_and_history_parse() {
    assert_eq!(
        parse::tran_id(&fixture("transfer.json")).unwrap(),
        13_526_853_623
    );
    let (rows, total) = parse::history(&fixture("transfer_history.json")).unwrap();
    assert_eq!(total, 2);
    assert_eq!(rows[0].tran_id, 11_415_955_596);
    assert_eq!(rows[1].amount, Usdt(dec!(2)));
    assert_eq!(rows[0].status, parse::RowStatus::Confirmed);
}

#[test]
fn docs_sample_key_is_a_portfolio_margin_key_and_refused() {
    let raw = parse::restrictions(&fixture("api_restrictions.json")).unwrap();
    assert_eq!(raw.enable_withdrawals, Some(false));
    assert_eq!(raw.permits_universal_transfer, Some(false));
    assert!(matches!(
        key_permissions(&raw, vec![]),
        Err(VenueError::Unsupported { .. })
    ));
}

#[test]
fn account_config_and_server_time_parse() {
    let config = parse::account_config(&fixture("account_config.json")).unwrap();
    assert_eq!(config.multi_assets_margin, Some(false));
    assert_eq!(config.dual_side_position, Some(true));
    assert_eq!(
        parse::server_time(&fixture("server_time.json")).unwrap(),
        1_499_827_319_559
    );
}

#[test]
fn error_body_maps_to_auth() {
    let error = marginguard::venue::binance::error::from_status(
        400,
        &fixture("error_bad_signature.json"),
        marginguard::venue::binance::error::Effect::MovesMoney,
        None,
    );
    assert!(matches!(error, VenueError::Auth { .. }), "{error:?}");
}
