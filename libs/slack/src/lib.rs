//! What the two services that hold Slack tokens share: how a token is configured (and kept out of
//! logs), the Web API client pointed at a configurable base URL (Slack's, or the emulator's), and
//! the app's own identity (to recognize its own messages).
//!
//! Only slack-gateway and remediation-poster depend on this crate; that is how "only they hold
//! Slack tokens" stays visible in `Cargo.toml`s.

use slack_morphism::prelude::*;

/// The Web API client, over TLS or plain HTTP depending on the base URL's scheme.
pub type WebClient = SlackHyperClient;

/// The local Slack emulator's Web API, where the defaults point (see `deploy/local/up.sh`).
pub const EMULATOR_API_URL: &str = "http://127.0.0.1:3001/api";

pub use secret::Secret;

/// The token as slack-morphism takes it.
pub fn api_token(token: &Secret) -> SlackApiToken {
    SlackApiToken::new(token.expose().to_owned().into())
}

/// Checks that a configured token looks like the kind Slack issues for `purpose`
/// (`xoxb-` for a bot token, `xapp-` for an app-level token).
pub fn check_token(key: &str, token: &Secret, prefix: &str) -> Result<(), String> {
    if token.is_empty() {
        return Err(format!("{key}: missing (a Slack {prefix}… token)"));
    }
    if !token.expose().starts_with(prefix) {
        return Err(format!(
            "{key}: not a {prefix}… token (check that the bot and app-level tokens are not swapped)"
        ));
    }
    Ok(())
}

/// Checks a Web API base URL (`https://slack.com/api`, or the emulator's `http://…/api`).
pub fn check_api_url(key: &str, url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && !url.ends_with('/') => Ok(()),
        Ok(_) => Err(format!(
            "{key}: {url:?} must be an http(s) URL without a trailing slash, e.g. https://slack.com/api"
        )),
        Err(err) => Err(format!("{key}: {url:?} is not a URL: {err}")),
    }
}

/// The tokens and signing secret the emulator accepts, which the defaults carry.
pub const EMULATOR_SECRETS: &[&str] = &[
    "xapp-flamethread-emulator",
    "xoxb-flamethread-emulator",
    "emulator-signing-secret",
];

/// Whether `api_url` is a local emulator: a loopback address (or `localhost`) over plain HTTP.
pub fn is_local_emulator(api_url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(api_url) else {
        return false;
    };
    let host = parsed.host_str().unwrap_or_default();
    parsed.scheme() == "http"
        && (host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()))
}

/// Refuses the emulator's well-known secrets anywhere but a local emulator: a deployment that
/// forgot to set a token would otherwise run with one everybody knows. `secrets` are
/// `(config key, value)`; the error names the first key that still has the emulator's.
pub fn check_no_emulator_secrets(api_url: &str, secrets: &[(&str, &Secret)]) -> Result<(), String> {
    if is_local_emulator(api_url) {
        return Ok(());
    }
    match secrets
        .iter()
        .find(|(_, secret)| EMULATOR_SECRETS.contains(&secret.expose()))
    {
        Some((key, _)) => Err(format!(
            "{key}: still the local emulator's default, with slack.api_url {api_url:?}; set your Slack app's"
        )),
        None => Ok(()),
    }
}

/// Where `response_url`s may lead: Slack's own hooks host, or the emulator's when the Web API
/// is a local emulator. Anything else a payload claims is refused, not followed.
pub fn response_url_allowed(url: &str, api_url: &str) -> bool {
    slack_host_allowed(url, api_url, "hooks.slack.com")
}

/// `url` is `https://{host}` (default port, no credentials), or, when the Web API is a local
/// emulator, on the emulator's own host and port.
fn slack_host_allowed(url: &str, api_url: &str, host: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    if is_local_emulator(api_url) {
        let emulator = reqwest::Url::parse(api_url).ok();
        return emulator.is_some_and(|emulator| {
            parsed.scheme() == "http"
                && parsed.host_str() == emulator.host_str()
                && parsed.port_or_known_default() == emulator.port_or_known_default()
        });
    }
    parsed.scheme() == "https"
        && parsed.host_str() == Some(host)
        && parsed.port_or_known_default() == Some(443)
        && parsed.username().is_empty()
}

#[cfg(test)]
mod trust_tests {
    use super::*;

    #[test]
    fn emulator_secrets_only_against_a_local_emulator() {
        let bot = Secret::new("xoxb-flamethread-emulator");
        let real = Secret::new("xoxb-1234-real");
        for local in [
            "http://127.0.0.1:3001/api",
            "http://localhost:3001/api",
            "http://[::1]:3001/api",
        ] {
            assert_eq!(
                check_no_emulator_secrets(local, &[("slack.bot_token", &bot)]),
                Ok(())
            );
        }
        for remote in [
            "https://slack.com/api",
            "http://10.0.0.5:3001/api",
            "https://127.0.0.1/api",
            "http://127.0.0.1.nip.io/api",
        ] {
            let refused = check_no_emulator_secrets(
                remote,
                &[("slack.app_token", &real), ("slack.bot_token", &bot)],
            )
            .unwrap_err();
            assert!(refused.starts_with("slack.bot_token:"), "{refused}");
        }
        assert_eq!(
            check_no_emulator_secrets("https://slack.com/api", &[("slack.bot_token", &real)]),
            Ok(())
        );
    }

    #[test]
    fn response_urls_lead_only_to_slacks_hooks() {
        let slack = "https://slack.com/api";
        assert!(upload_url_allowed(
            "https://files.slack.com/upload/v1/abc",
            "https://slack.com/api"
        ));
        assert!(!upload_url_allowed(
            "https://evil.example/upload/v1/abc",
            "https://slack.com/api"
        ));
        assert!(response_url_allowed(
            "https://hooks.slack.com/commands/T1/1/abc",
            slack
        ));
        for bad in [
            "http://hooks.slack.com/commands/T1/1/abc",
            "https://hooks.slack.com.evil.example/x",
            "https://evil.example/hooks.slack.com",
            "https://user@hooks.slack.com/x",
            "https://hooks.slack.com:8443/x",
            "http://169.254.169.254/latest/meta-data",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(!response_url_allowed(bad, slack), "{bad}");
        }
        let emulator = "http://127.0.0.1:3001/api";
        assert!(response_url_allowed(
            "http://127.0.0.1:3001/response/abc",
            emulator
        ));
        assert!(!response_url_allowed(
            "http://127.0.0.1:9999/response/abc",
            emulator
        ));
        assert!(!response_url_allowed(
            "https://hooks.slack.com/commands/T1/1/abc",
            emulator
        ));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot build the Slack client: {0}")]
    Client(String),
}

/// The time from one Slack message timestamp to a later one (`"1733140000.123456"`: seconds and
/// exactly six digits of microseconds, on Slack's clock). `None` when either is not a Slack
/// timestamp or `later` is earlier.
pub fn ts_between(earlier: &str, later: &str) -> Option<std::time::Duration> {
    let micros = |ts: &str| -> Option<u64> {
        let (seconds, fraction) = ts.split_once('.')?;
        if fraction.len() != 6 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        seconds
            .parse::<u64>()
            .ok()?
            .checked_mul(1_000_000)?
            .checked_add(fraction.parse::<u64>().ok()?)
    };
    Some(std::time::Duration::from_micros(
        micros(later)?.checked_sub(micros(earlier)?)?,
    ))
}

/// Installs rustls' ring provider once per process: the workspace builds rustls with ring only,
/// and rustls wants the provider chosen explicitly when a dependency might bring another.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A Web API client for `api_url` (no trailing slash).
pub fn web_client(api_url: &str) -> Result<WebClient, Error> {
    install_crypto_provider();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|err| Error::Client(format!("no system CA certificates: {err}")))?
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    Ok(SlackClient::new(
        SlackClientHyperConnector::from(https).with_slack_api_url(api_url),
    ))
}

/// A plain HTTP client (file downloads, `response_url`s), with the same TLS stack.
pub fn http_client(timeout: std::time::Duration) -> Result<reqwest::Client, Error> {
    install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("flamethread/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| Error::Client(err.to_string()))
}

/// Why a Web API call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// HTTP 429: wait this long (Slack's `Retry-After`), then try again.
    #[error("rate limited for {0:?}")]
    RateLimited(std::time::Duration),
    /// `{"ok": false, "error": code}`, with what Slack added (`response_metadata.messages`).
    #[error("Slack said {code}{}", if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
    Slack { code: String, detail: String },
    /// Slack could not be reached, or answered something that is not the Web API.
    #[error("Slack unreachable: {0}")]
    Transport(String),
}

impl CallError {
    /// Slack's error code, when Slack answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            CallError::Slack { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether the same call may succeed later: Slack was unreachable, rate limited, or said one
    /// of its passing errors. Anything else Slack said (`invalid_auth`, `channel_not_found`, …)
    /// no retry fixes.
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::RateLimited(_) | CallError::Transport(_) => true,
            CallError::Slack { code, .. } => matches!(
                code.as_str(),
                "internal_error"
                    | "fatal_error"
                    | "service_unavailable"
                    | "request_timeout"
                    | "ratelimited"
            ),
        }
    }
}

/// Slack's rate limits, waited out in one place: when `error` is a 429 whose `Retry-After` is
/// at most `longest`, it is counted (`ft_slack_rate_limited_total{method}`), logged and slept
/// through, and the answer is `true`: make the same call again. Otherwise `false`, at once.
/// Every Web API caller loops on this, so a 429 is never dropped and never retried early.
pub async fn waited_out(method: &str, error: &CallError, longest: std::time::Duration) -> bool {
    let CallError::RateLimited(wait) = error else {
        return false;
    };
    if *wait > longest {
        return false;
    }
    metrics::counter!("ft_slack_rate_limited_total", "method" => method.to_owned()).increment(1);
    tracing::info!(method, ?wait, "Slack rate limit; waiting");
    tokio::time::sleep(*wait).await;
    true
}

/// Makes `attempt` until it is not rate limited, waiting out each limit of at most `longest`
/// ([`waited_out`]); a longer one is returned as [`CallError::RateLimited`].
async fn patiently<T, Fut>(
    method: &str,
    longest: std::time::Duration,
    mut attempt: impl FnMut() -> Fut,
) -> Result<T, CallError>
where
    Fut: std::future::Future<Output = Result<T, CallError>>,
{
    loop {
        match attempt().await {
            Err(err) if waited_out(method, &err, longest).await => {}
            answer => return answer,
        }
    }
}

/// No bound on a wait: for work nothing else is waiting on (a reply is never dropped).
pub const ANY_WAIT: std::time::Duration = std::time::Duration::MAX;

/// Web API calls with JSON bodies sent exactly as built, and answers read as JSON.
///
/// The poster uses this rather than slack-morphism's typed requests because the contract passes
/// Block Kit blocks "to Slack as they are": a round trip through typed blocks drops what the types
/// do not model, as slack-morphism's attachments drop `title_link`.
#[derive(Debug, Clone)]
pub struct RawApi {
    http: reqwest::Client,
    api_url: String,
    token: Secret,
}

impl RawApi {
    pub fn new(http: reqwest::Client, api_url: &str, token: Secret) -> RawApi {
        RawApi {
            http,
            api_url: api_url.to_owned(),
            token,
        }
    }

    /// `POST {api_url}/{method}` with `body` as JSON and the token as a bearer.
    pub async fn call(
        &self,
        method: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, CallError> {
        let response = self
            .http
            .post(format!("{}/{method}", self.api_url))
            .bearer_auth(self.token.expose())
            .json(body)
            .send()
            .await
            .map_err(|err| CallError::Transport(format!("{method}: {err}")))?;
        read_answer(method, response).await
    }

    /// [`RawApi::call`], waiting out every rate limit ([`waited_out`]).
    pub async fn call_patiently(
        &self,
        method: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, CallError> {
        patiently(method, ANY_WAIT, || self.call(method, body)).await
    }

    /// [`RawApi::get`], waiting out each rate limit of at most `longest` ([`waited_out`]): a
    /// caller with a deadline passes what it can spare, [`ANY_WAIT`] otherwise.
    pub async fn get_patiently(
        &self,
        method: &str,
        query: &[(&str, &str)],
        longest: std::time::Duration,
    ) -> Result<serde_json::Value, CallError> {
        patiently(method, longest, || self.get(method, query)).await
    }

    /// `GET {api_url}/{method}?query` (Slack's read methods take form or query parameters, not
    /// JSON bodies).
    pub async fn get(
        &self,
        method: &str,
        query: &[(&str, &str)],
    ) -> Result<serde_json::Value, CallError> {
        let mut url = reqwest::Url::parse(&format!("{}/{method}", self.api_url))
            .map_err(|err| CallError::Transport(format!("{method}: {err}")))?;
        url.query_pairs_mut().extend_pairs(query);
        let response = self
            .http
            .get(url)
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|err| CallError::Transport(format!("{method}: {err}")))?;
        read_answer(method, response).await
    }

    /// `POST` of `body` to a `response_url` (no token: the URL is the credential).
    pub async fn respond(
        &self,
        response_url: &str,
        body: &serde_json::Value,
    ) -> Result<(), CallError> {
        if !response_url_allowed(response_url, &self.api_url) {
            // A payload's claim, not followed: the answer would go wherever it points.
            return Err(CallError::Slack {
                code: "response_url_refused".to_owned(),
                detail: "not Slack's hooks host".to_owned(),
            });
        }
        let response = self
            .http
            .post(response_url)
            .json(body)
            .send()
            .await
            .map_err(|err| CallError::Transport(format!("response_url: {err}")))?;
        let status = response.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(CallError::RateLimited(retry_after(&response)));
        }
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        // Slack answers an expired or overused response_url with 404 and a short reason.
        Err(CallError::Slack {
            code: format!("response_url_{}", status.as_u16()),
            detail: text.chars().take(200).collect(),
        })
    }
}

/// A file to upload ([`RawApi::share_files`]).
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    pub filename: &'a str,
    pub title: &'a str,
    /// What a screen reader says of it (Slack's `alt_txt`, at most 1,000 characters).
    pub alt_text: &'a str,
    pub bytes: &'a [u8],
}

/// Most characters of `alt_txt` Slack takes.
const MAX_ALT_TEXT: usize = 1000;

impl RawApi {
    /// Uploads files and shares them into a thread as one message, Slack's v2 way: for each,
    /// `files.getUploadURLExternal` and the bytes to the URL it gives; then one
    /// `files.completeUploadExternal` with the thread and `comment` (mrkdwn) as the message's
    /// text. The bytes go only to Slack's file host (or the local emulator), never where an
    /// answer points. Returns the files' ids.
    pub async fn share_files(
        &self,
        files: &[Upload<'_>],
        channel: &str,
        thread_ts: &str,
        comment: Option<&str>,
    ) -> Result<Vec<String>, CallError> {
        let mut ids = Vec::with_capacity(files.len());
        for file in files {
            ids.push(self.upload(file).await?);
        }
        let listed: Vec<serde_json::Value> = ids
            .iter()
            .zip(files)
            .map(|(id, file)| serde_json::json!({"id": id, "title": file.title}))
            .collect();
        let mut body = serde_json::json!({
            "files": listed,
            "channel_id": channel,
            "thread_ts": thread_ts,
        });
        if let Some(comment) = comment {
            body["initial_comment"] = comment.into();
        }
        self.call("files.completeUploadExternal", &body).await?;
        Ok(ids)
    }

    /// The first two steps of an upload; returns the file's id.
    async fn upload(&self, file: &Upload<'_>) -> Result<String, CallError> {
        let length = file.bytes.len().to_string();
        let alt: String = file.alt_text.chars().take(MAX_ALT_TEXT).collect();
        let ticket = self
            .get(
                "files.getUploadURLExternal",
                &[
                    ("filename", file.filename),
                    ("length", &length),
                    ("alt_txt", &alt),
                ],
            )
            .await?;
        let (Some(upload_url), Some(file_id)) =
            (ticket["upload_url"].as_str(), ticket["file_id"].as_str())
        else {
            return Err(CallError::Transport(
                "files.getUploadURLExternal: no upload_url or file_id".to_owned(),
            ));
        };
        if !upload_url_allowed(upload_url, &self.api_url) {
            return Err(CallError::Slack {
                code: "upload_url_refused".to_owned(),
                detail: "not Slack's file host".to_owned(),
            });
        }
        let response = self
            .http
            .post(upload_url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(file.bytes.to_vec())
            .send()
            .await
            .map_err(|err| CallError::Transport(format!("file upload: {err}")))?;
        let status = response.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(CallError::RateLimited(retry_after(&response)));
        }
        if !status.is_success() {
            return Err(CallError::Transport(format!("file upload: HTTP {status}")));
        }
        Ok(file_id.to_owned())
    }
}

/// Where upload URLs may lead: Slack's file host, or the emulator's when the Web API is a local
/// emulator.
pub fn upload_url_allowed(url: &str, api_url: &str) -> bool {
    slack_host_allowed(url, api_url, "files.slack.com")
}

fn retry_after(response: &reqwest::Response) -> std::time::Duration {
    let seconds = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .unwrap_or(1);
    std::time::Duration::from_secs(seconds.max(1))
}

async fn read_answer(
    method: &str,
    response: reqwest::Response,
) -> Result<serde_json::Value, CallError> {
    let status = response.status();
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Err(CallError::RateLimited(retry_after(&response)));
    }
    if !status.is_success() {
        return Err(CallError::Transport(format!("{method}: HTTP {status}")));
    }
    let answer: serde_json::Value = response
        .json()
        .await
        .map_err(|err| CallError::Transport(format!("{method}: not JSON: {err}")))?;
    if answer["ok"] == true {
        Ok(answer)
    } else {
        let code = answer["error"]
            .as_str()
            .unwrap_or("unknown_error")
            .to_owned();
        let detail = match &answer["response_metadata"]["messages"] {
            serde_json::Value::Null => String::new(),
            messages => messages.to_string(),
        };
        Err(CallError::Slack { code, detail })
    }
}

/// How often `auth.test` is tried while Slack (or the emulator) does not answer at start:
/// 500 ms, doubling, at most 30 s.
const AUTH_TEST_BACKOFF: runtime::Backoff = runtime::Backoff::new(
    std::time::Duration::from_millis(500),
    std::time::Duration::from_secs(30),
);

/// Who the app is in the workspace, from `auth.test` with the bot token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub team_id: String,
    /// The bot user (`U…`): messages the app posts carry it as `user`.
    pub user_id: String,
    /// The bot (`B…`): messages the app posts carry it as `bot_id`.
    pub bot_id: Option<String>,
    /// The workspace's URL (`https://acme.slack.com/`): permalinks are `<url>archives/<channel>/p<ts>`.
    pub workspace_url: String,
}

impl Identity {
    /// Asks Slack who the bot token belongs to.
    pub async fn fetch(
        client: &WebClient,
        bot_token: &Secret,
    ) -> Result<Identity, slack_morphism::errors::SlackClientError> {
        let answer = client
            .open_session(&api_token(bot_token))
            .auth_test()
            .await?;
        Ok(Identity {
            team_id: answer.team_id.to_string(),
            user_id: answer.user_id.to_string(),
            bot_id: answer.bot_id.map(|id| id.to_string()),
            workspace_url: answer.url.0.to_string(),
        })
    }

    /// Asks Slack who the bot token belongs to until it answers (Slack down, or the emulator not
    /// up yet), or `None` at shutdown. Meanwhile the service's readiness check `slack` says why
    /// it is not ready; it is returned still not ready, for the caller to say when it is.
    pub async fn at_start(
        client: &WebClient,
        bot_token: &Secret,
        readiness: &runtime::Readiness,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Option<(Identity, runtime::Stage)> {
        let status = readiness.add_stage("slack", "asking Slack who this app is (auth.test)");
        let identity = runtime::until_it_works(
            "auth.test with the bot token failed",
            &status,
            AUTH_TEST_BACKOFF,
            shutdown,
            || Identity::fetch(client, bot_token),
        )
        .await?;
        Some((identity, status))
    }

    /// A link to the message `ts` in `channel`, as Slack's "Copy link" makes it.
    pub fn permalink(&self, channel: &str, ts: &str) -> String {
        let base = self.workspace_url.trim_end_matches('/');
        let ts: String = ts.chars().filter(char::is_ascii_digit).collect();
        let channel: String = channel
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        format!("{base}/archives/{channel}/p{ts}")
    }

    /// True when a message with these authors was posted by this app.
    pub fn is_own(&self, user: Option<&str>, bot_id: Option<&str>) -> bool {
        user.is_some_and(|user| user == self.user_id)
            || bot_id.is_some_and(|bot| Some(bot) == self.bot_id.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_timestamps_subtract_to_the_microsecond() {
        assert_eq!(
            super::ts_between("1733140000.999999", "1733140002.000001"),
            Some(std::time::Duration::from_micros(1_000_002))
        );
        assert_eq!(
            super::ts_between("1733140002.000000", "1733140000.000000"),
            None
        );
        assert_eq!(super::ts_between("1733140000.5", "1733140001.000000"), None);
        assert_eq!(super::ts_between("garbage", "1733140001.000000"), None);
        assert_eq!(
            super::ts_between("1733140000.00000x", "1733140001.000000"),
            None
        );
        assert_eq!(
            super::ts_between("99999999999999999999.000000", "1.000000"),
            None
        );
    }

    #[test]
    fn tokens_are_checked_for_their_kind() {
        assert!(check_token("slack.bot_token", &Secret::new("xoxb-1"), "xoxb-").is_ok());
        let swapped = check_token("slack.bot_token", &Secret::new("xapp-1"), "xoxb-").unwrap_err();
        assert!(swapped.contains("swapped"), "{swapped}");
        let missing = check_token("slack.app_token", &Secret::new(" "), "xapp-").unwrap_err();
        assert!(missing.contains("slack.app_token: missing"), "{missing}");
    }

    #[test]
    fn api_urls_are_checked() {
        assert!(check_api_url("k", "https://slack.com/api").is_ok());
        assert!(check_api_url("k", EMULATOR_API_URL).is_ok());
        assert!(check_api_url("k", "https://slack.com/api/").is_err());
        assert!(check_api_url("k", "slack.com").is_err());
        assert!(check_api_url("k", "ftp://slack.com/api").is_err());
    }

    #[test]
    fn own_messages_are_recognized_by_user_or_bot() {
        let me = Identity {
            team_id: "T1".into(),
            user_id: "U0ME".into(),
            bot_id: Some("B0ME".into()),
            workspace_url: "https://flamethread.slack.com/".into(),
        };
        assert!(me.is_own(Some("U0ME"), None));
        assert!(me.is_own(None, Some("B0ME")));
        assert!(!me.is_own(None, Some("B0AMGR")));
        assert!(!me.is_own(Some("U0ONCALL"), None));
        assert!(!me.is_own(None, None));
        assert_eq!(
            me.permalink("C0ALERTS", "1700000000.000100"),
            "https://flamethread.slack.com/archives/C0ALERTS/p1700000000000100"
        );
        assert_eq!(
            me.permalink("C0/../x", "<1.2>"),
            "https://flamethread.slack.com/archives/C0x/p12",
            "only what a channel id and a ts are made of"
        );
    }
}
