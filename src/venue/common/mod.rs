//! Venue-neutral plumbing the adapters share: nothing here names a venue, a path, a header or
//! a payload. Each adapter keeps its own signing, endpoints, codes and JSON shapes in
//! `venue/<name>/` and calls these plain functions for the parts that are the same everywhere.

pub mod clock_offset;
pub mod credential;
pub mod num;
pub mod settings;
pub mod transport;
