//! marginguard keeps cross-margin perpetual-futures accounts out of liquidation by topping
//! them up from a reserve wallet. See ARCHITECTURE.md for the map.

pub mod cli;
pub mod clock;
pub mod config;
pub mod config_file;
pub mod core;
pub mod engine;
pub mod failpoint;
pub mod journal;
pub mod money;
pub mod operator;
pub mod plan;
pub mod plot;
pub mod replay;
pub mod report;
pub mod time;
pub mod venue;
pub mod wiring;
