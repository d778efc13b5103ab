//! Rules of the codebase that check themselves.

use std::{
    collections::BTreeSet,
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

/// Production code of `services/` and `libs/`: each file's text before its `#[cfg(test)]`,
/// test files and benches left out, with the path to show.
fn production_code() -> Vec<(String, String)> {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["services", "libs"] {
        rust_files(&root.join(dir), &mut files);
    }
    files
        .into_iter()
        .filter_map(|path| {
            let shown = path.strip_prefix(&root).unwrap().display().to_string();
            let is_test = shown.contains("/tests")
                || shown.contains("/benches/")
                || shown.contains("/examples/")
                || shown.starts_with("libs/test-support");
            let text = fs::read_to_string(&path).unwrap();
            let code = without_test_modules(&text);
            (!is_test).then_some((shown, code))
        })
        .collect()
}

/// `text` without its `#[cfg(test)] mod …` modules (inline ones end at the first `}` at the
/// indentation they opened at), wherever they are in the file; anything else marked
/// `#[cfg(test)]` ends the code (items for tests only come last).
fn without_test_modules(text: &str) -> String {
    let mut code = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        code.push_str(&rest[..at]);
        let after = &rest[at..];
        let next_line = after["#[cfg(test)]\n".len().min(after.len())..]
            .split_inclusive('\n')
            .next()
            .unwrap_or_default();
        let after_line = &after[("#[cfg(test)]\n".len() + next_line.len()).min(after.len())..];
        let module = next_line.trim_start();
        if module.starts_with("mod ") && module.trim_end().ends_with(';') {
            // `mod tests;`: the module is another file; the code goes on after it.
            rest = after_line;
            continue;
        }
        if !(module.starts_with("mod ") && module.trim_end().ends_with('{')) {
            return code;
        }
        // rustfmt closes the module at the indentation it opened at.
        let indent = &next_line[..next_line.len() - module.len()];
        let close = format!("\n{indent}}}\n");
        match after_line.find(&close) {
            Some(end) => rest = &after_line[end + close.len()..],
            None => return code,
        }
    }
    code.push_str(rest);
    code
}

/// KV keys are made by `proto::keys`: a prefix written anywhere else is a second definition of
/// a key two replicas (or two services) must agree on.
#[test]
fn kv_keys_are_made_only_by_proto_keys() {
    let mut offences = Vec::new();
    for (shown, code) in production_code() {
        for prefix in [
            "\"fp.",
            "\"amchannels.",
            "\"amhook.",
            "\"member.",
            "\"storm.{",
            "\"silencing.",
            "\"silence:",
            "\"sandbox-offer:",
            "\"profile-request.",
        ] {
            if code.contains(prefix) {
                offences.push(format!("{shown}: writes the key prefix {prefix}\""));
            }
        }
    }
    assert!(offences.is_empty(), "{offences:#?}");
}

/// Object-store keys are made by `proto::keys::object` and page URLs by `proto::pages`: the
/// service that stores a drawing, the pages that serve it and the reply that links it must agree
/// on one shape.
#[test]
fn object_keys_and_page_urls_are_made_only_by_proto() {
    let mut offences = Vec::new();
    for (shown, code) in production_code() {
        for shape in [
            "\"flamegraphs/",
            "\"charts/",
            "\"profiles/",
            "\"slack-files/",
            "\"dead-letters/",
            "\"/flamegraphs/",
            "\"/charts/",
            "\"/traces/",
            "}/flamegraphs/",
            "}/charts/",
            "}/traces/",
        ] {
            if code.contains(shape) {
                offences.push(format!("{shown}: writes the key or path {shape}"));
            }
        }
    }
    assert!(offences.is_empty(), "{offences:#?}");
}

/// A button's value is a `proto::slack::ButtonValue` type, read back with it: no service parses a
/// click's value as ad-hoc JSON, and none decides what a click may do from the text of the
/// message it was under.
#[test]
fn button_values_are_proto_types_and_clicks_do_not_read_message_text() {
    let mut offences = Vec::new();
    for (shown, code) in production_code() {
        if code.contains("from_str(value")
            || code.contains(".value.as_deref().and_then(|value| serde_json")
        {
            offences.push(format!("{shown}: parses a button value by hand"));
        }
        if code.contains("raw[\"message\"][\"text\"]") {
            offences.push(format!("{shown}: decides from a message's rendered text"));
        }
    }
    assert!(offences.is_empty(), "{offences:#?}");
}

/// Slack's rate limits are waited out by `slack::waited_out` alone: no other code reads a
/// `RateLimited` wait and sleeps on it.
#[test]
fn slack_rate_limits_are_waited_out_in_one_place() {
    let mut offences = Vec::new();
    for (shown, code) in production_code() {
        if shown != "libs/slack/src/lib.rs" && code.contains("RateLimited(wait)") {
            offences.push(format!("{shown}: waits out a Slack rate limit by hand"));
        }
    }
    assert!(offences.is_empty(), "{offences:#?}");
}

/// An outside server's answer is read by `runtime::body::read_capped` alone: no other code
/// streams a body chunk by chunk with a cap of its own.
#[test]
fn http_bodies_are_read_with_one_cap() {
    let mut offences = Vec::new();
    for (shown, code) in production_code() {
        if shown != "libs/runtime/src/body.rs" && code.contains(".chunk()") {
            offences.push(format!("{shown}: reads a body chunk by chunk by hand"));
        }
    }
    assert!(offences.is_empty(), "{offences:#?}");
}

/// Readiness conditions a service learns are `runtime::Stage`s: no other `Mutex<Result<(),
/// String>>` stands for one.
#[test]
fn readiness_is_one_type() {
    let mut offences = Vec::new();
    for (shown, code) in production_code() {
        if shown != "libs/telemetry/src/admin.rs" && code.contains("Mutex<Result<(), String>>") {
            offences.push(format!("{shown}: keeps a readiness condition by hand"));
        }
    }
    assert!(offences.is_empty(), "{offences:#?}");
}

/// Every credential is a `secret::Secret`: no other type hides itself from `Debug` by hand.
/// (bus's config scrubs credentials written into NATS URLs, which are not fields of their own.)
#[test]
fn credentials_are_one_secret_type() {
    let mut offences = Vec::new();
    for (shown, code) in production_code() {
        let allowed = shown == "libs/secret/src/lib.rs" || shown == "libs/bus/src/config.rs";
        if !allowed && (code.contains("\"<redacted>") || code.contains("\"<hidden>")) {
            offences.push(format!("{shown}: redacts a credential by hand"));
        }
    }
    assert!(offences.is_empty(), "{offences:#?}");
}

/// Every service runs its consumers, servers and jobs through `runtime::Tasks`: no service
/// starts a consumer or an HTTP server by hand, so all five read the same way.
#[test]
fn services_register_their_work_one_way() {
    let mut offences = Vec::new();
    for (shown, code) in production_code() {
        if !shown.starts_with("services/") {
            continue;
        }
        for by_hand in [
            "bus::consumer::run(",
            "runtime::http::serve(",
            "tokio::try_join!",
        ] {
            if code.contains(by_hand) {
                offences.push(format!("{shown}: {by_hand} instead of runtime::Tasks"));
            }
        }
    }
    assert!(offences.is_empty(), "{offences:#?}");
}

/// A handler's failure is decided by type: nobody reads a `HandlerError`'s message to decide.
#[test]
fn handler_errors_are_not_read_as_text() {
    let mut offences = Vec::new();
    for (shown, code) in production_code() {
        if code.contains("reason.contains(") {
            offences.push(format!("{shown}: decides by reading an error's text"));
        }
    }
    assert!(offences.is_empty(), "{offences:#?}");
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
        // Unit tests are not checked; the code around them is.
        let code = without_test_modules(&text);
        let code = code.as_str();
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

/// The alerting rules shipped for operators are valid Prometheus rules (`promtool check rules`),
/// and flamethread's own fire when they should (`promtool test rules`).
#[test]
fn shipped_alerting_rules_are_valid() {
    let root = workspace_root();
    let promtool = std::env::var("PROMTOOL_BIN").unwrap_or_else(|_| "/usr/bin/promtool".to_owned());
    let run = |args: &[&str]| {
        let checked = std::process::Command::new(&promtool)
            .args(args)
            .current_dir(root.join("deploy/prometheus"))
            .output()
            .unwrap_or_else(|err| panic!("{promtool}: {err} (tests/run.sh installs Prometheus)"));
        assert!(
            checked.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&checked.stdout),
            String::from_utf8_lossy(&checked.stderr)
        );
    };
    run(&[
        "check",
        "rules",
        "jetstream.rules.yml",
        "flamethread.rules.yml",
    ]);
    // flamethread's own alerts fire on the series that should raise them.
    run(&["test", "rules", "flamethread.rules.test.yml"]);
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

/// ARCHITECTURE.md's invariants name the tidy tests that check them: each named test exists, so
/// the document cannot claim a check nobody runs.
#[test]
fn architecture_names_only_tidy_tests_that_exist() {
    let root = workspace_root();
    let architecture = fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let tidy = fs::read_to_string(root.join("tests/it/tidy.rs")).unwrap();
    let invariants = architecture
        .split("## Invariants")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("ARCHITECTURE.md has an Invariants section");
    let named: Vec<&str> = invariants
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|name| {
            name.contains('_') && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        })
        .collect();
    assert!(
        named.len() >= 8,
        "the invariants name their tests: {named:?}"
    );
    let missing: Vec<&&str> = named
        .iter()
        .filter(|name| !tidy.contains(&format!("fn {name}()")))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names tests that do not exist: {missing:?}"
    );
}

/// Every metric the code records is in `telemetry::catalog`, so `/metrics` says what it means
/// (`# HELP`), and the catalog lists nothing the code no longer records.
#[test]
fn every_metric_is_described() {
    let described: BTreeSet<&str> = telemetry::catalog::COUNTERS
        .iter()
        .chain(telemetry::catalog::GAUGES)
        .chain(telemetry::catalog::HISTOGRAMS)
        .map(|(name, _)| *name)
        .collect();
    let mut recorded = BTreeSet::new();
    for (shown, code) in production_code() {
        for macro_name in ["counter!(", "gauge!(", "histogram!("] {
            for (at, _) in code.match_indices(macro_name) {
                let rest = code[at + macro_name.len()..].trim_start();
                let Some(rest) = rest.strip_prefix('"') else {
                    continue;
                };
                let name = rest.split('"').next().unwrap_or_default();
                if name.starts_with("describe") {
                    continue;
                }
                recorded.insert((name.to_owned(), shown.clone()));
            }
        }
    }
    let undescribed: Vec<_> = recorded
        .iter()
        .filter(|(name, _)| !described.contains(name.as_str()))
        .collect();
    assert!(
        undescribed.is_empty(),
        "not in telemetry::catalog: {undescribed:#?}"
    );
    let names: BTreeSet<&str> = recorded.iter().map(|(name, _)| name.as_str()).collect();
    let unused: Vec<_> = described.difference(&names).collect();
    assert!(
        unused.is_empty(),
        "described but never recorded: {unused:?}"
    );
}

/// `k8s/monitoring`'s PrometheusRule carries exactly `deploy/prometheus`'s rules (the files
/// promtool checks and tests), indented under `spec.groups`: one set of rules, two packagings.
#[test]
fn the_prometheus_rule_is_the_shipped_rules() {
    let root = workspace_root();
    let groups_of = |file: &str| -> Vec<String> {
        let text = fs::read_to_string(root.join("deploy/prometheus").join(file)).unwrap();
        text.lines()
            .skip_while(|line| *line != "groups:")
            .skip(1)
            .map(|line| {
                if line.trim().is_empty() {
                    String::new()
                } else {
                    format!("  {line}")
                }
            })
            .collect()
    };
    let rule = fs::read_to_string(root.join("k8s/monitoring/prometheusrule.yaml")).unwrap();
    let shipped: Vec<String> = rule
        .lines()
        .skip_while(|line| *line != "  groups:")
        .skip(1)
        .map(str::to_owned)
        .collect();
    let mut expected = groups_of("flamethread.rules.yml");
    expected.extend(groups_of("jetstream.rules.yml"));
    assert!(!expected.is_empty());
    assert_eq!(
        shipped.join("\n"),
        expected.join("\n"),
        "k8s/monitoring/prometheusrule.yaml differs from deploy/prometheus/*.rules.yml: copy them in"
    );
}

/// The Grafana dashboard queries only metrics flamethread exports (`telemetry::catalog`, with a
/// histogram's `_bucket`, `_count` and `_sum`) or the NATS exporter and kube-state-metrics that
/// k8s/monitoring scrapes; every panel and annotation has a query, on the chosen data source.
#[test]
fn the_dashboard_queries_what_is_exported() {
    let root = workspace_root();
    let text = fs::read_to_string(root.join("k8s/monitoring/flamethread-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let described: BTreeSet<String> = telemetry::catalog::COUNTERS
        .iter()
        .chain(telemetry::catalog::GAUGES)
        .map(|(name, _)| (*name).to_owned())
        .chain(telemetry::catalog::HISTOGRAMS.iter().flat_map(|(name, _)| {
            ["_bucket", "_count", "_sum"].map(|suffix| format!("{name}{suffix}"))
        }))
        .collect();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
        exprs.extend(
            targets
                .iter()
                .map(|target| target["expr"].as_str().unwrap().to_owned()),
        );
    }
    for annotation in dashboard["annotations"]["list"].as_array().unwrap() {
        exprs.push(annotation["expr"].as_str().unwrap().to_owned());
    }
    assert!(exprs.len() >= 10, "{exprs:?}");
    let mut unknown = Vec::new();
    for expr in &exprs {
        let words = expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
        for word in words.filter(|word| word.starts_with("ft_") || word.starts_with("flamethread_"))
        {
            if !described.contains(word) {
                unknown.push(format!("{word} in {expr}"));
            }
        }
        let known_elsewhere = ["gnatsd_", "jetstream_", "kube_"];
        assert!(
            expr.contains("ft_")
                || expr.contains("flamethread_")
                || known_elsewhere.iter().any(|prefix| expr.contains(prefix)),
            "{expr} reads none of the scraped metrics"
        );
    }
    assert!(unknown.is_empty(), "not exported: {unknown:#?}");
    let heatmap_per_kind = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .any(|panel| panel["type"] == "heatmap" && panel["repeat"] == "consumer");
    assert!(heatmap_per_kind, "a heatmap per kind of work");
}

/// deploy/local/up.sh builds what runs without the span store first and adds the store later:
/// every crate both builds share must be built with the same features, or adding the store
/// compiles nearly everything again (libs/spans/Cargo.toml turns on what DataFusion would).
#[test]
fn the_span_store_adds_no_features_to_what_the_rest_builds() {
    let root = workspace_root();
    let up = fs::read_to_string(root.join("deploy/local/up.sh")).unwrap();
    let packages: Vec<&str> = up
        .lines()
        .find_map(|line| line.strip_prefix("packages=(")?.strip_suffix(')'))
        .expect("deploy/local/up.sh names what it builds in packages=(…)")
        .split_whitespace()
        .collect();
    assert!(packages.contains(&"profile-fetcher"), "{packages:?}");
    let built = |without_store: bool| -> BTreeSet<String> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut tree = std::process::Command::new(cargo);
        tree.current_dir(&root).args([
            "tree",
            "--locked",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "-f",
            "{p} {f}",
        ]);
        for package in &packages {
            tree.args(["-p", package]);
        }
        if without_store {
            tree.arg("--no-default-features");
        }
        let output = tree.output().unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| line.trim_end_matches(" (*)").to_owned())
            .filter(|line| !line.starts_with("spans ") && !line.starts_with("profile-fetcher "))
            .collect()
    };
    let (without, with) = (built(true), built(false));
    assert!(without.len() > 100, "{without:?}");
    let changed: Vec<&String> = without.difference(&with).collect();
    assert!(
        changed.is_empty(),
        "built with other features once the store is added (turn them on in libs/spans/Cargo.toml): {changed:#?}"
    );
}
