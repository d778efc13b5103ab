use super::*;

#[test]
fn asks_in_words_read_like_the_commands() {
    let now = DateTime::from_timestamp(1_764_590_400, 0).unwrap();
    assert_eq!(parse_ask("<@U0BOT> diagnose", now), Ok(Ask::Diagnose));
    assert_eq!(parse_ask("Why?", now), Ok(Ask::Diagnose));
    let Ok(Ask::Profile(args)) = parse_ask("<@U0BOT>  profile checkout 30m", now) else {
        panic!("a profile ask")
    };
    assert_eq!(args.app.as_deref(), Some("checkout"));
    assert_eq!(args.window, WindowSpec::Since(Duration::from_secs(1800)));
    assert_eq!(
        parse_ask("trace checkout 2m", now),
        Ok(Ask::Flamethread(FlamethreadArgs::TraceAll {
            service: "checkout".into(),
            length: Duration::from_secs(120)
        }))
    );
    assert_eq!(
        parse_ask("<@U0BOT>", now),
        Ok(Ask::Flamethread(FlamethreadArgs::Help))
    );
    assert_eq!(
        parse_ask("help?", now),
        Ok(Ask::Flamethread(FlamethreadArgs::Help))
    );
    assert_eq!(
        parse_ask("<@U0BOT> SQL SELECT 'a  b' FROM otel_traces", now),
        Ok(Ask::Flamethread(FlamethreadArgs::Sql(
            "SELECT 'a  b' FROM otel_traces".into()
        ))),
        "a query as typed"
    );
    assert!(parse_ask("profile rm -rf /;", now).is_err());
    let mistake = parse_ask(&format!("deploy {}", "x".repeat(5000)), now).unwrap_err();
    assert!(mistake.to_string().len() < 120, "{mistake}");
}

#[test]
fn flamethread_commands_read_as_people_type_them() {
    assert_eq!(parse_flamethread("  "), Ok(FlamethreadArgs::Help));
    assert_eq!(parse_flamethread("HELP"), Ok(FlamethreadArgs::Help));
    assert_eq!(
        parse_flamethread("sql `SELECT count(*)\nFROM otel_traces`"),
        Ok(FlamethreadArgs::Sql(
            "SELECT count(*)\nFROM otel_traces".to_owned()
        ))
    );
    assert_eq!(
        parse_flamethread("trace checkout 2m"),
        Ok(FlamethreadArgs::TraceAll {
            service: "checkout".to_owned(),
            length: Duration::from_secs(120)
        })
    );
    for (wrong, said) in [
        ("sql", "needs a query"),
        ("trace checkout", "a service and a duration"),
        ("trace checkout 2d", "from 1s to 1h"),
        ("trace checkout 0s", "from 1s to 1h"),
        ("trace <!channel> 2m", "not a service name"),
        ("drop everything", "I do not know `drop`"),
    ] {
        let err = parse_flamethread(wrong).unwrap_err().to_string();
        assert!(err.contains(said), "{wrong}: {err}");
    }
    let long = format!("sql {}", "x".repeat(crate::span::MAX_QUERY_CHARS + 1));
    assert!(
        parse_flamethread(&long)
            .unwrap_err()
            .to_string()
            .contains("longer than")
    );
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn what_people_type_reads_as_they_mean_it() {
    let read = |text: &str| parse_profile(text, now()).unwrap();
    assert_eq!(
        read(""),
        ProfileArgs {
            app: None,
            window: WindowSpec::Since(DEFAULT_SINCE),
            profile_type: None
        }
    );
    assert_eq!(read("checkout").app.as_deref(), Some("checkout"));
    assert_eq!(
        read("checkout 30m").window,
        WindowSpec::Since(Duration::from_secs(1800))
    );
    let args = read("checkout  2h alloc_space");
    assert_eq!(args.profile_type.as_deref(), Some("alloc_space"));
    assert_eq!(args.window, WindowSpec::Since(Duration::from_secs(7200)));
    assert_eq!(read("checkout now").window, WindowSpec::Now(None));
    assert_eq!(read("checkout now 20s").window, WindowSpec::Now(Some(20)));
    assert_eq!(
        read("checkout live 1m cpu").profile_type.as_deref(),
        Some("cpu")
    );
    let WindowSpec::Range { from, to } =
        read("checkout 2026-12-01T10:00:00Z..2026-12-01T10:30:00Z").window
    else {
        panic!("a range")
    };
    assert_eq!((to - from).num_minutes(), 30);
    assert_eq!(
        read("checkout 1764583200..1764585000").window,
        WindowSpec::Range {
            from: DateTime::from_timestamp(1764583200, 0).unwrap(),
            to: DateTime::from_timestamp(1764585000, 0).unwrap()
        }
    );
    // A number alone is an app name (`/profile 2048`), not a window.
    assert_eq!(read("2048").app.as_deref(), Some("2048"));
}

#[test]
fn mistakes_get_sentences() {
    assert_eq!(
        parse_profile("checkout 30m 1h", now()),
        Err(Mistake::TwoWindows("1h".into()))
    );
    let err = |text: &str| parse_profile(text, now()).unwrap_err().to_string();
    assert_eq!(
        err("checkout 30m 1h"),
        "two windows given (`1h` is the second)"
    );
    assert!(err("checkout 2026-12-01T11:00:00Z..2026-12-01T10:00:00Z").contains("ends before"));
    assert!(err("checkout 2030-01-01T00:00:00Z..2030-01-02T00:00:00Z").contains("future"));
    assert!(err("checkout yesterday..today").contains("is not a time"));
    assert!(err("checkout 30d").contains("not a window"));
    assert!(err("checkout now 2h").contains("live profile"));
    assert!(err("check<out>").contains("not an app"));
    assert_eq!(err("a b c"), "I did not understand `c`");
}

#[test]
fn picker_options_read_back_as_the_same_request() {
    for text in [
        "checkout 1764583200..1764585000 cpu",
        "checkout now 20s",
        "checkout 30m",
        "checkout now",
    ] {
        let args = parse_profile(text, now()).unwrap();
        assert_eq!(
            parse_profile(&to_text(&args), now()).unwrap(),
            args,
            "{text}"
        );
    }
}
