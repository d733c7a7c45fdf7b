//! The status page (src/operator/page.html) in a real headless Chromium, against an
//! in-process server giving the page and a `status.json` of the documented shape
//! (docs/operator.md). Assertions are on the text a person would read.

#[path = "common/browser.rs"]
mod browser;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

const PAGE: &str = include_str!("../src/operator/page.html");
const SAMPLE: &str = include_str!("fixtures/status/sample.json");
const TITLE: &str = "marginguard status";

/// One answer of the fake daemon's `/status.json`.
#[derive(Clone)]
enum Reply {
    Status(Value),
    Fail(StatusCode),
}

/// The answers in the order they are asked for; the last one repeats.
struct Replies {
    script: Vec<Reply>,
    served: AtomicUsize,
}

/// The page at `/` and at `/mg/` (behind a path prefix, as a reverse proxy would put it),
/// `status.json` beside each; on its own runtime so a test thread can block on Chromium.
struct Daemon {
    addr: SocketAddr,
    replies: Arc<Replies>,
    _runtime: tokio::runtime::Runtime,
}

impl Daemon {
    fn start(script: Vec<Reply>) -> Self {
        let replies = Arc::new(Replies {
            script,
            served: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/", get(page))
            .route("/mg/", get(page))
            .route("/status.json", get(status))
            .route("/mg/status.json", get(status))
            .with_state(replies.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move { axum::serve(listener, app).await });
        Daemon {
            addr,
            replies,
            _runtime: runtime,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn status_requests(&self) -> usize {
        self.replies.served.load(Ordering::SeqCst)
    }
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn status(State(replies): State<Arc<Replies>>) -> Response {
    let n = replies.served.fetch_add(1, Ordering::SeqCst);
    match &replies.script[n.min(replies.script.len() - 1)] {
        Reply::Status(body) => Json(body.clone()).into_response(),
        Reply::Fail(code) => (*code, "journal busy").into_response(),
    }
}

fn sample() -> Value {
    serde_json::from_str(SAMPLE).unwrap()
}

/// The visible text of the card `data-account="name"` (cards are not nested).
fn card(dom: &str, name: &str) -> String {
    let marker = format!("data-account=\"{name}\"");
    let at = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no card for {name} in:\n{dom}"));
    let start = dom[..at].rfind("<article").unwrap();
    let end = at + dom[at..].find("</article>").unwrap();
    browser::visible_text(&dom[start..end])
}

fn assert_has(text: &str, wanted: &str) {
    assert!(text.contains(wanted), "{wanted:?} is not shown in:\n{text}");
}

// 3 s of page time: the load's poll and the one at 2 s have both rendered.
const SETTLED: Duration = Duration::from_secs(3);

#[test]
fn each_account_is_a_card_with_its_figures_as_text() {
    let daemon = Daemon::start(vec![Reply::Status(sample())]);
    let dom = browser::dump_dom(&daemon.url("/"), SETTLED);
    let page = browser::visible_text(&dom);
    for wanted in [
        "marginguard",
        "version 0.1.0",
        "generated 2026-12-04 18:40:02 UTC",
        "ready",
    ] {
        assert_has(&page, wanted);
    }
    assert_has(&page, "read-only; refreshes every 2 s");

    let main = card(&dom, "main");
    for wanted in [
        "main live warning",
        "binance · feed streamed · strategy distance on liquidation distance",
        "liquidation distance 11.42 % strategy metric",
        "alert below 12.00 % top up below 8.00 % target 15.00 % floor 3.00 %",
        "equity 10234.5 USDT",
        "maintenance 812.2 USDT",
        "wallet balance 9000 USDT",
        "reserve available 3800 USDT keep at least 500",
        "spent 24 h 1200 USDT max 15000 a day",
        "in flight 0 USDT",
        "top-ups: sent 1 · landed 1 · failed 0 · unknown 0 · lapsed 0",
        "snapshot 2026-12-04 18:40:01 UTC (1.2 s ago)",
        "2026-12-04 18:31:07 UTC — top up 1200 7.91 %",
        "2026-12-04 18:31:07 UTC 1200 USDT settled yes",
        "not guarded ETHUSDT on isolated margin",
    ] {
        assert_has(&main, wanted);
    }
    assert!(
        !main.contains("DRY-RUN") && !main.contains("SIMULATED"),
        "a live card says: {main}"
    );
    assert!(
        !main.contains("stale"),
        "a fresh snapshot is marked stale: {main}"
    );

    let rehearsal = card(&dom, "rehearsal");
    assert_has(
        &rehearsal,
        "SIMULATED — a replayed market, not a real account",
    );
    assert_has(&rehearsal, "rehearsal simulated healthy");
    assert_has(&rehearsal, "cushion 61.20 % strategy metric");
    assert_has(&rehearsal, "no rescue in the journal");
}

#[test]
fn markup_in_a_reason_is_shown_as_text_and_never_runs() {
    let daemon = Daemon::start(vec![Reply::Status(sample())]);
    let dom = browser::dump_dom(&daemon.url("/"), SETTLED);
    let reason = "reason: liquidation distance 7.91 % below 8.00 % <script>alert(1)</script>\
                  <img src=x onerror=\"document.title='pwned'\">";
    // Parsed as markup, the <img> would have run its onerror, renaming the page, and be
    // an element in the DOM.
    assert_eq!(browser::title(&dom), TITLE, "the reason's markup ran");
    assert!(
        !dom.contains("<img"),
        "the reason became an element:\n{dom}"
    );
    assert_has(&card(&dom, "main"), reason);
}

#[test]
fn a_failing_daemon_raises_the_banner_and_keeps_the_last_figures() {
    let daemon = Daemon::start(vec![
        Reply::Status(sample()),
        Reply::Fail(StatusCode::SERVICE_UNAVAILABLE),
    ]);
    let dom = browser::dump_dom(&daemon.url("/"), Duration::from_secs(5));
    assert!(daemon.status_requests() >= 2, "the page polled only once");
    let page = browser::visible_text(&dom);
    assert_has(
        &page,
        "cannot reach the daemon (last update 2026-12-04 18:40:02 UTC) — HTTP 503",
    );
    // The last answer said "ready"; nobody knows that any more.
    assert_has(&page, "generated 2026-12-04 18:40:02 UTC no answer");
    assert_has(&card(&dom, "main"), "equity 10234.5 USDT");
    assert_has(&card(&dom, "rehearsal"), "rehearsal simulated healthy");
}

#[test]
fn a_healthy_daemon_shows_no_banner() {
    let daemon = Daemon::start(vec![Reply::Status(sample())]);
    let page = browser::visible_text(&browser::dump_dom(&daemon.url("/"), SETTLED));
    assert_has(&page, "equity 10234.5 USDT");
    assert!(
        !page.contains("cannot reach"),
        "banner while the daemon answers: {page}"
    );
}

/// The second answer: `main` acting on a newer, stale snapshot, in dry-run.
fn later_status() -> Value {
    let mut status = sample();
    let main = &mut status["accounts"][0];
    main["mode"] = "dry-run".into();
    main["state"] = "acting".into();
    main["equity"] = "9876.5".into();
    main["fresh"] = false.into();
    main["snapshot_age_seconds"] = 95.0.into();
    status["ready"] = false.into();
    status
}

#[test]
fn the_page_refreshes_behind_a_path_prefix() {
    let daemon = Daemon::start(vec![Reply::Status(sample()), Reply::Status(later_status())]);
    let dom = browser::dump_dom(&daemon.url("/mg/"), SETTLED);
    let page = browser::visible_text(&dom);
    assert_has(&page, "not ready");
    let main = card(&dom, "main");
    assert_has(&main, "DRY-RUN — transfers are only logged; no money moves");
    assert_has(&main, "main dry-run acting");
    assert_has(&main, "equity 9876.5 USDT");
    assert_has(&main, "(95.0 s ago) stale");
    assert!(
        !main.contains("10234.5"),
        "the first figures are still shown: {main}"
    );
}

#[test]
fn screenshots_for_a_desk_and_a_phone() {
    let daemon = Daemon::start(vec![Reply::Status(sample())]);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    for (name, size) in [
        ("status-page.png", (1280, 900)),
        ("status-page-phone.png", (390, 1400)),
    ] {
        let path = dir.join(name);
        browser::screenshot(&daemon.url("/"), &path, size, SETTLED);
        println!("screenshot: {}", path.display());
    }
}
