//! marginguard keeps cross-margin perpetual-futures accounts out of liquidation by topping
//! them up from a reserve wallet. See ARCHITECTURE.md for the map.

pub mod core;
pub mod money;
pub mod time;
