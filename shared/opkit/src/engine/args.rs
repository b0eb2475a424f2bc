//! [`Args`]: the words after a command's syntax form, each read as the kind of
//! token it is, with typed accessors whose errors say what was expected and what
//! to type instead.
//!
//! | accessor | takes | refuses |
//! |---|---|---|
//! | [`Args::word`] | a word, or a link Slack made of a word (`staging.example.com`) | mentions, channels, real links |
//! | [`Args::user`] | a mention `<@U…>` | `@bob`, `bob`, a bare id (see [`Bot::user_arg`]) |
//! | [`Args::channel`] | a channel link `<#C…|name>` | `#ops`, a bare id (see [`Bot::channel_arg`]) |
//! | [`Args::usergroup`] | a user group mention `<!subteam^S…>` | `@oncall` typed as text |
//! | [`Args::link`] | a link `<https://…>` or a typed `https://…` | anything else |
//!
//! A user or channel typed as text is never taken on trust: `roles grant @BOB ops`
//! would otherwise grant a role to a user id that does not exist. Slack's own
//! mention and channel links are; a bare id (`U0BOB1234`, `C0OPS0001`) is taken only
//! once the Web API confirms it ([`Bot::user_arg`], [`Bot::channel_arg`], where a
//! bot token is configured). Without one, it is refused, with what to type.

use crate::engine::bot::Bot;
use crate::engine::error::CommandError;
use crate::ids::{ChannelId, UserGroupId, UserId};
use crate::mrkdwn;
use crate::slack::mrkdwn::{Code, Mrkdwn, UserText};
use crate::text::Token;
use crate::timespec;

/// How a user is asked to name a user.
const MENTION_A_USER: &str = "mention them like @name (Slack turns it into a link)";

/// How a user is asked to name a channel.
const PICK_A_CHANNEL: &str = "pick it from the list Slack shows as you type # (Slack turns it \
     into a link; in `opkit shell`, type it as `<#C0123|ops>`)";

/// The words after the matched syntax form, with typed accessors whose errors
/// say what was expected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    tokens: Vec<Token>,
}

impl Args {
    /// Wraps tokens.
    pub fn new(tokens: Vec<Token>) -> Self {
        Self { tokens }
    }

    /// The raw tokens.
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The token at `i`, if any.
    pub fn get(&self, i: usize) -> Option<&Token> {
        self.tokens.get(i)
    }

    /// The word at `i` ([`Token::as_typed`]: a plain word, or a link Slack made of
    /// what was typed, such as `staging.example.com`); `what` names it in the
    /// error ("an environment").
    pub fn word(&self, i: usize, what: &str) -> Result<&str, CommandError> {
        match self.tokens.get(i) {
            Some(token) => token.as_typed().ok_or_else(|| {
                CommandError::usage(mrkdwn!(
                    "expected {}, not {}",
                    UserText::new(what),
                    shown(token)
                ))
            }),
            None => Err(CommandError::usage(mrkdwn!(
                "missing {}",
                UserText::new(what)
            ))),
        }
    }

    /// The user mentioned at `i` (`<@U…>`, as Slack sends a mention). Anything
    /// typed as text — `@bob`, `bob`, a bare id — is refused; [`Bot::user_arg`]
    /// also takes a bare id the Web API confirms.
    pub fn user(&self, i: usize) -> Result<UserId, CommandError> {
        match self.tokens.get(i) {
            Some(Token::User { id, .. }) => Ok(id.clone()),
            Some(other) => Err(CommandError::usage(mrkdwn!(
                "expected a user: {}, not {}",
                MENTION_A_USER,
                shown(other)
            ))),
            None => Err(CommandError::usage(mrkdwn!(
                "missing a user: {}",
                MENTION_A_USER
            ))),
        }
    }

    /// The channel linked at `i` (`<#C…|name>`, as Slack sends a channel). `#ops`
    /// typed as text is refused with what to type; [`Bot::channel_arg`] also
    /// takes a bare id the Web API confirms.
    pub fn channel(&self, i: usize) -> Result<ChannelId, CommandError> {
        match self.tokens.get(i) {
            Some(Token::Channel { id, .. }) => Ok(id.clone()),
            Some(other) => Err(CommandError::usage(mrkdwn!(
                "expected a #channel, not {}: {}",
                shown(other),
                PICK_A_CHANNEL
            ))),
            None => Err(CommandError::usage(mrkdwn!(
                "missing a #channel: {}",
                PICK_A_CHANNEL
            ))),
        }
    }

    /// The user group mentioned at `i` (`<!subteam^S…|@oncall>`).
    pub fn usergroup(&self, i: usize) -> Result<UserGroupId, CommandError> {
        const HOW: &str = "mention it like @oncall (Slack turns it into a link)";
        match self.tokens.get(i) {
            Some(Token::UserGroup { id, .. }) => Ok(id.clone()),
            Some(other) => Err(CommandError::usage(mrkdwn!(
                "expected a user group: {}, not {}",
                HOW,
                shown(other)
            ))),
            None => Err(CommandError::usage(mrkdwn!(
                "missing a user group: {}",
                HOW
            ))),
        }
    }

    /// The URL of the link at `i`: a link Slack sent (`<https://…>`, its label
    /// ignored), or a word typed as `http://…` / `https://…` (the shell).
    pub fn link(&self, i: usize) -> Result<&str, CommandError> {
        const WHAT: &str = "a link such as https://example.com";
        match self.tokens.get(i) {
            Some(Token::Link { url, .. }) => Ok(url),
            Some(Token::Word(w) | Token::Quoted(w))
                if w.starts_with("https://") || w.starts_with("http://") =>
            {
                Ok(w)
            }
            Some(other) => Err(CommandError::usage(mrkdwn!(
                "expected {}, not {}",
                WHAT,
                shown(other)
            ))),
            None => Err(CommandError::usage(mrkdwn!("missing {}", WHAT))),
        }
    }

    /// All the words from `i` on, joined by spaces (a free-text argument). A link
    /// Slack made of a word is that word again.
    pub fn rest(&self, i: usize) -> String {
        self.tokens
            .iter()
            .skip(i)
            .map(as_text)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The words from `i` on as plain text, joined by spaces: each word as the
    /// user typed it, its entities decoded exactly once (`R&amp;D` reads `R&D`);
    /// a mention, channel or link reads as its label, else as its id or URL. For
    /// free text that leaves Slack (a town sent to a weather service);
    /// [`rest`](Self::rest) keeps Slack's form, for text read as a command again.
    pub fn rest_text(&self, i: usize) -> String {
        self.tokens
            .iter()
            .skip(i)
            .map(|token| match token {
                Token::User { label: Some(l), .. }
                | Token::Channel { label: Some(l), .. }
                | Token::Link { label: Some(l), .. } => l.clone(),
                Token::User { id, .. } => id.to_string(),
                Token::Channel { id, .. } => id.to_string(),
                Token::Link { url, .. } => url.clone(),
                other => typed_text(other),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Splits off trailing `keyword value` options such as `for 2h` or `from 22:00`,
    /// case-insensitively. Returns the positional tokens before the first option
    /// keyword and the options found. A value runs to the next keyword, so it may
    /// be several words (`for 2 hours`, `from 22:00 Europe/Paris`). An option
    /// keyword without a value, or given twice, is a usage error.
    pub fn options(&self, keywords: &[&str]) -> Result<(Args, Options), CommandError> {
        let is_kw = |t: &Token| {
            t.as_word()
                .and_then(|w| keywords.iter().find(|k| k.eq_ignore_ascii_case(w)))
                .copied()
        };
        let first = self.tokens.iter().position(|t| is_kw(t).is_some());
        let split = first.unwrap_or(self.tokens.len());
        let mut options = Options::default();
        let mut rest = self.tokens[split..].iter().peekable();
        while let Some(token) = rest.next() {
            let kw = is_kw(token).expect("each round starts at a keyword");
            let mut words = Vec::new();
            while let Some(word) = rest.next_if(|t| is_kw(t).is_none()) {
                // Each word as typed (a quoted phrase without its quotes, a word
                // link as its word): the value is parsed, not shown.
                words.push(
                    word.as_typed()
                        .map_or_else(|| word.to_string(), str::to_owned),
                );
            }
            if words.is_empty() {
                return Err(CommandError::usage(mrkdwn!(
                    "{} needs a value",
                    Code::new(kw)
                )));
            }
            if options.get(kw).is_some() {
                return Err(CommandError::usage(mrkdwn!(
                    "{} is given twice",
                    Code::new(kw)
                )));
            }
            options.0.push((kw.to_string(), words.join(" ")));
        }
        Ok((Args::new(self.tokens[..split].to_vec()), options))
    }
}

/// A token as text: a link Slack made of a word is that word, everything else
/// as [`Token`]'s `Display` renders it.
fn as_text(token: &Token) -> String {
    match (token, token.as_typed()) {
        (Token::Link { .. }, Some(typed)) => Token::Word(typed.to_owned()).to_string(),
        _ => token.to_string(),
    }
}

/// A token as the user typed it, decoded: a word (or a link Slack made of one)
/// as its text, anything else as Slack sent it.
fn typed_text(token: &Token) -> String {
    match token.as_typed() {
        Some(typed) => typed.to_owned(),
        None => token.to_string(),
    }
}

/// A token quoted in an error, as text: `` `#ops` ``, `` `<#C1>` (a channel) ``.
fn shown(token: &Token) -> Mrkdwn {
    match token {
        Token::Word(_) => Code::new(&typed_text(token)).into(),
        // A phrase in its quotes, as it was typed.
        Token::Quoted(_) => Code::new(&token.to_string()).into(),
        other => mrkdwn!(
            "{} ({})",
            Code::new(&typed_text(other)),
            UserText::new(other.kind())
        ),
    }
}

/// `keyword value` options split off by [`Args::options`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options(Vec<(String, String)>);

impl Options {
    /// The value given for `keyword`.
    pub fn get(&self, keyword: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == keyword)
            .map(|(_, v)| v.as_str())
    }

    /// The value for `keyword` parsed as a duration (`90m`, `2h`, `1d`).
    pub fn duration(&self, keyword: &str) -> Result<Option<chrono::Duration>, CommandError> {
        Ok(self
            .get(keyword)
            .map(timespec::parse_duration)
            .transpose()?)
    }
}

impl Bot {
    /// The user at `i` of `args`: a mention (`<@U…>`), or a bare id (`U0BOB1234`,
    /// `@U0BOB1234`) that `users.info` confirms is an active user — only where a
    /// bot token is configured ([`Bot::directory`]); without one a bare id is
    /// refused (fail closed), with what to type instead.
    pub async fn user_arg(&self, args: &Args, i: usize) -> Result<UserId, CommandError> {
        let Some(id) = args
            .get(i)
            .and_then(Token::as_typed)
            .and_then(|w| UserId::parse(w.strip_prefix('@').unwrap_or(w)).ok())
        else {
            return args.user(i);
        };
        let Some(directory) = self.directory() else {
            return Err(CommandError::usage(mrkdwn!(
                "expected a user: {}, not `{}` (without a bot token, \
                 a bare id cannot be checked with Slack)",
                MENTION_A_USER,
                id
            )));
        };
        match directory.user_info(id.as_str()).await {
            Ok(Some(user)) if !user.deleted => Ok(id),
            Ok(Some(_)) => Err(CommandError::user(mrkdwn!(
                "`{}` is a deactivated Slack account.",
                id
            ))),
            Ok(None) => Err(CommandError::usage(mrkdwn!(
                "Slack knows no user `{}`: {}",
                id,
                MENTION_A_USER
            ))),
            Err(error) => {
                tracing::warn!(%error, user = %id, "users.info failed");
                Err(CommandError::user(mrkdwn!(
                    "I could not check `{}` with Slack just now: {}.",
                    id,
                    MENTION_A_USER
                )))
            }
        }
    }

    /// The channel at `i` of `args`: a channel link (`<#C…|name>`), or a bare id
    /// (`C0OPS0001`) that `conversations.info` confirms — only where a bot token
    /// is configured; otherwise refused with what to type. `#ops` typed as text
    /// is always refused: Slack's Web API looks channels up by id, not by name.
    pub async fn channel_arg(&self, args: &Args, i: usize) -> Result<ChannelId, CommandError> {
        let Some(id) = args
            .get(i)
            .and_then(Token::as_typed)
            .and_then(|w| ChannelId::parse(w).ok())
        else {
            return args.channel(i);
        };
        let Some(directory) = self.directory() else {
            return Err(CommandError::usage(mrkdwn!(
                "expected a #channel, not `{}` (without a bot token, a bare id cannot \
                 be checked with Slack): {}",
                id,
                PICK_A_CHANNEL
            )));
        };
        match directory.conversation_info(id.as_str()).await {
            Ok(Some(channel)) if !channel.is_archived => Ok(id),
            Ok(Some(_)) => Err(CommandError::user(mrkdwn!(
                "{} is archived: nothing can be posted there.",
                id.mention()
            ))),
            Ok(None) => Err(CommandError::usage(mrkdwn!(
                "Slack knows no channel `{}` that I can see: {}",
                id,
                PICK_A_CHANNEL
            ))),
            Err(error) => {
                tracing::warn!(%error, channel = %id, "conversations.info failed");
                Err(CommandError::user(mrkdwn!(
                    "I could not check `{}` with Slack just now: {}.",
                    id,
                    PICK_A_CHANNEL
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests;
