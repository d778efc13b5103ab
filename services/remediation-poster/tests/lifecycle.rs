//! The real `remediation-poster` binary: it starts, becomes ready against a real nats-server and
//! the Slack emulator, stops on SIGTERM, refuses a bad configuration naming the key, and its
//! example config documents the defaults.

test_support::service_binary_tests!(
    remediation_poster,
    "remediation-poster",
    env = {
        let slack = slack_emulator::Background::start(slack_emulator::EmulatorConfig::default())
            .expect("the Slack emulator starts");
        let api_url = slack.api_base();
        (
            slack,
            vec![("REMEDIATION_POSTER_SLACK__API_URL".to_owned(), api_url)],
        )
    }
);
