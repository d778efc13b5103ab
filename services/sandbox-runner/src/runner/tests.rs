use super::*;

#[test]
fn the_largest_result_fits_one_message() {
    use proto::sandbox::LimitHit;
    // Every part at its bound, of the characters JSON inflates most.
    let worst_tail = "\u{1}".repeat(crate::config::MAX_OUTPUT_TAIL_BYTES);
    let worst_name = "\"".repeat(crate::outcome::MAX_FRAME_CHARS);
    let result = SandboxResult {
        schema_version: SchemaVersion::CURRENT,
        request_id: "r".repeat(256),
        outcome: SandboxOutcome::Exited { code: 1 },
        wall_ms: u64::MAX,
        stdout_tail: worst_tail.clone(),
        stdout_truncated: true,
        stderr_tail: worst_tail,
        stderr_truncated: true,
        profile: Some(RunProfile {
            folded: ObjectRef {
                bucket: "b".repeat(64),
                key: "k".repeat(256),
                size: u64::MAX,
                content_type: "text/plain; charset=utf-8".to_owned(),
            },
            total_samples: u64::MAX,
            top_functions: (0..10)
                .map(|_| proto::evidence::FunctionShare {
                    name: worst_name.clone(),
                    self_value: u64::MAX,
                    self_share: 1.0,
                })
                .collect(),
            flamegraph_url: Some(format!("https://{}", "p".repeat(2048))),
        }),
        profile_missing: worst_name.clone(),
        limits_hit: vec![
            LimitHit::Processes { max: u32::MAX },
            LimitHit::Tmp { mib: u32::MAX },
            LimitHit::Memory { mib: u32::MAX },
            LimitHit::Output {
                stream: "stdout".to_owned(),
                bytes: u64::MAX,
            },
        ],
        reply: ReplyTarget::Thread {
            channel: "C".repeat(64),
            thread_ts: "1".repeat(32),
        },
        requested_by: "U".repeat(64),
        file_name: "\"".repeat(255),
        finished_at: Some(chrono::Utc::now()),
    };
    let encoded = serde_json::to_vec(&result).unwrap().len();
    assert!(encoded < 1 << 20, "{encoded} bytes");
}

#[test]
fn a_run_waiting_behind_every_other_held_run_is_not_dropped() {
    let config = SandboxConfig {
        wall_limit: Duration::from_secs(3600),
        concurrency: 2,
        ..SandboxConfig::default()
    };
    let held = 8;
    // Eight held, two at a time: the last waits four runs, then runs.
    let needed = longest_run(&config) * 5;
    assert!(handler_timeout(&config, held) >= needed);
    assert!(
        handler_timeout(&config, held) > bus::ConsumerOptions::default().handler_timeout,
        "an hour-long limit outlasts the default"
    );
}

#[tokio::test]
async fn a_redelivery_during_a_run_joins_it_and_learns_whether_it_published() {
    let in_progress = Arc::new(InProgress::default());
    let mut first = in_progress
        .start("r1")
        .unwrap_or_else(|_| panic!("r1 is new"));
    let Err(joined) = in_progress.start("r1") else {
        panic!("a second start of r1 must join the first")
    };
    assert!(in_progress.start("r2").is_ok(), "other requests run");
    let waiter = tokio::spawn(async move { *joined.lock().await });
    *first.published = true;
    drop(first);
    assert!(
        waiter.await.unwrap_or(false),
        "the waiter sees the result published"
    );
    let Err(late) = in_progress.start("r1") else {
        panic!("a delivery just after the result joins it")
    };
    assert!(*late.lock().await, "and learns it was published");
    let unpublished = in_progress
        .start("r2")
        .unwrap_or_else(|_| panic!("r2 is new"));
    drop(unpublished);
    assert!(
        in_progress.start("r2").is_ok(),
        "a run that published nothing runs again"
    );
}
