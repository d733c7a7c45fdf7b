//! The crash-day klines shipped in data/klines are the shared, checked copies: unchanged, and
//! parseable by the simulator.

use std::path::Path;

use sha2::{Digest, Sha256};

#[test]
fn kline_files_match_their_checksums() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/klines");
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    let mut checked = 0;
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (expected, name) = line.split_once("  ").expect("`<sha256>  <file>` lines");
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let actual = format!("{:x}", Sha256::digest(&bytes));
        assert_eq!(actual, expected, "{name} changed");
        let bars = marginguard::venue::sim::market::load_klines(&dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(bars.len(), 1440, "{name}: one UTC day of minutes");
        checked += 1;
    }
    assert_eq!(checked, 27);
}
