//! Replies: what a command answers, and how it is rendered for Slack.
//!
//! A [`Reply`] is plain text (always present: it is the notification and
//! accessibility fallback) plus optional Block Kit blocks, and a [`Visibility`]:
//! only the asker sees an ephemeral reply, the whole channel sees an in-channel one.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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
        text: String,
    },
    /// A `context` block: small grey mrkdwn text.
    Context {
        /// The mrkdwn text.
        text: String,
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
    /// Dialog text (mrkdwn).
    pub text: String,
    /// The confirm button's label.
    pub confirm: String,
    /// The cancel button's label.
    pub deny: String,
}

impl Button {
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
                "text": { "type": "mrkdwn", "text": truncate(&c.text, 300) },
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
                "text": { "type": "mrkdwn", "text": truncate(text, 3000) }
            }),
            Block::Context { text } => json!({
                "type": "context",
                "elements": [{ "type": "mrkdwn", "text": truncate(text, 3000) }]
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
    /// Plain-text (mrkdwn) body; the fallback when blocks are present.
    pub text: String,
    /// Optional Block Kit blocks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<Block>,
    /// Who sees it.
    #[serde(default)]
    pub visibility: Visibility,
    /// Replace the message the interaction came from (buttons give way to the outcome).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replace_original: bool,
}

impl Reply {
    /// An ephemeral text reply.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            blocks: Vec::new(),
            visibility: Visibility::Ephemeral,
            replace_original: false,
        }
    }

    /// Marks the reply as replacing the message an interaction came from.
    pub fn replacing(mut self) -> Self {
        self.replace_original = true;
        self
    }

    /// An in-channel text reply.
    pub fn in_channel(text: impl Into<String>) -> Self {
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

    /// The JSON body for a `response_url` POST (or a slash command's HTTP answer).
    pub fn to_response_json(&self) -> Value {
        let mut body = json!({
            "response_type": self.visibility.response_type(),
            "text": self.text,
        });
        if !self.blocks.is_empty() {
            body["blocks"] = Value::Array(self.blocks.iter().map(Block::to_slack).collect());
        }
        if self.replace_original {
            body["replace_original"] = json!(true);
        }
        body
    }
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

    #[test]
    fn ephemeral_text_reply_renders_as_slack_expects() {
        let body = Reply::text("hi").to_response_json();
        assert_eq!(body, json!({"response_type": "ephemeral", "text": "hi"}));
    }

    #[test]
    fn blocks_render_with_text_fallback() {
        let body = Reply::in_channel("queue perf: <@U1>")
            .block(Block::Section {
                text: "*perf*: <@U1>".into(),
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
        let json = Block::Section { text: long }.to_slack();
        assert_eq!(json["text"]["text"].as_str().unwrap().chars().count(), 3000);
    }
}
