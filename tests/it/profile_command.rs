//! `/profile` end to end: a slash command typed in the Slack emulator goes through the gateway,
//! alert-watcher (parsed into a `profile.request`), profile-fetcher (Pyroscope's APIs, or a live
//! pprof profile from a service's own `/debug/pprof/profile`) and remediation-poster, and comes
//! back on the command's `response_url`: a picker, an answer that lists what exists, a mistake
//! explained, or the top functions with a flamegraph link.

use std::time::{Duration, Instant};

use chrono::Utc;
use profile_fetcher::profile::Folded;
use serde_json::{Value, json};
use test_support::{NatsServer, wait_for};

use pyroscope_emulator::PyroscopeEmulator;

use crate::{
    slack_edge::{
        Control, emulator_config, spawn_service, start_emulator, start_gateway, start_poster,
        start_watcher,
    },
    support::nats_config,
};

const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

fn folded(lines: &[(&str, u64)]) -> Folded {
    lines
        .iter()
        .map(|(stack, value)| ((*stack).to_owned(), *value))
        .collect()
}

/// Burns CPU until `until` in a function the live profile must find (plain operators only, so
/// even an unoptimized build keeps the time in this frame).
#[inline(never)]
fn burn_for_the_live_profile(until: Instant) -> u64 {
    let mut x = 7u64;
    while Instant::now() < until {
        let mut i = 0u64;
        while i < 100_000 {
            x ^= i;
            x = (x << 3) ^ (x >> 5) ^ 0x9e37;
            i += 1;
        }
    }
    x
}

/// Runs `<command> <text>` as the on-call person and waits for the answer on its response_url
/// whose text `matches`.
pub(crate) async fn ask(
    control: &Control,
    command: &str,
    text: &str,
    matches: impl Fn(&Value) -> bool,
) -> Value {
    ask_as(control, "U0ONCALL", command, text, matches).await
}

/// [`ask`] as `user`.
pub(crate) async fn ask_as(
    control: &Control,
    user: &str,
    command: &str,
    text: &str,
    matches: impl Fn(&Value) -> bool,
) -> Value {
    let before = responses(control).await.len();
    control
        .post(
            "/command",
            json!({"channel": "C0ALERTS", "user": user, "command": command, "text": text}),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let all = responses(control).await;
        if let Some(answer) = all.iter().skip(before).find(|r| matches(&r["body"])) {
            return answer["body"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "no answer to {command} {text}; answers so far: {:#}",
            Value::Array(all)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn responses(control: &Control) -> Vec<Value> {
    control.get("/responses").await["responses"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub(crate) fn text_of(body: &Value) -> String {
    format!("{}\n{}", body["text"], body["blocks"])
}

#[tokio::test]
async fn profile_commands_get_pickers_answers_and_profiles_on_their_response_url() {
    let pyroscope = PyroscopeEmulator::start(None).await.unwrap();
    let recent = Utc::now() - chrono::Duration::minutes(5);
    pyroscope.ingest(
        "checkout",
        CPU,
        recent,
        folded(&[
            ("main;serve;regex_backtrack", 800),
            ("main;serve;parse_json", 200),
        ]),
    );
    pyroscope.ingest("cart", CPU, recent, folded(&[("main;cart_total", 50)]));

    let nats = NatsServer::start().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let gateway = start_gateway(&nats, &slack).await;
    let watcher = start_watcher(&nats, |config| {
        config.actions.profile_now = vec!["U0ONCALL".into()];
        config.actions.live_per_app_per_minute = 1;
    })
    .await;
    let pages = test_support::reserve_port().unwrap();
    let pages_addr = pages.addr();
    let watcher_admin = watcher.admin;
    let fetcher = spawn_service(|admin, shutdown| {
        drop(pages);
        profile_fetcher::run(
            profile_fetcher::Config {
                nats: nats_config(&nats),
                admin,
                pyroscope: profile_fetcher::PyroscopeConfig {
                    url: pyroscope.url(),
                    ..Default::default()
                },
                pages: profile_fetcher::PagesConfig {
                    listen: Some(pages_addr),
                    public_url: format!("http://{pages_addr}"),
                },
                live: profile_fetcher::LiveConfig {
                    // flamethread profiles itself: alert-watcher's own admin endpoint.
                    targets: [(
                        "alert-watcher".to_owned(),
                        format!("http://{watcher_admin}"),
                    )]
                    .into_iter()
                    .collect(),
                    ..Default::default()
                },
                ..Default::default()
            },
            shutdown,
        )
    })
    .await;
    let poster = start_poster(&nats, &slack).await;

    // No app: a picker of the apps Pyroscope knows, each option the command it stands for.
    let picker = ask(&control, "/profile", "", |body| {
        body["blocks"].to_string().contains("static_select")
    })
    .await;
    let options = picker["blocks"][1]["elements"][0]["options"]
        .as_array()
        .unwrap();
    let offered: Vec<&str> = options
        .iter()
        .map(|option| option["text"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(offered, ["cart", "checkout"], "{picker}");
    let value = options[1]["value"].as_str().unwrap();
    assert!(
        value.starts_with("checkout ") && value.contains(".."),
        "{value}"
    );
    assert_eq!(picker["response_type"], "ephemeral");

    // A misspelt app: what exists, and the picker again.
    let unknown = ask(&control, "/profile", "chekout 30m", |body| {
        body["text"].as_str().is_some_and(|t| t.contains("chekout"))
    })
    .await;
    let said = text_of(&unknown);
    assert!(
        said.contains("I know no app `chekout`") && said.contains("`checkout`"),
        "{said}"
    );

    // An unknown profile type: the types that exist.
    let types = ask(&control, "/profile", "checkout 30m goroutines", |body| {
        body["text"]
            .as_str()
            .is_some_and(|t| t.contains("goroutines"))
    })
    .await;
    assert!(text_of(&types).contains(CPU), "{types}");

    // A mistake in the command: a sentence and the usage, before anything is looked up.
    let mistake = ask(&control, "/profile", "checkout 30m 1h", |body| {
        body["text"]
            .as_str()
            .is_some_and(|t| t.contains("two windows"))
    })
    .await;
    assert!(text_of(&mistake).contains("Usage"), "{mistake}");

    // The real thing: the top functions and a flamegraph that opens.
    let profile = ask(&control, "/profile", "checkout 30m cpu", |body| {
        text_of(body).contains("regex_backtrack")
    })
    .await;
    let said = text_of(&profile);
    assert!(said.contains("80.0%"), "{said}");
    let link = said
        .split('<')
        .filter_map(|part| part.split_once('|'))
        .map(|(url, _)| url)
        .find(|url| url.contains("/flamegraphs/"))
        .unwrap_or_else(|| panic!("a flamegraph link: {said}"))
        .to_owned();
    let page = reqwest::get(&link).await.unwrap();
    assert_eq!(page.status(), 200, "{link}");
    assert!(page.text().await.unwrap().contains("regex_backtrack"));

    // Live: alert-watcher's own pprof endpoint, while this process burns CPU in a known function.
    let burner =
        std::thread::spawn(|| burn_for_the_live_profile(Instant::now() + Duration::from_secs(8)));
    let live = ask(&control, "/profile", "alert-watcher now 3s", |body| {
        text_of(body).contains("Where the CPU went")
    })
    .await;
    burner.join().unwrap();
    let said = text_of(&live);
    let listed = said.split("Where the CPU went").nth(1).unwrap_or_default();
    assert!(
        listed.contains("burn_for_the_live_profile"),
        "the function that burned the CPU is among the top functions: {said}"
    );

    // Live profiles cost the app CPU: one per app per minute here, and only for profile_now.
    let again = ask(&control, "/profile", "alert-watcher now 3s", |body| {
        text_of(body).contains("profiled live moments ago")
    })
    .await;
    assert!(text_of(&again).contains("`alert-watcher`"), "{again}");
    control
        .post(
            "/command",
            json!({"channel": "C0ALERTS", "user": "U0DEV", "command": "/profile", "text": "cart now"}),
        )
        .await;
    wait_for(Duration::from_secs(20), "the live refusal", || async {
        responses(&control)
            .await
            .iter()
            .any(|r| text_of(&r["body"]).contains("Live profiles are for the people"))
    })
    .await
    .unwrap();

    // A live target that is not configured is refused with what is (never fetched as a URL).
    let refused = ask(&control, "/profile", "evil.example.com now", |body| {
        body["text"]
            .as_str()
            .is_some_and(|t| t.contains("evil.example.com"))
    })
    .await;
    assert!(text_of(&refused).contains("`alert-watcher`"), "{refused}");

    poster.stop().await;
    fetcher.stop().await;
    watcher.stop().await;
    gateway.stop().await;
}
