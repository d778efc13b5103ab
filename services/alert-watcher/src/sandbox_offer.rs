//! A script shared in a channel is offered a sandbox run, and only its uploader (or a configured
//! approver) can accept (pure). The offer is a message in the share's thread with two buttons;
//! the "Profile it" button carries what a run needs (where the gateway stored the file, its name,
//! who shared it), and Slack signs every click, so nothing in it can be forged by a person.
//! Accepting publishes `sandbox.request` and turns the offer into "Running…"; declining turns it
//! into "Not run". The offer, its update and the result all live in that one thread.

use proto::{
    BlockAction, PostRequest, ReplyTarget, SandboxRequest, SchemaVersion,
    sandbox::Language,
    slack::{
        ButtonValue as _, FileShared, SandboxDeclineButton, SandboxOfferButton, StoredFile, actions,
    },
};
use proto::{Mrkdwn, mrkdwn, mrkdwn::blocks};

use crate::commands::Outcome;

/// Whether a shared file is a script the sandbox runs (Python, for now).
pub fn language_of(name: &str, mimetype: Option<&str>) -> Option<Language> {
    let python_type = mimetype.is_some_and(|m| m.contains("python"));
    (name.to_ascii_lowercase().ends_with(".py") || python_type).then_some(Language::Python)
}

/// A shared file: offer a run if it is a script, say why not if it could not be stored.
pub fn on_file(file: &FileShared) -> Outcome {
    if language_of(&file.name, file.mimetype.as_deref()).is_none() {
        return Outcome::Ignore("not_a_script");
    }
    let thread = thread_of(file);
    let object = match &file.file {
        StoredFile::Stored { object } => object.clone(),
        StoredFile::Rejected { reason } => {
            return Outcome::Answer(Box::new(post(
                format!("sandbox-offer-{}", file.file_id),
                thread,
                mrkdwn!("I cannot profile `{}`: {}", file.name, reason),
                None,
            )))
            .with_reply_key(proto::keys::reply::sandbox_offer(&file.file_id));
        }
    };
    let offered = SandboxOfferButton {
        object,
        name: file.name.clone(),
        uploader: file.user.clone(),
        file_id: file.file_id.clone(),
    };
    let decline = SandboxDeclineButton {
        file_id: file.file_id.clone(),
        uploader: file.user.clone(),
    };
    let uploader = Mrkdwn::mention(&file.user);
    let text = mrkdwn!(
        "{} shared `{}`. Shall I run it in a locked-down sandbox (no network, limited time and memory) and show where its CPU goes? Only {} can say yes.",
        uploader,
        file.name,
        uploader
    );
    let blocks = vec![
        blocks::section(text.clone()),
        blocks::actions(vec![
            blocks::button("Profile it", actions::SANDBOX_RUN, &offered.value()).style("primary"),
            blocks::button("No", actions::SANDBOX_DECLINE, &decline.value()),
        ]),
    ];
    Outcome::Answer(Box::new(post(
        format!("sandbox-offer-{}", file.file_id),
        thread,
        text,
        Some(blocks),
    )))
    .with_reply_key(proto::keys::reply::sandbox_offer(&file.file_id))
}

/// A click on the offer's buttons, by `action.user`.
pub fn on_click(action: &BlockAction, approvers: &[String]) -> Outcome {
    let decline = action.action_id == actions::SANDBOX_DECLINE;
    if !decline && action.action_id != actions::SANDBOX_RUN {
        return Outcome::Ignore("unhandled_action");
    }
    let thread = action.thread();
    let refuse = |text: Mrkdwn| {
        Outcome::Answer(Box::new(post(
            format!("sandbox-refusal-{}", action.trigger_id),
            action.only_them(),
            text,
            None,
        )))
    };
    if decline {
        // An offer posted before the button carried its uploader has only the file id: only an
        // approver may decline it.
        let SandboxDeclineButton { file_id, uploader } =
            SandboxDeclineButton::parse(action.value.as_deref()).unwrap_or_else(|| {
                SandboxDeclineButton {
                    file_id: action.value.clone().unwrap_or_default(),
                    uploader: String::new(),
                }
            });
        if action.user != uploader && !approvers.contains(&action.user) {
            return refuse(mrkdwn!(
                "Only the person who shared the script can decline running it."
            ));
        }
        return Outcome::Answer(Box::new(post(
            format!("sandbox-declined-{file_id}"),
            thread,
            mrkdwn!("Not run: {} said no.", Mrkdwn::mention(&action.user)),
            None,
        )))
        .with_reply_key(proto::keys::reply::sandbox_offer(&file_id));
    }
    let Some(offered) = SandboxOfferButton::parse(action.value.as_deref()) else {
        return refuse(mrkdwn!(
            "That button is not one of mine; share the script again."
        ));
    };
    if action.user != offered.uploader && !approvers.contains(&action.user) {
        return refuse(mrkdwn!(
            "Only {}, who shared `{}`, can ask for it to be run.",
            Mrkdwn::mention(&offered.uploader),
            offered.name
        ));
    }
    let request = SandboxRequest {
        schema_version: SchemaVersion::CURRENT,
        // One run per shared file, however often the button is pressed.
        request_id: format!("file-{}", offered.file_id),
        language: language_of(&offered.name, Some(&offered.object.content_type))
            .unwrap_or(Language::Python),
        script: offered.object,
        file_name: offered.name.clone(),
        requested_by: action.user.clone(),
        limits: None,
        reply: thread.clone(),
    };
    let notice = post(
        format!("sandbox-accepted-{}", offered.file_id),
        thread,
        mrkdwn!(
            "Running `{}` in the sandbox for {}… the result comes in this thread.",
            offered.name,
            Mrkdwn::mention(&action.user)
        ),
        None,
    );
    let notice = PostRequest {
        reply_key: Some(proto::keys::reply::sandbox_offer(&offered.file_id)),
        ..notice
    };
    Outcome::Sandbox {
        request: Box::new(request),
        notice: Box::new(notice),
    }
}

fn thread_of(file: &FileShared) -> ReplyTarget {
    ReplyTarget::Thread {
        channel: file.channel.clone(),
        thread_ts: file.message_ts.clone().unwrap_or_default(),
    }
}

fn post(
    post_id: String,
    target: ReplyTarget,
    text: Mrkdwn,
    blocks: Option<Vec<proto::Block>>,
) -> PostRequest {
    PostRequest {
        schema_version: SchemaVersion::CURRENT,
        post_id,
        reply_key: None,
        target,
        text,
        blocks,
        incident_id: None,
        stands_for: None,
    }
}

impl Outcome {
    /// The same answer, editing the message of `reply_key` instead of adding one.
    fn with_reply_key(self, reply_key: String) -> Outcome {
        match self {
            Outcome::Answer(mut post) => {
                post.reply_key = Some(reply_key);
                Outcome::Answer(post)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests;
