//! `/profile` and "Profile now": the handler for `profile.request`.
//!
//! A request names an app (or not), a window or "now", and maybe a profile type. What comes back:
//! - no app: a picker of the apps that exist (Pyroscope's `LabelValues` over the window, or the
//!   live targets), whose options carry the `/profile` text they stand for;
//! - an app or type that does not exist: an answer listing what does, and the picker;
//! - otherwise profile evidence (top functions, flamegraph link, folded stacks), from Pyroscope
//!   over the window with the window before it as baseline, or live from the app's pprof endpoint.
//!
//! The answers are built by pure functions ([`picker`], [`unknown`]); the handler does the I/O.

use chrono::Utc;
use proto::{
    Block, Mrkdwn, PostRequest, ProfileEvidence, ProfileRequest, ReplyTarget, SchemaVersion,
    TimeWindow,
    command::{ProfileArgs, WindowSpec},
    evidence::{EvidenceStatus, ProfileMode, ProfileSource},
    mrkdwn::blocks,
};

use crate::{
    continuous::{self, Gathered, Lookup},
    fetcher::Fetcher,
    live::LiveError,
    profile,
};

/// Slack's limit on a static select's options.
const MAX_OPTIONS: usize = 100;

impl Fetcher {
    pub(crate) async fn on_request(
        &self,
        request: ProfileRequest,
    ) -> Result<(), bus::HandlerError> {
        let evidence_id = format!("profile-{}", request.request_id);
        let gathered = match request.mode {
            ProfileMode::Continuous => match self.continuous_request(&request, evidence_id).await {
                Ok(gathered) => gathered,
                Err(answer) => return self.answer(&request, answer).await,
            },
            ProfileMode::Live { seconds } => {
                match self.live_request(&request, seconds, evidence_id).await {
                    Ok(gathered) => gathered,
                    Err(answer) => return self.answer(&request, answer).await,
                }
            }
        };
        let mut gathered = gathered;
        gathered.evidence.request_id = Some(request.request_id.clone());
        gathered.evidence.incident_id = request.incident_id.clone();
        gathered.evidence.reply = Some(request.reply.clone());
        gathered.evidence.requested_by = request.requested_by.clone();
        ::metrics::counter!("ft_fetcher_requests_total", "outcome" => outcome(&gathered.evidence.status))
            .increment(1);
        self.publish_profile(gathered).await
    }

    async fn answer(
        &self,
        request: &ProfileRequest,
        answer: PostRequest,
    ) -> Result<(), bus::HandlerError> {
        ::metrics::counter!("ft_fetcher_requests_total", "outcome" => "answered").increment(1);
        self.bus
            .publish(&answer)
            .await
            .map_err(bus::HandlerError::retry)?;
        // A button's progress note in the thread ("Taking a live CPU profile…") is replaced by
        // what happened instead, so it never waits there for a profile that will not come.
        if let Some(closing) = closing_note(request, &answer) {
            self.bus
                .publish(&closing)
                .await
                .map_err(bus::HandlerError::retry)?;
        }
        Ok(())
    }

    async fn continuous_request(
        &self,
        request: &ProfileRequest,
        evidence_id: String,
    ) -> Result<Gathered, PostRequest> {
        let window = request.window;
        let Some(pyroscope) = self.pyroscope.as_ref() else {
            let mut gathered = continuous::look_up(
                None,
                &self.pyroscope_config,
                lookup(request, &self.pyroscope_config.profile_type),
                evidence_id,
            )
            .await;
            gathered.evidence.app = request.app.clone().unwrap_or_default();
            return Ok(gathered);
        };
        // What exists, to check the app against and to offer (a failure here only skips the check).
        let apps = pyroscope.apps(window).await;
        let Some(app) = request.app.as_deref() else {
            return Err(match apps {
                Ok(apps) => picker(request, &apps, "Which app shall I profile?"),
                Err(err) => text_answer(
                    request,
                    &format!("I cannot list the apps Pyroscope knows: {err}"),
                ),
            });
        };
        if let Ok(apps) = &apps
            && !apps.iter().any(|known| known == app)
        {
            return Err(unknown(request, "app", app, apps, window));
        }
        let profile_type = match request.profile_type.as_deref() {
            None => self.pyroscope_config.profile_type.clone(),
            Some(asked) => match pyroscope.profile_types(window).await {
                Ok(types) => match resolve_type(asked, &types) {
                    Some(found) => found,
                    None => return Err(unknown(request, "profile type", asked, &types, window)),
                },
                Err(_) => asked.to_owned(),
            },
        };
        Ok(continuous::look_up(
            Some(pyroscope),
            &self.pyroscope_config,
            lookup(request, &profile_type),
            evidence_id,
        )
        .await)
    }

    async fn live_request(
        &self,
        request: &ProfileRequest,
        seconds: u32,
        evidence_id: String,
    ) -> Result<Gathered, PostRequest> {
        let Some(app) = request.app.as_deref() else {
            return Err(picker(
                request,
                &self.live.known_apps(),
                "Which app shall I profile now?",
            ));
        };
        self.live_profile(app, seconds, evidence_id)
            .await
            .map_err(|(known, window)| unknown(request, "live target", app, &known, window))
    }

    /// A live CPU profile of `app` as evidence (with a status when it failed); `Err` with the
    /// known targets when `app` has none.
    pub(crate) async fn live_profile(
        &self,
        app: &str,
        seconds: u32,
        evidence_id: String,
    ) -> Result<Gathered, (Vec<String>, TimeWindow)> {
        let seconds = self.live.seconds(seconds);
        let now = Utc::now();
        let mut evidence = ProfileEvidence {
            requested_by: None,
            schema_version: SchemaVersion::CURRENT,
            evidence_id,
            incident_id: None,
            request_id: None,
            status: EvidenceStatus::Ok,
            source: ProfileSource::Pprof,
            app: app.to_owned(),
            profile_type: "cpu".to_owned(),
            window: TimeWindow {
                from: now,
                to: now + chrono::Duration::seconds(i64::from(seconds)),
            },
            baseline: None,
            total: 0,
            unit: "nanoseconds".to_owned(),
            top_functions: Vec::new(),
            grown: Vec::new(),
            flamegraph_url: None,
            diff_url: None,
            flamegraph_png: None,
            diff_png: None,
            baseline_label: None,
            folded: None,
            reply: None,
            collected_at: now,
        };
        match self.live.profile(app, seconds).await {
            Err(LiveError::NoTarget { known, .. }) => Err((known, evidence.window)),
            Err(err) => {
                evidence.status = match err {
                    LiveError::TimedOut(_) => EvidenceStatus::TimedOut {
                        detail: err.to_string(),
                    },
                    _ => EvidenceStatus::Failed {
                        detail: err.to_string(),
                    },
                };
                Ok(Gathered::nothing(evidence))
            }
            Ok(decoded) if decoded.folded.is_empty() => {
                evidence.status = EvidenceStatus::NoData {
                    detail: format!("`{app}` was idle: no CPU samples in {seconds}s"),
                };
                Ok(Gathered::nothing(evidence))
            }
            Ok(decoded) => {
                evidence.profile_type = format!(
                    "{}:{}:{}",
                    decoded.sample_type, decoded.sample_type, decoded.unit
                );
                evidence.unit = decoded.unit.clone();
                evidence.total = profile::total(&decoded.folded);
                evidence.top_functions =
                    profile::top_functions(&decoded.folded, self.pyroscope_config.top);
                evidence.collected_at = Utc::now();
                Ok(Gathered {
                    evidence,
                    current: Some(decoded.folded),
                    baseline: None,
                })
            }
        }
    }
}

fn lookup<'a>(request: &'a ProfileRequest, profile_type: &'a str) -> Lookup<'a> {
    let window = request.window;
    Lookup {
        app: request.app.as_deref().unwrap_or(""),
        profile_type,
        window,
        // The same length of time just before: what "calm" looked like.
        baseline: Some(TimeWindow {
            from: window.from - (window.to - window.from),
            to: window.from,
        }),
    }
}

/// A short type (`cpu`, `alloc_space`, `process_cpu`) or a full ID, matched against what exists.
pub fn resolve_type(asked: &str, types: &[String]) -> Option<String> {
    if types.iter().any(|known| known == asked) {
        return Some(asked.to_owned());
    }
    let parts = |id: &str| -> Option<(String, String)> {
        let mut parts = id.split(':');
        Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
    };
    types
        .iter()
        .find(|id| {
            parts(id).is_some_and(|(name, sample)| {
                sample.eq_ignore_ascii_case(asked) || name.eq_ignore_ascii_case(asked)
            })
        })
        .cloned()
}

/// The `/profile` arguments `request` stands for, with another app.
fn args_for(request: &ProfileRequest, app: &str) -> ProfileArgs {
    ProfileArgs {
        app: Some(app.to_owned()),
        window: match request.mode {
            ProfileMode::Live { seconds } => WindowSpec::Now((seconds > 0).then_some(seconds)),
            ProfileMode::Continuous => WindowSpec::Range {
                from: request.window.from,
                to: request.window.to,
            },
        },
        profile_type: request.profile_type.clone(),
    }
}

/// A message with a select of `apps`, each option the `/profile` text of that choice.
pub fn picker(request: &ProfileRequest, apps: &[String], question: &str) -> PostRequest {
    if apps.is_empty() {
        return text_answer(
            request,
            &format!(
                "{question} I know of no apps to offer: nothing has been profiled in that window."
            ),
        );
    }
    let options: Vec<(String, String)> = apps
        .iter()
        .take(MAX_OPTIONS)
        .filter_map(|app| {
            let value = proto::command::to_text(&args_for(request, app));
            // Slack caps an option's value at 150 characters and its text at 75.
            (value.chars().count() <= 150 && app.chars().count() <= 75)
                .then(|| (app.clone(), value))
        })
        .collect();
    let more = apps.len().saturating_sub(options.len());
    let mut text = format!("{question} ({} known)", apps.len());
    if more > 0 {
        text.push_str(&format!("; {more} more not listed: type `/profile <app>`"));
    }
    let blocks = vec![
        blocks::section(Mrkdwn::plain(&text)),
        blocks::actions(vec![blocks::select(
            "Pick an app",
            proto::actions::PROFILE_PICK,
            &options,
        )]),
    ];
    post(request, text, Some(blocks))
}

/// "There is no `what` called `name`", with what there is, and a picker where it helps.
pub fn unknown(
    request: &ProfileRequest,
    what: &str,
    name: &str,
    known: &[String],
    window: TimeWindow,
) -> PostRequest {
    let listed = if known.is_empty() {
        "none".to_owned()
    } else {
        let mut shown: Vec<String> = known.iter().take(30).map(|k| format!("`{k}`")).collect();
        if known.len() > 30 {
            shown.push(format!("and {} more", known.len() - 30));
        }
        shown.join(", ")
    };
    let text = format!(
        "I know no {what} `{name}` ({} – {} UTC). Known: {listed}.",
        window.from.format("%Y-%m-%d %H:%M"),
        window.to.format("%H:%M"),
    );
    if what == "profile type" || known.is_empty() {
        return text_answer(request, &text);
    }
    let mut answer = picker(request, known, &text);
    answer.text = Mrkdwn::plain(&text);
    answer
}

/// For a request answered in its thread (a button's), what takes the place of its progress
/// note: the answer's text, said in the thread.
fn closing_note(request: &ProfileRequest, answer: &PostRequest) -> Option<PostRequest> {
    let ReplyTarget::Thread { .. } = &request.reply else {
        return None;
    };
    Some(PostRequest {
        schema_version: SchemaVersion::CURRENT,
        post_id: format!("progress-closed-{}", request.request_id),
        reply_key: None,
        target: request.reply.clone(),
        text: proto::mrkdwn!("⚠️ No profile this time: {}", answer.text.clone()),
        blocks: None,
        incident_id: request.incident_id.clone(),
        stands_for: Some(request.request_id.clone()),
    })
}

fn text_answer(request: &ProfileRequest, text: &str) -> PostRequest {
    post(request, text.to_owned(), None)
}

/// An answer in flamethread's words around names from Pyroscope and what the person typed: all
/// of it escaped, never markup (backticks still format).
fn post(request: &ProfileRequest, text: String, blocks: Option<Vec<Block>>) -> PostRequest {
    PostRequest {
        schema_version: SchemaVersion::CURRENT,
        post_id: format!("profile-answer-{}", request.request_id),
        reply_key: None,
        target: match &request.reply {
            // A picker answers the person who asked, wherever they asked.
            target @ (ReplyTarget::ResponseUrl { .. }
            | ReplyTarget::Ephemeral { .. }
            | ReplyTarget::Direct { .. }) => target.clone(),
            ReplyTarget::Thread { channel, thread_ts } => match &request.requested_by {
                Some(user) => ReplyTarget::Ephemeral {
                    channel: channel.clone(),
                    user: user.clone(),
                    thread_ts: Some(thread_ts.clone()),
                },
                None => request.reply.clone(),
            },
        },
        text: Mrkdwn::plain(&text),
        blocks,
        incident_id: request.incident_id.clone(),
        stands_for: None,
    }
}

fn outcome(status: &EvidenceStatus) -> &'static str {
    match status {
        EvidenceStatus::Ok => "ok",
        EvidenceStatus::NoData { .. } => "no_data",
        EvidenceStatus::Failed { .. } => "failed",
        EvidenceStatus::TimedOut { .. } => "timed_out",
    }
}

#[cfg(test)]
mod tests;
