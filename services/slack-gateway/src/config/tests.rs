use runtime::ConfigSection as _;

use super::*;

#[test]
fn defaults_are_valid() {
    assert_eq!(SlackConfig::default().validate(), Ok(()));
    assert_eq!(FilesConfig::default().validate(), Ok(()));
}

#[test]
fn mistakes_name_their_key() {
    let cases: Vec<(SlackConfig, &str)> = vec![
        (
            SlackConfig {
                bot_token: Secret::new("xapp-1"),
                ..SlackConfig::default()
            },
            "slack.bot_token",
        ),
        (
            SlackConfig {
                app_token: Secret::new(""),
                ..SlackConfig::default()
            },
            "slack.app_token",
        ),
        (
            SlackConfig {
                mode: Mode::Http,
                signing_secret: Secret::new(""),
                ..SlackConfig::default()
            },
            "slack.signing_secret",
        ),
        (
            SlackConfig {
                channels: vec!["#alerts".into()],
                ..SlackConfig::default()
            },
            "slack.channels",
        ),
        (
            SlackConfig {
                publish_deadline: Duration::from_secs(5),
                ..SlackConfig::default()
            },
            "slack.publish_deadline",
        ),
        (
            SlackConfig {
                api_url: "https://slack.com/api/".into(),
                ..SlackConfig::default()
            },
            "slack.api_url",
        ),
    ];
    for (config, key) in cases {
        let err = config.validate().unwrap_err();
        assert!(err.starts_with(key), "{key}: {err}");
    }
}

#[test]
fn http_mode_needs_no_app_token() {
    let config = SlackConfig {
        mode: Mode::Http,
        app_token: Secret::new(""),
        ..SlackConfig::default()
    };
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn a_real_workspace_needs_its_own_secrets_only_for_the_mode_it_uses() {
    let slack = "https://slack.com/api".to_owned();
    // Socket Mode with real tokens: the unused signing secret's default is fine.
    let socket = SlackConfig {
        api_url: slack.clone(),
        app_token: Secret::new("xapp-1-real"),
        bot_token: Secret::new("xoxb-1-real"),
        ..SlackConfig::default()
    };
    assert_eq!(socket.validate(), Ok(()));
    // HTTP mode with a real signing secret: the unused app token's default is fine.
    let http = SlackConfig {
        mode: Mode::Http,
        api_url: slack.clone(),
        bot_token: Secret::new("xoxb-1-real"),
        signing_secret: Secret::new("real-signing-secret"),
        ..SlackConfig::default()
    };
    assert_eq!(http.validate(), Ok(()));
    // What the mode uses must not be the emulator's.
    for (config, key) in [
        (
            SlackConfig {
                app_token: SlackConfig::default().app_token,
                ..socket.clone()
            },
            "slack.app_token",
        ),
        (
            SlackConfig {
                bot_token: SlackConfig::default().bot_token,
                ..socket.clone()
            },
            "slack.bot_token",
        ),
        (
            SlackConfig {
                signing_secret: SlackConfig::default().signing_secret,
                ..http.clone()
            },
            "slack.signing_secret",
        ),
    ] {
        let err = config.validate().unwrap_err();
        assert!(err.starts_with(key), "{key}: {err}");
    }
}
