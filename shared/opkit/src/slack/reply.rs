//! Replies: what a command answers, and how it is rendered for Slack.
//!
//! A [`Reply`] is plain text (always present: it is the notification and
//! accessibility fallback) plus optional Block Kit blocks, and a [`Visibility`]:
//! only the asker sees an ephemeral reply, the whole channel sees an in-channel one.
//! Everything in it that Slack reads as markup is [`Mrkdwn`]: user text can only
//! get in escaped.
//!
//! [`Reply::message_fields`] is the one place where a reply becomes a Slack
//! message (a `response_url` body, `chat.postMessage`, `chat.postEphemeral`,
//! `chat.update`), and the one place that makes it fit Slack's limits.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::mrkdwn::{Mrkdwn, cut_point};

/// The most characters of a section block's text. Source: Slack's Block Kit
/// reference, [Section block](https://docs.slack.dev/reference/block-kit/blocks/section-block)
/// ("Maximum length for the text in this field is 3000 characters").
pub const SECTION_TEXT_MAX: usize = 3_000;

/// The most blocks in one message. Source: [Blocks](https://docs.slack.dev/reference/block-kit/blocks)
/// ("You can include up to 50 blocks in each message").
pub const BLOCKS_MAX: usize = 50;

/// The most characters of a message's top-level `text`. Source:
/// [chat.postMessage](https://docs.slack.dev/reference/methods/chat.postMessage)
/// ("we strongly recommend keeping text length under 4,000 characters"; longer
/// text is truncated, and at 40,000 the call fails with `msg_too_long`).
pub const TEXT_MAX: usize = 4_000;

/// Who sees a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Only the user who asked (Slack's `ephemeral`).
    #[default]
    Ephemeral,
    /// Everyone in the channel (Slack's `in_channel`).
    InChannel,
}

impl Visibility {
    /// Slack's `response_type` value.
    pub fn response_type(self) -> &'static str {
        match self {
            Visibility::Ephemeral => "ephemeral",
            Visibility::InChannel => "in_channel",
        }
    }
}

/// One Block Kit block, limited to the kinds Opkit renders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Block {
    /// A `section` block with mrkdwn text.
    Section {
        /// The mrkdwn text.
        text: Mrkdwn,
    },
    /// A `context` block: small grey mrkdwn text.
    Context {
        /// The mrkdwn text.
        text: Mrkdwn,
    },
    /// A `divider` block.
    Divider,
    /// A `header` block with plain text.
    Header {
        /// The plain text.
        text: String,
    },
    /// An `actions` block of buttons.
    Actions {
        /// The buttons, left to right.
        buttons: Vec<Button>,
    },
}

/// A button in an `actions` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// The label.
    pub text: String,
    /// What the click means (`opkit:confirm`, …); comes back in the interaction.
    pub action_id: String,
    /// Comes back in the interaction (e.g. the pending request's id).
    pub value: String,
    /// `primary` (green) or `danger` (red); `None`: default.
    #[serde(default)]
    pub style: Option<String>,
    /// A confirmation dialog Slack shows before sending the click.
    #[serde(default)]
    pub confirm: Option<ConfirmDialog>,
}

/// Slack's "are you sure?" dialog on a button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmDialog {
    /// Dialog title.
    pub title: String,
    /// Dialog text.
    pub text: Mrkdwn,
    /// The confirm button's label.
    pub confirm: String,
    /// The cancel button's label.
    pub deny: String,
}

impl Button {
    /// A *command button*: a click runs `command` as the clicker, exactly as if
    /// they had typed it — matched, authorized, run and audited as theirs
    /// ([`crate::engine::gate::actions::RUN`]); the answer goes to the click's
    /// `response_url`. `command` is what the bot writes (a command of its own,
    /// arguments quoted with [`crate::text::canonical`]), at most
    /// [`crate::job::BUTTON_COMMAND_MAX`] characters.
    pub fn command(text: impl Into<String>, command: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            action_id: crate::engine::gate::actions::RUN.to_string(),
            value: command.into(),
            style: None,
            confirm: None,
        }
    }

    fn to_slack(&self) -> Value {
        let mut button = json!({
            "type": "button",
            "text": { "type": "plain_text", "text": truncate(&self.text, 75) },
            "action_id": self.action_id,
            "value": self.value,
        });
        if let Some(style) = &self.style {
            button["style"] = json!(style);
        }
        if let Some(c) = &self.confirm {
            button["confirm"] = json!({
                "title": { "type": "plain_text", "text": truncate(&c.title, 100) },
                "text": { "type": "mrkdwn", "text": c.text.cut(300).as_str() },
                "confirm": { "type": "plain_text", "text": truncate(&c.confirm, 30) },
                "deny": { "type": "plain_text", "text": truncate(&c.deny, 30) },
                "style": self.style.clone().unwrap_or_else(|| "primary".into()),
            });
        }
        button
    }
}

impl Block {
    /// Slack's JSON for this block.
    pub fn to_slack(&self) -> Value {
        match self {
            Block::Section { text } => json!({
                "type": "section",
                "text": { "type": "mrkdwn", "text": text.cut(SECTION_TEXT_MAX).as_str() }
            }),
            Block::Context { text } => json!({
                "type": "context",
                "elements": [{ "type": "mrkdwn", "text": text.cut(SECTION_TEXT_MAX).as_str() }]
            }),
            Block::Divider => json!({ "type": "divider" }),
            Block::Actions { buttons } => json!({
                "type": "actions",
                "elements": buttons.iter().map(Button::to_slack).collect::<Vec<_>>(),
            }),
            Block::Header { text } => json!({
                "type": "header",
                "text": { "type": "plain_text", "text": truncate(text, 150) }
            }),
        }
    }
}

/// What a command answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The answer in mrkdwn; only the notification fallback when blocks are
    /// present, which then carry the whole answer.
    pub text: Mrkdwn,
    /// Optional Block Kit blocks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<Block>,
    /// Who sees it.
    #[serde(default)]
    pub visibility: Visibility,
    /// Replace the message the interaction came from (buttons give way to the outcome).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replace_original: bool,
    /// The thread a `response_url` reply is published in (`thread_ts`; Slack's
    /// "Handling user interaction", publishing in a thread). Set on delivery, by
    /// [`Reply::in_thread`], from where the command was asked; `chat.postMessage`
    /// takes its thread as an argument instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_ts: Option<String>,
}

impl Reply {
    /// An ephemeral text reply.
    pub fn text(text: impl Into<Mrkdwn>) -> Self {
        Self {
            text: text.into(),
            blocks: Vec::new(),
            visibility: Visibility::Ephemeral,
            replace_original: false,
            thread_ts: None,
        }
    }

    /// The reply as it is published from a `response_url` asked in the thread
    /// `thread_ts`: an in-channel reply that replaces nothing goes into the
    /// thread. Any other stays where Slack puts it: an ephemeral one is seen by
    /// the asker alone in the channel (Slack shows an ephemeral message in a
    /// thread only while that thread is open on screen), and a replacing one takes
    /// the place of the message it answers.
    pub fn in_thread(mut self, thread_ts: Option<&str>) -> Self {
        let threaded = self.visibility == Visibility::InChannel && !self.replace_original;
        self.thread_ts = thread_ts.filter(|_| threaded).map(str::to_string);
        self
    }

    /// Marks the reply as replacing the message an interaction came from.
    pub fn replacing(mut self) -> Self {
        self.replace_original = true;
        self
    }

    /// An in-channel text reply.
    pub fn in_channel(text: impl Into<Mrkdwn>) -> Self {
        Self::text(text).with_visibility(Visibility::InChannel)
    }

    /// Sets who sees the reply.
    pub fn with_visibility(mut self, visibility: Visibility) -> Self {
        self.visibility = visibility;
        self
    }

    /// Appends a block.
    pub fn block(mut self, block: Block) -> Self {
        self.blocks.push(block);
        self
    }

    /// The JSON body for a `response_url` POST (or a slash command's HTTP answer):
    /// [`message_fields`](Self::message_fields) and the `response_type`.
    pub fn to_response_json(&self) -> Value {
        let mut body = self.message_fields();
        body.insert(
            "response_type".into(),
            json!(self.visibility.response_type()),
        );
        if self.replace_original {
            body.insert("replace_original".into(), json!(true));
        }
        if let Some(thread_ts) = &self.thread_ts {
            body.insert("thread_ts".into(), json!(thread_ts));
        }
        Value::Object(body)
    }

    /// The `text` and `blocks` of the message, within Slack's limits — the one
    /// place a reply becomes a message, whichever way it is sent:
    ///
    /// - a reply without blocks whose text is longer than a section
    ///   ([`SECTION_TEXT_MAX`]) is sent as sections, so nothing is lost;
    /// - a section longer than [`SECTION_TEXT_MAX`] is split into several, at
    ///   line breaks where it can be, never inside an escape or a mention;
    /// - past [`BLOCKS_MAX`] blocks, a context block says how many were left out
    ///   (buttons are always kept);
    /// - `text`, then only the notification fallback, is cut to [`TEXT_MAX`].
    pub fn message_fields(&self) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert("text".into(), json!(self.text.cut(TEXT_MAX).as_str()));
        let blocks = if self.blocks.is_empty() && self.text.chars() > SECTION_TEXT_MAX {
            vec![Block::Section {
                text: self.text.clone(),
            }]
        } else {
            self.blocks.clone()
        };
        if !blocks.is_empty() {
            fields.insert("blocks".into(), Value::Array(fit_blocks(blocks)));
        }
        fields
    }
}

/// Splits long sections and keeps at most [`BLOCKS_MAX`] blocks.
fn fit_blocks(blocks: Vec<Block>) -> Vec<Value> {
    let mut fitted: Vec<Block> = Vec::new();
    for block in blocks {
        match block {
            Block::Section { text } => fitted.extend(
                split_text(&text, SECTION_TEXT_MAX)
                    .into_iter()
                    .map(|text| Block::Section { text }),
            ),
            other => fitted.push(other),
        }
    }
    if fitted.len() > BLOCKS_MAX {
        let is_actions = |b: &Block| matches!(b, Block::Actions { .. });
        let actions = fitted.iter().filter(|b| is_actions(b)).count();
        // Room for the other blocks, less one for the note.
        let mut room = BLOCKS_MAX.saturating_sub(actions + 1);
        let mut kept = Vec::with_capacity(BLOCKS_MAX);
        let mut left_out = 0;
        for block in fitted {
            if is_actions(&block) {
                kept.push(block);
            } else if room > 0 {
                room -= 1;
                kept.push(block);
            } else {
                left_out += 1;
            }
        }
        let note = crate::mrkdwn!(
            "…and {} more blocks that do not fit in one Slack message.",
            left_out
        );
        let at = kept
            .iter()
            .rposition(|b| !is_actions(b))
            .map_or(0, |i| i + 1);
        kept.insert(at, Block::Context { text: note });
        fitted = kept;
    }
    fitted.iter().map(Block::to_slack).collect()
}

/// `text` in pieces of at most `max` characters: whole lines together where they
/// fit, a longer line cut where no escape or entity is open.
fn split_text(text: &Mrkdwn, max: usize) -> Vec<Mrkdwn> {
    let mut pieces: Vec<String> = Vec::new();
    // The piece being filled, and its length in characters (`None`: no line yet).
    let mut current = String::new();
    let mut current_chars: Option<usize> = None;
    for mut line in text.as_str().split('\n') {
        let mut chars = line.chars().count();
        if let Some(used) = current_chars {
            if used + 1 + chars <= max {
                current.push('\n');
                current.push_str(line);
                current_chars = Some(used + 1 + chars);
                continue;
            }
            pieces.push(std::mem::take(&mut current));
        }
        while chars > max {
            let at = match cut_point(line, max) {
                // An entity longer than a whole section cannot be kept whole.
                Some(0) | None => line.char_indices().nth(max).map_or(line.len(), |(i, _)| i),
                Some(at) => at,
            };
            pieces.push(line[..at].to_owned());
            line = &line[at..];
            chars = line.chars().count();
        }
        current = line.to_owned();
        current_chars = Some(chars);
    }
    if current_chars.is_some() {
        pieces.push(current);
    }
    // Cut at line breaks or where nothing is open: each piece is still markup.
    pieces.into_iter().map(Mrkdwn::from_piece).collect()
}

/// Cuts `s` to at most `max` characters, marking the cut with an ellipsis.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;

    #[test]
    fn ephemeral_text_reply_renders_as_slack_expects() {
        let body = Reply::text("hi").to_response_json();
        assert_eq!(body, json!({"response_type": "ephemeral", "text": "hi"}));
    }

    #[test]
    fn only_in_channel_replies_that_replace_nothing_go_into_the_thread() {
        let thread = Some("1795000000.000300");
        let body = Reply::in_channel("acked")
            .in_thread(thread)
            .to_response_json();
        assert_eq!(
            body,
            json!({"response_type": "in_channel", "text": "acked", "thread_ts": "1795000000.000300"})
        );
        for stays in [
            Reply::text("only you"),
            Reply::in_channel("done").replacing(),
        ] {
            let body = stays.in_thread(thread).to_response_json();
            assert_eq!(body.get("thread_ts"), None, "{body}");
        }
        let outside = Reply::in_channel("acked").in_thread(None);
        assert_eq!(outside.to_response_json().get("thread_ts"), None);
    }

    #[test]
    fn blocks_render_with_text_fallback() {
        let u1 = UserId::parse("U1").unwrap();
        let body = Reply::in_channel(crate::mrkdwn!("queue perf: {}", u1.mention()))
            .block(Block::Section {
                text: crate::mrkdwn!("*perf*: {}", u1.mention()),
            })
            .block(Block::Divider)
            .to_response_json();
        assert_eq!(body["response_type"], "in_channel");
        assert_eq!(body["text"], "queue perf: <@U1>");
        assert_eq!(body["blocks"][0]["type"], "section");
        assert_eq!(body["blocks"][0]["text"]["type"], "mrkdwn");
        assert_eq!(body["blocks"][1]["type"], "divider");
    }

    #[test]
    fn oversized_section_is_truncated_to_slack_limit() {
        let long = "x".repeat(5000);
        let json = Block::Section {
            text: Mrkdwn::from_piece(long),
        }
        .to_slack();
        assert_eq!(json["text"]["text"].as_str().unwrap().chars().count(), 3000);
    }

    fn lines(n: usize, width: usize) -> Mrkdwn {
        let line = "x".repeat(width);
        Mrkdwn::join((0..n).map(|_| Mrkdwn::from_piece(line.clone())), "\n")
    }

    fn section_texts(body: &Value) -> Vec<String> {
        body["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "section")
            .map(|b| b["text"]["text"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn a_long_text_reply_is_sent_whole_as_sections_with_a_short_fallback() {
        // GIVEN a text reply of 7,000 characters (the 80-grant `roles list`)
        let text = lines(100, 69);
        assert_eq!(text.chars(), 6_999);
        // WHEN it becomes a message
        let body = Reply::text(text.clone()).to_response_json();
        // THEN the sections hold all of it, each within Slack's limit, cut at lines
        let sections = section_texts(&body);
        assert!(
            sections
                .iter()
                .all(|s| s.chars().count() <= SECTION_TEXT_MAX)
        );
        assert_eq!(sections.join("\n"), text.as_str());
        // AND the fallback text is within the guidance
        assert!(body["text"].as_str().unwrap().chars().count() <= TEXT_MAX);
    }

    #[test]
    fn a_short_text_reply_has_no_blocks() {
        let body = Reply::text(lines(10, 20)).to_response_json();
        assert!(body.get("blocks").is_none());
    }

    #[test]
    fn a_long_section_is_split_and_never_inside_an_entity() {
        // GIVEN one line of mentions longer than a section
        let mention = UserId::parse("U0123456789").unwrap().mention();
        let line = Mrkdwn::join((0..400).map(|_| mention.clone()), " ");
        let reply = Reply::text("x").block(Block::Section { text: line.clone() });
        // WHEN it is rendered
        let sections = section_texts(&reply.to_response_json());
        // THEN each piece fits and starts and ends on whole mentions
        assert!(sections.len() > 1);
        for s in &sections {
            assert!(s.chars().count() <= SECTION_TEXT_MAX);
            assert!(s.trim_start().starts_with("<@U"), "{s}");
            assert!(s.trim_end().ends_with('>'), "{s}");
        }
        assert_eq!(sections.concat(), line.as_str());
    }

    #[test]
    fn past_fifty_blocks_the_rest_is_counted_and_buttons_are_kept() {
        let mut reply = Reply::text("many");
        for i in 0..60 {
            reply = reply.block(Block::Section {
                text: crate::mrkdwn!("{}", i),
            });
        }
        let reply = reply.block(Block::Actions {
            buttons: vec![Button {
                text: "Go".into(),
                action_id: "opkit:confirm".into(),
                value: "1".into(),
                style: None,
                confirm: None,
            }],
        });
        let body = reply.to_response_json();
        let blocks = body["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), BLOCKS_MAX);
        assert_eq!(blocks[BLOCKS_MAX - 1]["type"], "actions");
        let note = &blocks[BLOCKS_MAX - 2]["elements"][0]["text"];
        assert_eq!(
            note,
            "…and 12 more blocks that do not fit in one Slack message."
        );
    }

    #[test]
    fn every_way_of_sending_uses_the_same_fields() {
        let reply = Reply::text(lines(100, 69));
        let mut response = reply.to_response_json();
        let fields = Value::Object(reply.message_fields());
        response.as_object_mut().unwrap().remove("response_type");
        assert_eq!(response, fields);
    }
}
