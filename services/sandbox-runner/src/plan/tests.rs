use super::*;

#[test]
fn every_run_is_locked_down() {
    let config = SandboxConfig::default();
    let limits = limits(None, &config);
    let plan = init_plan(Language::Python, &config, limits, "script.py");
    let body = container(&config, limits, &plan, "/srv/jobs/r1", "r1");
    let host = body.host_config.as_ref().unwrap();
    assert_eq!(body.network_disabled, Some(true));
    assert_eq!(host.network_mode.as_deref(), Some("none"));
    assert_eq!(host.readonly_rootfs, Some(true));
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
    assert_eq!(
        host.security_opt,
        Some(vec!["no-new-privileges".to_owned()])
    );
    assert_eq!(
        host.cap_add,
        Some(vec![
            "SYS_PTRACE".into(),
            "SETUID".into(),
            "SETGID".into(),
            "KILL".into()
        ]),
        "the init's four, which the script never has"
    );
    assert_eq!(
        plan.script_user, SCRIPT_USER,
        "scripts run as nobody under runc"
    );
    assert_eq!(host.runtime.as_deref(), Some("runc"));
    assert_eq!(host.memory, host.memory_swap, "no swap beyond memory");
    assert_eq!(host.memory, Some((256 + 128) << 20));
    assert_eq!(host.pids_limit, Some(64 + 16));
    assert_eq!(host.nano_cpus, Some(1_250_000_000));
    assert_eq!(
        host.binds,
        Some(vec![
            "/srv/jobs/r1/script:/work:ro".to_owned(),
            "/srv/jobs/r1/init:/opt/flamethread:ro".to_owned()
        ])
    );
    assert!(host.tmpfs.as_ref().unwrap()["/tmp"].contains("size=16m"));
    assert_eq!(host.shm_size, Some(16 << 20));
    let ulimits: Vec<_> = host
        .ulimits
        .iter()
        .flatten()
        .map(|u| (u.name.clone().unwrap(), u.hard.unwrap()))
        .collect();
    assert_eq!(ulimits, [("core".into(), 0), ("nofile".into(), 1024)]);
    assert!(host.privileged.is_none() && host.devices.is_none());
    let env = format!("{:?} {:?}", body.env, plan.env);
    assert!(!env.contains("NATS") && !env.contains("TOKEN"), "{env}");
    assert_eq!(body.labels.unwrap()[LABEL], "1");
    let gvisor = SandboxConfig {
        runtime: SandboxRuntime::Runsc,
        ..SandboxConfig::default()
    };
    let plan = init_plan(Language::Python, &gvisor, limits, "script.py");
    assert_eq!(plan.script_user, (0, 0), "root's uid, no capability");
    let body = container(&gvisor, limits, &plan, "/srv/jobs/r1", "r1");
    assert_eq!(body.host_config.unwrap().runtime.as_deref(), Some("runsc"));
}

#[test]
fn limits_never_exceed_the_configuration() {
    let config = SandboxConfig::default();
    let asked = SandboxLimits {
        wall_seconds: 10_000,
        memory_mib: 1 << 20,
        cpu_millis: 64_000,
        pids: 1 << 20,
    };
    assert_eq!(limits(Some(asked), &config), limits(None, &config));
    let small = SandboxLimits {
        wall_seconds: 5,
        memory_mib: 64,
        cpu_millis: 500,
        pids: 16,
    };
    assert_eq!(limits(Some(small), &config), small);
}

#[test]
fn scripts_are_checked_before_any_container() {
    assert!(check_script(b"", 100).unwrap_err().contains("empty"));
    assert!(check_script(b"  \n\t", 100).unwrap_err().contains("empty"));
    assert!(
        check_script(&[b'x'; 101], 100)
            .unwrap_err()
            .contains("up to 100 bytes")
    );
    assert!(
        check_script(b"print(1)\0", 100)
            .unwrap_err()
            .contains("not a text script")
    );
    assert!(
        check_script(&[0xff, 0xfe, b'a'], 100)
            .unwrap_err()
            .contains("non-UTF-8")
    );
    assert_eq!(check_script("print('héllo')".as_bytes(), 100), Ok(()));
    assert_eq!(container_name("T1/../x y"), "ft-sandbox-T1____x_y");
    assert_eq!(script_file_name("slow_report.py"), "slow_report.py");
    assert_eq!(script_file_name("dir/../etl-v2.py"), "etl-v2.py");
    for odd in [
        "",
        ".py",
        "../.bashrc.py",
        "a b.py",
        "x.pyc",
        "-x.py",
        "é.py",
        "notes.txt",
    ] {
        assert_eq!(script_file_name(odd), "script.py", "{odd:?}");
    }
    assert_eq!(
        script_file_name(&format!("{}.py", "a".repeat(100))),
        "script.py"
    );
}
