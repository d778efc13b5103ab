use super::*;

#[test]
fn only_a_busy_profiler_is_waited_for() {
    let refused = |status, message: &str| LiveError::Refused {
        status,
        message: message.to_owned(),
    };
    assert!(refused(409, "a profile of this process is already being taken").is_busy());
    assert!(
        refused(
            500,
            "Could not enable CPU profiling: cpu profiling already in use"
        )
        .is_busy()
    );
    assert!(!refused(500, "internal error").is_busy());
    assert!(!refused(404, "not found").is_busy());
    assert!(!LiveError::TooLarge(10).is_busy());
}

fn profiler(targets: &[(&str, &str)], template: &str) -> LiveProfiler {
    LiveProfiler::new(&LiveConfig {
        targets: targets
            .iter()
            .map(|(app, url)| ((*app).to_owned(), (*url).to_owned()))
            .collect(),
        url_template: template.to_owned(),
        ..LiveConfig::default()
    })
    .unwrap()
}

#[test]
fn only_configured_endpoints_or_dns_names_in_the_template_are_profiled() {
    let live = profiler(
        &[
            ("checkout", "http://checkout:6060/"),
            ("self", "http://127.0.0.1:9103/debug/pprof/profile"),
        ],
        "http://{app}.prod.svc:6060",
    );
    assert_eq!(
        live.url("checkout", 10).unwrap(),
        "http://checkout:6060/debug/pprof/profile?seconds=10"
    );
    assert_eq!(
        live.url("self", 3).unwrap(),
        "http://127.0.0.1:9103/debug/pprof/profile?seconds=3"
    );
    assert_eq!(
        live.url("billing", 5).unwrap(),
        "http://billing.prod.svc:6060/debug/pprof/profile?seconds=5"
    );
    for hostile in [
        "evil.com/x",
        "a@evil.com",
        "evil.com:80#",
        "-x",
        "",
        "a..b",
        "x?y",
        "evil.example.com",
        "10.0.0.1",
        "169.254.169.254",
        "2130706433",
        "billing.prod",
        "Billing",
        "[::1]",
        "x-",
    ] {
        assert!(
            matches!(live.url(hostile, 5), Err(LiveError::NoTarget { .. })),
            "{hostile}"
        );
    }
    let none = profiler(&[("checkout", "http://checkout:6060")], "");
    let err = none.url("billing", 5).unwrap_err().to_string();
    assert_eq!(
        err,
        "no pprof endpoint is known for `billing` (known: checkout)"
    );
    assert_eq!(none.seconds(0), 10);
    assert_eq!(none.seconds(600), 60);
    assert_eq!(none.seconds(5), 5);
}
