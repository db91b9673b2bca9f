//! Benchmark (not a test): load and validate a generated 1 MiB AsyncAPI contract, YAML and
//! JSON, and print the median and range over repeated runs.
//!
//! cargo run --release -p asyncgate-contract --example load_bench [-- RUNS]

use asyncgate_contract::{parse, Limits};
use std::time::Instant;

/// An AsyncAPI 2.6 document of about `target` bytes: channels with parameters, both
/// directions, and message payload schemas.
fn contract(target: usize) -> String {
    let mut doc = String::from(
        "asyncapi: 2.6.0\ninfo:\n  title: Market data\n  version: 1.0.0\nservers:\n  prod:\n    url: wss://md.example.com/ws\n    protocol: wss\nchannels:\n",
    );
    let mut i = 0;
    while doc.len() < target {
        doc.push_str(&format!(
            "  /markets/{{market}}/book{i}:\n    parameters:\n      market:\n        schema: {{type: string, pattern: '^[A-Z]+$'}}\n    publish:\n      operationId: subscribeBook{i}\n      message:\n        name: Subscribe{i}\n        payload:\n          type: object\n          required: [type, depth]\n          properties:\n            type: {{type: string, enum: [subscribe, unsubscribe]}}\n            depth: {{type: integer, minimum: 1, maximum: 500}}\n    subscribe:\n      operationId: bookUpdates{i}\n      message:\n        name: BookUpdate{i}\n        payload:\n          type: object\n          properties:\n            sequence: {{type: integer}}\n            bids: {{type: array, items: {{type: array, items: {{type: string}}}}}}\n            asks: {{type: array, items: {{type: array, items: {{type: string}}}}}}\n"
        ));
        i += 1;
    }
    doc
}

fn measure(label: &str, text: &str, runs: usize) {
    let limits = Limits::default();
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let c = parse(text, &limits).expect("the generated contract is valid");
            assert!(!c.channels.is_empty());
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{label:<5} {:>8} bytes  median {:>7.1} ms  (min {:.1}, max {:.1}, {runs} runs)",
        text.len(),
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
}

/// Time to refuse a hostile document (median of `runs`): the budgets must answer fast,
/// which the tests cannot assert on a machine of unknown speed.
fn refusal(label: &str, text: &str, runs: usize) {
    let limits = Limits::default();
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            assert!(parse(text, &limits).is_err(), "{label} is refused");
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "refused {label:<15} median {:>7.1} ms  (min {:.1}, max {:.1}, {runs} runs)",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(15);
    let yaml = contract(1 << 20);
    let value = asyncgate_contract::spans::parse(&yaml).expect("YAML").0;
    let json = serde_json::to_string(&value).expect("JSON");
    measure("YAML", &yaml, runs);
    measure("JSON", &json, runs);
    let mut laughs = String::from("asyncapi: 2.6.0\ninfo: {title: t, version: '1'}\nchannels: {}\nx-a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let p = i - 1;
        laughs.push_str(&format!("x-a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    refusal("billion laughs", &laughs, runs);
    let deep = format!(
        "asyncapi: 2.6.0\ninfo: {{title: t, version: '1'}}\nchannels: {{}}\nx-deep: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    refusal("deep nesting", &deep, runs);
    // Where the time goes, for the YAML document.
    let t = Instant::now();
    let (doc, _) = asyncgate_contract::spans::parse(&yaml).expect("YAML");
    let read = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let _: serde_json::Value = serde_saphyr::from_str(&yaml).expect("YAML");
    println!(
        "plain YAML read {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let _ = serde_json::from_str::<serde_json::Value>(&json).expect("JSON");
    let json_read = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let problems = asyncgate_contract::schema::check(&doc, &doc, "2.6.0").expect("schema");
    assert!(problems.is_empty());
    let schema = t.elapsed().as_secs_f64() * 1000.0;
    println!("parts: YAML read with positions {read:.1} ms, JSON read {json_read:.1} ms, schema validation {schema:.1} ms");
}
