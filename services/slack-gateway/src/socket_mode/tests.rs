use super::*;

#[test]
fn frames_are_told_apart() {
    assert_eq!(
        parse_frame(r#"{"type":"hello","num_connections":1}"#),
        Frame::Hello
    );
    assert_eq!(
        parse_frame(r#"{"type":"disconnect","reason":"refresh_requested"}"#),
        Frame::Disconnect("refresh_requested".into())
    );
    let Frame::Envelope {
        envelope_id,
        kind,
        accepts_response_payload,
        ..
    } = parse_frame(
        r#"{"envelope_id":"e1","type":"slash_commands","accepts_response_payload":true,"payload":{}}"#,
    )
    else {
        panic!("not an envelope")
    };
    assert_eq!(
        (envelope_id.as_str(), kind, accepts_response_payload),
        ("e1", Some(Kind::Command), true)
    );
    assert!(matches!(
        parse_frame(r#"{"envelope_id":"e2","type":"something_new","payload":{}}"#),
        Frame::Envelope { kind: None, .. }
    ));
    assert_eq!(parse_frame("garbage"), Frame::Other("not JSON".into()));
}

#[test]
fn command_answers_are_ephemeral_and_say_what_happened() {
    let payload = json!({"command": "/profile", "text": "checkout 30m"});
    let ok = command_answer(
        &payload,
        &Outcome::Published {
            count: 1,
            duplicates: 0,
        },
    );
    assert_eq!(ok["response_type"], "ephemeral");
    assert_eq!(ok["text"], "Working on `/profile checkout 30m`…");
    let down = command_answer(
        &payload,
        &Outcome::Unavailable(bus::Error::Publish {
            subject: proto::Subjects::default().subject(proto::Subject::SlackCommand),
            detail: "timeout".into(),
        }),
    );
    assert!(down["text"].as_str().unwrap().contains("try again"));
    let hostile = json!({"command": "/profile", "text": "<!channel> `x` <https://evil|y>"});
    let echoed = command_answer(&hostile, &Outcome::Ignored);
    assert_eq!(
        echoed["text"],
        "Working on `/profile &lt;!channel&gt; ˋxˋ &lt;https://evil|y&gt;`…"
    );
}
