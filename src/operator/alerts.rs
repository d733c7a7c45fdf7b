//! From engine events to alerts, de-duplicated: no I/O, no clock — "now" arrives with each
//! event (the account's clock), so a simulated day alerts as a live one would, replayably.
//!
//! A *condition* (below the alert level, blind, …) is announced when it starts and once more
//! when it clears; while it lasts nothing repeats. One starting again within `cool_off` of
//! the last message of its kind stays quiet until `cool_off` has passed with it still on, so
//! a flapping price is heard at most once per `cool_off` and never hidden for longer.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::core::{Action, Blocked, Cap, TopUp};
use crate::engine::{Event, EventKind, StopReason};
use crate::money::Usdt;
use crate::operator::board::{AccountInfo, AccountStatus};
use crate::operator::{Alert, AlertEvent, AlertSeverity};
use crate::report::money;
use crate::time::Timestamp;

/// The rules of de-duplication and of blindness, from `[alerts]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertRules {
    pub cool_off: Duration,
    pub blind_after: Duration,
}

impl Default for AlertRules {
    fn default() -> Self {
        Self {
            cool_off: Duration::from_secs(30 * 60),
            blind_after: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Condition {
    announced: bool,
}

/// One account's conditions and when each kind last made a message.
#[derive(Debug, Default)]
struct AccountAlerts {
    on: HashMap<AlertEvent, Condition>,
    last_message: HashMap<AlertEvent, Timestamp>,
    /// A cap or the reserve bound a rescue: stays on until the metric is back above the
    /// trigger (the next ticks see the transfer in flight, not the cap).
    cap_bound: bool,
    reserve_bound: bool,
    /// Since when the stream has been down (it is announced only once it has stayed down
    /// for `STREAM_DOWN_GRACE`: every start polls until its streams connect).
    stream_down_since: Option<Timestamp>,
}

/// How long a stream must stay down before it is worth a message: longer than a connect at
/// start or a reconnect after a venue's scheduled disconnect.
pub const STREAM_DOWN_GRACE: Duration = Duration::from_secs(30);

/// Turns events into alerts. Its memory is per account × kind: bounded.
#[derive(Debug, Default)]
pub struct Alerter {
    rules: AlertRules,
    accounts: HashMap<String, AccountAlerts>,
    suppressed: BTreeMap<AlertEvent, u64>,
}

impl Alerter {
    pub fn new(rules: AlertRules) -> Self {
        Self {
            rules,
            ..Self::default()
        }
    }

    pub fn rules(&self) -> AlertRules {
        self.rules
    }

    /// De-duplicated alerts so far, by kind.
    pub fn suppressed(&self) -> &BTreeMap<AlertEvent, u64> {
        &self.suppressed
    }

    /// The alerts one event calls for. `status` is the account's board entry with the event
    /// already applied.
    pub fn on_event(&mut self, status: &AccountStatus, event: &Event) -> Vec<Alert> {
        let info = &status.info;
        let at = event.at;
        let mut out = Vec::new();
        match &event.kind {
            EventKind::Observed { .. } => {
                self.observed(status, at, &mut out);
            }
            EventKind::TransferSent { request, action } => {
                out.push(top_up_sent(info, at, request.amount, action, request.key));
            }
            EventKind::TransferLanded {
                request,
                wallet_rise,
                verified,
            } => out.push(top_up_landed(
                info,
                at,
                request.amount,
                *wallet_rise,
                *verified,
            )),
            EventKind::TransferNotConfirmed {
                request,
                error,
                unknown,
            } => out.push(top_up_not_confirmed(
                info,
                at,
                request.amount,
                error,
                *unknown,
            )),
            EventKind::TransferFailed { request, reason } => {
                out.push(top_up_failed(info, at, request.amount, reason));
            }
            EventKind::TransferLapsed { request } => out.push(lapsed(info, at, request.amount)),
            EventKind::TransfersStopped { reason } => {
                let alert = key_problem(info, at, reason);
                self.once_per_cool_off(&info.name, alert, &mut out);
            }
            EventKind::JournalWriteFailed {
                error,
                moved_nothing,
            } => {
                let alert = journal_failure(info, at, error, *moved_nothing);
                self.once_per_cool_off(&info.name, alert, &mut out);
            }
            EventKind::Stopped(StopReason::Failed(why)) => {
                out.push(runner_failed(info, at, why));
            }
            // Normal stops are told once for the whole process (`shutdown_alert`); blindness
            // is judged here against `blind_after`, not the engine's fixed minute.
            EventKind::Stopped(_)
            | EventKind::NoDecision { .. }
            | EventKind::Blind { .. }
            | EventKind::Recovered { .. } => {}
        }
        self.check_blind(status, at, &mut out);
        out
    }

    /// The blindness check alone, for a timer: an account whose runner hangs sends no event.
    pub fn on_time(&mut self, status: &AccountStatus, now: Timestamp) -> Vec<Alert> {
        let mut out = Vec::new();
        self.check_blind(status, now, &mut out);
        out
    }

    fn observed(&mut self, status: &AccountStatus, at: Timestamp, out: &mut Vec<Alert>) {
        let Some(last) = &status.last else { return };
        let info = &status.info;
        let value = last.metrics.get(info.metric);
        let below_trigger = value.is_below(last.levels.top_up_below);
        let state = self.accounts.entry(info.name.clone()).or_default();
        let top_up = last.action.top_up();
        let blocked = blocked_of(&last.action);
        let cap = |c: Cap| {
            top_up.is_some_and(|t: TopUp| t.clamped_by == Some(c))
                || blocked == Some(Blocked::Exhausted(c))
        };
        let any_cap = [Cap::MaxPerRescue, Cap::MaxPerDay, Cap::PortfolioPerDay]
            .into_iter()
            .any(cap);
        state.cap_bound = below_trigger && (state.cap_bound || any_cap);
        state.reserve_bound = below_trigger && (state.reserve_bound || cap(Cap::Reserve));
        let reserve_low = state.reserve_bound || last.reserve_available < info.caps.keep_at_least;
        let cap_bound = state.cap_bound;
        let down_now = status.feed.as_ref().is_some_and(|f| !f.streaming);
        state.stream_down_since = down_now.then(|| state.stream_down_since.unwrap_or(at));
        let stream_down = state
            .stream_down_since
            .is_some_and(|since| at.since(since) >= STREAM_DOWN_GRACE);
        let emergency = matches!(last.action, Action::Emergency { .. });
        let below_alert = value.is_below(last.levels.alert_below);
        let conditions = [
            (AlertEvent::AlertLevel, below_alert),
            (AlertEvent::Emergency, emergency),
            (AlertEvent::CapReached, cap_bound),
            (AlertEvent::ReserveLow, reserve_low),
            (AlertEvent::StreamFallback, stream_down),
            (AlertEvent::Unguarded, !last.unguarded.is_empty()),
        ];
        for (event, on) in conditions {
            // The figures are written only for a message that goes out, not every tick.
            let alert = || condition_alert(status, event, at, &figures_line(status));
            let cleared = || condition_cleared(status, event, at, &figures_line(status));
            self.condition(&info.name, event, on, at, alert, cleared, out);
        }
    }

    fn check_blind(&mut self, status: &AccountStatus, now: Timestamp, out: &mut Vec<Alert>) {
        if status.stopped.is_some() {
            return;
        }
        let blind_for = status.blind_for(now);
        let on = blind_for >= self.rules.blind_after;
        let alert = || blind(status, now, blind_for);
        let cleared = || blind_cleared(status, now);
        self.condition(
            &status.info.name,
            AlertEvent::Blind,
            on,
            now,
            alert,
            cleared,
            out,
        );
    }

    /// Moves one condition on or off, announcing per the rules in the module's comment.
    #[allow(clippy::too_many_arguments)]
    fn condition(
        &mut self,
        account: &str,
        event: AlertEvent,
        on: bool,
        at: Timestamp,
        alert: impl FnOnce() -> Alert,
        cleared: impl FnOnce() -> Alert,
        out: &mut Vec<Alert>,
    ) {
        let cool_off = self.rules.cool_off;
        let state = self.accounts.entry(account.to_string()).or_default();
        let quiet = |state: &AccountAlerts| {
            state
                .last_message
                .get(&event)
                .is_some_and(|last| at.since(*last) < cool_off)
        };
        match (on, state.on.get(&event).copied()) {
            (true, None) => {
                let announce = !quiet(state);
                state.on.insert(
                    event,
                    Condition {
                        announced: announce,
                    },
                );
                if announce {
                    state.last_message.insert(event, at);
                    out.push(alert());
                } else {
                    *self.suppressed.entry(event).or_default() += 1;
                }
            }
            (true, Some(Condition { announced: false })) if !quiet(state) => {
                state.on.insert(event, Condition { announced: true });
                state.last_message.insert(event, at);
                out.push(alert());
            }
            (true, Some(_)) => {}
            (false, Some(condition)) => {
                state.on.remove(&event);
                if condition.announced {
                    out.push(cleared());
                }
            }
            (false, None) => {}
        }
    }

    /// A one-off that may repeat (the journal failing each tick): at most once per cool-off.
    fn once_per_cool_off(&mut self, account: &str, alert: Alert, out: &mut Vec<Alert>) {
        let state = self.accounts.entry(account.to_string()).or_default();
        let event = alert.event;
        let recent = state
            .last_message
            .get(&event)
            .is_some_and(|last| alert.at.since(*last) < self.rules.cool_off);
        if recent {
            *self.suppressed.entry(event).or_default() += 1;
            return;
        }
        state.last_message.insert(event, alert.at);
        out.push(alert);
    }
}

/// The one alert that the daemon stopped, for every account at once.
pub fn shutdown_alert(at: Timestamp, lines: &[String], failed: bool) -> Alert {
    let (severity, title) = if failed {
        (
            AlertSeverity::Critical,
            "marginguard stopped: an account runner FAILED (the service manager should restart it)",
        )
    } else {
        (AlertSeverity::Info, "marginguard stopped")
    };
    Alert {
        event: AlertEvent::Shutdown,
        severity,
        account: None,
        venue: None,
        at,
        title: title.into(),
        text: lines.join("\n"),
        recovered: false,
        details: BTreeMap::new(),
    }
}

fn blocked_of(action: &Action) -> Option<Blocked> {
    match action {
        Action::Alert { blocked, .. } | Action::Emergency { blocked, .. } => *blocked,
        _ => None,
    }
}

fn base(info: &AccountInfo, event: AlertEvent, severity: AlertSeverity, at: Timestamp) -> Alert {
    Alert {
        event,
        severity,
        account: Some(info.name.clone()),
        venue: Some(info.venue.to_string()),
        at,
        title: String::new(),
        text: String::new(),
        recovered: false,
        details: BTreeMap::new(),
    }
}

fn with(mut alert: Alert, title: String, text: String, details: &[(&str, String)]) -> Alert {
    alert.title = title;
    alert.text = text;
    alert.details = details
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    alert
}

/// The figures that go with a condition: the metrics, the equity and the reserve.
fn figures_line(status: &AccountStatus) -> String {
    let Some(last) = &status.last else {
        return String::new();
    };
    let m = &last.metrics;
    format!(
        "distance {}, buffer {}, cushion {}; equity {} USDT, maintenance {} USDT; reserve {} USDT available, {} USDT spent over 24 h",
        m.distance,
        m.buffer,
        m.cushion,
        money(last.equity),
        money(last.maintenance),
        money(last.reserve_available),
        money(last.rescues.spent_last_24h),
    )
}

fn metric_words(status: &AccountStatus) -> (String, String) {
    let name = status.info.metric.name().replace('_', " ");
    let value = status
        .last
        .as_ref()
        .map(|l| l.metrics.get(status.info.metric).to_string())
        .unwrap_or_else(|| "?".into());
    (name, value)
}

/// How loud a condition is, when it starts and when it clears.
fn condition_severity(event: AlertEvent) -> AlertSeverity {
    match event {
        AlertEvent::Emergency | AlertEvent::ReserveLow | AlertEvent::Blind => {
            AlertSeverity::Critical
        }
        _ => AlertSeverity::Warning,
    }
}

fn condition_alert(
    status: &AccountStatus,
    event: AlertEvent,
    at: Timestamp,
    figures: &str,
) -> Alert {
    let info = &status.info;
    let (metric, value) = metric_words(status);
    let levels = status.last.as_ref().map(|l| l.levels);
    let level = |pick: fn(&crate::core::Levels) -> crate::money::Ratio| {
        levels.map(|l| pick(&l).percent()).unwrap_or_default()
    };
    let name = &info.name;
    let (severity, title, advice) = match event {
        AlertEvent::AlertLevel => (
            condition_severity(event),
            format!(
                "{name}: {metric} {value} is below its alert level {}",
                level(|l| l.alert_below)
            ),
            format!("the bot tops up below {}", level(|l| l.top_up_below)),
        ),
        AlertEvent::Emergency => (
            AlertSeverity::Critical,
            format!(
                "{name}: EMERGENCY: {metric} {value} is below the floor {}",
                level(|l| l.floor)
            ),
            "the bot moves the most the caps allow; check the position now".into(),
        ),
        AlertEvent::CapReached => (
            AlertSeverity::Warning,
            format!("{name}: a cap bound the rescue ({metric} {value})"),
            format!(
                "max_per_rescue {} USDT, max_per_day {} USDT: the bot cannot send what the strategy asks",
                money(info.caps.max_per_rescue),
                money(info.caps.max_per_day)
            ),
        ),
        AlertEvent::ReserveLow => (
            AlertSeverity::Critical,
            format!("{name}: the reserve is low or exhausted"),
            format!(
                "keep_at_least {} USDT; refill the reserve wallet or the bot cannot rescue",
                money(info.caps.keep_at_least)
            ),
        ),
        AlertEvent::Unguarded => (
            AlertSeverity::Warning,
            format!(
                "{name}: NOT GUARDED: {} on isolated margin",
                status
                    .last
                    .as_ref()
                    .map(|l| l.unguarded.join(", "))
                    .unwrap_or_default()
            ),
            "a top-up of the cross wallet cannot help an isolated position; switch it to cross margin to have it guarded".into(),
        ),
        _ => (
            AlertSeverity::Warning,
            format!("{name}: the stream is down; watching by polling"),
            status
                .feed
                .as_ref()
                .and_then(|f| f.fallback_reason.clone())
                .unwrap_or_default(),
        ),
    };
    with(
        base(info, event, severity, at),
        title,
        format!("{figures}\n{advice}"),
        &[("metric", info.metric.name().into()), ("value", value)],
    )
}

fn condition_cleared(
    status: &AccountStatus,
    event: AlertEvent,
    at: Timestamp,
    figures: &str,
) -> Alert {
    let info = &status.info;
    let (metric, value) = metric_words(status);
    let what = match event {
        AlertEvent::AlertLevel => format!("{metric} {value} is back above its alert level"),
        AlertEvent::Emergency => format!("{metric} {value} is back above the floor"),
        AlertEvent::CapReached => "no cap binds any more".into(),
        AlertEvent::ReserveLow => "the reserve is back above keep_at_least".into(),
        AlertEvent::Unguarded => "no open position on isolated margin any more".into(),
        _ => "the stream is back; deciding on every mark".into(),
    };
    // As loud as the alert it clears: whoever was told it started hears that it ended.
    let mut alert = with(
        base(info, event, condition_severity(event), at),
        format!("{}: recovered: {what}", info.name),
        figures.to_string(),
        &[("metric", info.metric.name().into()), ("value", value)],
    );
    alert.recovered = true;
    alert
}

fn blind(status: &AccountStatus, at: Timestamp, blind_for: Duration) -> Alert {
    let info = &status.info;
    let why = status
        .last_failure
        .clone()
        .unwrap_or_else(|| "no tick has reported".into());
    with(
        base(info, AlertEvent::Blind, AlertSeverity::Critical, at),
        format!(
            "{}: BLIND for {}s: no usable snapshot; the account is not guarded",
            info.name,
            blind_for.as_secs()
        ),
        format!("last failure: {why}"),
        &[("blind_for_seconds", blind_for.as_secs().to_string())],
    )
}

fn blind_cleared(status: &AccountStatus, at: Timestamp) -> Alert {
    let info = &status.info;
    let mut alert = with(
        base(
            info,
            AlertEvent::Blind,
            condition_severity(AlertEvent::Blind),
            at,
        ),
        format!("{}: recovered: snapshots are usable again", info.name),
        figures_line(status),
        &[],
    );
    alert.recovered = true;
    alert
}

fn top_up_sent(
    info: &AccountInfo,
    at: Timestamp,
    amount: Usdt,
    action: &Action,
    key: crate::venue::TransferKey,
) -> Alert {
    let emergency = matches!(action, Action::Emergency { .. });
    let kind = if emergency {
        "EMERGENCY top-up"
    } else {
        "top-up"
    };
    let title = if info.mode == "dry-run" {
        format!(
            "{}: dry run: would transfer {} USDT into the futures wallet ({kind})",
            info.name,
            money(amount)
        )
    } else {
        format!(
            "{}: {kind} sent: {} USDT into the futures wallet",
            info.name,
            money(amount)
        )
    };
    let clamped = action
        .top_up()
        .and_then(|t| t.clamped_by.map(|c| (c, t.needed)));
    let text = match clamped {
        Some((cap, needed)) => format!(
            "clamped by {}: the strategy asked for {} USDT",
            cap.name(),
            money(needed)
        ),
        None => String::new(),
    };
    with(
        base(info, AlertEvent::TopUpSent, AlertSeverity::Warning, at),
        title,
        text,
        &[("amount", amount.to_string()), ("key", key.to_string())],
    )
}

fn top_up_landed(
    info: &AccountInfo,
    at: Timestamp,
    amount: Usdt,
    rise: Usdt,
    verified: bool,
) -> Alert {
    let (severity, title) = if verified {
        (
            AlertSeverity::Info,
            format!("{}: top-up of {} USDT landed", info.name, money(amount)),
        )
    } else {
        (
            AlertSeverity::Warning,
            format!(
                "{}: top-up of {} USDT reported settled, but the futures wallet rose by {} USDT only",
                info.name,
                money(amount),
                money(rise)
            ),
        )
    };
    with(
        base(info, AlertEvent::TopUpLanded, severity, at),
        title,
        String::new(),
        &[
            ("amount", amount.to_string()),
            ("wallet_rise", rise.to_string()),
        ],
    )
}

fn top_up_not_confirmed(
    info: &AccountInfo,
    at: Timestamp,
    amount: Usdt,
    error: &str,
    unknown: bool,
) -> Alert {
    let (event, title, advice) = if unknown {
        (
            AlertEvent::TopUpUnknown,
            format!(
                "{}: top-up of {} USDT: outcome UNKNOWN (the answer was lost)",
                info.name,
                money(amount)
            ),
            "the bot looks it up at the venue and counts it as spent meanwhile",
        )
    } else {
        (
            AlertEvent::TopUpFailed,
            format!(
                "{}: top-up of {} USDT REFUSED by the venue",
                info.name,
                money(amount)
            ),
            "nothing moved; the bot tries again on a later tick if the strategy still asks",
        )
    };
    with(
        base(info, event, AlertSeverity::Critical, at),
        title,
        format!("{error}\n{advice}"),
        &[("amount", amount.to_string())],
    )
}

fn top_up_failed(info: &AccountInfo, at: Timestamp, amount: Usdt, reason: &str) -> Alert {
    with(
        base(info, AlertEvent::TopUpFailed, AlertSeverity::Critical, at),
        format!(
            "{}: top-up of {} USDT FAILED at the venue",
            info.name,
            money(amount)
        ),
        reason.to_string(),
        &[("amount", amount.to_string())],
    )
}

fn lapsed(info: &AccountInfo, at: Timestamp, amount: Usdt) -> Alert {
    with(
        base(info, AlertEvent::TopUpUnknown, AlertSeverity::Warning, at),
        format!(
            "{}: top-up of {} USDT lapsed: the venue does not show it",
            info.name,
            money(amount)
        ),
        "it no longer blocks a rescue; it stays counted as spent for 24 h and is still looked up"
            .into(),
        &[("amount", amount.to_string())],
    )
}

fn key_problem(info: &AccountInfo, at: Timestamp, reason: &str) -> Alert {
    with(
        base(info, AlertEvent::KeyProblem, AlertSeverity::Critical, at),
        format!(
            "{}: TRANSFERS STOPPED: the venue refused the API key",
            info.name
        ),
        format!("{reason}\nfix the key's permissions and restart marginguard; it keeps watching meanwhile"),
        &[],
    )
}

fn journal_failure(info: &AccountInfo, at: Timestamp, error: &str, moved_nothing: bool) -> Alert {
    let what = if moved_nothing {
        "a top-up was NOT sent because its intent could not be journaled"
    } else {
        "a rescue's state could not be journaled; it is reconciled from the venue after a restart"
    };
    with(
        base(
            info,
            AlertEvent::JournalFailure,
            AlertSeverity::Critical,
            at,
        ),
        format!("{}: journal write failed", info.name),
        format!("{what}\n{error}"),
        &[],
    )
}

fn runner_failed(info: &AccountInfo, at: Timestamp, why: &str) -> Alert {
    with(
        base(info, AlertEvent::Shutdown, AlertSeverity::Critical, at),
        format!(
            "{}: account runner FAILED: the account is unguarded; marginguard stops every account and exits non-zero",
            info.name
        ),
        why.to_string(),
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    fn alert(event: AlertEvent, at: i64, recovered: bool) -> Alert {
        Alert {
            event,
            severity: AlertSeverity::Warning,
            account: Some("a".into()),
            venue: Some("sim".into()),
            at: Timestamp(at),
            title: format!("{event:?} at {at}"),
            text: String::new(),
            recovered,
            details: BTreeMap::new(),
        }
    }

    /// Drives one condition through `(minute, on)` steps; returns what was sent, as
    /// `(minute, recovered)`.
    fn drive(steps: &[(i64, bool)]) -> Vec<(i64, bool)> {
        let mut alerter = Alerter::new(AlertRules {
            cool_off: Duration::from_secs(30 * 60),
            blind_after: Duration::from_secs(60),
        });
        let mut out = Vec::new();
        for &(minute, on) in steps {
            let at = Timestamp(minute * MINUTE);
            let event = AlertEvent::Blind;
            alerter.condition(
                "a",
                event,
                on,
                at,
                || alert(event, at.0, false),
                || alert(event, at.0, true),
                &mut out,
            );
        }
        out.iter().map(|a| (a.at.0 / MINUTE, a.recovered)).collect()
    }

    #[test]
    fn a_thirty_minute_outage_is_one_alert_and_one_recovery() {
        let mut steps: Vec<(i64, bool)> = (0..30).map(|m| (m, true)).collect();
        steps.push((30, false));
        steps.push((31, false));
        assert_eq!(drive(&steps), vec![(0, false), (30, true)]);
    }

    #[test]
    fn flapping_within_the_cool_off_is_quiet_but_never_hidden_past_it() {
        // On at 0, off at 5 (told), on again at 10: quiet until 30 min after the first
        // message, then told because it is still on.
        let steps = [
            (0, true),
            (5, false),
            (10, true),
            (20, true),
            (29, true),
            (30, true),
            (40, false),
        ];
        assert_eq!(
            drive(&steps),
            vec![(0, false), (5, true), (30, false), (40, true)]
        );
    }

    #[test]
    fn a_quiet_restart_that_clears_before_the_cool_off_sends_no_recovery() {
        let steps = [(0, true), (5, false), (10, true), (12, false)];
        assert_eq!(drive(&steps), vec![(0, false), (5, true)]);
    }

    /// A venue that never answers sends the engine's events nowhere: the timer alone sees
    /// the account blind, once, when `blind_after` has passed since it was first watched.
    #[test]
    fn an_account_that_never_sees_is_told_blind_by_the_timer_once() {
        let info = AccountInfo {
            name: "a".into(),
            venue: "binance",
            mode: "live",
            strategy: "distance".into(),
            metric: crate::core::MetricKind::LiquidationDistance,
            caps: crate::core::Caps::nothing(),
        };
        let status = AccountStatus::new(info, Timestamp(0));
        let mut alerter = Alerter::new(AlertRules::default());
        assert!(alerter.on_time(&status, Timestamp(59_000)).is_empty());
        let told = alerter.on_time(&status, Timestamp(60_000));
        assert_eq!(told.len(), 1);
        assert_eq!(
            (told[0].event, told[0].severity, told[0].recovered),
            (AlertEvent::Blind, AlertSeverity::Critical, false)
        );
        assert!(told[0].title.contains("BLIND for 60s"), "{}", told[0].title);
        assert!(alerter.on_time(&status, Timestamp(3_600_000)).is_empty());
    }

    #[test]
    fn repeated_journal_failures_are_told_once_per_cool_off() {
        let mut alerter = Alerter::new(AlertRules::default());
        let mut out = Vec::new();
        for minute in [0, 1, 2, 29, 31] {
            let failure = alert(AlertEvent::JournalFailure, minute * MINUTE, false);
            alerter.once_per_cool_off("a", failure, &mut out);
        }
        let told: Vec<i64> = out.iter().map(|a| a.at.0 / MINUTE).collect();
        assert_eq!(told, vec![0, 31]);
        assert_eq!(alerter.suppressed()[&AlertEvent::JournalFailure], 3);
    }
}
