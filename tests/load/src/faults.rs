//! Faults injected into a clustered run: a node of the NATS cluster is killed (`SIGKILL`, as a
//! crash) while the storm goes on, and restarted with its store a while later.
//!
//! Which node dies is decided when the fault is due, from what the cluster says then: the node
//! leading JetStream's meta group (streams and consumers are created and placed through it), or
//! the node leading the stream Slack's messages enter (every alert is stored there first). Those
//! are the two leaders whose loss a 3-replica deployment must ride out.

use std::{
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use proto::subjects::{DEFAULT_PREFIX, Stream, Subjects};
use test_support::NatsCluster;

/// Which node to kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The leader of JetStream's meta group.
    MetaLeader,
    /// The leader of the stream Slack's messages are stored in.
    SlackStreamLeader,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::MetaLeader => "the meta leader",
            Target::SlackStreamLeader => "the Slack stream's leader",
        })
    }
}

/// A fault to inject: `target` is killed `at` after the storm starts, and restarted after
/// `down_for`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub target: Target,
    pub at: Duration,
    pub down_for: Duration,
}

/// What happened when a fault was injected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    pub fault: Fault,
    /// The node that was killed.
    pub node: String,
    /// The group it led when it was killed: its size and its other members.
    pub group: String,
    /// Who led the same thing once the node was back (the meta group, or the stream).
    pub leader_after: Option<String>,
}

impl fmt::Display for Injected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "killed {} ({}; {}) at {} s, restarted {} s later; then led by {}",
            self.node,
            self.fault.target,
            self.group,
            self.fault.at.as_secs(),
            self.fault.down_for.as_secs(),
            self.leader_after.as_deref().unwrap_or("nobody yet"),
        )
    }
}

/// Injects `faults` in their order, timed from `started`; returns what was done.
pub async fn inject(
    cluster: Arc<Mutex<NatsCluster>>,
    faults: Vec<Fault>,
    started: Instant,
) -> anyhow::Result<Vec<Injected>> {
    let urls = lock(&cluster).urls();
    let servers: Vec<&str> = urls.split(',').collect();
    let client = async_nats::connect(servers.as_slice())
        .await
        .context("connecting to the cluster to find its leaders")?;
    let jetstream = async_nats::jetstream::new(client);
    let slack_stream = Subjects::new(DEFAULT_PREFIX)?.stream_name(Stream::Slack);
    let leader_of = |target: Target| {
        let (cluster, jetstream, slack_stream) =
            (cluster.clone(), jetstream.clone(), slack_stream.clone());
        async move {
            match target {
                Target::MetaLeader => {
                    let leader =
                        tokio::task::spawn_blocking(move || lock(&cluster).meta_leader()).await??;
                    anyhow::Ok((leader, "3 nodes".to_owned()))
                }
                Target::SlackStreamLeader => {
                    let mut stream = jetstream.get_stream(&slack_stream).await?;
                    let info = stream.info().await?;
                    let cluster = info.cluster.as_ref();
                    let leader = cluster
                        .and_then(|cluster| cluster.leader.clone())
                        .with_context(|| format!("stream {slack_stream} has no leader"))?;
                    let followers: Vec<String> = cluster
                        .map(|cluster| cluster.replicas.as_slice())
                        .unwrap_or_default()
                        .iter()
                        .map(|peer| {
                            let state = if peer.current { "current" } else { "behind" };
                            format!("{} {state}", peer.name)
                        })
                        .collect();
                    let group = format!(
                        "stream {slack_stream} at {} replicas, followers: {}",
                        info.config.num_replicas,
                        if followers.is_empty() {
                            "none".to_owned()
                        } else {
                            followers.join(", ")
                        }
                    );
                    anyhow::Ok((leader, group))
                }
            }
        }
    };

    let mut injected = Vec::new();
    for fault in faults {
        tokio::time::sleep_until((started + fault.at).into()).await;
        let (node, group) = leader_of(fault.target)
            .await
            .with_context(|| format!("finding {}", fault.target))?;
        {
            let (cluster, node) = (cluster.clone(), node.clone());
            tokio::task::spawn_blocking(move || lock(&cluster).kill(&node)).await??;
        }
        eprintln!("[load] killed {node} ({})", fault.target);
        tokio::time::sleep(fault.down_for).await;
        {
            let (cluster, node) = (cluster.clone(), node.clone());
            tokio::task::spawn_blocking(move || lock(&cluster).restart(&node)).await??;
        }
        eprintln!("[load] restarted {node}");
        // A restarted node takes a moment to rejoin; ask for a while before saying nobody leads.
        let mut leader_after = None;
        for _ in 0..20 {
            if let Ok((leader, _)) = leader_of(fault.target).await {
                leader_after = Some(leader);
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        injected.push(Injected {
            fault,
            node,
            group,
            leader_after,
        });
    }
    Ok(injected)
}

fn lock(cluster: &Mutex<NatsCluster>) -> std::sync::MutexGuard<'_, NatsCluster> {
    cluster.lock().unwrap_or_else(|e| e.into_inner())
}
