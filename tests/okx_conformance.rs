//! The venue conformance suite (tests/conformance) run against mock OKX.

mod common;
mod conformance;
mod mock_okx;
mod mock_server;

use std::time::Duration;

use async_trait::async_trait;
use rust_decimal::Decimal;

use conformance::streaming::StreamingExchange;
use conformance::{Fault, Malformed, MockExchange, ScriptedAccount, Target};
use marginguard::venue::Venue;
use mock_okx::{MockOkx, Route, SECRET};

pub struct Okx(MockOkx);

/// A sound positions answer at a mark of 55,000, broken in each of the suite's ways.
fn broken(kind: Malformed) -> mock_okx::Fault {
    let good = r#"{"instId":"BTC-USDT-SWAP","instType":"SWAP","mgnMode":"cross","posSide":"net","pos":"100","ccy":"USDT","lever":"10","avgPx":"60000","markPx":"55000","liqPx":"","margin":"","mgnRatio":"0","mmr":"275","imr":"5500","notionalUsd":"55000","upl":"-5000"}"#;
    let wrap = |p: String| format!(r#"{{"code":"0","msg":"","data":[{p}]}}"#);
    let body = match kind {
        Malformed::Truncated => wrap(good.to_string())[..120].to_string(),
        Malformed::Html => "<html><body><h1>502 Bad Gateway</h1></body></html>".into(),
        Malformed::EmptyNumber => wrap(good.replace(r#""markPx":"55000""#, r#""markPx":"""#)),
        Malformed::WrongType => wrap(good.replace(r#""pos":"100""#, r#""pos":{"v":100}"#)),
        Malformed::ErrorCodeIn200 => r#"{"code":"50026","msg":"System error.","data":[]}"#.into(),
        Malformed::EmptyBody => String::new(),
        Malformed::ExponentNumber => {
            wrap(good.replace(r#""markPx":"55000""#, r#""markPx":"5.5e4""#))
        }
    };
    mock_okx::Fault::Body(body)
}

#[async_trait]
impl MockExchange for Okx {
    async fn start(account: &ScriptedAccount) -> Self {
        Okx(MockOkx::start(account.wallet, account.reserve).await)
    }

    fn adapter(&self) -> Box<dyn Venue> {
        Box::new(self.0.adapter(SECRET))
    }

    fn adapter_with_wrong_secret(&self) -> Box<dyn Venue> {
        Box::new(self.0.adapter("00000000000000000000000000000000"))
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
            // OKX documents no Retry-After: the adapter's own first back-off (1 s) applies.
            Fault::RateLimited { .. } => mock_okx::Fault::RateLimited,
            Fault::Malformed(kind) => broken(kind),
            Fault::TimeoutAfterApplying => {
                mock_okx::Fault::Slow(std::time::Duration::from_millis(1_200))
            }
            Fault::ServerErrorAfterApplying => {
                mock_okx::Fault::AfterApplying(500, "50026", "System error.")
            }
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
        ["50105", "50111", "50113"]
            .iter()
            .map(|code| self.0.count_code(code))
            .sum()
    }

    fn position_reads(&self) -> usize {
        self.0.count(Route::Positions)
    }

    fn position_reads_before_first_transfer(&self) -> usize {
        self.0.count_before(Route::Positions, Route::Transfer)
    }

    fn bans(&self) -> usize {
        // OKX has no IP ban answer; overuse is refused one request at a time with 50011.
        self.0.count_code("50011").saturating_sub(1)
    }

    fn liquidated(&self) -> bool {
        self.0.liquidated()
    }
}

#[async_trait]
impl StreamingExchange for Okx {
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

    /// The mock's own `mark-price` push at `mark`, broken in the ways OKX's could be.
    fn broken_mark_frames(&self, mark: Decimal) -> Vec<String> {
        let good = self.0.with(|s| {
            let before = s.mark;
            s.mark = mark;
            let frame = mock_okx::ws::mark_frame(s);
            s.mark = before;
            frame
        });
        let price = format!(r#""markPx":"{mark}""#);
        vec![
            good.replace(&price, r#""markPx":"""#),
            good.replace(&price, r#""markPx":"0""#),
            good.replace(&price, r#""markPx":"-50000""#),
            good.replace(&price, r#""markPx":"5e4""#),
            good.replace(&price, r#""markPx":null"#),
            good.replace(&price, r#""markPx":{"v":50000}"#),
            good.replace(r#""ts":""#, r#""ts":"t"#),
            good.replace(r#""channel":"mark-price""#, r#""channel":"mark-prices""#),
            good.replace(r#""data""#, r#""dta""#),
            // A mark for another instrument than the push's `arg` names.
            format!(
                r#"{{"arg":{{"channel":"mark-price","instId":"BTC-USDT-SWAP"}},"data":[{{"instType":"SWAP","instId":"ETH-USDT-SWAP","markPx":"{mark}","ts":"{}"}}]}}"#,
                mock_server::system_ms()
            ),
            good[..good.len() / 2].to_string(),
            "<html>502</html>".to_string(),
            "PONG".to_string(),
        ]
    }

    fn mark_connects(&self) -> u32 {
        self.0.stream_connects().0
    }

    fn account_connects(&self) -> u32 {
        self.0.stream_connects().1
    }
}

conformance::conformance_tests!(Okx);
conformance::streaming::streaming_conformance_tests!(Okx);
