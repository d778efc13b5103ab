//! Text and blocks for Slack, built so that outside text cannot become markup.
//!
//! Slack's mrkdwn reads `<…>` as mentions (`<@U1>`, `<!channel>`), links (`<https://x|y>`) and
//! dates, and `&` as the start of an entity. Alert names, labels, file names, function names and
//! script output come from outside; written into a message as they are, `<!channel>` in an alert's
//! label pages a whole channel. So every message flamethread sends is a [`Mrkdwn`], which can only
//! be built from:
//!
//! - the [`mrkdwn!`](crate::mrkdwn!) macro: its format string is flamethread's own (bold, code
//!   spans, emoji), and every argument is escaped unless it already is a [`Mrkdwn`] (numbers are
//!   written as they are);
//! - [`Mrkdwn::plain`] and [`Mrkdwn::code`] for outside text;
//! - [`Mrkdwn::mention`], [`Mrkdwn::link`] and [`Mrkdwn::date`], the only markup flamethread
//!   means, checked (a user id that is not one, a link that is not `http(s)` or contains `|<>`,
//!   are written as escaped text instead).
//!
//! Blocks are built by [`blocks`]: a section or context takes a [`Mrkdwn`]; headers, buttons,
//! options and dialogs take plain text (`plain_text`, which Slack never reads as markup).
//!
//! Deserializing trusts the producer: these types cross the bus between flamethread's own
//! services, whose producers could only build them as above.

use std::fmt::{self, Display, Write as _};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Text in Slack's mrkdwn that says only what flamethread means to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Mrkdwn(String);

/// Escapes what Slack's mrkdwn treats as markup (`&`, `<`, `>`).
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            c => escaped.push(c),
        }
    }
    escaped
}

impl Mrkdwn {
    pub fn new() -> Mrkdwn {
        Mrkdwn(String::new())
    }

    /// Outside text, escaped.
    pub fn plain(outside: &str) -> Mrkdwn {
        Mrkdwn(escape(outside))
    }

    /// Outside text as a code span: escaped, its backticks (which would end the span) replaced.
    pub fn code(outside: &str) -> Mrkdwn {
        Mrkdwn(format!("`{}`", escape(&outside.replace('`', "ˋ"))))
    }

    /// A mention of a Slack user (`U…`/`W…`); anything else is written as escaped text.
    pub fn mention(user_id: &str) -> Mrkdwn {
        let valid = user_id.len() >= 2
            && user_id.len() <= 32
            && (user_id.starts_with('U') || user_id.starts_with('W'))
            && user_id
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        if valid {
            Mrkdwn(format!("<@{user_id}>"))
        } else {
            Mrkdwn::plain(user_id)
        }
    }

    /// A link to an `http(s)` URL with no `|`, `<`, `>` or whitespace in it; anything else is
    /// written as the escaped label followed by the escaped URL, never as a link.
    pub fn link(url: &str, label: &str) -> Mrkdwn {
        if safe_url(url) {
            let label = label.replace('|', "¦");
            Mrkdwn(format!(
                "<{}|{}>",
                url.replace('&', "&amp;"),
                escape(&label)
            ))
        } else if label.is_empty() || label == url {
            Mrkdwn::plain(url)
        } else {
            Mrkdwn(format!("{} ({})", escape(label), escape(url)))
        }
    }

    /// A date Slack shows in each reader's time zone (`<!date^…^…|fallback>`).
    pub fn date(unix_seconds: i64, format: &'static str, fallback: &str) -> Mrkdwn {
        let format = format.replace(['|', '<', '>', '^'], "");
        Mrkdwn(format!(
            "<!date^{unix_seconds}^{format}|{}>",
            escape(&fallback.replace('|', "¦"))
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Characters (Slack's limits count characters).
    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }

    pub fn push(&mut self, more: &Mrkdwn) {
        self.0.push_str(&more.0);
    }

    /// Outside text appended, escaped.
    pub fn push_plain(&mut self, outside: &str) {
        self.0.push_str(&escape(outside));
    }

    /// Joins `parts` with `separator` (flamethread's own).
    pub fn join(parts: impl IntoIterator<Item = Mrkdwn>, separator: &'static str) -> Mrkdwn {
        let mut joined = Mrkdwn::new();
        for (i, part) in parts.into_iter().enumerate() {
            if i > 0 {
                joined.0.push_str(&escape(separator));
            }
            joined.push(&part);
        }
        joined
    }

    /// At most `max` characters ending in `…`, never cut inside an entity (`&lt;`) or markup
    /// (`<…>`), which would leave a broken one.
    pub fn truncated(&self, max: usize) -> Mrkdwn {
        if self.char_count() <= max {
            return self.clone();
        }
        let mut cut = String::new();
        let mut safe_len = 0;
        let mut depth_markup = false;
        let mut in_entity = false;
        for (count, c) in self.0.chars().enumerate() {
            // Room for closing a code block (3) and the ellipsis.
            if count + 4 >= max {
                break;
            }
            cut.push(c);
            match c {
                '<' => depth_markup = true,
                '>' => depth_markup = false,
                '&' => in_entity = true,
                ';' => in_entity = false,
                _ => {}
            }
            if !depth_markup && !in_entity {
                safe_len = cut.len();
            }
        }
        cut.truncate(safe_len);
        // An unclosed code span or code block would swallow what follows; close what was open.
        if cut.matches("```").count() % 2 == 1 {
            cut.push_str("```");
        } else if cut.replace("```", "").matches('`').count() % 2 == 1 {
            cut.push('`');
        }
        cut.push('…');
        Mrkdwn(cut)
    }

    /// What [`mrkdwn!`](crate::mrkdwn!) formatted; not for direct use (its arguments were escaped
    /// by [`ToMrkdwn`], its format string is a literal in flamethread's code).
    #[doc(hidden)]
    pub fn __formatted(text: String) -> Mrkdwn {
        Mrkdwn(text)
    }
}

fn safe_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() > "https://".len()
        && url.len() <= 2048
        && !url
            .chars()
            .any(|c| matches!(c, '|' | '<' | '>') || c.is_whitespace() || c.is_control())
}

/// Whether `url` may be written as a link (`http(s)`, no `|<>` or whitespace): runbook links and
/// the like that fail it are shown as text.
pub fn is_safe_url(url: &str) -> bool {
    safe_url(url)
}

impl std::ops::Deref for Mrkdwn {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl Display for Mrkdwn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One argument of [`mrkdwn!`](crate::mrkdwn!): escaped text, or something safe as it is.
pub enum Part<'a> {
    Escaped(String),
    Safe(&'a dyn Display),
}

impl fmt::Debug for Part<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Part({self})")
    }
}

impl Display for Part<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Escaped(text) => f.write_str(text),
            // Numbers and Mrkdwn: the format spec (`{:.1}`) applies as written.
            Part::Safe(value) => value.fmt(f),
        }
    }
}

/// What may be an argument of [`mrkdwn!`](crate::mrkdwn!).
pub trait ToMrkdwn {
    fn part(&self) -> Part<'_>;
}

impl ToMrkdwn for str {
    fn part(&self) -> Part<'_> {
        Part::Escaped(escape(self))
    }
}

impl ToMrkdwn for String {
    fn part(&self) -> Part<'_> {
        Part::Escaped(escape(self))
    }
}

impl ToMrkdwn for char {
    fn part(&self) -> Part<'_> {
        let mut text = String::new();
        let _ = text.write_char(*self);
        Part::Escaped(escape(&text))
    }
}

impl ToMrkdwn for Mrkdwn {
    fn part(&self) -> Part<'_> {
        Part::Safe(self)
    }
}

impl<T: ToMrkdwn + ?Sized> ToMrkdwn for &T {
    fn part(&self) -> Part<'_> {
        (**self).part()
    }
}

macro_rules! safe_as_written {
    ($($t:ty),*) => {$(
        impl ToMrkdwn for $t {
            fn part(&self) -> Part<'_> {
                Part::Safe(self)
            }
        }
    )*};
}

safe_as_written!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize, f32, f64, bool
);

/// `format!` for Slack: the format string is flamethread's own markup, every argument is escaped
/// unless it is already a [`Mrkdwn`]. Arguments are positional only (`{}`, `{:.1}`): a name
/// captured from scope (`{name}`) would not be escaped, and `tests/it/tidy.rs` refuses it.
#[macro_export]
macro_rules! mrkdwn {
    ($fmt:literal $(,)?) => {
        $crate::mrkdwn::Mrkdwn::__formatted(::std::format!($fmt))
    };
    ($fmt:literal, $($arg:expr),+ $(,)?) => {
        $crate::mrkdwn::Mrkdwn::__formatted(::std::format!(
            $fmt,
            $($crate::mrkdwn::ToMrkdwn::part(&$arg)),+
        ))
    };
}

/// Block Kit blocks built only from [`Mrkdwn`] and plain text.
pub mod blocks {
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};
    use serde_json::{Value, json};

    use super::Mrkdwn;

    /// One block, as Slack reads it.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(transparent)]
    pub struct Block(Value);

    /// An interactive element of an actions block.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Element(Value);

    /// Slack's limit on plain text in buttons (75), options (75), headers (150), dialogs (300).
    fn plain(text: &str, max: usize) -> Value {
        json!({"type": "plain_text", "text": cut(text, max), "emoji": true})
    }

    /// `text` in at most `max` characters, ending in `…` when cut.
    pub fn cut(text: &str, max: usize) -> String {
        if text.chars().count() > max {
            text.chars()
                .take(max.saturating_sub(1))
                .chain(std::iter::once('…'))
                .collect()
        } else {
            text.to_owned()
        }
    }

    pub fn header(text: &str) -> Block {
        Block(json!({"type": "header", "text": plain(text, 150)}))
    }

    pub fn section(text: Mrkdwn) -> Block {
        Block(json!({"type": "section", "text": {"type": "mrkdwn", "text": text.into_string()}}))
    }

    /// A section with a button (or select) at its right, as App Home lists use.
    pub fn section_with(text: Mrkdwn, accessory: Element) -> Block {
        Block(
            json!({"type": "section", "text": {"type": "mrkdwn", "text": text.into_string()},
            "accessory": accessory.0}),
        )
    }

    /// A section of short fields shown two by two.
    pub fn fields(fields: Vec<Mrkdwn>) -> Block {
        let fields: Vec<Value> = fields
            .into_iter()
            .map(|field| json!({"type": "mrkdwn", "text": field.into_string()}))
            .collect();
        Block(json!({"type": "section", "fields": fields}))
    }

    pub fn context(text: Mrkdwn) -> Block {
        Block(
            json!({"type": "context", "elements": [{"type": "mrkdwn", "text": text.into_string()}]}),
        )
    }

    /// Slack's chart block (`data_visualization`), a line per series over shared categories
    /// (x labels). Slack's limits hold whatever comes in: the title is cut to 50 characters,
    /// names and categories to 20, at most 6 series and 20 categories, and only categories every
    /// series has a finite value for are kept (each series needs one point per category).
    /// `None` when nothing is left to draw. A message may carry at most two.
    pub fn line_chart(
        title: &str,
        categories: &[String],
        series: &[(String, Vec<Option<f64>>)],
        y_label: Option<&str>,
    ) -> Option<Block> {
        // Labels are one line: control characters are left out before cutting.
        let cut = |text: &str, max: usize| {
            cut(
                &text.chars().filter(|c| !c.is_control()).collect::<String>(),
                max,
            )
        };
        let series = &series[..series.len().min(6)];
        let mut seen = std::collections::BTreeSet::new();
        let kept: Vec<(usize, String)> = categories
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                series.iter().all(|(_, values)| {
                    values
                        .get(*i)
                        .copied()
                        .flatten()
                        .is_some_and(f64::is_finite)
                })
            })
            .map(|(i, category)| (i, cut(category, 20)))
            .filter(|(_, label)| !label.is_empty() && seen.insert(label.clone()))
            .take(20)
            .collect();
        if kept.is_empty() || series.is_empty() {
            return None;
        }
        let mut names = std::collections::BTreeSet::new();
        let lines: Vec<Value> = series
            .iter()
            .filter_map(|(name, values)| {
                let name = cut(name, 20);
                if name.is_empty() || !names.insert(name.clone()) {
                    return None;
                }
                let data: Vec<Value> = kept
                    .iter()
                    .filter_map(|(i, label)| {
                        let value =
                            serde_json::Number::from_f64(values.get(*i).copied().flatten()?)?;
                        Some(json!({"label": label, "value": value}))
                    })
                    .collect();
                Some(json!({"name": name, "data": data}))
            })
            .collect();
        if lines.is_empty() {
            return None;
        }
        let categories: Vec<&String> = kept.iter().map(|(_, label)| label).collect();
        let mut axis = json!({"categories": categories});
        if let Some(y_label) = y_label
            .map(|label| cut(label, 50))
            .filter(|l| !l.is_empty())
        {
            axis["y_label"] = json!(y_label);
        }
        let title = cut(title, 50);
        (!title.is_empty()).then(|| {
            Block(json!({
                "type": "data_visualization",
                "title": title,
                "chart": {"type": "line", "series": lines, "axis_config": axis},
            }))
        })
    }

    pub fn divider() -> Block {
        Block(json!({"type": "divider"}))
    }

    pub fn actions(elements: Vec<Element>) -> Block {
        let elements: Vec<Value> = elements.into_iter().map(|element| element.0).collect();
        Block(json!({"type": "actions", "elements": elements}))
    }

    /// A button whose `value` comes back, signed by Slack, when it is pressed.
    pub fn button(label: &str, action_id: &str, value: &str) -> Element {
        Element(
            json!({"type": "button", "text": plain(label, 75), "action_id": action_id, "value": value}),
        )
    }

    /// A button that opens `url` in the reader's browser; `None` when the URL is not a safe
    /// `http(s)` link (see [`super::is_safe_url`]).
    pub fn link_button(label: &str, action_id: &str, url: &str) -> Option<Element> {
        (super::is_safe_url(url) && url.chars().count() <= 3000).then(|| {
            Element(
                json!({"type": "button", "text": plain(label, 75), "action_id": action_id, "url": url}),
            )
        })
    }

    /// A select whose options are `(label, value)`; labels are plain text.
    pub fn select(placeholder: &str, action_id: &str, options: &[(String, String)]) -> Element {
        let options: Vec<Value> = options
            .iter()
            .map(|(label, value)| json!({"text": plain(label, 75), "value": value}))
            .collect();
        Element(json!({"type": "static_select", "action_id": action_id,
            "placeholder": plain(placeholder, 150), "options": options}))
    }

    impl Element {
        /// `primary` or `danger`.
        pub fn style(mut self, style: &'static str) -> Element {
            self.0["style"] = json!(style);
            self
        }

        /// A dialog Slack shows before the click counts, all plain text.
        pub fn confirm(mut self, title: &str, text: &str, confirm: &str, deny: &str) -> Element {
            self.0["confirm"] = json!({
                "title": plain(title, 100),
                "text": plain(text, 300),
                "confirm": plain(confirm, 30),
                "deny": plain(deny, 30),
                "style": "danger",
            });
            self
        }
    }

    impl std::ops::Index<&str> for Block {
        type Output = Value;

        fn index(&self, key: &str) -> &Value {
            &self.0[key]
        }
    }

    impl Block {
        pub fn with_id(mut self, block_id: &str) -> Block {
            self.0["block_id"] = json!(block_id);
            self
        }

        /// As Slack's JSON.
        pub fn json(&self) -> &Value {
            &self.0
        }

        pub fn into_json(self) -> Value {
            self.0
        }
    }
}

#[cfg(test)]
mod tests;
