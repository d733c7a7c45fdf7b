//! OKX's documented sample payloads (tests/fixtures/okx) parse through the adapter, and its
//! empty strings read as absent values, never as zero.

use rust_decimal_macros::dec;

use marginguard::money::{Ratio, Usdt};
use marginguard::venue::okx::parse::{self, AccountMode, Reference};
use marginguard::venue::VenueError;

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/okx")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn time_config_and_permissions() {
    assert_eq!(
        parse::server_time(&fixture("server_time.json")).unwrap(),
        1_597_026_383_085
    );
    let config = parse::config(&fixture("account_config.json")).unwrap();
    assert_eq!(
        AccountMode::from_acct_lv(&config.acct_lv),
        Some(AccountMode::Futures)
    );
    assert_eq!(
        parse::permissions(&config.perm),
        ["read_only", "withdraw", "trade"]
    );
    assert_eq!(config.pos_mode, "long_short_mode");
    assert!(config.ip.is_empty());
}

#[test]
fn the_balance_sample_is_a_futures_mode_pool_with_no_ratio() {
    let body = fixture("balance.json");
    let pool = parse::pool(AccountMode::Futures, &body).unwrap();
    assert_eq!(pool.equity, Usdt(dec!(4992.890093622894)));
    assert_eq!(pool.wallet, Usdt(dec!(4850.435693622894)));
    // details[USDT].mgnRatio and mmr are "": absent, not zero.
    assert_eq!((pool.ratio, pool.denominator, pool.mmr), (None, None, None));
    // Read as Multi-currency margin, the account-level mgnRatio "" is absent too, mmr "0" real.
    let mcm = parse::pool(AccountMode::MultiCurrency, &body).unwrap();
    assert_eq!(mcm.ratio, None);
    assert_eq!(mcm.mmr, Some(Usdt(dec!(0))));
}

#[test]
fn positions_samples_map_or_are_left_out() {
    let pool = parse::Pool {
        equity: Usdt(dec!(1000)),
        ratio: Some(dec!(10)),
        denominator: Some(Usdt(dec!(100))),
        mmr: Some(Usdt(dec!(1.98188809239997))),
        wallet: Usdt(dec!(1000)),
    };
    // The isolated MARGIN sample is not a cross swap: nothing for the USDT pool.
    let read = parse::account(
        AccountMode::Futures,
        &pool,
        &fixture("positions_isolated_margin.json"),
        &Reference::default(),
    )
    .unwrap();
    assert!(read.account.positions.is_empty());
    // …nor an unguarded swap: it is isolated spot margin, which no USDT top-up concerns.
    assert!(read.isolated.is_empty());
    // The cross SWAP sample has no markPx (2021 field set): absent, so no decision.
    let error = parse::account(
        AccountMode::Futures,
        &pool,
        &fixture("positions_cross_swap.json"),
        &Reference::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&error, VenueError::Malformed { detail, raw } if detail.contains("markPx") && raw.contains("287999792370819074")),
        "{error:?}"
    );
    assert!(parse::open_cross_swaps(&fixture("positions_cross_swap.json")).is_err());
}

#[test]
fn funding_transfer_state_and_tiers() {
    // Only ETH in Funding: no USDT row means zero USDT available.
    assert_eq!(
        parse::funding_usdt(&fixture("funding_balances.json")).unwrap(),
        Usdt::ZERO
    );
    assert_eq!(
        parse::transfer_ack(&fixture("transfer.json")).unwrap(),
        "754147"
    );
    let state = parse::transfer_state(&fixture("transfer_state.json"))
        .unwrap()
        .unwrap();
    assert_eq!(state.state, parse::State::Success);
    assert_eq!(state.amount, Some(dec!(1.5)));
    let tiers = parse::tiers(&fixture("position_tiers.json")).unwrap();
    assert_eq!(parse::tier_rate(&tiers, dec!(10)), Some(Ratio(dec!(0.03))));
}
