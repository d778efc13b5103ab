use serde_json::json;

use super::*;

#[test]
fn argocd_and_flux_notifications_are_deploys() {
    let argocd = json!({
        "type": "message", "bot_id": "B0ARGO", "username": "Argo CD",
        "text": ":white_check_mark: Application checkout is now running new version of deployments manifests.",
        "attachments": [{
            "title": "checkout", "title_link": "https://argocd.example/applications/checkout", "color": "#18be52",
            "fields": [
                {"title": "Sync Status", "value": "Synced", "short": true},
                {"title": "Repository", "value": "https://git.example/shop.git", "short": true},
                {"title": "Revision", "value": "0f9e8d7c6b5a49382716", "short": true}
            ]
        }]
    });
    let change = read(&argocd, &[]).unwrap();
    assert_eq!(change.service, "checkout");
    assert_eq!(change.version.as_deref(), Some("0f9e8d7"));
    assert_eq!(
        change.url.as_deref(),
        Some("https://argocd.example/applications/checkout")
    );
    assert_eq!(change.who.as_deref(), Some("Argo CD"));

    let synced = json!({"bot_id": "B0ARGO", "text": "Application cart has been successfully synced at 2026-12-03T10:00:00Z.\nSync operation details are available at: https://argocd.example/applications/cart?operation=true ."});
    let change = read(&synced, &[]).unwrap();
    assert_eq!(change.service, "cart");
    assert_eq!(
        change.url.as_deref(),
        Some("https://argocd.example/applications/cart?operation=true")
    );

    let flux = json!({"bot_id": "B0FLUX", "username": "flux", "attachments": [{
        "color": "good", "author_name": "helmrelease/podinfo.apps",
        "text": "Helm upgrade succeeded for release apps/podinfo.v7 with chart podinfo@6.5.4",
        "mrkdwn_in": ["text"]
    }]});
    let change = read(&flux, &[]).unwrap();
    assert_eq!(
        (
            change.service.as_str(),
            change.version.as_deref(),
            change.environment.as_deref()
        ),
        ("podinfo", Some("6.5.4"), Some("apps"))
    );
    // A Kubernetes name may hold dots; the namespace is what follows the last one.
    let dotted = json!({"bot_id": "B0FLUX", "attachments": [{
        "author_name": "kustomization/web.v2.prod",
        "text": "Reconciliation finished in 2s, next run in 10m"
    }]});
    let change = read(&dotted, &[]).unwrap();
    assert_eq!(
        (change.service.as_str(), change.environment.as_deref()),
        ("web.v2", Some("prod"))
    );
}

#[test]
fn people_and_other_messages_are_not_changes() {
    let typed = json!({"type": "message", "user": "U1", "text": "Application checkout is now running new version of deployments manifests."});
    assert_eq!(read(&typed, &[]), None);
    let failed = json!({"bot_id": "B0FLUX", "attachments": [{"author_name": "helmrelease/podinfo.apps", "text": "Helm upgrade failed: timed out"}]});
    assert_eq!(read(&failed, &[]), None);
    assert_eq!(
        read(&json!({"bot_id": "B1", "text": "build 812 passed"}), &[]),
        None
    );
}

#[test]
fn operator_rules_read_in_house_formats() {
    let rule = ChangeRuleConfig {
            name: "jenkins".into(),
            channel: None,
            bot_id: Some("B0JENKINS".into()),
            username: None,
            pattern: r"^Deployed (?P<service>[\w-]+) (?P<version>\S+) to (?P<environment>\w+) by (?P<who>.+)$".into(),
            kind: Some(ChangeKind::Rollback),
            from_people: false,
        }
        .compile(0)
        .unwrap();
    let message =
        json!({"bot_id": "B0JENKINS", "text": "Deployed checkout 1.4.1 to prod by alice"});
    let change = read(&message, std::slice::from_ref(&rule)).unwrap();
    assert_eq!(change.service, "checkout");
    assert_eq!(change.kind, Some(ChangeKind::Rollback));
    assert_eq!(change.who.as_deref(), Some("alice"));
    let other_bot =
        json!({"bot_id": "B0OTHER", "text": "Deployed checkout 1.4.1 to prod by alice"});
    assert_eq!(read(&other_bot, &[rule]), None);
    let no_service = ChangeRuleConfig {
        pattern: "^Deployed (?P<version>.+)$".into(),
        ..ChangeRuleConfig {
            name: "x".into(),
            channel: None,
            bot_id: None,
            username: None,
            pattern: String::new(),
            kind: None,
            from_people: false,
        }
    };
    assert!(
        no_service
            .compile(2)
            .unwrap_err()
            .to_string()
            .contains("changes[2].pattern: needs a named group")
    );
}
