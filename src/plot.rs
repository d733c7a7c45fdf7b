//! A chart of one rescue: the mark on top; below it the strategy's metric with its lines
//! (alert, trigger, target, floor) and every top-up; liquidations marked. SVG always; PNG when
//! the file name asks for it (rendered from the same SVG).
//!
//! Display only: values become `f64` here for drawing and never feed a decision.

use std::fmt::Write as _;
use std::path::Path;

use rust_decimal::prelude::ToPrimitive;

use crate::core::{MetricValue, Strategy};
use crate::engine::EventKind;
use crate::replay::Run;
use crate::time::Timestamp;

const WIDTH: f64 = 1100.0;
const HEIGHT: f64 = 660.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const MARK_TOP: f64 = 70.0;
const MARK_BOTTOM: f64 = 300.0;
const METRIC_TOP: f64 = 350.0;
const METRIC_BOTTOM: f64 = 590.0;

struct Series {
    at: Vec<i64>,
    mark: Vec<f64>,
    metric: Vec<Option<f64>>,
    alert: Vec<f64>,
    trigger: Vec<f64>,
    target: Vec<f64>,
    floor: Vec<f64>,
    top_ups: Vec<(i64, f64)>,
    symbol: String,
}

fn series(run: &Run) -> Series {
    let mut s = Series {
        at: Vec::new(),
        mark: Vec::new(),
        metric: Vec::new(),
        alert: Vec::new(),
        trigger: Vec::new(),
        target: Vec::new(),
        floor: Vec::new(),
        top_ups: Vec::new(),
        symbol: String::new(),
    };
    for event in &run.events {
        match &event.kind {
            EventKind::Observed {
                decision, snapshot, ..
            } => {
                let Some(position) = snapshot.account.positions.first() else {
                    continue;
                };
                if s.symbol.is_empty() {
                    s.symbol = position.symbol.clone();
                }
                s.at.push(event.at.as_millis());
                s.mark.push(position.mark.0.to_f64().unwrap_or(f64::NAN));
                s.metric.push(match decision.value {
                    MetricValue::Value(v) => v.0.to_f64(),
                    MetricValue::Unbounded | MetricValue::Unknown => None,
                });
                let l = &decision.levels;
                let pct = |r: crate::money::Ratio| r.0.to_f64().unwrap_or(0.0);
                s.alert.push(pct(l.alert_below));
                s.trigger.push(pct(l.top_up_below));
                s.target.push(pct(l.target));
                s.floor.push(pct(l.floor));
            }
            EventKind::TransferSent { request, .. } => s.top_ups.push((
                event.at.as_millis(),
                request.amount.0.to_f64().unwrap_or(0.0),
            )),
            _ => {}
        }
    }
    s
}

struct Scale {
    from: f64,
    to: f64,
    low: f64,
    high: f64,
    top: f64,
    bottom: f64,
}

impl Scale {
    fn x(&self, t: i64) -> f64 {
        LEFT + (t as f64 - self.from) / (self.to - self.from).max(1.0) * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, v: f64) -> f64 {
        let clamped = v.clamp(self.low, self.high);
        self.bottom
            - (clamped - self.low) / (self.high - self.low).max(1e-12) * (self.bottom - self.top)
    }
}

/// Draws a series, one point per pixel column at most (its lowest and highest value there):
/// a day of 10-second ticks would otherwise write eight thousand points per line.
fn polyline(out: &mut String, xs: &[i64], ys: &[Option<f64>], scale: &Scale, style: &str) {
    let mut points = String::new();
    let mut column: Option<(i64, f64, f64)> = None;
    let emit = |points: &mut String, (px, low, high): (i64, f64, f64)| {
        let x = px as f64;
        let _ = write!(points, "{x:.0},{:.1} ", scale.y(low));
        if high != low {
            let _ = write!(points, "{x:.0},{:.1} ", scale.y(high));
        }
    };
    for (t, v) in xs.iter().zip(ys) {
        match v {
            Some(v) if v.is_finite() => {
                let px = scale.x(*t).round() as i64;
                column = match column {
                    Some((c, low, high)) if c == px => Some((c, low.min(*v), high.max(*v))),
                    Some(done) => {
                        emit(&mut points, done);
                        Some((px, *v, *v))
                    }
                    None => Some((px, *v, *v)),
                };
            }
            _ => {
                if let Some(done) = column.take() {
                    emit(&mut points, done);
                }
                flush(out, &mut points, style);
            }
        }
    }
    if let Some(done) = column.take() {
        emit(&mut points, done);
    }
    flush(out, &mut points, style);
}

fn flush(out: &mut String, points: &mut String, style: &str) {
    if !points.is_empty() {
        let _ = writeln!(
            out,
            r#"<polyline fill="none" {style} points="{}"/>"#,
            points.trim_end()
        );
        points.clear();
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The chart of `run` (a bot's replay), with the no-bot liquidation of the same day marked.
pub fn svg(run: &Run, no_bot: Option<&Run>, strategy: &Strategy) -> String {
    let s = series(run);
    let from = s.at.first().copied().unwrap_or(0) as f64;
    let to = run
        .outcome
        .as_of
        .as_millis()
        .max(s.at.last().copied().unwrap_or(1)) as f64;
    let (mark_low, mark_high) = s
        .mark
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let pad = ((mark_high - mark_low) * 0.05).max(1.0);
    let mark_scale = Scale {
        from,
        to,
        low: mark_low - pad,
        high: mark_high + pad,
        top: MARK_TOP,
        bottom: MARK_BOTTOM,
    };
    let level_high = s
        .target
        .iter()
        .chain(&s.alert)
        .fold(0.0_f64, |m, v| m.max(*v));
    let metric_scale = Scale {
        from,
        to,
        low: 0.0,
        high: (level_high * 1.6).max(0.05),
        top: METRIC_TOP,
        bottom: METRIC_BOTTOM,
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    let verdict = match &run.outcome.liquidated {
        Some(l) => format!("liquidated at {}", l.at.hh_mm()),
        None => "survived".into(),
    };
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="28" font-size="16" font-weight="bold">{}</text>"#,
        escape(&format!("{} — {}: {verdict}", run.scenario, strategy.name))
    );
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="48" fill="#555">{}</text>"##,
        escape(&format!(
            "reserve spent {} of {} USDT in {} top-ups; hindsight oracle {} USDT; prices: last-trade klines standing in for the mark",
            crate::report::money(run.outcome.reserve_spent),
            crate::report::money(run.reserve),
            run.outcome.top_ups,
            crate::report::money(run.oracle)
        ))
    );
    axes(&mut out, &mark_scale, &format!("{} mark", s.symbol), false);
    axes(&mut out, &metric_scale, strategy.metric.name(), true);
    let marks: Vec<Option<f64>> = s.mark.iter().map(|v| Some(*v)).collect();
    polyline(
        &mut out,
        &s.at,
        &marks,
        &mark_scale,
        r##"stroke="#1f5fbf" stroke-width="1.2""##,
    );
    let levels: [(&Vec<f64>, &str, &str); 4] = [
        (&s.alert, "#e69500", "alert"),
        (&s.trigger, "#d62728", "top up below"),
        (&s.target, "#2ca02c", "refill to"),
        (&s.floor, "#7f0000", "floor"),
    ];
    for (i, (values, colour, label)) in levels.iter().enumerate() {
        let ys: Vec<Option<f64>> = values.iter().map(|v| Some(*v)).collect();
        polyline(
            &mut out,
            &s.at,
            &ys,
            &metric_scale,
            &format!(r#"stroke="{colour}" stroke-width="1" stroke-dasharray="6 4""#),
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.0}" y="{:.0}" fill="{colour}">{label}</text>"#,
            LEFT + 10.0 + i as f64 * 120.0,
            METRIC_BOTTOM + 40.0
        );
    }
    polyline(
        &mut out,
        &s.at,
        &s.metric,
        &metric_scale,
        r##"stroke="#000000" stroke-width="1.4""##,
    );
    for (i, (t, amount)) in s.top_ups.iter().enumerate() {
        let x = mark_scale.x(*t);
        // Rescues bunch up on a crash: stagger their labels so each stays readable.
        let label_y = METRIC_TOP + 14.0 + (i % 6) as f64 * 13.0;
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{MARK_TOP}" x2="{x:.1}" y2="{METRIC_BOTTOM}" stroke="#2ca02c" stroke-width="1" opacity="0.6"/><text x="{:.1}" y="{:.1}" fill="#2ca02c" font-size="11">+{:.0}</text>"##,
            x + 3.0,
            label_y,
            amount
        );
    }
    if let Some(l) = &run.outcome.liquidated {
        marker(&mut out, &mark_scale, l.at, "#d62728", "liquidated");
    }
    if let Some(l) = no_bot.and_then(|r| r.outcome.liquidated.as_ref()) {
        marker(
            &mut out,
            &mark_scale,
            l.at,
            "#888888",
            &format!("no bot: liquidated {}", l.at.hh_mm()),
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{:.0}" y="{:.0}" fill="#000">— {} (bot)</text><text x="{:.0}" y="{:.0}" fill="#2ca02c">| top-up (USDT)</text>"##,
        LEFT + 500.0,
        METRIC_BOTTOM + 40.0,
        strategy.metric.name(),
        LEFT + 760.0,
        METRIC_BOTTOM + 40.0
    );
    out.push_str("</svg>\n");
    out
}

fn marker(out: &mut String, scale: &Scale, at: Timestamp, colour: &str, label: &str) {
    let x = scale.x(at.as_millis());
    let _ = writeln!(
        out,
        r#"<line x1="{x:.1}" y1="{MARK_TOP}" x2="{x:.1}" y2="{METRIC_BOTTOM}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="3 3"/><text x="{:.1}" y="{:.1}" fill="{colour}">{}</text>"#,
        x + 4.0,
        MARK_TOP + 14.0,
        escape(label)
    );
}

fn axes(out: &mut String, scale: &Scale, label: &str, percent: bool) {
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
        scale.top,
        WIDTH - LEFT - RIGHT,
        scale.bottom - scale.top
    );
    for i in 0..=4 {
        let v = scale.low + (scale.high - scale.low) * f64::from(i) / 4.0;
        let y = scale.y(v);
        let text = if percent {
            format!("{:.0}%", v * 100.0)
        } else {
            format!("{v:.0}")
        };
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.0}" y="{:.1}" text-anchor="end" fill="#555">{text}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
    }
    let hours = ((scale.to - scale.from) / 3_600_000.0).ceil() as i64;
    let step = if hours > 12 { 3 } else { 1 };
    for h in (0..=hours).step_by(step as usize) {
        let t = scale.from as i64 + h * 3_600_000;
        let x = scale.x(t);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
            scale.top,
            scale.bottom,
            scale.bottom + 16.0,
            Timestamp(t).hh_mm()
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.0}" y="{:.0}" transform="rotate(-90 {:.0} {:.0})" text-anchor="middle">{}</text>"#,
        18.0,
        (scale.top + scale.bottom) / 2.0,
        18.0,
        (scale.top + scale.bottom) / 2.0,
        escape(label)
    );
}

/// Writes the chart: SVG text, or a PNG rendered from it when the path ends in `.png`.
/// Whether the chart at `path` is PNG; an extension other than `.svg` or `.png` is refused,
/// because writing SVG under `chart.jpg` hands the user a file nothing opens.
pub fn is_png(path: &Path) -> Result<bool, String> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("png") => Ok(true),
        Some(e) if e.eq_ignore_ascii_case("svg") => Ok(false),
        _ => Err(format!("`{}`: name a .svg or .png file", path.display())),
    }
}

pub fn write(path: &Path, svg: &str) -> Result<(), String> {
    if !is_png(path)? {
        return std::fs::write(path, svg).map_err(|e| e.to_string());
    }
    let mut options = resvg::usvg::Options::default();
    options.fontdb_mut().load_system_fonts();
    let tree = resvg::usvg::Tree::from_str(svg, &options).map_err(|e| e.to_string())?;
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or("the chart has no area")?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    pixmap.save_png(path).map_err(|e| e.to_string())
}
