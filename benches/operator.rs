//! What watching costs: folding one engine event into the operator's board (the path every
//! tick's event takes), rendering `/metrics`, and building `/status.json`.
//!
//! `cargo bench --bench operator`

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use marginguard::config::Config;
use marginguard::engine::{Event, EventKind};
use marginguard::operator::board::AccountInfo;
use marginguard::operator::{AlertRules, Operator, WatchedAccount};
use marginguard::wiring::{self, Mode};

/// The demo's accounts, wired as `run` wires them, and one real `Observed` event of each.
fn demo() -> (Operator, Vec<Event>) {
    let config = Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml"))
        .expect("the demo config");
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let mut wired = wiring::wire(
        &config.accounts,
        &config.journal,
        Mode::DryRun,
        Some(sender),
    )
    .expect("wired");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Two hours into the day, so the board holds decisions and the journal rescues.
    for runner in &mut wired.runners {
        for _ in 0..720 {
            runtime.block_on(runner.tick()).expect("a tick");
        }
    }
    let accounts = config
        .accounts
        .iter()
        .zip(
            wired
                .venues
                .iter()
                .zip(wired.clocks.iter().zip(&wired.journals)),
        )
        .map(|(account, (venue, (clock, journal)))| WatchedAccount {
            info: AccountInfo {
                name: account.name.clone(),
                venue: venue.kind(),
                mode: wiring::mode_label(account, Mode::DryRun),
                strategy: account.strategy.name.clone(),
                metric: account.strategy.metric,
                caps: account.caps.clone(),
            },
            clock: clock.clone(),
            venue: venue.clone(),
            journal: Arc::clone(journal),
        })
        .collect();
    let operator = Operator::new(accounts, AlertRules::default(), None, None);
    let mut observed = Vec::new();
    while let Ok(event) = receiver.try_recv() {
        operator.observe(&event);
        if matches!(event.kind, EventKind::Observed { .. }) {
            observed.push(event);
        }
    }
    (operator, observed)
}

fn bench_operator(c: &mut Criterion) {
    let (operator, observed) = demo();
    let event = observed.last().expect("an observation").clone();
    let mut group = c.benchmark_group("operator");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("observe one tick's event", |b| {
        b.iter(|| operator.observe(std::hint::black_box(&event)))
    });
    group.bench_function("render /metrics (2 accounts)", |b| {
        b.iter(|| operator.metrics())
    });
    group.bench_function("build /status.json (2 accounts, journal read)", |b| {
        b.iter(|| serde_json::to_string(&operator.status()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_operator);
criterion_main!(benches);
