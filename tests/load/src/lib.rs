//! The whole-pipeline load harness: the figures flamethread is compared on.
//!
//! It posts Alertmanager notifications into the Slack emulator on a schedule ([`plan`]), the way
//! Alertmanager's Slack notifier does, and follows what the five services (separate processes,
//! see [`stack`]) make of them: every distinct alert must get exactly one reply in its thread,
//! and the reply must come to show the profile's hot function. It measures
//! - **alert posted → reply posted**, from the two messages' `ts` (the emulator's clock, to the
//!   microsecond): the latency of the pipeline including Slack's rate limit, which the poster
//!   honours (about one post a second per channel);
//! - **alert posted → reply shows the profile**: to the `ts` of the edit that put the profile's
//!   hot function in the reply (`edited.ts`, found by reading each thread every `poll`), evidence
//!   from a real Prometheus and the Pyroscope emulator, which both answer at once;
//! - each service's resident memory (idle, peak) and CPU time, from `/proc`.
//!
//! On a 3-node NATS cluster ([`stack::Topology`]) it can kill the meta leader and a stream's
//! leader mid-storm ([`faults`]); the run must still give every alert exactly one reply.
//!
//! It fails (exit status 1) when an alert got no reply, or more than one, within the timeout, or
//! when any service dead-lettered a message.

pub mod faults;
pub mod plan;
pub mod report;
pub mod stack;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::{
    faults::Fault,
    plan::Shape,
    report::{AlertOutcome, Report, ServiceUsage},
    stack::{HOT_FUNCTION, Nats, Paths, Stack, Topology},
};

/// One run.
#[derive(Debug)]
pub struct Options {
    pub shape: Shape,
    pub topology: Topology,
    /// Nodes to kill mid-storm (a clustered topology only).
    pub faults: Vec<Fault>,
    pub paths: Paths,
    /// How long after the last post every alert may take to get its reply with the profile.
    pub reply_timeout: Duration,
    /// How often threads are read to see the reply show the profile.
    pub poll: Duration,
}

/// What is known of one distinct alert as the run goes.
#[derive(Debug, Default, Clone)]
struct Tracked {
    channel: String,
    /// The `ts` of the earliest notification about it: its thread.
    ts: Option<String>,
    /// Every notification about it. A reply belongs in the earliest one's thread, but when that
    /// one reached flamethread late (stored after Slack's retries, say) a repeat opens the
    /// incident: the reply is in its thread, and still the alert's one reply.
    posted: Vec<String>,
    /// The `ts` of flamethread's first reply in that thread.
    reply_ts: Option<String>,
    replies: usize,
    /// When the reply first showed the profile: its edit's `ts` (or its own, if posted so).
    profile_ts: Option<String>,
}

/// Runs the stack, the schedule and the measurements; stops the stack.
pub async fn run(options: Options) -> anyhow::Result<Report> {
    let shape = options.shape.clone();
    shape.validate()?;
    anyhow::ensure!(
        options.faults.is_empty() || options.topology.cluster,
        "faults need the clustered topology (--cluster)"
    );
    let stack = Stack::start(&shape, options.topology, &options.paths).await?;
    let outcome = drive(&stack, &options).await;
    stack.stop().await;
    outcome
}

async fn drive(stack: &Stack, options: &Options) -> anyhow::Result<Report> {
    let shape = &options.shape;
    let http = slack::http_client(Duration::from_secs(30))?;
    let pids: Vec<Option<u32>> = stack.services.iter().map(stack::Service::pid).collect();

    // Let start-up settle before the idle figures.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle: Vec<Option<report::Sample>> = pids.iter().map(|pid| report::sample(*pid)).collect();
    let peaks = Arc::new(Mutex::new(
        idle.iter()
            .map(|s| s.map_or(0, |s| s.rss_kib))
            .collect::<Vec<_>>(),
    ));
    let sampler = {
        let (peaks, pids) = (peaks.clone(), pids.clone());
        tokio::spawn(async move {
            loop {
                for (index, pid) in pids.iter().enumerate() {
                    if let Some(sample) = report::sample(*pid) {
                        let mut peaks = peaks.lock().unwrap_or_else(|e| e.into_inner());
                        peaks[index] = peaks[index].max(sample.rss_kib);
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    let tracked: Arc<Mutex<Vec<Tracked>>> = Arc::new(Mutex::new(
        (0..shape.alerts)
            .map(|alert| Tracked {
                channel: shape.channel_of(alert),
                ..Default::default()
            })
            .collect(),
    ));
    let watcher = tokio::spawn(watch_threads(
        http.clone(),
        stack.slack.api_base(),
        stack.bot_token.clone(),
        stack.bot_user_id.clone(),
        tracked.clone(),
        options.poll,
    ));

    // Post the schedule.
    let schedule = shape.schedule();
    let control = format!("{}/post", stack.slack.control_base());
    let in_flight = Arc::new(Semaphore::new(64));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let started = Instant::now();
    let injector =
        match &stack.nats {
            Nats::Cluster(cluster) if !options.faults.is_empty() => Some(tokio::spawn(
                faults::inject(cluster.clone(), options.faults.clone(), started),
            )),
            _ => None,
        };
    let mut posts = Vec::with_capacity(schedule.len());
    for planned in schedule {
        tokio::time::sleep_until((started + planned.at).into()).await;
        let permit = in_flight.clone().acquire_owned().await?;
        let channel = shape.channel_of(planned.alert);
        let body = plan::notification(&channel, planned.alert);
        let (http, control, tracked, failures) = (
            http.clone(),
            control.clone(),
            tracked.clone(),
            failures.clone(),
        );
        posts.push(tokio::spawn(async move {
            let answer = async {
                let response = http.post(&control).json(&body).send().await?;
                let status = response.status();
                let answer: Value = response.json().await?;
                anyhow::ensure!(status.is_success(), "{status}: {answer}");
                anyhow::Ok(answer)
            }
            .await;
            drop(permit);
            match answer {
                Ok(answer) => {
                    // Posts run concurrently, so a repeat can land just before its alert's
                    // introduction: the alert's thread is its earliest message, whichever it is.
                    let ts = answer["ts"].as_str().unwrap_or_default().to_owned();
                    let mut tracked = tracked.lock().unwrap_or_else(|e| e.into_inner());
                    let alert = &mut tracked[planned.alert];
                    alert.posted.push(ts.clone());
                    let earlier = alert.ts.as_deref().is_none_or(|current| {
                        slack::ts_between(&ts, current).is_some_and(|d| !d.is_zero())
                    });
                    if earlier {
                        *alert = Tracked {
                            channel: alert.channel.clone(),
                            ts: Some(ts),
                            posted: std::mem::take(&mut alert.posted),
                            ..Default::default()
                        };
                    }
                }
                Err(err) => failures
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("alert {}: {err:#}", planned.alert)),
            }
        }));
    }
    for post in posts {
        post.await?;
    }
    let posting = started.elapsed();
    let injected = match injector {
        Some(injector) => injector.await?.context("injecting faults")?,
        None => Vec::new(),
    };
    let failures = failures.lock().unwrap_or_else(|e| e.into_inner()).clone();
    anyhow::ensure!(
        failures.is_empty(),
        "{} posts failed, first: {}",
        failures.len(),
        failures[0]
    );

    // Wait for every reply to show the profile, then once more for any late duplicate.
    let deadline = Instant::now() + options.reply_timeout;
    loop {
        let pending = tracked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|alert| alert.profile_ts.is_none())
            .count();
        if pending == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    watcher.abort();
    recount_replies(&http, stack, &tracked).await?;
    let mut poster_counters = Vec::new();
    let mut dead_letters = 0;
    let (mut posts, mut posts_timed) = (0, 0);
    for service in &stack.services {
        let metrics = http
            .get(format!("http://{}/metrics", service.admin))
            .send()
            .await?
            .text()
            .await?;
        dead_letters += report::dead_letters(&metrics);
        if service.name == "remediation-poster" {
            posts += report::metric_sum(&metrics, "ft_poster_posts_total");
            posts_timed += report::metric_sum(&metrics, "ft_alert_to_reply_seconds_count");
            poster_counters.extend(
                metrics
                    .lines()
                    .filter(|line| line.starts_with("ft_poster_"))
                    .map(|line| format!("{}: {line}", service.label())),
            );
        }
    }
    sampler.abort();

    let peaks = peaks.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let usage = stack
        .services
        .iter()
        .zip(idle)
        .zip(peaks)
        .map(|((service, idle), peak_kib)| {
            let end = report::sample(service.pid());
            ServiceUsage {
                name: service.label(),
                idle_kib: idle.map_or(0, |s| s.rss_kib),
                peak_kib,
                end_kib: end.map_or(0, |s| s.rss_kib),
                cpu_seconds: match (idle, end) {
                    (Some(idle), Some(end)) => end.cpu_seconds - idle.cpu_seconds,
                    _ => 0.0,
                },
            }
        })
        .collect();
    let alerts = tracked
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .enumerate()
        .map(|(index, alert)| AlertOutcome {
            service: plan::service_of(index),
            thread: format!(
                "{} {}",
                alert.channel,
                alert.ts.as_deref().unwrap_or("(never posted)")
            ),
            reply_after: alert
                .ts
                .as_deref()
                .zip(alert.reply_ts.as_deref())
                .and_then(|(ts, reply)| slack::ts_between(ts, reply)),
            profile_after: alert
                .ts
                .as_deref()
                .zip(alert.profile_ts.as_deref())
                .and_then(|(ts, shown)| slack::ts_between(ts, shown)),
            replies: alert.replies,
        })
        .collect();
    Ok(Report {
        shape: shape.clone(),
        topology: options.topology,
        posting,
        poll: options.poll,
        alerts,
        services: usage,
        poster_counters,
        dead_letters,
        faults: injected,
        posts,
        posts_timed,
    })
}

/// Reads the threads of the alerts whose reply does not show the profile yet, every `poll`.
async fn watch_threads(
    http: reqwest::Client,
    api: String,
    token: String,
    bot_user: String,
    tracked: Arc<Mutex<Vec<Tracked>>>,
    poll: Duration,
) {
    loop {
        let pending: Vec<(usize, String, String)> = tracked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .enumerate()
            .filter(|(_, alert)| alert.profile_ts.is_none())
            .filter_map(|(index, alert)| Some((index, alert.channel.clone(), alert.ts.clone()?)))
            .collect();
        for (index, channel, ts) in pending {
            let Ok(thread) = read_thread(&http, &api, &token, &channel, &ts).await else {
                continue;
            };
            let replies: Vec<&Value> = ours(&thread, &bot_user, &ts).collect();
            let mut tracked = tracked.lock().unwrap_or_else(|e| e.into_inner());
            let alert = &mut tracked[index];
            if alert.ts.as_deref() != Some(ts.as_str()) {
                continue; // an earlier message about the alert turned up meanwhile
            }
            alert.replies = replies.len();
            alert.reply_ts = replies
                .iter()
                .filter_map(|reply| reply["ts"].as_str())
                .min()
                .map(str::to_owned);
            if let Some(reply) = replies
                .iter()
                .find(|reply| reply.to_string().contains(HOT_FUNCTION))
            {
                let shown = reply["edited"]["ts"].as_str().or(reply["ts"].as_str());
                alert.profile_ts = shown.map(str::to_owned);
            }
        }
        tokio::time::sleep(poll).await;
    }
}

/// Counts flamethread's replies once more, at the end, in the threads of every notification
/// about each alert (see [`Tracked::posted`]); a reply found only now also gives its times.
async fn recount_replies(
    http: &reqwest::Client,
    stack: &Stack,
    tracked: &Mutex<Vec<Tracked>>,
) -> anyhow::Result<()> {
    let alerts: Vec<(usize, String, Vec<String>)> = tracked
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .enumerate()
        .map(|(index, alert)| (index, alert.channel.clone(), alert.posted.clone()))
        .collect();
    for (index, channel, posted) in alerts {
        let mut replies: Vec<Value> = Vec::new();
        for ts in &posted {
            let thread = read_thread(
                http,
                &stack.slack.api_base(),
                &stack.bot_token,
                &channel,
                ts,
            )
            .await
            .with_context(|| format!("reading the thread of alert {index} at {ts}"))?;
            replies.extend(ours(&thread, &stack.bot_user_id, ts).cloned());
        }
        let mut tracked = tracked.lock().unwrap_or_else(|e| e.into_inner());
        let alert = &mut tracked[index];
        alert.replies = replies.len();
        if alert.reply_ts.is_none() {
            alert.reply_ts = replies
                .iter()
                .filter_map(|reply| reply["ts"].as_str())
                .min()
                .map(str::to_owned);
        }
        if alert.profile_ts.is_none() {
            alert.profile_ts = replies
                .iter()
                .find(|reply| reply.to_string().contains(HOT_FUNCTION))
                .and_then(|reply| reply["edited"]["ts"].as_str().or(reply["ts"].as_str()))
                .map(str::to_owned);
        }
    }
    Ok(())
}

async fn read_thread(
    http: &reqwest::Client,
    api: &str,
    token: &str,
    channel: &str,
    ts: &str,
) -> anyhow::Result<Value> {
    let thread: Value = http
        .get(format!("{api}/conversations.replies"))
        .bearer_auth(token)
        .query(&[("channel", channel), ("ts", ts)])
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(thread["ok"] == true, "conversations.replies: {thread}");
    Ok(thread)
}

/// Flamethread's replies in a thread: not the alert itself, and not the pictures the reply
/// shares into its thread (file shares, each its own message).
fn ours<'a>(
    thread: &'a Value,
    bot_user: &'a str,
    parent: &'a str,
) -> impl Iterator<Item = &'a Value> {
    thread["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |message| message["user"] == bot_user && message["ts"] != parent)
        .filter(|message| {
            message
                .get("files")
                .is_none_or(|files| files.as_array().is_none_or(Vec::is_empty))
        })
}
