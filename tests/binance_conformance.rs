//! The venue conformance suite (tests/conformance) run against mock Binance.

mod common;
mod conformance;
mod mock_binance;
mod mock_server;

use async_trait::async_trait;
use rust_decimal::Decimal;

use std::time::Duration;

use conformance::streaming::StreamingExchange;
use conformance::{Fault, Malformed, MockExchange, ScriptedAccount, Target};
use marginguard::venue::Venue;
use mock_binance::{MockBinance, Route, SECRET};

pub struct Binance(MockBinance);

pub fn venue_for(mock: &MockBinance, secret: &str) -> Box<dyn Venue> {
    Box::new(mock.adapter(secret))
}

fn broken(kind: Malformed) -> mock_binance::Fault {
    let good = r#"{"symbol":"BTCUSDT","positionSide":"BOTH","positionAmt":"1","entryPrice":"60000","markPrice":"55000","unRealizedProfit":"-5000","notional":"55000","marginAsset":"USDT","isolatedWallet":"0","positionInitialMargin":"5500","maintMargin":"225"}"#;
    let body = match kind {
        Malformed::Truncated => format!("[{}", &good[..good.len() / 2]),
        Malformed::Html => "<html><body><h1>502 Bad Gateway</h1></body></html>".into(),
        Malformed::EmptyNumber => format!(
            "[{}]",
            good.replace(r#""markPrice":"55000""#, r#""markPrice":"""#)
        ),
        Malformed::WrongType => format!(
            "[{}]",
            good.replace(r#""maintMargin":"225""#, r#""maintMargin":{"v":225}"#)
        ),
        Malformed::ErrorCodeIn200 => {
            r#"{"code":-1000,"msg":"An unknown error occurred while processing the request."}"#
                .into()
        }
        Malformed::EmptyBody => String::new(),
        Malformed::ExponentNumber => format!(
            "[{}]",
            good.replace(r#""markPrice":"55000""#, r#""markPrice":"5.5e4""#)
        ),
    };
    mock_binance::Fault::Body(body)
}

#[async_trait]
impl MockExchange for Binance {
    async fn start(account: &ScriptedAccount) -> Self {
        Binance(MockBinance::start(account.wallet, account.reserve).await)
    }

    fn adapter(&self) -> Box<dyn Venue> {
        venue_for(&self.0, SECRET)
    }

    fn adapter_with_wrong_secret(&self) -> Box<dyn Venue> {
        venue_for(
            &self.0,
            "0000000000000000000000000000000000000000000000000000000000000000",
        )
    }

    fn script_marks(&self, marks: &[Decimal]) {
        self.0.script_marks(marks);
    }

    fn fail_next(&self, target: Target, fault: Fault) {
        let route = match target {
            Target::PositionRead => Route::PositionRisk,
            Target::Transfer => Route::Transfer,
        };
        let fault = match fault {
            Fault::RateLimited { retry_after_secs } => {
                mock_binance::Fault::TooManyRequests { retry_after_secs }
            }
            Fault::Malformed(kind) => broken(kind),
            Fault::TimeoutAfterApplying => {
                mock_binance::Fault::Slow(std::time::Duration::from_millis(1_200))
            }
            Fault::ServerErrorAfterApplying => mock_binance::Fault::UnknownAfterApplying,
        };
        self.0.fail_next(route, fault);
    }

    fn transfers(&self) -> Vec<Decimal> {
        self.0.ledger().into_iter().map(|row| row.amount).collect()
    }

    fn transfer_requests(&self) -> usize {
        self.0.count(Route::Transfer)
    }

    fn auth_rejections(&self) -> usize {
        self.0.count_code(-1022) + self.0.count_code(-2015)
    }

    fn position_reads(&self) -> usize {
        self.0.count(Route::PositionRisk)
    }

    fn position_reads_before_first_transfer(&self) -> usize {
        self.0.count_before(Route::PositionRisk, Route::Transfer)
    }

    fn bans(&self) -> usize {
        self.0.count_status(418)
    }

    fn liquidated(&self) -> bool {
        self.0.liquidated()
    }
}

#[async_trait]
impl StreamingExchange for Binance {
    fn streaming_adapter(&self, reconcile_every: Duration) -> Box<dyn Venue> {
        self.0.streaming_adapter(reconcile_every)
    }

    fn move_mark(&self, mark: Decimal) {
        self.0.move_mark(mark);
    }

    fn set_rest_mark(&self, mark: Decimal) {
        self.0.with(|s| s.mark = mark);
    }

    fn stall_streams(&self, stalled: bool) {
        self.0.stall_streams(stalled);
    }

    fn drop_streams(&self) {
        self.0.drop_streams();
    }

    fn refuse_stream_connections(&self, count: u32) {
        self.0.refuse_stream_connections(count);
    }

    fn send_raw(&self, text: &str) {
        self.0.send_garbage(text);
    }

    fn broken_mark_frames(&self, mark: Decimal) -> Vec<String> {
        let good = self.0.with(|s| {
            s.mark = mark;
            let frame = mock_binance::ws::mark_frame(s);
            s.mark = Decimal::from(60_000);
            frame
        });
        let price = format!(r#""p":"{mark}""#);
        vec![
            good.replace(&price, r#""p":"""#),
            good.replace(&price, r#""p":"0""#),
            good.replace(&price, r#""p":"5e4""#),
            good.replace(&price, r#""p":null"#),
            good.replace("markPriceUpdate", "markPrice"),
            good[..good.len() / 2].to_string(),
            "<html>502</html>".to_string(),
            good.replace(r#""data""#, r#""dta""#),
        ]
    }

    fn mark_connects(&self) -> u32 {
        self.0.stream_connects().0
    }

    fn account_connects(&self) -> u32 {
        self.0.stream_connects().1
    }
}

conformance::conformance_tests!(Binance);
conformance::streaming::streaming_conformance_tests!(Binance);
