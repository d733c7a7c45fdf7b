//! Real 1-minute klines, replayed as the mark.
//!
//! No public archive holds Binance's mark-price klines for the crash days, so last-trade
//! klines stand in for the mark (spot files are the nearest stand-in for the index the mark
//! follows). Each minute is walked through its worst case for the position: open, then the
//! adverse extreme (the low for a long, the high for a short), then the other extreme, then
//! the close — one sub-step every 15 seconds. The liquidation engine sees every sub-step; the
//! bot sees only what is current when it polls, as on a real venue.

use std::path::Path;

use crate::money::{parse_decimal, Price};
use crate::time::Timestamp;

pub const MINUTE_MS: i64 = 60_000;
pub const SUBSTEPS_PER_MINUTE: usize = 4;
pub const SUBSTEP_MS: i64 = MINUTE_MS / SUBSTEPS_PER_MINUTE as i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bar {
    pub open_time: Timestamp,
    pub open: Price,
    pub high: Price,
    pub low: Price,
    pub close: Price,
}

impl Bar {
    /// The price at sub-step `k` of this minute, walking the adverse extreme first.
    pub fn substep(&self, k: usize, long: bool) -> Price {
        let (first, second) = if long {
            (self.low, self.high)
        } else {
            (self.high, self.low)
        };
        match k {
            0 => self.open,
            1 => first,
            2 => second,
            _ => self.close,
        }
    }
}

const HEADER: &str = "open_time_ms,open,high,low,close,volume";

/// 9999-12-31T23:59:59.999Z. Open times are refused outside `[0, this]`: no kline predates
/// 1970 or postdates year 9999, and the bound keeps every instant the replay derives from
/// them (a day's end, each sub-step) far inside i64 milliseconds.
const LAST_OPEN_TIME_MS: i64 = 253_402_300_799_999;

/// Loads a kline CSV strictly: the documented header, one row a minute with no gaps,
/// `low ≤ open, close ≤ high` and positive prices. Returns a message for the caller to place.
pub fn load_klines(path: &Path) -> Result<Vec<Bar>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    parse_klines(&text)
}

pub fn parse_klines(text: &str) -> Result<Vec<Bar>, String> {
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.trim() == HEADER => {}
        other => {
            return Err(format!(
                "expected the header `{HEADER}`, found `{}`",
                other.unwrap_or("")
            ))
        }
    }
    let mut bars: Vec<Bar> = Vec::with_capacity(1440);
    for (index, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row = index + 2;
        let bar = parse_row(line).map_err(|e| format!("row {row}: {e}"))?;
        if let Some(previous) = bars.last() {
            // Both open times are bounded by `parse_row`, so the difference cannot overflow.
            if bar.open_time.as_millis() - previous.open_time.as_millis() != MINUTE_MS {
                return Err(format!(
                    "row {row}: minutes must follow each other 60,000 ms apart"
                ));
            }
        }
        bars.push(bar);
    }
    if bars.is_empty() {
        return Err("no rows".into());
    }
    Ok(bars)
}

fn parse_row(line: &str) -> Result<Bar, String> {
    let fields: Vec<&str> = line.split(',').collect();
    // Checked here, so the indexing below stays within the six fields.
    if fields.len() != 6 {
        return Err(format!("expected 6 fields, found {}", fields.len()));
    }
    let open_time: i64 = fields[0]
        .trim()
        .parse()
        .map_err(|_| format!("open_time_ms `{}` is not an integer", fields[0]))?;
    if !(0..=LAST_OPEN_TIME_MS).contains(&open_time) {
        return Err(format!(
            "open_time_ms {open_time} is not between 1970 and the year 9999"
        ));
    }
    let price = |i: usize, name: &str| {
        parse_decimal(fields[i])
            .map(Price)
            .map_err(|e| format!("{name}: {e}"))
    };
    let bar = Bar {
        open_time: Timestamp(open_time),
        open: price(1, "open")?,
        high: price(2, "high")?,
        low: price(3, "low")?,
        close: price(4, "close")?,
    };
    let consistent = bar.low.0 > rust_decimal::Decimal::ZERO
        && bar.low <= bar.open.min(bar.close)
        && bar.high >= bar.open.max(bar.close);
    if !consistent {
        return Err("prices must satisfy 0 < low ≤ open, close ≤ high".into());
    }
    Ok(bar)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    const SAMPLE: &str = "open_time_ms,open,high,low,close,volume\n\
        1583971200000,7934.58000000,7954.59000000,7934.43000000,7949.22000000,54.02587000\n\
        1583971260000,7948.97000000,7955.00000000,7946.06000000,7950.48000000,30.60472600\n";

    #[test]
    fn parses_the_shared_format() {
        let bars = parse_klines(SAMPLE).unwrap();
        assert_eq!(bars.len(), 2);
        assert_eq!(bars[0].low, Price(dec!(7934.43)));
        assert_eq!(bars[0].substep(1, true), Price(dec!(7934.43)));
        assert_eq!(bars[0].substep(1, false), Price(dec!(7954.59)));
    }

    #[test]
    fn refuses_gaps_bad_header_and_inconsistent_bars() {
        let gap = SAMPLE.replace("1583971260000", "1583971320000");
        assert!(parse_klines(&gap).unwrap_err().contains("row 3"));
        assert!(parse_klines("time,o,h,l,c\n").is_err());
        let inverted = SAMPLE.replace("7954.59000000", "7900.00000000");
        assert!(parse_klines(&inverted).is_err());
        let empty_price = SAMPLE.replace("7949.22000000", "");
        assert!(parse_klines(&empty_price).unwrap_err().contains("absent"));
    }

    /// Issue 10 item 3: open times at the ends of i64 overflowed the one-minute check (and
    /// every instant derived from them); they are refused as input instead.
    #[test]
    fn open_times_at_the_ends_of_i64_are_refused_not_overflowed() {
        let first = SAMPLE.replace("1583971200000", &i64::MIN.to_string());
        let last = SAMPLE.replace("1583971260000", &i64::MAX.to_string());
        for text in [first, last] {
            assert!(parse_klines(&text).unwrap_err().contains("year 9999"));
        }
    }
}
