//! Fuzz target: any bytes through the contract loader (YAML/JSON parsing, budgets, `$ref`
//! resolution, schema validation, both version readers) must give a model or an error,
//! never a panic, a hang or unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = asyncgate_contract::parse(text, &asyncgate_contract::Limits::default());
    }
});
