//! Three real `nats-server`s clustered with JetStream on loopback, each killable and restartable
//! on its own ports with its own store: what a 3-replica stream must survive in production.
//!
//! Every node has a server name (`n1`, `n2`, `n3`), a client port, a cluster (route) port and a
//! monitoring port, all reserved up front so a node restarts where its peers expect it. Which
//! node leads JetStream's meta group is read from the monitoring endpoint `/jsz`; which node
//! leads a stream is JetStream's own answer (a stream's `cluster.leader`).

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::{NatsServer, PortReservation, http_get, reserve_port};

/// The cluster's name in every node's configuration.
const CLUSTER_NAME: &str = "ft-test";

/// One node and the ports it keeps across restarts.
#[derive(Debug)]
struct Node {
    name: String,
    server: NatsServer,
    monitor: SocketAddr,
    _ports: [PortReservation; 3],
}

/// A 3-node JetStream cluster; dropping it kills every node and removes the stores.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<Node>,
}

impl NatsCluster {
    /// Starts three nodes routed to each other and waits until they agree on a meta leader.
    pub fn start() -> anyhow::Result<NatsCluster> {
        let ports: Vec<[PortReservation; 3]> = (0..3)
            .map(|_| Ok([reserve_port()?, reserve_port()?, reserve_port()?]))
            .collect::<std::io::Result<_>>()?;
        let routes = ports
            .iter()
            .map(|[_, route, _]| format!("nats://{}", route.addr()))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes = Vec::new();
        for (index, reserved) in ports.into_iter().enumerate() {
            let name = format!("n{}", index + 1);
            let [client, route, monitor] = &reserved;
            let args = [
                "--server_name".to_owned(),
                name.clone(),
                "--cluster_name".to_owned(),
                CLUSTER_NAME.to_owned(),
                "--cluster".to_owned(),
                format!("nats://{}", route.addr()),
                "--routes".to_owned(),
                routes.clone(),
                "--http_port".to_owned(),
                monitor.port().to_string(),
            ];
            let server =
                NatsServer::unstarted(client.port(), args.into_iter().map(Into::into).collect())?;
            nodes.push(Node {
                name,
                server,
                monitor: monitor.addr(),
                _ports: reserved,
            });
        }
        let mut cluster = NatsCluster { nodes };
        let logs = cluster
            .nodes
            .iter_mut()
            .map(|node| node.server.launch())
            .collect::<anyhow::Result<Vec<_>>>()?;
        for (node, log) in cluster.nodes.iter_mut().zip(logs) {
            node.server.await_ready(&log)?;
        }
        cluster.wait_for_meta_leader(Duration::from_secs(30))?;
        Ok(cluster)
    }

    /// Every node's client URL, comma-separated, as a client's server list.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|node| node.server.url())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The nodes' server names, `n1` to `n3`.
    pub fn names(&self) -> Vec<String> {
        self.nodes.iter().map(|node| node.name.clone()).collect()
    }

    /// Kills the node named `name` with `SIGKILL`, as a crash would; its store stays.
    pub fn kill(&mut self, name: &str) -> anyhow::Result<()> {
        self.node(name)?.server.kill();
        Ok(())
    }

    /// Starts the node named `name` again on its ports with its store.
    pub fn restart(&mut self, name: &str) -> anyhow::Result<()> {
        self.node(name)?.server.restart()
    }

    /// The name of the node leading JetStream's meta group, as a running node reports it.
    pub fn meta_leader(&self) -> anyhow::Result<String> {
        for node in &self.nodes {
            let Ok((200, body)) = http_get(node.monitor, "/jsz") else {
                continue;
            };
            let jsz: Value = serde_json::from_str(&body)
                .with_context(|| format!("{}'s /jsz is not JSON", node.name))?;
            if let Some(leader) = jsz["meta_cluster"]["leader"].as_str()
                && !leader.is_empty()
            {
                return Ok(leader.to_owned());
            }
        }
        bail!("no node knows a meta leader")
    }

    /// Waits until a meta leader is elected and every running node is current with it.
    pub fn wait_for_meta_leader(&self, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(leader) = self.meta_leader() {
                return Ok(leader);
            }
            if Instant::now() > deadline {
                bail!("the cluster elected no meta leader within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn node(&mut self, name: &str) -> anyhow::Result<&mut Node> {
        self.nodes
            .iter_mut()
            .find(|node| node.name == name)
            .with_context(|| format!("no node named {name:?}"))
    }
}
