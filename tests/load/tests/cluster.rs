//! flamethread outgrows one machine: a storm through a 3-node NATS JetStream cluster (every
//! stream, bucket and the object store at 3 replicas) with two processes of every service, while
//! the meta leader and then the leader of the stream Slack's messages enter are killed and
//! restarted. Every alert still gets exactly one reply, showing its profile, and nothing is
//! dead-lettered.
//!
//! It runs the services' own binaries from this build (`target/debug`), which `cargo nextest run
//! --workspace` (tests/run.sh) builds with the tests.

use std::{path::PathBuf, time::Duration};

use load::{
    Options,
    faults::{Fault, Target},
    plan::Shape,
    stack::{Paths, SERVICES, Topology},
};

/// The directory the workspace's binaries are built into: this test's executable is in its
/// `deps/`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows where it runs from");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("a test executable lives in <target>/<profile>/deps")
        .to_path_buf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_storm_through_a_three_node_cluster_survives_losing_its_leaders() {
    let bin_dir = bin_dir();
    for service in SERVICES {
        assert!(
            bin_dir.join(service).is_file(),
            "{} is missing: run the suite for the whole workspace (tests/run.sh, or \
             cargo nextest run --workspace), which builds the services' binaries",
            bin_dir.join(service).display()
        );
    }
    let logs = tempfile::Builder::new()
        .prefix("ft-cluster-run-")
        .tempdir()
        .unwrap();
    let options = Options {
        // 12 alerts over 4 channels, 360 notifications in 40 s; new alerts keep coming for 30 s,
        // so some are first seen while a leader is down.
        shape: Shape {
            alerts: 12,
            messages: 360,
            over: Duration::from_secs(40),
            introduce_within: Duration::from_secs(30),
            channels: 4,
        },
        topology: Topology {
            cluster: true,
            replicas: 2,
        },
        faults: vec![
            Fault {
                target: Target::MetaLeader,
                at: Duration::from_secs(6),
                down_for: Duration::from_secs(6),
            },
            Fault {
                target: Target::SlackStreamLeader,
                at: Duration::from_secs(20),
                down_for: Duration::from_secs(6),
            },
        ],
        paths: Paths {
            bin_dir,
            logs: logs.path().to_path_buf(),
        },
        reply_timeout: Duration::from_secs(120),
        poll: Duration::from_millis(500),
    };
    let report = match load::run(options).await {
        Ok(report) => report,
        Err(err) => {
            let _ = logs.keep();
            panic!("the run did not complete: {err:#}");
        }
    };
    println!("{report}");
    assert_eq!(
        report.faults.len(),
        2,
        "both leaders were killed and restarted:\n{report}"
    );
    assert_eq!(
        report.faults[0].fault.target,
        Target::MetaLeader,
        "{report}"
    );
    assert_eq!(report.alerts.len(), 12, "{report}");
    if !report.is_clean() {
        let kept = logs.keep();
        panic!(
            "not every alert got exactly one reply with its profile, or something was \
             dead-lettered (the services' logs are in {}):\n{report}",
            kept.display()
        );
    }
    assert_eq!(report.dead_letters, 0, "{report}");
    // Every reply posted was timed from its alert, for flamethread's own latency histogram.
    assert!(report.posts > 0, "{report}");
    assert_eq!(report.posts_timed, report.posts, "{report}");
    assert!(
        report
            .alerts
            .iter()
            .all(|alert| alert.replies == 1 && alert.profile_after.is_some()),
        "{report}"
    );
    // Two processes of every service ran the storm through, and all are still running.
    assert_eq!(report.services.len(), SERVICES.len() * 2, "{report}");
    assert!(
        report.services.iter().all(|service| service.end_kib > 0),
        "{report}"
    );
}
