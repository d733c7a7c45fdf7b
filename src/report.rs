//! Output for people: a compact timeline per account and a closing summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rust_decimal::Decimal;

use crate::core::{Action, Blocked, Decision, Levels, MetricValue, Severity};
use crate::engine::{Event, EventKind};
use crate::money::{Price, Usdt};
use crate::time::Timestamp;
use crate::venue::sim::{Scenario, SimOutcome};
use crate::venue::VenueSnapshot;

/// `1234567.891` → `1,234,567.89` (display only; rounding here never feeds a decision).
pub fn money(amount: Usdt) -> String {
    group_thousands(amount.0.round_dp(2), 2)
}

pub fn price(p: Price) -> String {
    let dp = if p.0 >= Decimal::from(1000) { 1 } else { 2 };
    group_thousands(p.0.round_dp(dp), dp)
}

fn group_thousands(value: Decimal, dp: u32) -> String {
    let text = format!("{:.*}", dp as usize, value.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if value < Decimal::ZERO { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

/// Which observed ticks deserve a row: changes of what the bot does, and a checkpoint every
/// `checkpoint_hours` so the price path is visible.
#[derive(Debug, Clone, Copy)]
pub struct TimelineOptions {
    pub checkpoint_hours: i64,
    /// The action column. Off for a day replayed without the bot, where it would only say
    /// what a bot would have done.
    pub actions: bool,
}

impl Default for TimelineOptions {
    fn default() -> Self {
        Self {
            checkpoint_hours: 2,
            actions: true,
        }
    }
}

/// Renders one account's events as rows: time, mark, buffer, cushion, liquidation distance,
/// action. `liquidation` (from the simulator) is merged in at its instant.
pub fn timeline(
    events: &[&Event],
    liquidation: Option<(Timestamp, String)>,
    options: TimelineOptions,
) -> String {
    let mut timeline = Timeline::new(options);
    for event in events {
        timeline.push(event);
    }
    timeline.render(liquidation)
}

/// A timeline built as events arrive, keeping only the rows it will print: a rehearsal of
/// many accounts over days holds kilobytes, not every tick's snapshot.
#[derive(Debug)]
pub struct Timeline {
    options: TimelineOptions,
    rows: Vec<(Timestamp, String)>,
    last_label: String,
    last_severity: u8,
    last_change: Timestamp,
    last_checkpoint: Option<i64>,
    last_flat: bool,
    /// The latest decision's value and levels, for the "sent" row that follows it; formatted
    /// only then, not on every tick.
    latest: Option<(MetricValue, Levels)>,
}

impl Timeline {
    pub fn new(options: TimelineOptions) -> Self {
        Self {
            options,
            rows: Vec::new(),
            last_label: String::new(),
            last_severity: 0,
            last_change: Timestamp(i64::MIN),
            last_checkpoint: None,
            last_flat: false,
            latest: None,
        }
    }

    pub fn push(&mut self, event: &Event) {
        let row = match &event.kind {
            EventKind::Observed {
                decision, snapshot, ..
            } => {
                self.observe(event.at, decision, snapshot);
                return;
            }
            EventKind::TransferSent { request, action } => {
                let kind = if matches!(action, Action::Emergency { .. }) {
                    "EMERGENCY top-up"
                } else {
                    "top-up"
                };
                let why = self
                    .latest
                    .map(|(value, levels)| {
                        format!(
                            "{value} < {}, refill to {}",
                            levels.top_up_below.percent(),
                            levels.target.percent()
                        )
                    })
                    .unwrap_or_default();
                format!("{kind} {} USDT sent ({why})", money(request.amount))
            }
            EventKind::TransferLanded {
                request, verified, ..
            } => format!(
                "top-up {} USDT landed{}",
                money(request.amount),
                if *verified {
                    " (futures wallet rose)"
                } else {
                    " — wallet rise NOT seen"
                }
            ),
            EventKind::TransferNotConfirmed {
                request,
                error,
                unknown,
            } => format!(
                "top-up {} USDT {}: {error}",
                money(request.amount),
                if *unknown {
                    "outcome unknown"
                } else {
                    "refused"
                }
            ),
            EventKind::TransferFailed { request, reason } => {
                format!("top-up {} USDT failed: {reason}", money(request.amount))
            }
            EventKind::NoDecision { reason } => format!("no decision: {reason}"),
            EventKind::JournalWriteFailed {
                error,
                moved_nothing,
            } => format!(
                "journal write failed{}: {error}",
                if *moved_nothing {
                    "; top-up NOT sent"
                } else {
                    ""
                }
            ),
            EventKind::TransferLapsed { request } => format!(
                "top-up {} USDT lapsed: not shown by the venue; still counted as spent",
                money(request.amount)
            ),
            EventKind::Blind { reason, .. } => format!("BLIND: {reason}"),
            EventKind::Recovered { blind_for, .. } => format!("recovered after {blind_for:?}"),
            EventKind::TransfersStopped { reason } => format!("TRANSFERS STOPPED: {reason}"),
            EventKind::Stopped(_) => return,
        };
        self.rows.push((event.at, format!("{:<50}{row}", "")));
    }

    fn observe(&mut self, at: Timestamp, decision: &Decision, snapshot: &VenueSnapshot) {
        let label = action_label(&decision.action);
        let severity = action_severity(&decision.action);
        let hour_ms = 3_600_000 * self.options.checkpoint_hours.max(1);
        let slot = at.as_millis() / hour_ms;
        let checkpoint = self.last_checkpoint != Some(slot);
        // A price hovering at a level flips the action every tick; print a calmer
        // action only once it has lasted, a graver one at once.
        let settled = at.since(self.last_change) >= FLAP_QUIET;
        let change = label != self.last_label && (severity > self.last_severity || settled);
        if change {
            self.last_change = at;
        }
        // Once flat (nothing open, e.g. after a liquidation) one row says so.
        let flat = snapshot.account.positions.is_empty();
        if (change || checkpoint) && !(flat && self.last_flat) {
            self.last_flat = flat;
            let marks = snapshot
                .account
                .positions
                .iter()
                .map(|p| price(p.mark))
                .collect::<Vec<_>>()
                .join(" / ");
            let marks = if marks.is_empty() {
                "—".into()
            } else {
                marks
            };
            let shown = if self.options.actions {
                label.as_str()
            } else {
                ""
            };
            self.rows.push((at, metric_row(&marks, decision, shown)));
            self.last_label = label;
            self.last_severity = severity;
            self.last_checkpoint = Some(slot);
        }
        self.latest = Some((decision.value, decision.levels));
    }

    /// The table, with the simulator's liquidation (if any) merged in at its instant.
    pub fn render(self, liquidation: Option<(Timestamp, String)>) -> String {
        let options = self.options;
        let mut rows = self.rows;
        if let Some((at, text)) = liquidation {
            let index = rows.partition_point(|(t, _)| *t <= at);
            rows.insert(index, (at, format!("{:<50}{text}", "")));
        }
        // A replay over several days needs the date on every row; one day needs only the time.
        let span_days = match (rows.first(), rows.last()) {
            (Some((first, _)), Some((last, _))) => last.since(*first).as_secs() / 86_400,
            _ => 0,
        };
        let stamp = |at: Timestamp| {
            if span_days > 0 {
                format!("{} {}", &at.date()[5..], at.hh_mm_ss())
            } else {
                at.hh_mm_ss()
            }
        };
        let width = if span_days > 0 { 14 } else { 8 };
        let header = format!(
            "  {:<width$} {:>20} {:>8} {:>8} {:>9}  {}",
            "time",
            "mark",
            "buffer",
            "cushion",
            "liq.dist",
            if options.actions { "action" } else { "" }
        );
        let mut out = format!("{}\n", header.trim_end());
        for (at, row) in rows {
            let line = format!("  {:<width$} {row}", stamp(at));
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }
}

fn metric_row(marks: &str, decision: &Decision, label: &str) -> String {
    let m = &decision.metrics;
    format!(
        "{:>20} {:>8} {:>8} {:>9}  {label}",
        marks,
        m.buffer.to_string(),
        m.cushion.to_string(),
        m.distance.to_string(),
    )
}

const FLAP_QUIET: std::time::Duration = std::time::Duration::from_secs(15 * 60);

fn action_severity(action: &Action) -> u8 {
    match action {
        Action::Hold => 0,
        Action::Alert {
            severity: Severity::Warning,
            ..
        } => 1,
        Action::Alert { .. } | Action::TopUp(_) => 2,
        Action::Emergency { .. } => 3,
    }
}

pub fn action_label(action: &Action) -> String {
    match action {
        Action::Hold => "hold".into(),
        Action::Alert {
            severity: Severity::Warning,
            ..
        } => "ALERT (below alert level)".into(),
        Action::Alert {
            blocked: Some(blocked),
            ..
        } => format!("CRITICAL: {}", blocked_label(blocked)),
        Action::Alert { .. } => "CRITICAL".into(),
        Action::TopUp(_) => "top up".into(),
        Action::Emergency {
            blocked: Some(blocked),
            ..
        } => format!("EMERGENCY: {}", blocked_label(blocked)),
        Action::Emergency { .. } => "EMERGENCY".into(),
    }
}

fn blocked_label(blocked: &Blocked) -> String {
    match blocked {
        Blocked::InFlight(amount) => format!("waiting for {} USDT in flight", money(*amount)),
        Blocked::Cooldown { until } => format!("cooling down until {}", until.hh_mm_ss()),
        Blocked::Exhausted(cap) => format!("{} exhausted", cap.name()),
        Blocked::Uncomputable => "figures too large to compute a safe amount".into(),
    }
}

/// The liquidation line for a timeline.
pub fn liquidation_row(outcome: &SimOutcome) -> Option<(Timestamp, String)> {
    outcome.liquidated.as_ref().map(|l| {
        let marks = l
            .marks
            .iter()
            .map(|(symbol, mark)| format!("{symbol} {}", price(*mark)))
            .collect::<Vec<_>>()
            .join(", ");
        (
            l.at,
            format!(
                "LIQUIDATED by the venue at {marks} (equity {} ≤ maintenance {})",
                money(l.equity),
                money(l.maintenance)
            ),
        )
    })
}

/// One summary row per run of a scenario.
pub struct SummaryRow {
    pub label: String,
    pub outcome: SimOutcome,
}

pub fn summary(rows: &[SummaryRow]) -> String {
    let mut out = format!(
        "  {:<34} {:<26} {:>14} {:>7} {:>16}\n",
        "run", "outcome", "reserve spent", "top-ups", "lowest liq.dist"
    );
    for row in rows {
        let o = &row.outcome;
        let outcome = match &o.liquidated {
            Some(l) => format!("LIQUIDATED at {}", l.at.hh_mm_ss()),
            None if o.complete => "survived".into(),
            None => format!("stopped at {}, alive", o.as_of.hh_mm_ss()),
        };
        let lowest = match o.lowest_distance.0 {
            MetricValue::Unbounded => "∞".to_string(),
            v => format!("{v} ({})", o.lowest_distance.1.hh_mm()),
        };
        let _ = writeln!(
            out,
            "  {:<34} {:<26} {:>14} {:>7} {:>16}",
            row.label,
            outcome,
            money(o.reserve_spent),
            o.top_ups,
            lowest
        );
    }
    out
}

/// The heading of a scenario: what is replayed and where the prices come from.
pub fn scenario_heading(scenario: &Scenario) -> String {
    let mut out = format!("scenario: {}\n", scenario.name);
    if !scenario.description.is_empty() {
        let _ = writeln!(out, "  {}", scenario.description.trim());
    }
    for p in &scenario.positions {
        let side = if p.is_long() { "long" } else { "short" };
        let _ = writeln!(
            out,
            "  {} {side} {} at {} ({}× leverage, notional {} USDT)",
            p.symbol,
            p.size.abs().0.round_dp(4),
            price(p.entry),
            p.leverage,
            // A size the loader accepted may still be worth more than a Decimal holds.
            p.size
                .checked_mul(p.entry)
                .map_or_else(|| "beyond range".to_string(), |n| money(n.abs()))
        );
    }
    let _ = writeln!(
        out,
        "  futures wallet {} USDT, reserve {} USDT, transfers settle after {}",
        money(scenario.wallet),
        money(scenario.reserve),
        crate::config::literal::format_duration(scenario.settlement)
    );
    let _ = writeln!(
        out,
        "  prices: {} — last-trade prices stand in for the mark price, which no public archive holds for these days",
        scenario.price_source()
    );
    out.push_str(
        "  columns: buffer = 1 − maintenance/equity (the venues' margin ratio, turned into headroom); cushion = (equity − maintenance)/(initial − maintenance);\n           liq.dist = the move of every mark that would liquidate the account (− a fall, + a rise)\n",
    );
    out
}

/// Groups events by account, in arrival order.
pub fn by_account(events: &[Event]) -> BTreeMap<String, Vec<&Event>> {
    let mut grouped: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    for event in events {
        grouped
            .entry(event.account.to_string())
            .or_default()
            .push(event);
    }
    grouped
}

/// The journal's rescues as a table: when, account, amount, buffer before and after, state.
pub fn history(records: &[crate::journal::RescueRecord]) -> String {
    if records.is_empty() {
        return "  no rescues recorded\n".into();
    }
    let mut out = format!(
        "  {:<24} {:<20} {:>12} {:>9} {:>9}  {:<9} {}\n",
        "when (UTC)", "account", "amount", "buffer", "after", "state", "reason"
    );
    for r in records {
        let _ = writeln!(
            out,
            "  {:<24} {:<20} {:>12} {:>9} {:>9}  {:<9} {}{}",
            r.created_at.to_string(),
            r.account,
            money(r.amount),
            r.buffer_before,
            r.buffer_after.as_deref().unwrap_or("—"),
            r.state.as_str(),
            r.reason,
            r.detail
                .as_deref()
                .map(|d| format!(" [{d}]"))
                .unwrap_or_default()
        );
    }
    out
}

/// The outcome of a run in a few words.
fn outcome_words(o: &SimOutcome) -> String {
    match &o.liquidated {
        Some(l) => format!("LIQUIDATED {} {}", &l.at.date()[5..], l.at.hh_mm()),
        None if o.complete => "survived".into(),
        None => format!("stopped {} {}", &o.as_of.date()[5..], o.as_of.hh_mm()),
    }
}

/// Every run beside the others on its day: outcome, lowest buffer, reserve spent, top-ups,
/// and the hindsight oracle's reserve for that day.
pub fn comparison(runs: &[crate::replay::Run]) -> String {
    let mut out = format!(
        "  {:<52} {:<30} {:<22} {:>9} {:>12} {:>7} {:>12} {:>12}\n",
        "scenario", "run", "outcome", "low buf.", "spent", "top-ups", "oracle", "reserve"
    );
    let mut previous = "";
    for run in runs {
        let o = &run.outcome;
        let scenario = if run.scenario == previous {
            ""
        } else {
            run.scenario.as_str()
        };
        previous = &run.scenario;
        let _ = writeln!(
            out,
            "  {:<52} {:<30} {:<22} {:>9} {:>12} {:>7} {:>12} {:>12}",
            truncate(scenario, 52),
            truncate(&run.contender, 30),
            outcome_words(o),
            o.lowest_buffer.0.to_string(),
            money(o.reserve_spent),
            o.top_ups,
            money(run.oracle),
            money(run.reserve),
        );
    }
    out.push_str(
        "\n  oracle: the least reserve that, moved into the futures wallet at the start, avoids liquidation on that day (exact, from the path)\n  low buf.: the lowest margin-ratio buffer (1 − maintenance/equity) at any 15-second sub-step\n",
    );
    out
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let cut: String = text.chars().take(width - 1).collect();
        format!("{cut}…")
    }
}

const CSV_HEADER: &str = "scenario,run,survived,liquidated_at,lowest_buffer,reserve_spent,top_ups,oracle_reserve,reserve";

/// The comparison as CSV (exact decimals, ISO instants).
pub fn comparison_csv(runs: &[crate::replay::Run]) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    for run in runs {
        let o = &run.outcome;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            csv_field(&run.scenario),
            csv_field(&run.contender),
            o.liquidated.is_none() && o.complete,
            o.liquidated
                .as_ref()
                .map(|l| l.at.to_string())
                .unwrap_or_default(),
            o.lowest_buffer
                .0
                .ratio()
                .map(|r| r.0.to_string())
                .unwrap_or_default(),
            o.reserve_spent,
            o.top_ups,
            run.oracle,
            run.reserve,
        );
    }
    out
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// The comparison as JSON: one object per run; money and ratios as decimal strings.
pub fn comparison_json(runs: &[crate::replay::Run]) -> String {
    let rows: Vec<serde_json::Value> = runs
        .iter()
        .map(|run| {
            let o = &run.outcome;
            serde_json::json!({
                "scenario": run.scenario,
                "run": run.contender,
                "survived": o.liquidated.is_none() && o.complete,
                "liquidated_at": o.liquidated.as_ref().map(|l| l.at.to_string()),
                "lowest_buffer": o.lowest_buffer.0.ratio().map(|r| r.0.to_string()),
                "lowest_liquidation_distance": o.lowest_distance.0.ratio().map(|r| r.0.to_string()),
                "reserve_spent": o.reserve_spent.to_string(),
                "top_ups": o.top_ups,
                "oracle_reserve": run.oracle.to_string(),
                "reserve": run.reserve.to_string(),
            })
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&rows).expect("plain values serialize");
    text.push('\n');
    text
}

/// A sweep's points: survival against reserve spent, the frontier starred.
pub fn sweep_table(points: &[crate::replay::SweepPoint], scenarios: usize) -> String {
    let mut out = format!(
        "  {:<40} {:>10} {:>10} {:>16}  frontier\n",
        "strategy variant", "reserve", "survived", "reserve spent"
    );
    for p in points {
        let _ = writeln!(
            out,
            "  {:<40} {:>10} {:>10} {:>16}  {}",
            truncate(&p.strategy, 40),
            p.reserve_multiple
                .map(|m| format!("{m}× oracle"))
                .unwrap_or_else(|| "scenario".into()),
            format!("{}/{}", p.survived, p.runs),
            money(p.spent),
            if p.on_frontier { "*" } else { "" }
        );
    }
    let _ = writeln!(
        out,
        "\n  {scenarios} scenario(s) per point; * = on the frontier: no other point survives as often for less reserve spent"
    );
    out
}

pub fn sweep_csv(points: &[crate::replay::SweepPoint]) -> String {
    let mut out = "strategy,reserve_multiple,survived,runs,reserve_spent,frontier\n".to_string();
    for p in points {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{}",
            csv_field(&p.strategy),
            p.reserve_multiple
                .map(|m| m.to_string())
                .unwrap_or_default(),
            p.survived,
            p.runs,
            p.spent,
            p.on_frontier
        );
    }
    out
}

pub fn sweep_json(points: &[crate::replay::SweepPoint]) -> String {
    let rows: Vec<serde_json::Value> = points
        .iter()
        .map(|p| {
            serde_json::json!({
                "strategy": p.strategy,
                "reserve_multiple": p.reserve_multiple.map(|m| m.to_string()),
                "survived": p.survived,
                "runs": p.runs,
                "reserve_spent": p.spent.to_string(),
                "frontier": p.on_frontier,
            })
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&rows).expect("plain values serialize");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn money_is_grouped_and_rounded_for_display() {
        assert_eq!(money(Usdt(dec!(1234567.891))), "1,234,567.89");
        assert_eq!(money(Usdt(dec!(-1000))), "-1,000.00");
        assert_eq!(money(Usdt(dec!(12))), "12.00");
        assert_eq!(price(Price(dec!(58161))), "58,161.0");
        assert_eq!(price(Price(dec!(194.61))), "194.61");
    }
}
