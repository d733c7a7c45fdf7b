//! The deployment files checked against what they deploy: the Grafana dashboard against the
//! metrics docs/operator.md documents (names, labels, units), the systemd unit against the
//! hardening it promises and the daemon's own flags and shutdown grace, and the example
//! config against the unit (credentials, state folder) and the loader (its accounts part).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const UNIT: &str = "deploy/marginguard.service";
const CONFIG: &str = "deploy/marginguard.toml";
const DASHBOARD: &str = "deploy/grafana-dashboard.json";
const OPERATOR_DOC: &str = "docs/operator.md";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A fresh folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("marginguard-deploy-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------------------------------------
// docs/operator.md: the documented metrics, their types and labels.

#[derive(Debug, Default, Clone)]
struct Documented {
    /// `gauge`, `counter`, `histogram`; `None` for the process metrics listed in prose.
    kind: Option<String>,
    labels: BTreeSet<String>,
}

/// The text between a `### Metrics` heading and the next heading of that level or higher.
fn metrics_section(doc: &str) -> &str {
    let start = doc
        .find("### Metrics")
        .expect("docs/operator.md has a `### Metrics` section");
    let rest = &doc[start + "### Metrics".len()..];
    let end = rest
        .match_indices("\n#")
        .map(|(i, _)| i)
        .find(|&i| rest[i + 1..].starts_with("## ") || rest[i + 1..].starts_with("### "))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// Every `backticked` word of `text`, in order.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The metrics the doc names: the per-account and per-venue tables (labels from the table's
/// heading line plus any `label` its row names) and the process metrics in prose (each group
/// of names followed by "(label `x`…)" has label x).
fn documented_metrics() -> BTreeMap<String, Documented> {
    let doc = read(OPERATOR_DOC);
    let section = metrics_section(&doc);
    let mut metrics: BTreeMap<String, Documented> = BTreeMap::new();
    let mut table_labels: BTreeSet<String> = BTreeSet::new();
    for line in section.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("Per ") && trimmed.contains("(label") {
            // "Per account (labels `account`, `venue`):"
            let heading = &trimmed[trimmed.find("(label").unwrap()..];
            let heading = &heading[..heading.find(')').unwrap_or(heading.len())];
            table_labels = backticked(heading).into_iter().map(String::from).collect();
        } else if trimmed.starts_with("| `marginguard_") {
            let cells: Vec<&str> = trimmed
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            let name = cells[0].trim_matches('`').to_string();
            let mut labels = table_labels.clone();
            if let Some(what) = cells.get(2) {
                // "label `level` = `alert_below`, …; label `metric` = …": the first word
                // after each "label".
                for (at, _) in what.match_indices("label ") {
                    if let Some(label) = backticked(&what[at..]).first() {
                        labels.insert((*label).to_string());
                    }
                }
            }
            metrics.insert(
                name,
                Documented {
                    kind: cells.get(1).map(|k| k.to_string()),
                    labels,
                },
            );
        } else if trimmed.starts_with("Process:") {
            table_labels.clear();
        }
    }
    // The process metrics: the paragraph from "Process:" on.
    let prose = &section[section.find("Process:").expect("a `Process:` paragraph")..];
    let prose = &prose[..prose.find("\n\n").unwrap_or(prose.len())];
    let mut pending: Vec<String> = Vec::new();
    let mut rest = prose;
    while let Some(open) = rest.find('`') {
        let before = &rest[..open];
        let after = &rest[open + 1..];
        let close = after.find('`').expect("balanced backticks");
        let word = &after[..close];
        if before.trim_end().ends_with("(label") {
            for name in pending.drain(..) {
                metrics
                    .entry(name)
                    .or_default()
                    .labels
                    .insert(word.to_string());
            }
        } else if word.starts_with("marginguard_") {
            metrics.entry(word.to_string()).or_default();
            pending.push(word.to_string());
        }
        rest = &after[close + 1..];
    }
    assert!(
        metrics.len() >= 20,
        "docs/operator.md's metric tables read as {} metrics: {metrics:?}",
        metrics.len()
    );
    metrics
}

#[test]
fn the_operator_doc_reads_as_the_metric_contract() {
    // The reader above is what the dashboard checks lean on: it must see the doc as written.
    let metrics = documented_metrics();
    let get = |name: &str| {
        metrics
            .get(name)
            .unwrap_or_else(|| panic!("{name} not read from docs/operator.md"))
    };
    assert_eq!(
        get("marginguard_decision_latency_seconds").kind.as_deref(),
        Some("histogram")
    );
    assert!(get("marginguard_strategy_level_ratio")
        .labels
        .contains("level"));
    assert!(get("marginguard_account_equity_usdt")
        .labels
        .contains("account"));
    assert!(get("marginguard_venue_requests_total")
        .labels
        .contains("endpoint"));
    assert!(!get("marginguard_venue_requests_total")
        .labels
        .contains("account"));
    assert!(get("marginguard_alerts_dropped_total")
        .labels
        .contains("notifier"));
    assert!(get("marginguard_alerts_suppressed_total")
        .labels
        .contains("event"));
    assert!(get("marginguard_heartbeat_pings_total")
        .labels
        .contains("result"));
    assert!(get("marginguard_build_info").labels.contains("version"));
}

// ---------------------------------------------------------------------------------------------
// The dashboard.

fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read(DASHBOARD)).expect("deploy/grafana-dashboard.json is valid JSON")
}

/// Every panel, rows' nested panels included.
fn all_panels(dashboard: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("a `panels` array") {
        out.push(panel);
        if let Some(nested) = panel["panels"].as_array() {
            out.extend(nested);
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// A metric name in a PromQL expression and the label names its selector matches on.
#[derive(Debug)]
struct Selector {
    metric: String,
    matchers: Vec<String>,
}

/// The `marginguard_*` selectors of a PromQL expression.
fn selectors(expr: &str) -> Vec<Selector> {
    let mut out = Vec::new();
    let mut search = 0;
    while let Some(found) = expr[search..].find("marginguard_") {
        let at = search + found;
        let preceded = expr[..at].chars().next_back().is_some_and(is_ident);
        let end = expr[at..]
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .map_or(expr.len(), |n| at + n);
        search = end;
        if preceded {
            continue;
        }
        let mut matchers = Vec::new();
        if expr[end..].starts_with('{') {
            let close = expr[end..].find('}').expect("a closed selector") + end;
            for matcher in expr[end + 1..close].split(',') {
                let label: String = matcher
                    .trim()
                    .chars()
                    .take_while(|c| is_ident(*c))
                    .collect();
                if !label.is_empty() {
                    matchers.push(label);
                }
            }
        }
        out.push(Selector {
            metric: expr[at..end].to_string(),
            matchers,
        });
    }
    out
}

/// The label names in `by (…)` / `without (…)` clauses and `{{label}}` legends.
fn grouping_labels(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for keyword in ["by", "without"] {
        let mut search = 0;
        while let Some(found) = expr[search..].find(keyword) {
            let at = search + found;
            search = at + keyword.len();
            let bounded = !expr[..at].chars().next_back().is_some_and(is_ident);
            let rest = expr[search..].trim_start();
            if bounded && rest.starts_with('(') {
                let close = rest.find(')').expect("a closed grouping");
                out.extend(
                    rest[1..close]
                        .split(',')
                        .map(|l| l.trim().to_string())
                        .filter(|l| !l.is_empty()),
                );
            }
        }
    }
    out
}

fn legend_labels(legend: &str) -> Vec<String> {
    legend
        .split("{{")
        .skip(1)
        .filter_map(|part| part.split_once("}}").map(|(l, _)| l.trim().to_string()))
        .collect()
}

/// The documented metric a used name stands for: itself, or a histogram's series.
fn resolve<'d>(
    name: &str,
    documented: &'d BTreeMap<String, Documented>,
) -> Option<(&'d str, &'d Documented)> {
    if let Some((key, doc)) = documented.get_key_value(name) {
        return Some((key, doc));
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = name.strip_suffix(suffix)?;
        let (key, doc) = documented.get_key_value(base)?;
        (doc.kind.as_deref() == Some("histogram")).then_some((key.as_str(), doc))
    })
}

/// Every PromQL expression in the dashboard: panel targets and query variables.
fn expressions(dashboard: &serde_json::Value) -> Vec<(String, String, Option<String>)> {
    let mut out = Vec::new();
    for panel in all_panels(dashboard) {
        let title = panel["title"].as_str().unwrap_or("?").to_string();
        for target in panel["targets"].as_array().into_iter().flatten() {
            out.push((
                title.clone(),
                target["expr"].as_str().unwrap_or_default().to_string(),
                target["legendFormat"].as_str().map(String::from),
            ));
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if variable["type"] == "query" {
            let query = variable["query"]["query"]
                .as_str()
                .or(variable["query"].as_str())
                .unwrap_or_default();
            out.push((
                format!("variable ${}", variable["name"].as_str().unwrap_or("?")),
                query.to_string(),
                None,
            ));
        }
    }
    out
}

#[test]
fn the_dashboard_uses_only_documented_metrics_and_their_labels() {
    let documented = documented_metrics();
    let dashboard = dashboard();
    let mut used: BTreeSet<&str> = BTreeSet::new();
    let mut problems = Vec::new();
    let exprs = expressions(&dashboard);
    assert!(exprs.len() > 20, "only {} expressions", exprs.len());
    for (title, expr, legend) in &exprs {
        let found = selectors(expr);
        if found.is_empty() {
            problems.push(format!("{title}: `{expr}` reads no marginguard_ metric"));
        }
        let mut allowed: BTreeSet<String> = BTreeSet::new();
        for selector in &found {
            match resolve(&selector.metric, &documented) {
                None => problems.push(format!(
                    "{title}: `{}` is not in docs/operator.md's metric tables",
                    selector.metric
                )),
                Some((name, doc)) => {
                    used.insert(name);
                    let mut labels = doc.labels.clone();
                    if selector.metric.ends_with("_bucket") {
                        labels.insert("le".into());
                    }
                    for matcher in &selector.matchers {
                        if !labels.contains(matcher) {
                            problems.push(format!(
                                "{title}: `{}` has no label `{matcher}` (documented: {labels:?})",
                                selector.metric
                            ));
                        }
                    }
                    allowed.extend(labels);
                }
            }
        }
        let grouped = grouping_labels(expr);
        let legends = legend.as_deref().map(legend_labels).unwrap_or_default();
        for label in grouped.iter().chain(&legends) {
            if !allowed.contains(label) {
                problems.push(format!(
                    "{title}: label `{label}` is not one of {allowed:?} in `{expr}`"
                ));
            }
        }
        // A legend may only show what the expression keeps: after `sum by (…)` only those.
        if !grouped.is_empty() {
            for label in &legends {
                if !grouped.contains(label) {
                    problems.push(format!(
                        "{title}: legend `{{{{{label}}}}}` is aggregated away by `{expr}`"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // And the other way round: a documented metric no panel shows is a gap in the dashboard.
    let unused: Vec<&String> = documented
        .keys()
        .filter(|name| !used.contains(name.as_str()))
        .collect();
    assert!(
        unused.is_empty(),
        "documented in docs/operator.md but on no panel: {unused:?}"
    );
}

#[test]
fn the_dashboard_imports_into_grafana() {
    let dashboard = dashboard();
    let schema = dashboard["schemaVersion"].as_u64().expect("schemaVersion");
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(dashboard["uid"].as_str().is_some_and(|t| !t.is_empty()));

    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list");
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no `{name}` template variable"))
    };
    let datasource = variable("DS_PROMETHEUS");
    assert_eq!(datasource["type"], "datasource");
    assert_eq!(datasource["query"], "prometheus");
    let account = variable("account");
    assert_eq!(account["type"], "query");
    assert_eq!(
        account["query"]["query"],
        "label_values(marginguard_account_equity_usdt, account)"
    );
    assert_eq!(account["datasource"]["uid"], "${DS_PROMETHEUS}");

    let mut ids = BTreeSet::new();
    let mut boxes: Vec<(String, [u64; 4])> = Vec::new();
    let mut problems = Vec::new();
    for panel in all_panels(&dashboard) {
        let title = panel["title"].as_str().unwrap_or("?").to_string();
        let id = panel["id"].as_u64().expect("every panel has a numeric id");
        if !ids.insert(id) {
            problems.push(format!("{title}: id {id} used twice"));
        }
        let grid = &panel["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| {
            grid[k]
                .as_u64()
                .unwrap_or_else(|| panic!("{title}: gridPos.{k}"))
        });
        if w == 0 || h == 0 || x + w > 24 {
            problems.push(format!(
                "{title}: gridPos {grid} does not fit the 24-column grid"
            ));
        }
        for (other, [ox, oy, ow, oh]) in &boxes {
            if x < ox + ow && *ox < x + w && y < oy + oh && *oy < y + h {
                problems.push(format!("{title}: overlaps {other}"));
            }
        }
        boxes.push((title.clone(), [x, y, w, h]));
        if panel["type"] == "row" {
            continue;
        }
        if panel["datasource"]["uid"] != "${DS_PROMETHEUS}" {
            problems.push(format!("{title}: datasource is not ${{DS_PROMETHEUS}}"));
        }
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("{title}: no targets"));
        }
        let mut refs = BTreeSet::new();
        for target in &targets {
            if target["expr"].as_str().is_none_or(|e| e.trim().is_empty()) {
                problems.push(format!("{title}: a target without expr"));
            }
            if !refs.insert(target["refId"].to_string()) {
                problems.push(format!("{title}: refId {} twice", target["refId"]));
            }
            if target["datasource"]["uid"] != "${DS_PROMETHEUS}" {
                problems.push(format!(
                    "{title}: a target's datasource is not ${{DS_PROMETHEUS}}"
                ));
            }
        }
        // Units follow the metric: ratios as percentages, USDT as USDT, seconds as seconds.
        let unit = panel["fieldConfig"]["defaults"]["unit"]
            .as_str()
            .unwrap_or_default();
        let exprs: Vec<&str> = targets.iter().filter_map(|t| t["expr"].as_str()).collect();
        let reads = |suffix: &str| {
            exprs.iter().all(|e| {
                selectors(e)
                    .iter()
                    .all(|s| s.metric.trim_end_matches("_bucket").ends_with(suffix))
            })
        };
        let expected = if reads("_ratio") {
            Some("percentunit")
        } else if reads("_usdt") {
            Some("USDT")
        } else if reads("_seconds") {
            Some("s")
        } else {
            None
        };
        if let Some(expected) = expected {
            let ok = match expected {
                "USDT" => unit.contains("USDT") || unit == "currencyUSD",
                other => unit == other,
            };
            if !ok {
                problems.push(format!("{title}: unit `{unit}`, expected {expected}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_expression_reader_sees_names_labels_and_histogram_series() {
    let found = selectors(
        r#"histogram_quantile(0.99, sum by (account, le) (rate(marginguard_decision_latency_seconds_bucket{account=~"$account", venue!="x"}[5m]))) / marginguard_x"#,
    );
    assert_eq!(found.len(), 2);
    assert_eq!(
        found[0].metric,
        "marginguard_decision_latency_seconds_bucket"
    );
    assert_eq!(found[0].matchers, ["account", "venue"]);
    assert_eq!(found[1].metric, "marginguard_x");
    assert!(selectors("not_marginguard_x").is_empty());
    assert_eq!(
        grouping_labels("sum by (account, le) (x) + sum without(venue) (y) + standby"),
        ["account", "le", "venue"]
    );
    assert_eq!(
        legend_labels("{{account}} {{ level }}"),
        ["account", "level"]
    );
    let documented = documented_metrics();
    assert!(resolve("marginguard_decision_latency_seconds_count", &documented).is_some());
    // Only a histogram has series: a gauge's `_count` is not documented.
    assert!(resolve("marginguard_account_equity_usdt_count", &documented).is_none());
}

// ---------------------------------------------------------------------------------------------
// The systemd unit.

/// `[Section]` → its `Key=Value` lines in order (a key may repeat). Comments and blank lines
/// are skipped; a trailing backslash continues a line, as systemd reads it.
fn parse_unit(text: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut sections: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut section = String::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with(';'))
        {
            continue;
        }
        if let Some(continued) = line.strip_suffix('\\') {
            pending.push_str(continued);
            pending.push(' ');
            continue;
        }
        let line = format!("{pending}{line}");
        pending.clear();
        if line.starts_with('[') && line.ends_with(']') {
            section = line[1..line.len() - 1].to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not a Key=Value line: {line}"));
        sections
            .entry(section.clone())
            .or_default()
            .push((key.trim().to_string(), value.trim().to_string()));
    }
    sections
}

struct Unit {
    sections: BTreeMap<String, Vec<(String, String)>>,
}

impl Unit {
    fn load() -> Unit {
        Unit {
            sections: parse_unit(&read(UNIT)),
        }
    }

    fn all(&self, section: &str, key: &str) -> Vec<&str> {
        self.sections
            .get(section)
            .into_iter()
            .flatten()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The effective value of a single-valued key: its last assignment, as systemd reads it.
    fn one(&self, section: &str, key: &str) -> Option<&str> {
        self.all(section, key).last().copied()
    }

    fn service(&self, key: &str) -> Option<&str> {
        self.one("Service", key)
    }
}

/// A systemd time span: "20s", "20", "1min 30s", "500ms", "2m".
fn systemd_span(raw: &str) -> Duration {
    let mut total = Duration::ZERO;
    for part in raw.split_whitespace() {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        let number: u64 = digits
            .parse()
            .unwrap_or_else(|_| panic!("not a time span: {raw}"));
        let unit = &part[digits.len()..];
        total += match unit {
            "" | "s" | "sec" | "second" | "seconds" => Duration::from_secs(number),
            "ms" | "msec" => Duration::from_millis(number),
            "m" | "min" | "minute" | "minutes" => Duration::from_secs(number * 60),
            "h" | "hr" | "hour" | "hours" => Duration::from_secs(number * 3600),
            other => panic!("unit `{other}` in time span {raw}"),
        };
    }
    total
}

#[test]
fn the_unit_is_hardened_as_promised() {
    let unit = Unit::load();
    let mut problems = Vec::new();
    for (key, expected) in [
        ("Restart", "on-failure"),
        ("KillSignal", "SIGTERM"),
        ("StateDirectory", "marginguard"),
        ("UMask", "0077"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("ProtectClock", "yes"),
        ("ProtectHostname", "yes"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("SystemCallArchitectures", "native"),
        ("CapabilityBoundingSet", ""),
    ] {
        match unit.service(key) {
            Some(value) if value == expected => {}
            other => problems.push(format!("{key}={other:?}, expected {expected:?}")),
        }
    }
    let families: BTreeSet<&str> = unit
        .service("RestrictAddressFamilies")
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    if families != BTreeSet::from(["AF_INET", "AF_INET6", "AF_UNIX"]) {
        problems.push(format!("RestrictAddressFamilies = {families:?}"));
    }
    let filters = unit.all("Service", "SystemCallFilter");
    if !filters
        .iter()
        .any(|f| f.split_whitespace().any(|g| g == "@system-service"))
    {
        problems.push(format!(
            "SystemCallFilter = {filters:?}, no @system-service"
        ));
    }
    // A dedicated, fixed user: the journal must outlive the process and stay its owner's.
    match (unit.service("User"), unit.service("DynamicUser")) {
        (Some(user), None) if user != "root" && !user.is_empty() => {}
        (_, Some("yes")) => {}
        other => problems.push(format!("User/DynamicUser = {other:?}")),
    }
    // Writable: the state folder only (StateDirectory adds it under ProtectSystem=strict).
    for paths in unit.all("Service", "ReadWritePaths") {
        for path in paths.split_whitespace() {
            if path.trim_start_matches('-') != "/var/lib/marginguard" {
                problems.push(format!("ReadWritePaths names {path}"));
            }
        }
    }
    // Restarted, but never given up on: no start limit, or one that is not the default.
    if unit.one("Unit", "StartLimitIntervalSec") != Some("0") {
        problems.push(format!(
            "StartLimitIntervalSec = {:?}: systemd's default gives up after 5 starts in 10 s",
            unit.one("Unit", "StartLimitIntervalSec")
        ));
    }
    match unit.service("RestartSec").map(systemd_span) {
        Some(span) if span >= Duration::from_secs(1) => {}
        other => problems.push(format!("RestartSec = {other:?}")),
    }
    // Exit 2 also means "venue unreachable during the pre-flight": it must be restarted.
    if let Some(prevent) = unit.service("RestartPreventExitStatus") {
        if prevent.split_whitespace().any(|s| s == "2") {
            problems.push(
                "RestartPreventExitStatus=2 would leave a boot without network unguarded".into(),
            );
        }
    }
    if unit.one("Install", "WantedBy") != Some("multi-user.target") {
        problems.push("WantedBy is not multi-user.target".into());
    }
    assert!(problems.is_empty(), "{}:\n{}", UNIT, problems.join("\n"));
}

#[test]
fn the_unit_waits_longer_than_the_daemons_shutdown_grace() {
    let unit = Unit::load();
    let stop = systemd_span(unit.service("TimeoutStopSec").expect("TimeoutStopSec="));
    let grace = marginguard::cli::SHUTDOWN_GRACE;
    // The grace, then the journal's last writes and the exit: at least 5 s more.
    assert!(
        stop >= grace + Duration::from_secs(5),
        "TimeoutStopSec {stop:?} leaves no room above the daemon's {grace:?} grace before SIGKILL"
    );
}

/// Runs the built binary with `args` in place of the unit's, the config replaced by `config`.
fn run_with(args: &[&str], config: &Path) -> (Option<i32>, String) {
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            if *a == "/etc/marginguard/marginguard.toml" {
                config.display().to_string()
            } else {
                (*a).to_string()
            }
        })
        .collect();
    let output = Command::new(env!("CARGO_BIN_EXE_marginguard"))
        .args(&args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_units_command_lines_are_ones_the_binary_accepts() {
    let unit = Unit::load();
    let start = unit.service("ExecStart").expect("ExecStart=");
    let words: Vec<&str> = start.split_whitespace().collect();
    assert_eq!(words[0], "/usr/local/bin/marginguard", "{start}");
    assert_eq!(words[1], "run", "{start}");
    let flag = |name: &str| {
        words
            .windows(2)
            .find(|w| w[0] == name)
            .map(|w| w[1])
            .unwrap_or_else(|| panic!("ExecStart has no {name}: {start}"))
    };
    assert_eq!(flag("--config"), "/etc/marginguard/marginguard.toml");
    assert_eq!(flag("--log-format"), "json");
    assert!(
        !words.contains(&"--dry-run"),
        "--dry-run in ExecStart would never arm: {start}"
    );

    // Every command line the unit runs parses: with a config that does not exist, the binary
    // gets as far as reading it (a config error, exit 2), not a usage error (also exit 2).
    let dir = scratch("argv");
    let missing = dir.join("absent.toml");
    let mut lines = vec![start];
    lines.extend(unit.all("Service", "ExecStartPre"));
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (code, stderr) = run_with(&words[1..], &missing);
        assert_eq!(code, Some(2), "`{line}`: {stderr}");
        assert!(
            stderr.contains("absent.toml") && !stderr.contains("Usage:"),
            "`{line}` is not a command line the binary accepts: {stderr}"
        );
    }
}

const CREDENTIALS_DIR: &str = "/run/credentials/marginguard.service/";

/// Every string value of a TOML document, with its dotted key.
fn strings(value: &toml::Value, key: &str, out: &mut Vec<(String, String)>) {
    match value {
        toml::Value::String(s) => out.push((key.to_string(), s.clone())),
        toml::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings(item, &format!("{key}[{i}]"), out);
            }
        }
        toml::Value::Table(table) => {
            for (k, v) in table {
                let key = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                strings(v, &key, out);
            }
        }
        _ => {}
    }
}

fn example_config() -> toml::Value {
    toml::from_str(&read(CONFIG)).expect("deploy/marginguard.toml is TOML")
}

#[test]
fn the_unit_loads_exactly_the_credentials_the_config_reads() {
    let unit = Unit::load();
    // systemd names the folder after the unit.
    let unit_name = Path::new(UNIT).file_name().unwrap().to_str().unwrap();
    assert_eq!(CREDENTIALS_DIR, format!("/run/credentials/{unit_name}/"));
    let mut loaded = BTreeSet::new();
    for entry in unit.all("Service", "LoadCredential") {
        let (id, source) = entry
            .split_once(':')
            .unwrap_or_else(|| panic!("LoadCredential={entry}: not ID:PATH"));
        assert!(
            source.starts_with("/etc/marginguard/credentials/"),
            "LoadCredential={entry}: keep the sources in /etc/marginguard/credentials/"
        );
        assert!(
            loaded.insert(id.to_string()),
            "credential {id} loaded twice"
        );
    }
    assert!(!loaded.is_empty(), "no LoadCredential= line");

    let mut values = Vec::new();
    strings(&example_config(), "", &mut values);
    let mut read_by_config = BTreeSet::new();
    for (key, value) in &values {
        if let Some(id) = value.strip_prefix(CREDENTIALS_DIR) {
            assert!(
                key.ends_with("_file"),
                "{key} names a credential but is not a *_file key"
            );
            read_by_config.insert(id.to_string());
        }
        // The unit sets no environment, so no secret can come from one.
        assert!(
            !key.ends_with("_env"),
            "{key}: the unit passes no environment variable"
        );
    }
    assert_eq!(
        loaded, read_by_config,
        "LoadCredential= IDs (left) and the config's {CREDENTIALS_DIR} files (right) differ: \
         a file the unit does not load is missing at start; a loaded source nobody reads must still exist"
    );
}

#[test]
fn the_example_config_starts_dry_on_loopback_with_state_in_the_state_directory() {
    let config = example_config();
    assert_eq!(
        config.get("dry_run").and_then(toml::Value::as_bool),
        Some(true),
        "the example must say dry_run = true itself, not lean on the default"
    );
    let http = config.get("http").expect("an [http] table");
    let listen: std::net::SocketAddr = http
        .get("listen")
        .and_then(toml::Value::as_str)
        .expect("[http] listen")
        .parse()
        .expect("[http] listen is HOST:PORT");
    assert!(
        listen.ip().is_loopback(),
        "[http] listen {listen} is not loopback"
    );
    assert_ne!(
        http.get("allow_remote").and_then(toml::Value::as_bool),
        Some(true)
    );

    let unit = Unit::load();
    let state = format!("/var/lib/{}/", unit.service("StateDirectory").unwrap());
    let journal = config
        .get("journal")
        .and_then(toml::Value::as_str)
        .expect("journal");
    assert!(
        journal.starts_with(&state),
        "journal {journal} is outside the unit's state directory {state}: read-only under ProtectSystem=strict"
    );
    let accounts = config["accounts"].as_array().expect("[[accounts]]");
    assert!(!accounts.is_empty());
    for account in accounts {
        let strategy = account["strategy"].as_str().expect("strategy");
        assert!(
            strategy.starts_with("/etc/marginguard/strategies/"),
            "strategy {strategy}: absolute, under /etc/marginguard/strategies/"
        );
        let shipped = repo("strategies").join(Path::new(strategy).file_name().unwrap());
        assert!(
            shipped.exists(),
            "{strategy} is not a shipped strategy to copy there"
        );
    }
    for table in ["alerts", "heartbeat"] {
        assert!(config.get(table).is_some(), "no [{table}] table");
    }
    assert!(config
        .get("notifiers")
        .and_then(toml::Value::as_array)
        .is_some_and(|n| !n.is_empty()));
}

#[test]
fn the_example_configs_operator_keys_are_the_documented_ones() {
    let doc = read(OPERATOR_DOC);
    let spec_start = doc.find("## Config").expect("a `## Config` section");
    let spec = &doc[spec_start..];
    let spec = &spec[..spec[3..].find("\n## ").map_or(spec.len(), |i| i + 3)];
    let words: BTreeSet<&str> = spec
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    let config = example_config();
    let mut tables: Vec<(&str, &toml::value::Table)> = Vec::new();
    for name in ["http", "alerts", "heartbeat"] {
        tables.push((name, config[name].as_table().unwrap()));
    }
    for notifier in config["notifiers"].as_array().unwrap() {
        tables.push(("notifiers", notifier.as_table().unwrap()));
    }
    for (name, table) in tables {
        for key in table.keys() {
            assert!(
                words.contains(key.as_str()),
                "[{name}] {key} is not a key docs/operator.md's Config section names"
            );
        }
    }
    for notifier in config["notifiers"].as_array().unwrap() {
        let kind = notifier["kind"].as_str().unwrap();
        assert!(
            ["telegram", "discord", "webhook"].contains(&kind),
            "kind {kind}"
        );
    }
}

/// The accounts part of the example, through the real loader: the example points at /etc
/// and /run, so those paths are redirected (strategy to the shipped file, key to a scratch
/// 0600 file, journal to a scratch folder) and the operator tables, which this loader may not
/// know yet, are left out. What remains must load exactly as written.
#[cfg(unix)]
#[test]
fn the_example_accounts_load_through_the_config_loader() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("loader");
    let key = dir.join("binance.toml");
    std::fs::write(&key, "api_key = \"k\"\napi_secret = \"s\"\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    let mut config = example_config();
    let table = config.as_table_mut().unwrap();
    for operator in ["http", "alerts", "notifiers", "heartbeat"] {
        table.remove(operator);
    }
    table.insert(
        "journal".into(),
        dir.join("journal.sqlite").display().to_string().into(),
    );
    for account in table["accounts"].as_array_mut().unwrap() {
        let account = account.as_table_mut().unwrap();
        let strategy = account["strategy"].as_str().unwrap().to_string();
        let shipped = repo("strategies").join(Path::new(&strategy).file_name().unwrap());
        account.insert("strategy".into(), shipped.display().to_string().into());
        let binance = account["binance"].as_table_mut().unwrap();
        assert!(binance["credentials_file"]
            .as_str()
            .unwrap()
            .starts_with(CREDENTIALS_DIR));
        binance.insert("credentials_file".into(), key.display().to_string().into());
    }
    let path = dir.join("marginguard.toml");
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    let loaded = marginguard::config::Config::load(&path)
        .unwrap_or_else(|e| panic!("the example's accounts do not load: {e}"));
    assert!(loaded.dry_run);
    assert_eq!(loaded.accounts.len(), 1);
    assert_eq!(loaded.accounts[0].venue.kind(), "binance");
    assert_eq!(loaded.journal, dir.join("journal.sqlite"));
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The runbook.

/// The runbook: the README's section "Running it for real".
fn runbook() -> String {
    let readme = read("README.md");
    let start = readme
        .find("## Running it for real")
        .expect("a README section `## Running it for real`");
    let section = &readme[start + 3..];
    section[..section.find("\n## ").unwrap_or(section.len())].to_string()
}

#[test]
fn the_runbooks_links_and_deploy_files_exist() {
    let text = runbook();
    let mut problems = Vec::new();
    // Links are written for the README (repo root), where the section will be pasted.
    for part in text.split("](").skip(1) {
        let target = &part[..part.find(')').unwrap_or(part.len())];
        if target.starts_with("http") || target.starts_with('#') {
            continue;
        }
        let file = target.split('#').next().unwrap();
        if !repo(file).exists() {
            problems.push(format!("link to {target}: no such file"));
        }
    }
    for file in [UNIT, CONFIG, DASHBOARD] {
        if !text.contains(file) {
            problems.push(format!("{file} is not mentioned"));
        }
    }
    assert!(
        problems.is_empty(),
        "README, Running it for real:\n{}",
        problems.join("\n")
    );
}
