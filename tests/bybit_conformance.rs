//! The venue conformance suite (tests/conformance) run against mock Bybit.

mod common;
mod conformance;
mod mock_bybit;
mod mock_server;

use std::time::Duration;

use async_trait::async_trait;
use rust_decimal::Decimal;

use conformance::streaming::StreamingExchange;
use conformance::{Fault, Malformed, MockExchange, ScriptedAccount, Target};
use marginguard::venue::Venue;
use mock_bybit::{MockBybit, Route, SECRET};

pub struct Bybit(MockBybit);

/// A position-list envelope in Bybit's shape with one of its fields broken.
fn broken(kind: Malformed) -> mock_bybit::Fault {
    let good = r#"{"retCode":0,"retMsg":"OK","result":{"list":[{"positionIdx":0,"riskId":1,"symbol":"BTCUSDT","side":"Buy","size":"1","avgPrice":"60000","positionValue":"55000","tradeMode":0,"positionStatus":"Normal","leverage":"10","markPrice":"55000","liqPrice":"","positionMM":"225","positionIM":"5500","unrealisedPnl":"-5000","createdTime":"1676538056258","updatedTime":"1697673600012"}],"nextPageCursor":"","category":"linear"},"retExtInfo":{},"time":1697684980172}"#;
    let body = match kind {
        Malformed::Truncated => good[..good.len() / 2].to_string(),
        Malformed::Html => "<html><body><h1>502 Bad Gateway</h1></body></html>".into(),
        Malformed::EmptyNumber => good.replace(r#""markPrice":"55000""#, r#""markPrice":"""#),
        Malformed::WrongType => good.replace(r#""size":"1""#, r#""size":{"v":"1"}"#),
        Malformed::ErrorCodeIn200 => {
            r#"{"retCode":10016,"retMsg":"Server error.","result":{},"retExtInfo":{},"time":1697684980172}"#.into()
        }
        Malformed::EmptyBody => String::new(),
        Malformed::ExponentNumber => {
            good.replace(r#""markPrice":"55000""#, r#""markPrice":"5.5e4""#)
        }
    };
    mock_bybit::Fault::Body(body)
}

#[async_trait]
impl MockExchange for Bybit {
    async fn start(account: &ScriptedAccount) -> Self {
        Bybit(MockBybit::start(account.wallet, account.reserve).await)
    }

    fn adapter(&self) -> Box<dyn Venue> {
        Box::new(self.0.adapter(SECRET))
    }

    fn adapter_with_wrong_secret(&self) -> Box<dyn Venue> {
        Box::new(self.0.adapter("zyxwvutsrqponmlkjihgfedcba9876543210"))
    }

    fn script_marks(&self, marks: &[Decimal]) {
        self.0.script_marks(marks);
    }

    fn fail_next(&self, target: Target, fault: Fault) {
        let route = match target {
            Target::PositionRead => Route::Positions,
            Target::Transfer => Route::Transfer,
        };
        let fault = match fault {
            Fault::RateLimited { retry_after_secs } => mock_bybit::Fault::TooManyVisits {
                reset_after: Duration::from_secs(retry_after_secs),
            },
            Fault::Malformed(kind) => broken(kind),
            Fault::TimeoutAfterApplying => mock_bybit::Fault::Slow(Duration::from_millis(1_200)),
            Fault::ServerErrorAfterApplying => mock_bybit::Fault::BadGatewayAfterApplying,
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
        self.0.count_code(10003) + self.0.count_code(10004)
    }

    fn position_reads(&self) -> usize {
        self.0.count(Route::Positions)
    }

    fn position_reads_before_first_transfer(&self) -> usize {
        self.0.count_before(Route::Positions, Route::Transfer)
    }

    fn bans(&self) -> usize {
        self.0.count_status(403)
    }

    fn liquidated(&self) -> bool {
        self.0.liquidated()
    }
}

#[async_trait]
impl StreamingExchange for Bybit {
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

    /// A ticker delta carrying `mark`, broken the ways a venue's bytes can be.
    fn broken_mark_frames(&self, mark: Decimal) -> Vec<String> {
        let good = self.0.with(|s| {
            let was = s.mark;
            s.mark = mark;
            let frame = mock_bybit::ws::ticker_frame(s, "delta", true);
            s.mark = was;
            frame
        });
        let price = format!(r#""markPrice":"{mark}""#);
        assert!(good.contains(&price), "{good}");
        let parsed: serde_json::Value = serde_json::from_str(&good).expect("the mock's frame");
        let ts = format!(r#""ts":{}"#, parsed["ts"]);
        let mut listed = parsed.clone();
        listed["data"] = serde_json::json!([parsed["data"]]);
        vec![
            good.replace(&price, r#""markPrice":"""#),
            good.replace(&price, r#""markPrice":"0""#),
            good.replace(&price, &format!(r#""markPrice":"-{mark}""#)),
            good.replace(&price, r#""markPrice":"5e4""#),
            good.replace(&price, r#""markPrice":null"#),
            good.replace(&price, &format!(r#""markPrice":["{mark}"]"#)),
            good.replace(&ts, r#""ts":"now""#),
            good.replace(r#""type":"delta""#, r#""type":"update""#),
            good.replace(r#""symbol":"BTCUSDT""#, r#""symbol":"ETHUSDT""#),
            good.replace(r#""data""#, r#""dta""#),
            listed.to_string(),
            good[..good.len() / 2].to_string(),
            "<html>502</html>".to_string(),
        ]
    }

    fn mark_connects(&self) -> u32 {
        self.0.stream_connects().0
    }

    fn account_connects(&self) -> u32 {
        self.0.stream_connects().1
    }
}

conformance::conformance_tests!(Bybit);
conformance::streaming::streaming_conformance_tests!(Bybit);
