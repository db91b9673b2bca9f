//! Every input kept in `fuzz/regressions/` (inputs that once crashed the loader) must
//! load to a model or an error without panicking.

use asyncgate_contract::{parse, Limits};
use std::path::Path;

#[test]
fn fuzz_regressions_load_without_panicking() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/regressions exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = parse(text, &Limits::default());
        }
        checked += 1;
    }
    eprintln!("{checked} fuzz regression inputs loaded");
}
