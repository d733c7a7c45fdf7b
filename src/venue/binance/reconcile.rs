//! Which transfer-history row settles which transfer.
//!
//! Binance's universal transfer takes no client id, so a transfer whose answer never came can
//! only be found again by what it was: asset, amount and time. Pure, so it is tested on its
//! own: a row is matched by its `tranId` when the POST answered, otherwise by asset, exact
//! amount and a window around the decision instant; and a row already claimed by one request
//! never settles another.

use std::collections::HashMap;

use crate::money::Usdt;
use crate::venue::TransferKey;

use super::parse::HistoryRow;

/// How far before the decision instant a row may lie: clock offset error and the server's
/// own timestamping (server ms).
pub const WINDOW_BEFORE_MS: i64 = 60_000;
/// How far after, at least: the intent is stamped just before the call, and the call's own
/// waits, retries and `recvWindow` can put its execution later — the window is widened to
/// those (`Intent::acts_within_ms`) when they are longer.
pub const WINDOW_AFTER_MS: i64 = 120_000;
/// Added to how long Binance may act on the call: the server's own timestamping of the row.
const SERVER_STAMP_SLACK_MS: i64 = 10_000;

/// A transfer being looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intent {
    pub key: TransferKey,
    pub amount: Usdt,
    /// The decision instant, in server milliseconds.
    pub created_at_server: i64,
    /// The venue's id, when the POST answered with one.
    pub tran_id: Option<i64>,
    /// How long after `created_at_server` Binance may still have acted on the call
    /// (`Venue::may_still_act_for`), in ms.
    pub acts_within_ms: i64,
}

impl Intent {
    /// The last server instant a row of this request can carry.
    fn window_end(&self) -> i64 {
        let after = self
            .acts_within_ms
            .saturating_add(SERVER_STAMP_SLACK_MS)
            .max(WINDOW_AFTER_MS);
        self.created_at_server.saturating_add(after)
    }
}

/// The row that settles `intent`, if any. `claimed` maps each `tranId` already matched to the
/// request that claimed it; rows claimed by another request are skipped.
pub fn find_row<'a>(
    rows: &'a [HistoryRow],
    intent: &Intent,
    claimed: &HashMap<i64, TransferKey>,
) -> Option<&'a HistoryRow> {
    if let Some(id) = intent.tran_id {
        return rows.iter().find(|row| row.tran_id == id);
    }
    let free = |row: &&HistoryRow| match claimed.get(&row.tran_id) {
        Some(owner) => *owner == intent.key,
        None => true,
    };
    let fits = |row: &&HistoryRow| {
        row.asset == "USDT"
            && row.amount == intent.amount
            && row.timestamp >= intent.created_at_server.saturating_sub(WINDOW_BEFORE_MS)
            && row.timestamp <= intent.window_end()
    };
    // A row this request claimed before wins; otherwise the one closest in time.
    rows.iter()
        .filter(fits)
        .find(|row| claimed.get(&row.tran_id) == Some(&intent.key))
        .or_else(|| {
            rows.iter().filter(fits).filter(free).min_by_key(|row| {
                (
                    (row.timestamp - intent.created_at_server).abs(),
                    row.tran_id,
                )
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::venue::binance::parse::RowStatus;
    use rust_decimal_macros::dec;

    const T: i64 = 1_722_816_000_000;

    fn row(id: i64, amount: rust_decimal::Decimal, at: i64) -> HistoryRow {
        HistoryRow {
            tran_id: id,
            asset: "USDT".into(),
            amount: Usdt(amount),
            timestamp: at,
            status: RowStatus::Confirmed,
        }
    }

    fn intent(key: u128, amount: rust_decimal::Decimal) -> Intent {
        Intent {
            key: TransferKey(key),
            amount: Usdt(amount),
            created_at_server: T,
            tran_id: None,
            acts_within_ms: 32_000,
        }
    }

    #[test]
    fn matches_by_amount_and_window() {
        let rows = [
            row(1, dec!(100), T - 3_600_000), // an hour early: someone else's
            row(2, dec!(99.99), T + 400),     // wrong amount
            row(3, dec!(100), T + 350),
        ];
        let found = find_row(&rows, &intent(7, dec!(100)), &HashMap::new());
        assert_eq!(found.map(|r| r.tran_id), Some(3));
        // 100 and 100.00 are the same amount.
        let found = find_row(&rows, &intent(7, dec!(100.00)), &HashMap::new());
        assert_eq!(found.map(|r| r.tran_id), Some(3));
        assert_eq!(
            find_row(&rows[..2], &intent(7, dec!(100)), &HashMap::new()),
            None
        );
        let late = [row(4, dec!(100), T + WINDOW_AFTER_MS + 1)];
        assert_eq!(
            find_row(&late, &intent(7, dec!(100)), &HashMap::new()),
            None
        );
    }

    #[test]
    fn one_row_never_settles_two_requests() {
        let rows = [row(10, dec!(250), T + 200)];
        let mut claimed = HashMap::new();
        let first = find_row(&rows, &intent(1, dec!(250)), &claimed).unwrap();
        claimed.insert(first.tran_id, TransferKey(1));
        assert_eq!(find_row(&rows, &intent(2, dec!(250)), &claimed), None);
        // The owner finds it again.
        assert_eq!(
            find_row(&rows, &intent(1, dec!(250)), &claimed).map(|r| r.tran_id),
            Some(10)
        );
    }

    #[test]
    fn two_equal_transfers_take_one_row_each() {
        let rows = [row(20, dec!(50), T + 100), row(21, dec!(50), T + 900)];
        let mut claimed = HashMap::new();
        let a = find_row(&rows, &intent(1, dec!(50)), &claimed)
            .unwrap()
            .tran_id;
        claimed.insert(a, TransferKey(1));
        let b = find_row(&rows, &intent(2, dec!(50)), &claimed)
            .unwrap()
            .tran_id;
        assert_eq!((a, b), (20, 21));
    }

    #[test]
    fn a_known_tran_id_decides_alone() {
        let rows = [row(30, dec!(5), T), row(31, dec!(5), T)];
        let mut wanted = intent(1, dec!(5));
        wanted.tran_id = Some(31);
        assert_eq!(
            find_row(&rows, &wanted, &HashMap::new()).map(|r| r.tran_id),
            Some(31)
        );
        wanted.tran_id = Some(99);
        assert_eq!(find_row(&rows, &wanted, &HashMap::new()), None);
    }

    /// The window follows the call's real bounds: with a 60 s `recvWindow` and a 30 s timeout
    /// Binance may execute a transfer three minutes after the intent, past the fixed 120 s.
    #[test]
    fn the_window_covers_the_real_request_time_not_a_fixed_two_minutes() {
        let slow = Intent {
            acts_within_ms: 182_000,
            ..intent(7, dec!(100))
        };
        let rows = [row(5, dec!(100), T + 170_000)];
        assert!(find_row(&rows, &intent(7, dec!(100)), &HashMap::new()).is_none());
        assert_eq!(
            find_row(&rows, &slow, &HashMap::new()).map(|r| r.tran_id),
            Some(5)
        );
    }
}
