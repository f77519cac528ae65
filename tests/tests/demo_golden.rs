//! Runs of the browser demo exported as golden transcripts (`tests/testdata/demo/*.txt`, the
//! page's "Export golden test" button): each replays from its seed through the same cluster
//! world the page runs, and every output — the story between actions, the linearizability
//! verdict, the trace digest — must come out the same. The commands are documented in
//! `bindings/wasm/src/cluster/sim/golden.rs`.
//! `REWRITE=1 cargo test -p strata-tests --test demo_golden` rewrites the outputs (review the
//! diff).
use strata_wasm::cluster::sim::golden::{golden_of, GoldenWorld};

#[test]
fn exported_demo_runs_replay() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/demo");
    strata_sim::golden::check_dir(&dir, |path| {
        let mut world = GoldenWorld::default();
        strata_sim::golden::run_file(path, |line| world.run(line))
    });
}

/// What the page exports is what the test expects: a run's own export replays unchanged.
#[test]
fn an_export_is_its_own_expected_output() {
    use strata_wasm::cluster::config::{Action, DemoConfig};
    use strata_wasm::cluster::sim::Sim;
    let cfg: DemoConfig = serde_json::from_str(r#"{"seed":11,"nodes":3}"#).expect("config");
    let mut sim = Sim::new(cfg).expect("sim");
    let leader = sim.run_until_leader(5_000).expect("a leader");
    sim.apply(Action::Put { key: "x".into(), value: "1".into(), node: None }).expect("put");
    sim.run_for(200).expect("run");
    sim.apply(Action::Crash { node: leader, lose_unsynced: true }).expect("crash");
    sim.run_for(2_000).expect("run");
    sim.apply(Action::Get { key: "x".into(), node: None, unsafe_read: false }).expect("get");
    sim.run_for(500).expect("run");
    let text = sim.golden().expect("export");
    let dir = std::env::temp_dir().join(format!("strata-demo-golden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("run.txt");
    std::fs::write(&path, &text).expect("write");
    let mut world = GoldenWorld::default();
    let (rewritten, failures) = strata_sim::golden::run_file(&path, |line| world.run(line));
    std::fs::remove_dir_all(&dir).ok();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(rewritten.trim_end(), text.trim_end());
    assert_eq!(golden_of(&sim.scenario()).expect("again"), text, "exporting twice gives the same file");
    assert!(text.contains(&format!("digest {}", sim.trace_digest())), "the digest is the run's own:\n{text}");
    assert!(text.contains("linearizable"), "{text}");
}
