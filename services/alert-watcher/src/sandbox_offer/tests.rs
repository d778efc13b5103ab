use chrono::Utc;

use super::*;

fn shared(name: &str, stored: bool) -> FileShared {
    FileShared {
        schema_version: SchemaVersion::CURRENT,
        event_id: "Ev1".into(),
        file_id: "F1".into(),
        channel: "C1".into(),
        user: "U0UP".into(),
        message_ts: Some("1700000000.000200".into()),
        name: name.into(),
        size: 120,
        mimetype: Some(
            if name.ends_with(".py") {
                "text/x-python"
            } else {
                "text/plain"
            }
            .into(),
        ),
        file: if stored {
            StoredFile::Stored {
                object: proto::ObjectRef {
                    bucket: "ft_blobs".into(),
                    key: "files/F1".into(),
                    size: 120,
                    content_type: "text/x-python".into(),
                },
            }
        } else {
            StoredFile::Rejected {
                reason: "it is larger than 1 MiB".into(),
            }
        },
        received_at: Utc::now(),
    }
}

fn click(offer: &PostRequest, user: &str, button: usize) -> BlockAction {
    let element = &offer.blocks.as_ref().unwrap()[1]["elements"][button];
    BlockAction {
        schema_version: SchemaVersion::CURRENT,
        trigger_id: format!("T-{user}"),
        user: user.into(),
        channel: Some("C1".into()),
        message_ts: Some("1700000000.000300".into()),
        thread_ts: Some("1700000000.000200".into()),
        action_id: element["action_id"].as_str().unwrap().into(),
        value: element["value"].as_str().map(str::to_owned),
        response_url: None,
        received_at: Utc::now(),
        raw: serde_json::json!({"message": {"text": offer.text}}),
    }
}

#[test]
fn a_shared_script_is_offered_and_only_its_uploader_can_run_it() {
    let Outcome::Answer(offer) = on_file(&shared("slow_report.py", true)) else {
        panic!("an offer")
    };
    assert_eq!(
        offer.target,
        ReplyTarget::Thread {
            channel: "C1".into(),
            thread_ts: "1700000000.000200".into()
        }
    );
    assert_eq!(offer.reply_key.as_deref(), Some("sandbox-offer:F1"));
    // Someone else: refused, only to them.
    let Outcome::Answer(refusal) = on_click(&click(&offer, "U0OTHER", 0), &[]) else {
        panic!("a refusal")
    };
    assert!(matches!(refusal.target, ReplyTarget::Ephemeral { ref user, .. } if user == "U0OTHER"));
    assert!(refusal.text.contains("Only <@U0UP>"), "{}", refusal.text);
    // The uploader: a run, and the offer edited in place.
    let Outcome::Sandbox { request, notice } = on_click(&click(&offer, "U0UP", 0), &[]) else {
        panic!("a run")
    };
    assert_eq!(request.request_id, "file-F1");
    assert_eq!(request.script.key, "files/F1");
    assert_eq!(request.requested_by, "U0UP");
    assert_eq!(request.reply, offer.target);
    assert_eq!(notice.reply_key, offer.reply_key);
    // An approver may run anyone's script.
    assert!(matches!(
        on_click(&click(&offer, "U0LEAD", 0), &["U0LEAD".to_owned()]),
        Outcome::Sandbox { .. }
    ));
}

#[test]
fn declining_and_oddities_are_answered() {
    let Outcome::Answer(offer) = on_file(&shared("job.py", true)) else {
        panic!()
    };
    let Outcome::Answer(declined) = on_click(&click(&offer, "U0UP", 1), &[]) else {
        panic!()
    };
    assert_eq!(
        declined.reply_key, offer.reply_key,
        "the offer says so in place"
    );
    assert!(declined.text.contains("Not run"));
    let Outcome::Answer(refused) = on_click(&click(&offer, "U0OTHER", 1), &[]) else {
        panic!()
    };
    assert!(matches!(refused.target, ReplyTarget::Ephemeral { .. }));
    let mut forged = click(&offer, "U0UP", 0);
    forged.value = Some("{\"o\": 1}".into());
    assert!(matches!(on_click(&forged, &[]), Outcome::Answer(_)));
    // Not a script: nothing; a script the gateway could not store: why.
    assert_eq!(
        on_file(&shared("notes.txt", true)),
        Outcome::Ignore("not_a_script")
    );
    let Outcome::Answer(why) = on_file(&shared("big.py", false)) else {
        panic!()
    };
    assert!(why.text.contains("larger than 1 MiB") && why.blocks.is_none());
}
