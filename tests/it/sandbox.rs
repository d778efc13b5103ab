//! sandbox-runner against a real Docker engine and the real sandbox image
//! (`deploy/sandbox/build-image.sh`, which `tests/run.sh` runs): a CPU-heavy script's hottest
//! function is found by py-spy inside the container; hostile scripts are contained and reported,
//! and the runner stays healthy; one person's ten runs do not starve another's; a runner killed
//! mid-run leaves no container behind and the request still gets exactly one result.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use bus::Bus;
use proto::{ObjectRef, ReplyTarget, SandboxRequest, SchemaVersion, sandbox::Language};
use serde_json::Value;
use test_support::NatsServer;

use crate::{
    slack_edge::{RunningService, observer, published, spawn_service},
    support::nats_config,
};

fn runner_config(nats: &NatsServer, work_dir: &std::path::Path) -> sandbox_runner::Config {
    sandbox_runner::Config {
        nats: nats_config(nats),
        sandbox: sandbox_runner::SandboxConfig {
            work_dir: work_dir.to_string_lossy().into_owned(),
            wall_limit: Duration::from_secs(6),
            memory_mib: 96,
            pids: 32,
            tmp_mib: 4,
            max_script_bytes: 64 << 10,
            output_tail_bytes: 2048,
            engine_log_bytes: 1 << 20,
            concurrency: 2,
            per_user_burst: 100,
            per_user_per_minute: 100,
            pages_url: "http://pages.example".into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn start_runner(config: sandbox_runner::Config) -> RunningService {
    spawn_service(|admin, shutdown| {
        sandbox_runner::run(sandbox_runner::Config { admin, ..config }, shutdown)
    })
    .await
}

/// Stores `script` as the gateway stores a shared file, and asks for it to be run.
async fn submit(bus: &Bus, id: &str, user: &str, script: &[u8]) -> SandboxRequest {
    let key = format!("files/{id}.py");
    bus.blob_store()
        .await
        .unwrap()
        .put(key.as_str(), &mut &script[..])
        .await
        .unwrap();
    let request = SandboxRequest {
        schema_version: SchemaVersion::CURRENT,
        request_id: id.to_owned(),
        language: Language::Python,
        script: ObjectRef {
            bucket: bus.subjects().blob_bucket(),
            key,
            size: script.len() as u64,
            content_type: "text/x-python".into(),
        },
        file_name: format!("{id}.py"),
        requested_by: user.to_owned(),
        limits: None,
        reply: ReplyTarget::Thread {
            channel: "C0SCRIPTS".into(),
            thread_ts: "1700000000.000100".into(),
        },
    };
    bus.publish(&request).await.unwrap();
    request
}

/// The results published so far, by request id.
async fn results(bus: &Bus) -> Vec<Value> {
    published(bus, "FT_SANDBOX", "ft.sandbox.result").await
}

async fn wait_results(bus: &Bus, ids: &[&str], timeout: Duration) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let all = results(bus).await;
        let found: Vec<Value> = ids
            .iter()
            .filter_map(|id| all.iter().find(|r| r["request_id"] == *id).cloned())
            .collect();
        if found.len() == ids.len() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "results for {ids:?} not all in; have {:#}",
            Value::Array(all)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sandbox containers of requests whose id starts with `prefix` that exist now (tests share
/// one engine and run at the same time).
fn sandbox_containers(prefix: &str) -> Vec<String> {
    let output = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            "label=dev.flamethread.sandbox",
            "--format",
            "{{.Names}}",
        ])
        .output()
        .expect("the docker CLI (tests/run.sh installs docker.io)");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|name| name.starts_with(&format!("ft-sandbox-{prefix}")))
        .map(str::to_owned)
        .collect()
}

const HOT: &str = r#"
import json

def parse_config(n):
    return [json.loads('{"a": %d}' % i) for i in range(n)]

def crunch_numbers(n):
    total = 0
    for i in range(n):
        total += (i * i) % 7
    return total

for _ in range(40):
    parse_config(300)
    crunch_numbers(400_000)
print("done")
"#;

#[tokio::test]
async fn a_cpu_heavy_script_is_profiled_and_its_hottest_function_is_on_top() {
    let nats = NatsServer::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let runner = start_runner(runner_config(&nats, work.path())).await;
    let bus = observer(&nats).await;
    submit(&bus, "hot-1", "U1", HOT.as_bytes()).await;
    let result = &wait_results(&bus, &["hot-1"], Duration::from_secs(60)).await[0];
    assert_eq!(result["outcome"]["kind"], "exited", "{result}");
    assert_eq!(result["outcome"]["code"], 0, "{result}");
    assert_eq!(result["stdout_tail"], "done\n");
    let top = &result["profile"]["top_functions"][0];
    assert!(
        top["name"].as_str().unwrap().starts_with("crunch_numbers"),
        "the function that burns the time is on top: {result:#}"
    );
    let flamegraph = result["profile"]["flamegraph_url"].as_str().unwrap();
    assert!(flamegraph.starts_with("http://pages.example/flamegraphs/sandbox-"));
    // The stacks and the drawing are where profile-fetcher's pages read them.
    let id = flamegraph.rsplit('/').next().unwrap();
    let store = bus.blob_store().await.unwrap();
    assert!(store.info(profiling::keys::flamegraph(id)).await.is_ok());
    assert!(store.info(profiling::keys::folded(id)).await.is_ok());
    assert!(
        sandbox_containers("hot-").is_empty(),
        "nothing left behind: {:?}",
        sandbox_containers("hot-")
    );
    runner.stop().await;
}

#[tokio::test]
async fn hostile_scripts_are_contained_and_reported_and_the_runner_stays_healthy() {
    let nats = NatsServer::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    // The runner runs in this process, whose environment has NATS_SERVER_BIN, CARGO_* and
    // RUST_* in it: none of it may reach a script.
    let nats_port = nats.url().rsplit(':').next().unwrap().to_owned();
    let runner = start_runner(runner_config(&nats, work.path())).await;
    let bus = observer(&nats).await;
    let net = format!(
        r#"
import socket
for host, port in [("127.0.0.1", {nats_port}), ("172.17.0.1", {nats_port}), ("1.1.1.1", 53)]:
    try:
        socket.create_connection((host, port), timeout=2)
        print("CONNECTED", host, port)
    except OSError as err:
        print("blocked", host, port, type(err).__name__)
"#
    );
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        (
            "fork-bomb",
            b"import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n".to_vec(),
        ),
        ("memory-bomb", b"x = []\nwhile True:\n    x.append(bytearray(10 << 20))\n".to_vec()),
        ("busy-loop", b"while True:\n    pass\n".to_vec()),
        ("sleep-forever", b"import time\ntime.sleep(10**6)\n".to_vec()),
        ("network", net.into_bytes()),
        (
            "write-outside-tmp",
            b"for path in ['/etc/evil', '/work/evil', '/usr/evil', '/evil']:\n    try:\n        open(path, 'w').write('x')\n        print('WROTE', path)\n    except OSError as err:\n        print('refused', path, err.errno)\n".to_vec(),
        ),
        (
            "fill-tmp",
            b"n = 0\ntry:\n    with open('/tmp/fill', 'wb') as f:\n        while True:\n            f.write(b'x' * (1 << 20)); f.flush(); n += 1\nexcept OSError as err:\n    print('tmp full after', n, 'MiB', err.errno)\n".to_vec(),
        ),
        (
            "print-gigabytes",
            b"import sys\nline = 'y' * 1023 + '\\n'\nwhile True:\n    sys.stdout.write(line)\n".to_vec(),
        ),
        (
            "read-env",
            b"import os\nfor k, v in sorted(os.environ.items()):\n    print(k, '=', v)\n".to_vec(),
        ),
        ("binary", vec![0x7f, b'E', b'L', b'F', 0, 1, 2, 3, 0xff, 0xfe]),
        ("not-utf8", b"print('caf\xe9')\n".to_vec()),
        ("empty", Vec::new()),
        ("huge", vec![b'#'; 200 << 10]),
    ];
    let ids: Vec<&str> = hostile.iter().map(|(id, _)| *id).collect();
    for (id, script) in &hostile {
        submit(&bus, &format!("hostile-{id}"), "U-hostile", script).await;
    }
    let prefixed: Vec<String> = ids.iter().map(|id| format!("hostile-{id}")).collect();
    let prefixed: Vec<&str> = prefixed.iter().map(String::as_str).collect();
    let results = wait_results(&bus, &prefixed, Duration::from_secs(240)).await;
    let by_id = |id: &str| -> &Value { &results[ids.iter().position(|i| *i == id).unwrap()] };
    let kind = |id: &str| by_id(id)["outcome"]["kind"].as_str().unwrap().to_owned();

    // Each limit is told as the script's doing: none of these runs "failed".
    let hit = |id: &str, limit: &str| {
        by_id(id)["limits_hit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|hit| hit["limit"] == limit)
    };
    let fork = by_id("fork-bomb");
    assert_eq!(kind("fork-bomb"), "timed_out", "{fork}");
    assert!(hit("fork-bomb", "processes"), "{fork}");
    assert_eq!(fork["limits_hit"][0]["max"], 32, "{fork}");
    assert_eq!(
        kind("memory-bomb"),
        "out_of_memory",
        "{}",
        by_id("memory-bomb")
    );
    assert_eq!(kind("busy-loop"), "timed_out");
    assert!(
        by_id("busy-loop")["profile"]["top_functions"][0]["name"]
            .as_str()
            .unwrap()
            .starts_with("<module>"),
        "a run killed at its limit still has its profile: {}",
        by_id("busy-loop")
    );
    assert_eq!(kind("sleep-forever"), "timed_out");
    let network = by_id("network")["stdout_tail"].as_str().unwrap().to_owned();
    assert!(!network.contains("CONNECTED"), "{network}");
    assert_eq!(network.matches("blocked").count(), 3, "{network}");
    let writes = by_id("write-outside-tmp")["stdout_tail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!writes.contains("WROTE"), "{writes}");
    assert_eq!(writes.matches("refused").count(), 4, "{writes}");
    // A script that fills /tmp still gets its status, output and profile: the init's report
    // never touches /tmp.
    let fill = by_id("fill-tmp");
    assert_eq!(
        fill["outcome"],
        serde_json::json!({"kind": "exited", "code": 0}),
        "{fill}"
    );
    assert!(
        fill["stdout_tail"]
            .as_str()
            .unwrap()
            .contains("tmp full after"),
        "{fill}"
    );
    assert!(hit("fill-tmp", "tmp"), "{fill}");
    let gigabytes = by_id("print-gigabytes");
    assert_eq!(kind("print-gigabytes"), "timed_out", "{gigabytes}");
    assert_eq!(gigabytes["stdout_truncated"], true);
    assert!(hit("print-gigabytes", "output"), "{gigabytes}");
    assert!(gigabytes["stdout_tail"].as_str().unwrap().len() <= 2048);
    let env = by_id("read-env")["stdout_tail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(kind("read-env"), "exited", "{}", by_id("read-env"));
    for secret in ["NATS", "SLACK", "TOKEN", "SECRET", "CARGO", "RUST"] {
        assert!(!env.contains(secret), "{secret} leaked: {env}");
    }
    for (id, says) in [
        ("binary", "not a text script"),
        ("not-utf8", "not a text script"),
        ("empty", "empty"),
        ("huge", "up to 65536 bytes"),
    ] {
        let result = by_id(id);
        assert_eq!(result["outcome"]["kind"], "rejected", "{result}");
        assert!(
            result["outcome"]["reason"].as_str().unwrap().contains(says),
            "{result}"
        );
        assert!(
            result["wall_ms"].as_u64().unwrap() < 2000,
            "no container: {result}"
        );
    }

    // Healthy afterwards: ready, nothing left behind, and an ordinary script runs.
    assert!(
        sandbox_containers("hostile-").is_empty(),
        "nothing left behind: {:?}",
        sandbox_containers("hostile-")
    );
    submit(&bus, "hostile-after", "U-other", b"print('still here')\n").await;
    let after = &wait_results(&bus, &["hostile-after"], Duration::from_secs(60)).await[0];
    assert_eq!(after["stdout_tail"], "still here\n", "{after}");
    runner.stop().await;
}

#[tokio::test]
async fn one_persons_ten_runs_get_a_clear_answer_and_do_not_starve_others() {
    let nats = NatsServer::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut config = runner_config(&nats, work.path());
    config.sandbox.per_user_burst = 3;
    config.sandbox.per_user_per_minute = 3;
    config.sandbox.concurrency = 1;
    let runner = start_runner(config).await;
    let bus = observer(&nats).await;
    let mut ids = Vec::new();
    for i in 0..10 {
        let id = format!("eager-{i}");
        submit(&bus, &id, "U-eager", b"import time\ntime.sleep(1)\n").await;
        ids.push(id);
    }
    submit(&bus, "patient", "U-patient", b"print('my turn')\n").await;
    let mut all: Vec<&str> = ids.iter().map(String::as_str).collect();
    all.push("patient");
    let results = wait_results(&bus, &all, Duration::from_secs(120)).await;
    let rejected: Vec<&Value> = results[..10]
        .iter()
        .filter(|r| r["outcome"]["kind"] == "rejected")
        .collect();
    assert_eq!(rejected.len(), 7, "three in a burst: {results:#?}");
    assert!(
        rejected[0]["outcome"]["reason"]
            .as_str()
            .unwrap()
            .contains("try again in"),
        "{}",
        rejected[0]
    );
    assert_eq!(
        results[10]["stdout_tail"], "my turn\n",
        "the other person ran"
    );
    // Waiting runs were told their place in line.
    let notices = published(&bus, "FT_POST", "ft.post.request").await;
    assert!(
        notices
            .iter()
            .any(|n| n["text"].as_str().unwrap_or("").contains("is queued")),
        "{notices:#?}"
    );
    runner.stop().await;
}

#[tokio::test]
async fn a_runner_killed_mid_run_leaves_no_container_and_posts_one_result() {
    let nats = NatsServer::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let runner = start_runner(runner_config(&nats, work.path())).await;
    let bus = observer(&nats).await;
    submit(
        &bus,
        "crash-1",
        "U1",
        b"import time\nfor i in range(4):\n    time.sleep(0.5)\nprint('finished')\n",
    )
    .await;
    // Kill the runner while its container runs.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sandbox_containers("crash-").contains(&"ft-sandbox-crash-1".to_owned()) {
        assert!(Instant::now() < deadline, "the container never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    runner.kill().await;
    assert!(
        sandbox_containers("crash-").contains(&"ft-sandbox-crash-1".to_owned()),
        "an orphan is left, as after a real crash"
    );
    // A new runner gets the request again, removes the orphan, runs it, posts once.
    let runner = start_runner(runner_config(&nats, work.path())).await;
    let result = &wait_results(&bus, &["crash-1"], Duration::from_secs(90)).await[0];
    assert_eq!(result["stdout_tail"], "finished\n", "{result}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = results(&bus).await;
    assert_eq!(
        all.iter().filter(|r| r["request_id"] == "crash-1").count(),
        1,
        "{all:#?}"
    );
    assert!(
        sandbox_containers("crash-").is_empty(),
        "nothing left behind: {:?}",
        sandbox_containers("crash-")
    );
    runner.stop().await;
}

/// The whole flow in the Slack emulator: a script shared in a channel is offered a run in its
/// thread; someone else's click is refused (only they see it); the uploader's click runs it in
/// the sandbox; the offer says "Running…" in place and the result lands in the same thread.
#[tokio::test]
async fn a_shared_script_is_offered_run_for_its_uploader_and_answered_in_its_thread() {
    use crate::slack_edge::{
        Control, emulator_config, start_emulator, start_gateway, start_poster, start_watcher,
    };
    use serde_json::json;

    let nats = NatsServer::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let slack = start_emulator(emulator_config()).await;
    let control = Control::new(&slack);
    let gateway = start_gateway(&nats, &slack).await;
    let watcher = start_watcher(&nats, |_| {}).await;
    let runner = start_runner(runner_config(&nats, work.path())).await;
    let poster = start_poster(&nats, &slack).await;
    let bus = observer(&nats).await;

    let share = control
        .post(
            "/share",
            json!({"channel": "C0GENERAL", "user": "U0DEV", "name": "slow_report.py", "content": HOT, "text": "why is this slow?"}),
        )
        .await;
    let share_ts = share["ts"].as_str().unwrap().to_owned();
    let thread = || async {
        control
            .channel("C0GENERAL")
            .await
            .into_iter()
            .find(|m| m["ts"] == share_ts.as_str())
            .map(|m| m["replies"].as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let offer = loop {
        if let Some(offer) = thread()
            .await
            .into_iter()
            .find(|r| r["blocks"].to_string().contains("Profile it"))
        {
            break offer;
        }
        assert!(Instant::now() < deadline, "no offer in the thread");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let button = offer["blocks"][1]["elements"][0].clone();
    assert_eq!(button["action_id"], proto::actions::SANDBOX_RUN);

    // Someone else presses it: refused, and only they see why.
    control
        .post("/click", json!({"channel": "C0GENERAL", "user": "U0VIEWER", "message_ts": offer["ts"], "action_id": proto::actions::SANDBOX_RUN, "value": button["value"]}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ephemeral = control.get("/channels/C0GENERAL").await["ephemeral"].clone();
        if ephemeral.as_array().unwrap_or(&Vec::new()).iter().any(|e| {
            e["user"] == "U0VIEWER" && e["text"].as_str().unwrap_or("").contains("Only <@U0DEV>")
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no refusal: {ephemeral}; clicks {:#?}; posts {:#?}",
            published(&bus, "FT_SLACK", "ft.slack.action").await,
            published(&bus, "FT_POST", "ft.post.request").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The uploader presses it: it runs, and the thread gets the result.
    control
        .post("/click", json!({"channel": "C0GENERAL", "user": "U0DEV", "message_ts": offer["ts"], "action_id": proto::actions::SANDBOX_RUN, "value": button["value"]}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let result = loop {
        if let Some(result) = thread()
            .await
            .into_iter()
            .find(|r| r["blocks"].to_string().contains("Sandbox run"))
        {
            break result;
        }
        assert!(
            Instant::now() < deadline,
            "no result in the thread: {:#?}",
            thread().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let said = result["blocks"].to_string();
    assert!(said.contains("finished"), "{said}");
    assert!(
        said.contains("crunch_numbers"),
        "the hot function is shown: {said}"
    );
    let replies = thread().await;
    assert_eq!(
        replies.len(),
        2,
        "the offer (edited in place) and the result: {replies:#?}"
    );
    assert!(
        replies[0]["text"]
            .as_str()
            .unwrap()
            .contains("Running `slow_report.py`"),
        "{}",
        replies[0]
    );

    poster.stop().await;
    runner.stop().await;
    watcher.stop().await;
    gateway.stop().await;
}
