//! The dependency rule: the three core crates never depend on each other; only
//! `sdk-integration` sees all three. Read from `cargo metadata`, so it cannot drift.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::process::Command;

const CORE: [&str; 3] = ["sdk-codec", "sdk-bus", "sdk-telemetry"];

/// Every workspace package with the names of all its dependencies (any kind).
fn workspace_dependencies() -> BTreeMap<String, Vec<String>> {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .args(["--manifest-path", manifest])
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

/// The violations of the rule in `deps`.
fn violations(deps: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut found = Vec::new();
    for core in CORE {
        let Some(list) = deps.get(core) else {
            found.push(format!("{core} is missing from the workspace"));
            continue;
        };
        for other in CORE.iter().chain(["sdk-integration"].iter()) {
            if *other != core && list.iter().any(|d| d == other) {
                found.push(format!("{core} depends on {other}"));
            }
        }
    }
    if let Some(list) = deps.get("sdk-integration") {
        for core in CORE {
            if !list.iter().any(|d| d == core) {
                found.push(format!("sdk-integration does not depend on {core}"));
            }
        }
    } else {
        found.push("sdk-integration is missing from the workspace".into());
    }
    found
}

#[test]
fn core_crates_never_depend_on_each_other() {
    let deps = workspace_dependencies();
    let broken = violations(&deps);
    assert!(broken.is_empty(), "dependency rule broken: {broken:?}");
}

#[test]
fn the_check_catches_a_core_crate_that_depends_on_another() {
    let mut deps = workspace_dependencies();
    deps.get_mut("sdk-bus").unwrap().push("sdk-codec".into());
    assert_eq!(violations(&deps), vec!["sdk-bus depends on sdk-codec"]);
}
