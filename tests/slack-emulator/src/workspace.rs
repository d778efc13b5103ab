//! The emulated workspace as plain data: channels, messages, threads and reactions, and Slack's
//! rules for changing them (size limits, who may edit what), answering with Slack's own error
//! codes. No I/O: the HTTP layer in `web_api` parses requests and calls these.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// The display name of the app under test.
pub const APP_NAME: &str = "flamethread";

/// Slack refuses more blocks than this in one message.
pub const MAX_BLOCKS: usize = 50;
/// Slack refuses a message `text` longer than this.
pub const MAX_TEXT: usize = 40_000;

/// A Slack API error: the `error` code and, for block errors, `response_metadata.messages`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackError {
    pub code: &'static str,
    pub messages: Vec<String>,
}

impl SlackError {
    pub fn new(code: &'static str) -> SlackError {
        SlackError {
            code,
            messages: Vec::new(),
        }
    }

    fn invalid_blocks(message: String) -> SlackError {
        SlackError {
            code: "invalid_blocks",
            messages: vec![message],
        }
    }

    fn invalid_arguments(message: String) -> SlackError {
        SlackError {
            code: "invalid_arguments",
            messages: vec![message],
        }
    }

    /// The body Slack answers with.
    pub fn to_json(&self) -> Value {
        if self.messages.is_empty() {
            json!({"ok": false, "error": self.code})
        } else {
            json!({"ok": false, "error": self.code, "response_metadata": {"messages": self.messages}})
        }
    }
}

/// Who posts a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    /// A person.
    User { user_id: String },
    /// Our app's bot (chat.postMessage with the bot token).
    App {
        user_id: String,
        bot_id: String,
        app_id: String,
    },
    /// Another integration (Alertmanager, Grafana…): Slack marks these `subtype: bot_message`.
    Integration {
        bot_id: String,
        username: Option<String>,
    },
}

/// What a post carries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Content {
    pub text: String,
    pub blocks: Option<Value>,
    pub attachments: Option<Value>,
    /// Shared files, as `File::to_json` renders them.
    pub files: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub ts: String,
    pub thread_ts: Option<String>,
    pub author: Author,
    pub content: Content,
    /// Who edited it last, and when (`edited` in Slack's API).
    pub edited: Option<(String, String)>,
    /// Reaction name → users, in the order they reacted.
    pub reactions: BTreeMap<String, Vec<String>>,
}

impl Message {
    /// The message as Slack's API shows it.
    pub fn to_json(&self, reply_count: usize) -> Value {
        let mut message = json!({"type": "message", "ts": self.ts, "text": self.content.text});
        let object = message.as_object_mut().expect("an object");
        match &self.author {
            Author::User { user_id } => {
                object.insert("user".into(), json!(user_id));
            }
            Author::App {
                user_id,
                bot_id,
                app_id,
            } => {
                object.insert("user".into(), json!(user_id));
                object.insert("bot_id".into(), json!(bot_id));
                object.insert("app_id".into(), json!(app_id));
                object.insert(
                    "bot_profile".into(),
                    json!({"id": bot_id, "app_id": app_id, "name": APP_NAME}),
                );
            }
            Author::Integration { bot_id, username } => {
                object.insert("subtype".into(), json!("bot_message"));
                object.insert("bot_id".into(), json!(bot_id));
                if let Some(username) = username {
                    object.insert("username".into(), json!(username));
                }
            }
        }
        if let Some(blocks) = &self.content.blocks {
            object.insert("blocks".into(), blocks.clone());
        }
        if let Some(attachments) = &self.content.attachments {
            object.insert("attachments".into(), attachments.clone());
        }
        if !self.content.files.is_empty() {
            object.insert("files".into(), json!(self.content.files));
            object.insert("upload".into(), json!(true));
            if matches!(self.author, Author::User { .. }) {
                object.insert("subtype".into(), json!("file_share"));
            }
        }
        if let Some(thread_ts) = &self.thread_ts {
            object.insert("thread_ts".into(), json!(thread_ts));
        } else if reply_count > 0 {
            object.insert("thread_ts".into(), json!(self.ts));
            object.insert("reply_count".into(), json!(reply_count));
        }
        if let Some((user, ts)) = &self.edited {
            object.insert("edited".into(), json!({"user": user, "ts": ts}));
        }
        if !self.reactions.is_empty() {
            let reactions: Vec<Value> = self
                .reactions
                .iter()
                .map(|(name, users)| json!({"name": name, "users": users, "count": users.len()}))
                .collect();
            object.insert("reactions".into(), json!(reactions));
        }
        message
    }

    fn author_user(&self) -> Option<&str> {
        match &self.author {
            Author::User { user_id } | Author::App { user_id, .. } => Some(user_id),
            Author::Integration { .. } => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub id: String,
    pub name: String,
    /// Every message, top-level and replies, in posting order.
    pub messages: Vec<Message>,
}

impl Channel {
    fn find(&self, ts: &str) -> Option<&Message> {
        self.messages.iter().find(|message| message.ts == ts)
    }

    fn find_mut(&mut self, ts: &str) -> Option<&mut Message> {
        self.messages.iter_mut().find(|message| message.ts == ts)
    }

    pub fn replies(&self, parent_ts: &str) -> impl Iterator<Item = &Message> {
        self.messages
            .iter()
            .filter(move |message| message.thread_ts.as_deref() == Some(parent_ts))
    }
}

/// A person (or bot user) in the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub real_name: String,
    pub is_bot: bool,
}

impl User {
    fn new(id: &str, name: &str, real_name: &str, is_bot: bool) -> User {
        User {
            id: id.to_owned(),
            name: name.to_owned(),
            real_name: real_name.to_owned(),
            is_bot,
        }
    }

    /// The user as `users.info` shows it.
    pub fn to_json(&self, team_id: &str) -> Value {
        json!({
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "real_name": self.real_name,
            "deleted": false,
            "is_bot": self.is_bot,
            "is_admin": false,
            "tz": "Europe/Berlin",
            "tz_offset": 3600,
            "profile": {"real_name": self.real_name, "display_name": self.name},
        })
    }
}

/// A file in the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub id: String,
    pub name: String,
    pub title: String,
    pub mimetype: String,
    pub user: String,
    pub content: Vec<u8>,
    pub created: u64,
    /// Where it was shared: (channel, the sharing message's `ts`).
    pub shares: Vec<(String, String)>,
}

impl File {
    /// The file as Slack's API shows it; `base` is the emulator's `http://host`.
    pub fn to_json(&self, base: &str, team_id: &str) -> Value {
        let filetype = self
            .name
            .rsplit_once('.')
            .map(|(_, ext)| ext)
            .unwrap_or("binary");
        let private = format!("{base}/files-pri/{team_id}-{}/{}", self.id, self.name);
        let mut public = serde_json::Map::new();
        for (channel, ts) in &self.shares {
            if let Some(shares) = public
                .entry(channel.clone())
                .or_insert_with(|| json!([]))
                .as_array_mut()
            {
                shares.push(json!({"ts": ts, "reply_count": 0}));
            }
        }
        let shares = if public.is_empty() {
            json!({})
        } else {
            json!({"public": public})
        };
        json!({
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": self.name,
            "title": self.title,
            "mimetype": self.mimetype,
            "filetype": filetype,
            "user": self.user,
            "size": self.content.len(),
            "url_private": private,
            "url_private_download": format!("{base}/files-pri/{team_id}-{}/download/{}", self.id, self.name),
            "permalink": format!("{base}/files/{}/{}/{}", self.user, self.id, self.name),
            "shares": shares,
        })
    }
}

/// An upload between `files.getUploadURLExternal` and `files.completeUploadExternal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpload {
    pub name: String,
    pub length: usize,
    pub user: String,
    pub content: Option<Vec<u8>>,
}

/// A message only one person sees (`chat.postEphemeral`); never in the channel's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Ephemeral {
    pub ts: String,
    pub user: String,
    pub thread_ts: Option<String>,
    pub content: Content,
}

/// The whole workspace.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub team_id: String,
    pub team_name: String,
    pub channels: BTreeMap<String, Channel>,
    pub users: BTreeMap<String, User>,
    /// Ephemeral messages by channel.
    pub ephemerals: BTreeMap<String, Vec<Ephemeral>>,
    pub files: BTreeMap<String, File>,
    pub pending_uploads: BTreeMap<String, PendingUpload>,
    /// `trigger_id`s handed out with commands and clicks, with when (microseconds): Slack
    /// accepts one for `views.open` within 3 seconds, once.
    pub triggers: BTreeMap<String, u64>,
    /// Modals opened with `views.open`, in order.
    pub views: Vec<Value>,
    /// Each person's App Home, as last published with `views.publish`.
    pub homes: BTreeMap<String, Value>,
    /// Last `ts` handed out, in microseconds; every message gets a later one.
    last_ts_micros: u64,
}

impl Workspace {
    /// A workspace with the given channels (id, name), its clock starting at `now_micros`.
    pub fn new(channels: &[(&str, &str)], now_micros: u64) -> Workspace {
        Workspace {
            team_id: "T0FLAME".to_owned(),
            team_name: "flamethread".to_owned(),
            channels: channels
                .iter()
                .map(|(id, name)| {
                    let channel = Channel {
                        id: (*id).to_owned(),
                        name: (*name).to_owned(),
                        messages: Vec::new(),
                    };
                    ((*id).to_owned(), channel)
                })
                .collect(),
            users: [
                User::new("U0ONCALL", "oncall", "Olive Oncall", false),
                User::new("U0DEV", "dev", "Devi Developer", false),
                User::new("U0VIEWER", "viewer", "Vic Viewer", false),
                User::new("U0FLAMEBOT", APP_NAME, APP_NAME, true),
            ]
            .into_iter()
            .map(|user| (user.id.clone(), user))
            .collect(),
            ephemerals: BTreeMap::new(),
            files: BTreeMap::new(),
            pending_uploads: BTreeMap::new(),
            triggers: BTreeMap::new(),
            views: Vec::new(),
            homes: BTreeMap::new(),
            last_ts_micros: now_micros,
        }
    }

    /// conversations.open with one person: the app's direct messages with `user` (`D…`),
    /// created on first use, as Slack does.
    pub fn open_im(&mut self, user: &str) -> Result<String, SlackError> {
        let person = self
            .users
            .get(user)
            .filter(|person| !person.is_bot)
            .ok_or(SlackError::new("user_not_found"))?;
        let id = format!("D{}", user.trim_start_matches('U'));
        let name = person.name.clone();
        self.channels.entry(id.clone()).or_insert_with(|| Channel {
            id: id.clone(),
            name,
            messages: Vec::new(),
        });
        Ok(id)
    }

    fn next_file_id(&self) -> String {
        format!("F{:09}", self.files.len() + self.pending_uploads.len() + 1)
    }

    /// files.getUploadURLExternal: reserves a file id for an upload of `length` bytes.
    pub fn start_upload(
        &mut self,
        name: &str,
        length: usize,
        user: &str,
    ) -> Result<String, SlackError> {
        if name.is_empty() || length == 0 {
            return Err(SlackError::new("invalid_arguments"));
        }
        let id = self.next_file_id();
        let upload = PendingUpload {
            name: name.to_owned(),
            length,
            user: user.to_owned(),
            content: None,
        };
        self.pending_uploads.insert(id.clone(), upload);
        Ok(id)
    }

    /// The bytes POSTed to the upload URL. Slack refuses a body longer than announced.
    pub fn receive_upload(&mut self, id: &str, bytes: Vec<u8>) -> Result<usize, SlackError> {
        let upload = self
            .pending_uploads
            .get_mut(id)
            .ok_or(SlackError::new("file_not_found"))?;
        if bytes.len() > upload.length {
            return Err(SlackError::new("upload_too_large"));
        }
        let length = bytes.len();
        upload.content = Some(bytes);
        Ok(length)
    }

    /// files.completeUploadExternal: the upload becomes a file.
    pub fn complete_upload(
        &mut self,
        id: &str,
        title: Option<&str>,
        now_micros: u64,
    ) -> Result<File, SlackError> {
        let upload = self
            .pending_uploads
            .get(id)
            .ok_or(SlackError::new("file_not_found"))?;
        let Some(content) = upload.content.clone() else {
            return Err(SlackError::new("file_not_found"));
        };
        let upload = self.pending_uploads.remove(id).expect("checked above");
        Ok(self.add_file(id, &upload.name, title, &upload.user, content, now_micros))
    }

    /// A file someone shares directly (the control API's "share a file").
    pub fn share_file(
        &mut self,
        name: &str,
        mimetype: Option<&str>,
        user: &str,
        content: Vec<u8>,
        now_micros: u64,
    ) -> File {
        let id = self.next_file_id();
        let mut file = self.add_file(&id, name, None, user, content, now_micros);
        if let Some(mimetype) = mimetype {
            file.mimetype = mimetype.to_owned();
            self.files.insert(id, file.clone());
        }
        file
    }

    fn add_file(
        &mut self,
        id: &str,
        name: &str,
        title: Option<&str>,
        user: &str,
        content: Vec<u8>,
        now_micros: u64,
    ) -> File {
        let file = File {
            id: id.to_owned(),
            name: name.to_owned(),
            title: title.unwrap_or(name).to_owned(),
            mimetype: guess_mimetype(name).to_owned(),
            user: user.to_owned(),
            content,
            created: now_micros / 1_000_000,
            shares: Vec::new(),
        };
        self.files.insert(id.to_owned(), file.clone());
        file
    }

    /// Remembers a `trigger_id` given to the app at `now_micros`.
    pub fn issue_trigger(&mut self, trigger_id: &str, now_micros: u64) {
        self.triggers.insert(trigger_id.to_owned(), now_micros);
    }

    /// `views.open`: a modal for `trigger_id`, which must be known, fresh (3 s) and unused.
    pub fn open_view(
        &mut self,
        trigger_id: &str,
        view: &Value,
        now_micros: u64,
    ) -> Result<Value, SlackError> {
        let issued = self
            .triggers
            .get(trigger_id)
            .copied()
            .ok_or(SlackError::new("invalid_trigger_id"))?;
        if now_micros.saturating_sub(issued) > 3_000_000 {
            return Err(SlackError::new("expired_trigger_id"));
        }
        if view.get("type").and_then(Value::as_str) != Some("modal") {
            return Err(SlackError::invalid_arguments(
                "[ERROR] must be a modal [json-pointer:/view/type]".to_owned(),
            ));
        }
        let title_length = view
            .pointer("/title/text")
            .and_then(Value::as_str)
            .map(|title| title.chars().count());
        if !title_length.is_some_and(|length| (1..=24).contains(&length)) {
            return Err(SlackError::invalid_arguments(
                "[ERROR] title must be plain_text of 1 to 24 characters [json-pointer:/view/title]"
                    .to_owned(),
            ));
        }
        let blocks = view
            .get("blocks")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if blocks > 100 {
            return Err(SlackError::invalid_arguments(
                "[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]".to_owned(),
            ));
        }
        self.triggers.remove(trigger_id);
        let mut opened = view.clone();
        let id = format!("V{:09}", self.views.len() + 1);
        opened["id"] = json!(id);
        opened["root_view_id"] = json!(id);
        opened["hash"] = json!(format!(
            "{}.{}",
            now_micros / 1_000_000,
            self.views.len() + 1
        ));
        opened["team_id"] = json!(self.team_id);
        opened["state"] = json!({"values": {}});
        self.views.push(opened.clone());
        Ok(opened)
    }

    /// `views.publish`: `user`'s Home tab. Slack wants a person of the workspace, a view of type
    /// `home` with at most 100 blocks each keeping the block rules, and a private metadata and
    /// callback id within their limits.
    pub fn publish_home(&mut self, user: &str, view: &Value) -> Result<Value, SlackError> {
        if self.users.get(user).is_none_or(|person| person.is_bot) {
            return Err(SlackError::new("user_not_found"));
        }
        if view.get("type").and_then(Value::as_str) != Some("home") {
            return Err(SlackError::invalid_arguments(
                "[ERROR] must be home [json-pointer:/view/type]".to_owned(),
            ));
        }
        let Some(blocks) = view.get("blocks").and_then(Value::as_array) else {
            return Err(SlackError::invalid_arguments(
                "[ERROR] missing required field: blocks [json-pointer:/view/blocks]".to_owned(),
            ));
        };
        if blocks.len() > 100 {
            return Err(SlackError::invalid_arguments(
                "[ERROR] no more than 100 items allowed [json-pointer:/view/blocks]".to_owned(),
            ));
        }
        // Files, tables, markdown and charts are for messages only.
        for (index, block) in blocks.iter().enumerate() {
            let kind = block
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !HOME_BLOCK_TYPES.contains(&kind) {
                return Err(SlackError::invalid_blocks(format!(
                    "[ERROR] unsupported type: {kind} [json-pointer:/view/blocks/{index}/type]"
                )));
            }
        }
        for (field, max) in [("private_metadata", 3000), ("callback_id", 255)] {
            if view
                .get(field)
                .and_then(Value::as_str)
                .is_some_and(|text| text.chars().count() > max)
            {
                return Err(SlackError::invalid_arguments(format!(
                    "[ERROR] must be less than {} characters [json-pointer:/view/{field}]",
                    max + 1
                )));
            }
        }
        check_blocks(blocks, &self.files)?;
        let id = self
            .homes
            .get(user)
            .and_then(|home| home["id"].as_str())
            .map_or_else(|| format!("VH{:08}", self.homes.len() + 1), str::to_owned);
        let mut published = view.clone();
        published["id"] = json!(id);
        published["root_view_id"] = json!(id);
        published["hash"] = json!(format!("{}.{}", id, self.homes.len() + 1));
        published["team_id"] = json!(self.team_id);
        published["state"] = json!({"values": {}});
        self.homes.insert(user.to_owned(), published.clone());
        Ok(published)
    }

    /// Records that file `id` was shared in `channel` with the message at `ts`.
    pub fn record_share(&mut self, id: &str, channel: &str, ts: &str) {
        if let Some(file) = self.files.get_mut(id) {
            file.shares.push((channel.to_owned(), ts.to_owned()));
        }
    }

    pub fn file(&self, id: &str) -> Result<&File, SlackError> {
        self.files.get(id).ok_or(SlackError::new("file_not_found"))
    }

    pub fn user(&self, user_id: &str) -> Result<&User, SlackError> {
        self.users
            .get(user_id)
            .ok_or(SlackError::new("user_not_found"))
    }

    /// chat.postEphemeral: a message only `user` sees, in the channel or one of its threads.
    pub fn post_ephemeral(
        &mut self,
        channel: &str,
        user: &str,
        content: Content,
        thread_ts: Option<&str>,
        now_micros: u64,
    ) -> Result<String, SlackError> {
        validate(&content, &self.files)?;
        self.channel(channel)?;
        self.user(user)?;
        let ts = self.next_ts(now_micros);
        let ephemeral = Ephemeral {
            ts: ts.clone(),
            user: user.to_owned(),
            thread_ts: thread_ts.filter(|ts| !ts.is_empty()).map(str::to_owned),
            content,
        };
        self.ephemerals
            .entry(channel.to_owned())
            .or_default()
            .push(ephemeral);
        Ok(ts)
    }

    /// A `ts` after every earlier one: Slack's `seconds.micros` format.
    fn next_ts(&mut self, now_micros: u64) -> String {
        self.last_ts_micros = now_micros.max(self.last_ts_micros + 1);
        format!(
            "{}.{:06}",
            self.last_ts_micros / 1_000_000,
            self.last_ts_micros % 1_000_000
        )
    }

    pub fn channel(&self, channel: &str) -> Result<&Channel, SlackError> {
        self.channels
            .get(channel)
            .ok_or(SlackError::new("channel_not_found"))
    }

    fn channel_mut(&mut self, channel: &str) -> Result<&mut Channel, SlackError> {
        self.channels
            .get_mut(channel)
            .ok_or(SlackError::new("channel_not_found"))
    }

    fn message_mut(&mut self, channel: &str, ts: &str) -> Result<&mut Message, SlackError> {
        self.channel_mut(channel)?
            .find_mut(ts)
            .ok_or(SlackError::new("message_not_found"))
    }

    /// Posts a message (chat.postMessage, or an integration's post). Returns the new message.
    pub fn post(
        &mut self,
        channel: &str,
        author: Author,
        content: Content,
        thread_ts: Option<&str>,
        now_micros: u64,
    ) -> Result<Message, SlackError> {
        validate(&content, &self.files)?;
        let channel_state = self.channel(channel)?;
        let thread_ts = match thread_ts.filter(|ts| !ts.is_empty()) {
            None => None,
            Some(ts) => {
                let parent = channel_state
                    .find(ts)
                    .ok_or(SlackError::new("thread_not_found"))?;
                // Replying to a reply lands in the parent's thread, as in Slack.
                Some(
                    parent
                        .thread_ts
                        .clone()
                        .unwrap_or_else(|| parent.ts.clone()),
                )
            }
        };
        let ts = self.next_ts(now_micros);
        let message = Message {
            ts,
            thread_ts,
            author,
            content,
            edited: None,
            reactions: BTreeMap::new(),
        };
        self.channel_mut(channel)?.messages.push(message.clone());
        Ok(message)
    }

    /// chat.update: only the message's author may edit it.
    pub fn update(
        &mut self,
        channel: &str,
        ts: &str,
        editor_user: &str,
        content: Content,
        now_micros: u64,
    ) -> Result<Message, SlackError> {
        validate(&content, &self.files)?;
        let edited_ts = self.next_ts(now_micros);
        let message = self.message_mut(channel, ts)?;
        if message.author_user() != Some(editor_user) {
            return Err(SlackError::new("cant_update_message"));
        }
        message.content = content;
        message.edited = Some((editor_user.to_owned(), edited_ts));
        Ok(message.clone())
    }

    pub fn add_reaction(
        &mut self,
        channel: &str,
        ts: &str,
        name: &str,
        user: &str,
    ) -> Result<(), SlackError> {
        let message = self.message_mut(channel, ts)?;
        let users = message.reactions.entry(name.to_owned()).or_default();
        if users.iter().any(|existing| existing == user) {
            return Err(SlackError::new("already_reacted"));
        }
        users.push(user.to_owned());
        Ok(())
    }

    pub fn remove_reaction(
        &mut self,
        channel: &str,
        ts: &str,
        name: &str,
        user: &str,
    ) -> Result<(), SlackError> {
        let message = self.message_mut(channel, ts)?;
        let users = message
            .reactions
            .get_mut(name)
            .ok_or(SlackError::new("no_reaction"))?;
        let before = users.len();
        users.retain(|existing| existing != user);
        if users.len() == before {
            return Err(SlackError::new("no_reaction"));
        }
        if users.is_empty() {
            message.reactions.remove(name);
        }
        Ok(())
    }

    /// conversations.history: top-level messages, newest first.
    pub fn history(&self, channel: &str, limit: usize) -> Result<Vec<Value>, SlackError> {
        let channel = self.channel(channel)?;
        Ok(channel
            .messages
            .iter()
            .rev()
            .filter(|message| message.thread_ts.is_none())
            .take(limit)
            .map(|message| message.to_json(channel.replies(&message.ts).count()))
            .collect())
    }

    /// conversations.replies: the parent, then its replies, oldest first, at most `limit`.
    pub fn replies(&self, channel: &str, ts: &str, limit: usize) -> Result<Vec<Value>, SlackError> {
        let channel = self.channel(channel)?;
        let parent = channel
            .find(ts)
            .ok_or(SlackError::new("thread_not_found"))?;
        let parent_ts = parent.thread_ts.as_deref().unwrap_or(&parent.ts);
        let parent = channel
            .find(parent_ts)
            .ok_or(SlackError::new("thread_not_found"))?;
        let mut messages = vec![parent.to_json(channel.replies(parent_ts).count())];
        messages.extend(channel.replies(parent_ts).map(|reply| reply.to_json(0)));
        messages.truncate(limit);
        Ok(messages)
    }

    /// Whether conversations.replies of `ts` with `limit` leaves messages out (`has_more`).
    pub fn replies_beyond(&self, channel: &str, ts: &str, limit: usize) -> bool {
        self.replies(channel, ts, usize::MAX)
            .is_ok_and(|all| all.len() > limit)
    }
}

fn guess_mimetype(name: &str) -> &'static str {
    match name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .as_deref()
    {
        Some("py") => "text/x-python",
        Some("txt") | Some("log") => "text/plain",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg") | Some("jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("json") => "application/json",
        Some("html") => "text/html",
        _ => "application/octet-stream",
    }
}

/// The block types Slack accepts in messages.
const BLOCK_TYPES: &[&str] = &[
    "actions",
    "context",
    "data_visualization",
    "divider",
    "file",
    "header",
    "image",
    "input",
    "markdown",
    "rich_text",
    "section",
    "table",
    "video",
];

/// The blocks a Home tab (or a modal) may hold.
const HOME_BLOCK_TYPES: &[&str] = &[
    "actions",
    "context",
    "divider",
    "header",
    "image",
    "input",
    "rich_text",
    "section",
    "video",
];

/// Slack's limits on what one message may carry.
fn validate(content: &Content, files: &BTreeMap<String, File>) -> Result<(), SlackError> {
    let has_blocks = content
        .blocks
        .as_ref()
        .and_then(Value::as_array)
        .is_some_and(|blocks| !blocks.is_empty());
    let has_attachments = content
        .attachments
        .as_ref()
        .and_then(Value::as_array)
        .is_some_and(|attachments| !attachments.is_empty());
    if content.text.is_empty() && !has_blocks && !has_attachments && content.files.is_empty() {
        return Err(SlackError::new("no_text"));
    }
    if content.text.chars().count() > MAX_TEXT {
        return Err(SlackError::new("msg_too_long"));
    }
    if let Some(blocks) = &content.blocks {
        let Some(blocks) = blocks.as_array() else {
            return Err(SlackError::invalid_blocks(
                "[ERROR] must be an array [json-pointer:/blocks]".to_owned(),
            ));
        };
        if blocks.len() > MAX_BLOCKS {
            return Err(SlackError::invalid_blocks(format!(
                "[ERROR] no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]"
            )));
        }
        check_blocks(blocks, files)?;
    }
    Ok(())
}

/// Each block's type is one Slack knows, and each block keeps Slack's rules ([`blocks`]).
fn check_blocks(blocks: &[Value], files: &BTreeMap<String, File>) -> Result<(), SlackError> {
    for (index, block) in blocks.iter().enumerate() {
        let Some(kind) = block.get("type").and_then(Value::as_str) else {
            return Err(SlackError::invalid_blocks(format!(
                "[ERROR] missing required field: type [json-pointer:/blocks/{index}]"
            )));
        };
        if !BLOCK_TYPES.contains(&kind) {
            return Err(SlackError::invalid_blocks(format!(
                "[ERROR] unsupported type: {kind} [json-pointer:/blocks/{index}/type]"
            )));
        }
    }
    blocks::validate(blocks, &|id| files.get(id))
}

pub mod blocks;

#[cfg(test)]
mod tests;
