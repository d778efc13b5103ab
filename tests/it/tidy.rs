//! Rules of the codebase that check themselves.

use std::{
    fs,
    path::{Path, PathBuf},
};

/// The five services, as the contract names them.
const SERVICES: [&str; 5] = proto::permissions::SERVICES;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name != "target") {
                rust_files(&path, files);
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["proto", "libs", "services", "tests"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(files.len() > 20, "found only {} files", files.len());
    let undocumented: Vec<_> = files
        .iter()
        .filter(|path| {
            let text = fs::read_to_string(path).unwrap();
            let is_unit_test_file = path.file_name().is_some_and(|name| name == "tests.rs")
                && path.parent().is_some_and(|dir| !dir.ends_with("tests"));
            !text.starts_with("//!") && !is_unit_test_file
        })
        .map(|path| path.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(
        undocumented.is_empty(),
        "files without a `//!` module doc: {undocumented:?}"
    );
}

fn dependency_section(manifest: &str) -> String {
    let start = manifest
        .find("\n[dependencies]")
        .map(|i| i + 1)
        .unwrap_or(manifest.len());
    let rest = &manifest[start..];
    let end = rest[1..].find("\n[").map(|i| i + 1).unwrap_or(rest.len());
    rest[..end].to_owned()
}

#[test]
fn services_depend_on_proto_and_libs_only_never_on_each_other() {
    let root = workspace_root();
    for service in SERVICES {
        let manifest =
            fs::read_to_string(root.join("services").join(service).join("Cargo.toml")).unwrap();
        let dependencies = dependency_section(&manifest);
        for other in SERVICES {
            assert!(
                !dependencies
                    .lines()
                    .any(|line| line.starts_with(&format!("{other}."))
                        || line.starts_with(&format!("{other} "))),
                "{service} depends on {other}: services talk over NATS only"
            );
        }
    }
    for lib in ["bus", "telemetry", "runtime", "test-support"] {
        let manifest = fs::read_to_string(root.join("libs").join(lib).join("Cargo.toml")).unwrap();
        let dependencies = dependency_section(&manifest);
        for service in SERVICES {
            assert!(
                !dependencies.contains(service),
                "libs/{lib} depends on the service {service}"
            );
        }
    }
}

#[test]
fn mains_are_thin() {
    let root = workspace_root();
    for service in SERVICES {
        let main =
            fs::read_to_string(root.join("services").join(service).join("src/main.rs")).unwrap();
        let code_lines = main
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.trim_start().starts_with("//"))
            .count();
        assert!(
            code_lines <= 10,
            "{service}/src/main.rs has {code_lines} lines of code; put logic in the library"
        );
    }
}

#[test]
fn only_proto_names_subjects() {
    // Subjects are built by `proto::Subjects`; a literal "ft." subject elsewhere bypasses the
    // configurable prefix.
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["libs", "services"] {
        rust_files(&root.join(dir), &mut files);
    }
    for path in files {
        let text = fs::read_to_string(&path).unwrap();
        for needle in [
            "\"ft.slack",
            "\"ft.incident",
            "\"ft.evidence",
            "\"ft.sandbox",
            "\"ft.post",
            "\"ft.profile",
        ] {
            assert!(
                !text.contains(needle),
                "{} hard-codes a subject ({needle})",
                path.display()
            );
        }
    }
}

/// Slack text is written one way: [`proto::mrkdwn`]. Outside it, no service code writes a
/// `"mrkdwn"` text object by hand or calls the macro's hidden constructor, and no `mrkdwn!`
/// format string captures a name from scope (`{name}` would not be escaped).
#[test]
fn slack_text_is_built_only_by_proto_mrkdwn() {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["services", "libs"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut offences = Vec::new();
    for path in &files {
        let text = fs::read_to_string(path).unwrap();
        let shown = path.strip_prefix(&root).unwrap().display().to_string();
        let is_test = shown.contains("/tests") || shown.contains("/benches/");
        // Unit tests live after `#[cfg(test)]`; only the code before it is checked.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        if !is_test && code.contains("\"mrkdwn\"") {
            offences.push(format!("{shown}: writes a \"mrkdwn\" text object by hand"));
        }
        if code.contains("__formatted") {
            offences.push(format!("{shown}: calls Mrkdwn::__formatted"));
        }
        for (at, _) in text.match_indices("mrkdwn!(") {
            let rest = &text[at + "mrkdwn!(".len()..];
            let literal = rest
                .trim_start()
                .strip_prefix('"')
                .and_then(|body| body.split('"').next())
                .unwrap_or("");
            let captures = literal.split('{').skip(1).any(|after| {
                after
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
            });
            if captures {
                offences.push(format!(
                    "{shown}: mrkdwn!(\"{literal}\") captures a name; pass it as an argument"
                ));
            }
        }
    }
    assert!(offences.is_empty(), "{offences:#?}");
}

/// The alerting rules shipped for operators are valid Prometheus rules (`promtool check rules`).
#[test]
fn shipped_alerting_rules_are_valid() {
    let root = workspace_root();
    let rules = root.join("deploy/prometheus/jetstream.rules.yml");
    let promtool = std::env::var("PROMTOOL_BIN").unwrap_or_else(|_| "/usr/bin/promtool".to_owned());
    let checked = std::process::Command::new(&promtool)
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap_or_else(|err| panic!("{promtool}: {err} (tests/run.sh installs Prometheus)"));
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// The Slack app manifests declare what flamethread acts on: the shortcut's `callback_id` is
/// proto's, App Home is on, every event the gateway reads is subscribed with the scope it needs,
/// and no scope is asked for that nothing uses.
#[test]
fn slack_manifests_declare_what_the_gateway_reads_and_nothing_else() {
    let root = workspace_root();
    for name in ["manifest.socket-mode.yaml", "manifest.http.yaml"] {
        let manifest = fs::read_to_string(root.join("deploy/slack").join(name)).unwrap();
        assert!(
            manifest.contains(&format!(
                "callback_id: {}",
                proto::slack::shortcuts::DIAGNOSE_MESSAGE
            )),
            "{name}: the Diagnose shortcut"
        );
        assert!(
            manifest.contains("home_tab_enabled: true"),
            "{name}: App Home"
        );
        assert!(
            manifest.contains("- app_home_opened\n"),
            "{name}: app_home_opened"
        );
        assert!(
            manifest.contains("- channels:read"),
            "{name}: App Home asks conversations.info whether a channel is public"
        );
        for (event, scope) in [
            ("message.channels", "channels:history"),
            ("message.groups", "groups:history"),
            ("message.im", "im:history"),
            ("app_mention", "app_mentions:read"),
            ("file_shared", "files:read"),
        ] {
            assert!(
                manifest.contains(&format!("- {event}\n")),
                "{name}: event {event}"
            );
            assert!(
                manifest.contains(&format!("- {scope}")),
                "{name}: scope {scope}"
            );
        }
        for unused in ["users:read", "chat:write.public", "im:write", "admin"] {
            assert!(
                !manifest.contains(&format!("- {unused}")),
                "{name}: {unused} is used by nothing"
            );
        }
    }
}
