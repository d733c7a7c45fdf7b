//! Notifiers and the heartbeat against in-process receivers on 127.0.0.1: wire formats, the
//! webhook signature, retries, a receiver that hangs or fails, shutdown, and that no secret
//! reaches a log line, an error, `Debug` or the stats.

mod common;
mod mock_receiver;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::capture as capture_logs;
use hmac::{Hmac, Mac};
use marginguard::operator::heartbeat::{Heartbeat, HeartbeatSettings, HeartbeatStats};
use marginguard::operator::notify::{NotifierKind, NotifierSettings, NotifierStats, Notifiers};
use marginguard::operator::{Alert, AlertEvent, AlertSeverity, RawHeartbeat, RawNotifier};
use marginguard::time::Timestamp;
use marginguard::venue::common::credential::Hidden;
use mock_receiver::{wait_until, Receiver, Reply};
use sha2::Sha256;

const TOKEN: &str = "123456:CANARY-NOTIFY-telegram-token";
const DISCORD_PATH: &str = "/api/webhooks/42/CANARY-NOTIFY-discord-token";
const WEBHOOK_PATH: &str = "/hook/CANARY-NOTIFY-webhook-path";
const HMAC_SECRET: &str = "CANARY-NOTIFY-hmac-secret";
const TELEGRAM_OK: &str = r#"{"ok":true,"result":{"message_id":7}}"#;

fn alert(account: &str, severity: AlertSeverity) -> Alert {
    let mut details = BTreeMap::new();
    details.insert("amount".to_string(), "1200".to_string());
    Alert {
        event: AlertEvent::TopUpSent,
        severity,
        account: Some(account.to_string()),
        venue: Some("binance".to_string()),
        at: Timestamp::from_millis(1_796_409_600_123),
        title: format!("{account}: top-up sent: 1200 USDT into the futures wallet"),
        text: "liquidation distance 7.9 % (trigger 8.0 %)".to_string(),
        recovered: false,
        details,
    }
}

fn notifier(name: &str, kind: NotifierKind) -> NotifierSettings {
    NotifierSettings {
        name: name.to_string(),
        kind,
        min_severity: AlertSeverity::Info,
        accounts: None,
        timeout: Duration::from_secs(5),
    }
}

fn telegram(receiver: &Receiver) -> NotifierSettings {
    notifier(
        "phone",
        NotifierKind::Telegram {
            api_url: receiver.url.clone(),
            bot_token: Hidden::new(TOKEN),
            chat_id: "987654".to_string(),
        },
    )
}

fn discord(receiver: &Receiver) -> NotifierSettings {
    notifier(
        "team",
        NotifierKind::Discord {
            webhook_url: Hidden::new(format!("{}{DISCORD_PATH}", receiver.url)),
        },
    )
}

fn webhook(receiver: &Receiver, secret: Option<&str>) -> NotifierSettings {
    notifier(
        "pager",
        NotifierKind::Webhook {
            url: Hidden::new(format!("{}{WEBHOOK_PATH}", receiver.url)),
            hmac_secret: secret.map(Hidden::new),
        },
    )
}

fn stats_of(notifiers: &Notifiers, name: &str) -> NotifierStats {
    notifiers
        .stats()
        .into_iter()
        .find(|s| s.name == name)
        .expect("a notifier of that name")
}

/// Waits until `name` has delivered or given up on `settled` alerts.
async fn wait_settled(notifiers: &Notifiers, name: &str, settled: u64) -> NotifierStats {
    wait_until(&format!("{name} to settle {settled}"), || {
        let stats = stats_of(notifiers, name);
        stats.sent + stats.failed >= settled
    })
    .await;
    stats_of(notifiers, name)
}

fn hmac_hex(secret: &str, signed: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(signed);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn telegram_posts_to_the_token_path_with_chat_id_and_plain_text() {
    let receiver = Receiver::start(Reply::status(200, TELEGRAM_OK)).await;
    let notifiers = Notifiers::start(vec![telegram(&receiver)]);
    let sent = alert("main", AlertSeverity::Warning);
    notifiers.send(&sent);
    let mut long = alert("main", AlertSeverity::Critical);
    long.text = "x".repeat(5_000);
    notifiers.send(&long);

    let hits = receiver.wait_for_hits(2).await;
    assert_eq!(hits[0].method, "POST");
    assert_eq!(hits[0].path, format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(
        hits[0].header("content-type").as_deref(),
        Some("application/json")
    );
    let body = hits[0].json();
    assert_eq!(body["chat_id"], "987654");
    assert_eq!(body["text"], sent.chat_text());
    assert_eq!(body["disable_web_page_preview"], true);
    assert!(body.get("parse_mode").is_none(), "plain text: {body}");
    let long_text = hits[1].json()["text"].as_str().unwrap().to_string();
    assert_eq!(long_text.chars().count(), 4096);
    assert!(long_text.starts_with("[CRITICAL] main: top-up sent") && long_text.ends_with('…'));

    let stats = wait_settled(&notifiers, "phone", 2).await;
    assert_eq!((stats.kind, stats.sent, stats.failed), ("telegram", 2, 0));
}

#[tokio::test]
async fn a_telegram_200_without_ok_true_is_a_failure_and_not_retried() {
    let receiver = Receiver::start(Reply::status(200, "<html>captive portal</html>")).await;
    let notifiers = Notifiers::start(vec![telegram(&receiver)]);
    notifiers.send(&alert("main", AlertSeverity::Info));
    let stats = wait_settled(&notifiers, "phone", 1).await;
    assert_eq!((stats.sent, stats.failed), (0, 1));
    assert_eq!(receiver.hits().len(), 1);
}

#[tokio::test]
async fn discord_posts_content_at_most_2000_characters_with_mentions_off() {
    let receiver = Receiver::start(Reply::status(204, "")).await;
    let notifiers = Notifiers::start(vec![discord(&receiver)]);
    let mut long = alert("main", AlertSeverity::Critical);
    long.text = "@everyone é".repeat(300);
    notifiers.send(&long);

    let hits = receiver.wait_for_hits(1).await;
    assert_eq!(hits[0].path, DISCORD_PATH);
    let body = hits[0].json();
    let content = body["content"].as_str().unwrap();
    assert_eq!(content.chars().count(), 2000);
    assert!(content.starts_with("[CRITICAL] main: top-up sent"));
    assert_eq!(body["allowed_mentions"], serde_json::json!({ "parse": [] }));
    let stats = wait_settled(&notifiers, "team", 1).await;
    assert_eq!((stats.kind, stats.sent, stats.failed), ("discord", 1, 0));
}

#[tokio::test]
async fn the_webhook_payload_is_as_documented_and_its_signature_verifies() {
    let receiver = Receiver::start(Reply::status(200, "thanks")).await;
    let unsigned = Receiver::start(Reply::status(202, "")).await;
    let mut plain = webhook(&unsigned, None);
    plain.name = "plain".into();
    let notifiers = Notifiers::start(vec![webhook(&receiver, Some(HMAC_SECRET)), plain]);
    let mut recovered = alert("main", AlertSeverity::Info);
    recovered.event = AlertEvent::Blind;
    recovered.recovered = true;
    notifiers.send(&recovered);

    let hit = receiver.wait_for_hits(1).await.remove(0);
    assert_eq!(hit.path, WEBHOOK_PATH);
    assert_eq!(
        hit.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(hit.header("x-marginguard-event").as_deref(), Some("blind"));
    let payload = hit.json();
    assert_eq!(
        payload,
        serde_json::json!({
            "version": 1,
            "event": "blind",
            "severity": "info",
            "recovered": true,
            "account": "main",
            "venue": "binance",
            "at": "2026-12-04T18:40:00.123Z",
            "at_ms": 1_796_409_600_123_i64,
            "title": recovered.title,
            "text": recovered.text,
            "details": { "amount": "1200" },
        })
    );

    let timestamp = hit.header("x-marginguard-timestamp").unwrap();
    let sent_at: i64 = timestamp.parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now - sent_at).abs() <= 60,
        "the wall clock of sending: {sent_at}"
    );
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(&hit.body);
    let signature = hit.header("x-marginguard-signature").unwrap();
    assert_eq!(
        signature,
        format!("sha256={}", hmac_hex(HMAC_SECRET, &signed))
    );
    assert_ne!(
        signature,
        format!("sha256={}", hmac_hex("another-secret", &signed)),
        "a wrong secret does not verify"
    );
    let mut tampered = signed.clone();
    tampered.extend_from_slice(b" ");
    assert_ne!(
        signature,
        format!("sha256={}", hmac_hex(HMAC_SECRET, &tampered))
    );

    let plain_hit = unsigned.wait_for_hits(1).await.remove(0);
    assert!(plain_hit.header("x-marginguard-signature").is_none());
    assert!(plain_hit.header("x-marginguard-timestamp").is_some());
    assert_eq!(wait_settled(&notifiers, "plain", 1).await.sent, 1);
}

#[tokio::test]
async fn a_hanging_receiver_blocks_neither_send_nor_another_notifier_and_overflow_is_counted() {
    let hanging = Receiver::start(Reply::Hang).await;
    let healthy = Receiver::start(Reply::status(204, "")).await;
    let mut slow = webhook(&hanging, None);
    slow.timeout = Duration::from_secs(30);
    let mut only_b = discord(&healthy);
    only_b.accounts = Some(vec!["b".to_string()]);
    let notifiers = Notifiers::start(vec![slow, only_b]);

    // No await between the sends: on this current-thread runtime the workers have not run,
    // so exactly 64 alerts fit in the hanging notifier's queue and the rest are dropped.
    let started = std::time::Instant::now();
    for _ in 0..100 {
        notifiers.send(&alert("a", AlertSeverity::Warning));
    }
    notifiers.send(&alert("b", AlertSeverity::Warning));
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "send never waits: {:?}",
        started.elapsed()
    );

    let delivered = healthy.wait_for_hits(1).await;
    assert_eq!(delivered[0].path, DISCORD_PATH);
    assert_eq!(wait_settled(&notifiers, "team", 1).await.sent, 1);
    assert_eq!(
        hanging.wait_for_hits(1).await.len(),
        1,
        "stuck on its first"
    );
    let stuck = stats_of(&notifiers, "pager");
    assert_eq!((stuck.sent, stuck.failed, stuck.dropped), (0, 0, 101 - 64));
    assert_eq!(stats_of(&notifiers, "team").dropped, 0);
}

#[tokio::test(start_paused = true)]
async fn a_failing_receiver_is_tried_three_times_then_counted_failed() {
    let receiver = Receiver::start(Reply::status(500, "down")).await;
    let notifiers = Notifiers::start(vec![discord(&receiver)]);
    let started = tokio::time::Instant::now();
    notifiers.send(&alert("main", AlertSeverity::Critical));
    assert_eq!(started.elapsed(), Duration::ZERO, "send returns at once");

    let stats = wait_settled(&notifiers, "team", 1).await;
    assert_eq!((stats.sent, stats.failed), (0, 1));
    let hits = receiver.hits();
    assert_eq!(hits.len(), 3, "the first try and two more");
    assert!(hits[1].at - hits[0].at >= Duration::from_secs(1));
    assert!(hits[2].at - hits[1].at >= Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn a_client_error_is_not_retried() {
    let receiver = Receiver::start(Reply::status(404, r#"{"message": "Unknown Webhook"}"#)).await;
    let notifiers = Notifiers::start(vec![discord(&receiver)]);
    notifiers.send(&alert("main", AlertSeverity::Critical));
    let stats = wait_settled(&notifiers, "team", 1).await;
    assert_eq!((stats.sent, stats.failed), (0, 1));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(receiver.hits().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_429_is_retried_after_retry_after_and_delivered_once() {
    let flooded = r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}"#;
    let tg = Receiver::scripted(
        vec![Reply::status(429, flooded)],
        Reply::status(200, TELEGRAM_OK),
    )
    .await;
    let limited = Reply::status(
        429,
        r#"{"message": "You are being rate limited.", "retry_after": 0.5, "global": false}"#,
    )
    .with_header("retry-after", "1");
    let dc = Receiver::scripted(vec![limited], Reply::status(204, "")).await;
    let notifiers = Notifiers::start(vec![telegram(&tg), discord(&dc)]);
    notifiers.send(&alert("main", AlertSeverity::Warning));

    let stats = wait_settled(&notifiers, "phone", 1).await;
    assert_eq!((stats.sent, stats.failed), (1, 0));
    let hits = tg.hits();
    assert_eq!(hits.len(), 2, "delivered once, after one retry");
    assert!(hits[1].at - hits[0].at >= Duration::from_secs(1));

    let stats = wait_settled(&notifiers, "team", 1).await;
    assert_eq!((stats.sent, stats.failed), (1, 0));
    let hits = dc.hits();
    assert_eq!(hits.len(), 2);
    // The body's float `retry_after` is the precise one; the header is whole seconds.
    let waited = hits[1].at - hits[0].at;
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(1),
        "{waited:?}"
    );
}

#[tokio::test]
async fn filters_pick_the_notifiers_that_want_an_alert() {
    let receiver = Receiver::start(Reply::status(204, "")).await;
    let mut critical_main = discord(&receiver);
    critical_main.min_severity = AlertSeverity::Critical;
    critical_main.accounts = Some(vec!["main".to_string()]);
    let notifiers = Notifiers::start(vec![critical_main]);
    notifiers.send(&alert("main", AlertSeverity::Warning));
    notifiers.send(&alert("other", AlertSeverity::Critical));
    let mut shutdown = alert("main", AlertSeverity::Critical);
    shutdown.event = AlertEvent::Shutdown;
    shutdown.account = None;
    shutdown.venue = None;
    notifiers.send(&shutdown);

    let stats = wait_settled(&notifiers, "team", 1).await;
    assert_eq!((stats.sent, stats.dropped), (1, 0));
    let hits = receiver.hits();
    assert_eq!(hits.len(), 1, "only the process-wide critical one");
    assert!(hits[0].json()["content"]
        .as_str()
        .unwrap()
        .starts_with("[CRITICAL]"));
}

#[tokio::test]
async fn flush_delivers_what_is_queued_before_shutdown() {
    let receiver = Receiver::start(Reply::status(200, TELEGRAM_OK)).await;
    let notifiers = Notifiers::start(vec![telegram(&receiver)]);
    assert!(!notifiers.is_empty());
    for _ in 0..3 {
        notifiers.send(&alert("main", AlertSeverity::Info));
    }
    notifiers.flush(Duration::from_secs(5)).await;
    assert_eq!(receiver.hits().len(), 3);
    assert!(Notifiers::start(Vec::new()).is_empty());
}

#[tokio::test(start_paused = true)]
async fn flush_gives_up_on_a_hanging_receiver_after_the_given_time() {
    let hanging = Receiver::start(Reply::Hang).await;
    let mut slow = webhook(&hanging, None);
    slow.timeout = Duration::from_secs(60);
    let notifiers = Notifiers::start(vec![slow]);
    notifiers.send(&alert("main", AlertSeverity::Info));
    hanging.wait_for_hits(1).await;
    let started = tokio::time::Instant::now();
    notifiers.flush(Duration::from_secs(2)).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

/// A port on 127.0.0.1 where nothing listens.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test(start_paused = true)]
async fn no_secret_reaches_logs_stats_debug_or_errors() {
    let (logs, _guard) = capture_logs();
    // Receivers that echo the request's path back, as some error pages do; Telegram's so far
    // in that the 300-character cut of the logged answer falls inside the token.
    let tg = Receiver::start(Reply::status(
        401,
        &format!("{} /bot{TOKEN}", "y".repeat(270)),
    ))
    .await;
    let dc = Receiver::start(Reply::status(404, &format!("no webhook at {DISCORD_PATH}"))).await;
    let nowhere = closed_port_url().await;
    let unreachable = notifier(
        "pager",
        NotifierKind::Webhook {
            url: Hidden::new(format!("{nowhere}{WEBHOOK_PATH}")),
            hmac_secret: Some(Hidden::new(HMAC_SECRET)),
        },
    );
    let settings = vec![telegram(&tg), discord(&dc), unreachable];
    let shown = format!("{settings:?} {settings:#?}");
    let notifiers = Notifiers::start(settings);
    notifiers.send(&alert("main", AlertSeverity::Critical));
    for name in ["phone", "team", "pager"] {
        assert_eq!(wait_settled(&notifiers, name, 1).await.failed, 1, "{name}");
    }

    let heartbeat = Heartbeat::start(HeartbeatSettings {
        url: Hidden::new(format!("{}/ping/CANARY-NOTIFY-heartbeat", dc.url)),
        every: Duration::from_secs(60),
    });
    heartbeat.unhealthy();
    wait_until("the heartbeat error", || heartbeat.stats().error == 1).await;

    let config_errors = config_errors_with_canaries();
    let logged = logs.text();
    assert!(logged.contains("alert not delivered"), "{logged}");
    assert!(
        logged.contains("status=401") && logged.contains("status=404"),
        "{logged}"
    );
    assert!(logged.contains("cannot connect"), "{logged}");
    assert!(logged.contains("heartbeat ping failed"), "{logged}");
    let stats = format!("{:?} {:?}", notifiers.stats(), heartbeat.stats());
    for (what, text) in [
        ("logs", &logged),
        ("Debug", &shown),
        ("stats", &stats),
        ("config errors", &config_errors),
    ] {
        assert!(!text.contains("CANARY"), "{what} show a secret: {text}");
    }
    assert!(
        shown.contains("[redacted]") && shown.contains("987654"),
        "{shown}"
    );
}

/// Every config error a canary secret could reach: bad URLs from variables and files.
fn config_errors_with_canaries() -> String {
    let file = Path::new("/etc/marginguard/config.toml");
    std::env::set_var(
        "MG_NOTIFIERS_TEST_PLAIN_URL",
        "http://hooks.example/CANARY-NOTIFY-config-url",
    );
    std::env::set_var(
        "MG_NOTIFIERS_TEST_BAD_URL",
        "CANARY-NOTIFY-config-not-a-url",
    );
    let tables = [
        "name = \"w\"\nkind = \"webhook\"\nurl_env = \"MG_NOTIFIERS_TEST_PLAIN_URL\"\n",
        "name = \"d\"\nkind = \"discord\"\nwebhook_url_env = \"MG_NOTIFIERS_TEST_BAD_URL\"\n",
        "name = \"d\"\nkind = \"discord\"\nwebhook_url_env = \"MG_NOTIFIERS_TEST_BAD_URL\"\nchat_id = \"1\"\n",
    ];
    let mut errors = String::new();
    for table in tables {
        let raw: RawNotifier = toml::from_str(table).unwrap();
        let error = raw.build(file, "notifiers[0].").unwrap_err();
        assert!(error.key.starts_with("notifiers[0]."), "{error}");
        errors.push_str(&format!("{error}\n"));
    }
    let raw: RawHeartbeat = toml::from_str("url_env = \"MG_NOTIFIERS_TEST_PLAIN_URL\"\n").unwrap();
    let error = raw.build(file, "heartbeat.").unwrap_err();
    assert_eq!(error.key, "heartbeat.url_env");
    errors.push_str(&error.to_string());
    errors
}

async fn settle(heartbeat: &Heartbeat, expected: HeartbeatStats) {
    wait_until(&format!("heartbeat stats {expected:?}"), || {
        heartbeat.stats() == expected
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_heartbeat_pings_at_most_once_per_interval_and_tells_a_change_at_once() {
    let receiver = Receiver::start(Reply::status(200, "OK")).await;
    let every = Duration::from_secs(60);
    let heartbeat = Heartbeat::start(HeartbeatSettings {
        url: Hidden::new(format!("{}/uuid-1", receiver.url)),
        every,
    });
    let settle = |expected| settle(&heartbeat, expected);

    for _ in 0..50 {
        heartbeat.healthy();
    }
    settle(HeartbeatStats {
        ok: 1,
        fail: 0,
        error: 0,
    })
    .await;
    for _ in 0..50 {
        heartbeat.healthy();
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(receiver.hits().len(), 1, "one ping per interval");

    tokio::time::sleep(every).await;
    heartbeat.healthy();
    settle(HeartbeatStats {
        ok: 2,
        fail: 0,
        error: 0,
    })
    .await;

    heartbeat.unhealthy();
    heartbeat.unhealthy();
    settle(HeartbeatStats {
        ok: 2,
        fail: 1,
        error: 0,
    })
    .await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    heartbeat.unhealthy();
    tokio::time::sleep(every).await;
    heartbeat.unhealthy();
    settle(HeartbeatStats {
        ok: 2,
        fail: 2,
        error: 0,
    })
    .await;
    heartbeat.healthy();
    settle(HeartbeatStats {
        ok: 3,
        fail: 2,
        error: 0,
    })
    .await;

    let hits = receiver.hits();
    let paths: Vec<&str> = hits.iter().map(|h| h.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/uuid-1",
            "/uuid-1",
            "/uuid-1/fail",
            "/uuid-1/fail",
            "/uuid-1"
        ]
    );
    assert!(hits.iter().all(|h| h.method == "GET"));
    assert!(hits[1].at - hits[0].at >= every);
    assert!(hits[3].at - hits[2].at >= every);
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_ping_not_yet_sent_is_replaced_by_the_newer_one() {
    let receiver = Receiver::scripted(vec![Reply::Hang], Reply::status(200, "OK")).await;
    let heartbeat = Heartbeat::start(HeartbeatSettings {
        url: Hidden::new(format!("{}/uuid-2", receiver.url)),
        every: Duration::from_secs(10),
    });
    heartbeat.healthy();
    // The first ping hangs until its 10 s timeout; meanwhile three more fall due and only
    // the newest is sent once the worker is free.
    receiver.wait_for_hits(1).await;
    heartbeat.unhealthy();
    heartbeat.healthy();
    heartbeat.unhealthy();
    wait_until("the newest ping", || heartbeat.stats().fail == 1).await;
    let stats = heartbeat.stats();
    assert_eq!((stats.ok, stats.error), (0, 1), "the first timed out");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let paths: Vec<String> = receiver.hits().into_iter().map(|h| h.path).collect();
    assert_eq!(paths, ["/uuid-2", "/uuid-2/fail"]);
}
