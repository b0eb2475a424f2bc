//! Slack mrkdwn the bot writes, and the one way text it did not write gets in.
//!
//! Slack reads `&`, `<` and `>` in message text as markup: `<!channel>` pings a
//! channel, `<https://evil|docs>` draws a disguised link
//! ([Formatting text for app surfaces](https://docs.slack.dev/messaging/formatting-message-text#escaping)
//! asks apps to escape exactly these three). So every reply, error, prompt, notice
//! and audit line is a [`Mrkdwn`], and a `String` cannot become one:
//!
//! - a string literal is bot-made markup (`Mrkdwn::from("*done*")`);
//! - [`mrkdwn!`](crate::mrkdwn!) formats like `format!`, but each argument must be a
//!   [`Fragment`]: another `Mrkdwn`, a number, a validated id or role, a
//!   [`UserText`] (escaped), a [`Code`] span (escaped, on one line) or a mention
//!   made by a typed constructor ([`UserId::mention`]). A `String` argument does
//!   not compile, nor does a name captured inside the braces (`{name}`);
//! - text from anywhere else — what a user typed, a name AWS or a weather service
//!   returned, an error message quoting either — goes in as a [`UserText`].
//!
//! [`cut_list`] is the one cutter for lists: it keeps whole items that fit in a
//! budget of characters and ends with "…and N more" and a hint to narrow the query.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use crate::ids::{ChannelId, Role, TeamId, UserId};
use crate::text::{Token, escape_html, neutral_str, one_line};

/// Slack mrkdwn written by the bot: markup that is meant to be markup. Built from
/// string literals, [`mrkdwn!`](crate::mrkdwn!), and [`Fragment`]s; never from a
/// `String` of unknown origin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Mrkdwn(String);

impl Mrkdwn {
    /// Empty markup.
    pub fn new() -> Self {
        Self::default()
    }

    /// The markup as Slack receives it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The markup as Slack receives it.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Appends a fragment.
    pub fn push(&mut self, fragment: impl Fragment) {
        fragment.render(&mut self.0);
    }

    /// `self` followed by `fragment`.
    pub fn and(mut self, fragment: impl Fragment) -> Self {
        self.push(fragment);
        self
    }

    /// Joins `parts` with `separator` (a literal, such as `"\n"` or `", "`).
    pub fn join(parts: impl IntoIterator<Item = Mrkdwn>, separator: &'static str) -> Mrkdwn {
        let mut out = Mrkdwn::new();
        for (i, part) in parts.into_iter().enumerate() {
            if i > 0 {
                out.0.push_str(separator);
            }
            out.0.push_str(&part.0);
        }
        out
    }

    /// Used by [`mrkdwn!`](crate::mrkdwn!) only: every argument there is a
    /// [`Fragment`], so the formatted text is markup the bot made.
    #[doc(hidden)]
    pub fn __format(args: fmt::Arguments<'_>) -> Self {
        Self(fmt::format(args))
    }

    /// The markup cut to at most `max` characters, ending in `…` when cut, never
    /// inside an escape (`&amp;`) or an entity (`<@U1>`, `<https://…|label>`).
    pub fn cut(&self, max: usize) -> Mrkdwn {
        if self.chars() <= max {
            return self.clone();
        }
        match cut_point(&self.0, max.saturating_sub(1)) {
            None => self.clone(),
            Some(at) => Mrkdwn(format!("{}…", &self.0[..at])),
        }
    }

    /// A piece of markup cut from a [`Mrkdwn`] where no escape or entity was
    /// open ([`cut_point`], or a line break).
    pub(crate) fn from_piece(piece: String) -> Self {
        Self(piece)
    }

    /// The length Slack counts: characters, not bytes.
    pub fn chars(&self) -> usize {
        self.0.chars().count()
    }
}

impl From<&'static str> for Mrkdwn {
    /// A literal is markup the bot wrote: its `*bold*`, `_italics_` and backticks
    /// are formatting, but `&`, `<` and `>` in it are text (a grammar such as
    /// `help <command>`), escaped; mentions and links come from typed constructors.
    fn from(s: &'static str) -> Self {
        Self(escape_html(s))
    }
}

impl From<UserText> for Mrkdwn {
    fn from(text: UserText) -> Self {
        Mrkdwn::new().and(text)
    }
}

impl From<Code> for Mrkdwn {
    fn from(code: Code) -> Self {
        Mrkdwn::new().and(code)
    }
}

impl fmt::Display for Mrkdwn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for Mrkdwn {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Mrkdwn {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Mrkdwn {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for Mrkdwn {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<Mrkdwn> for &str {
    fn eq(&self, other: &Mrkdwn) -> bool {
        *self == other.0
    }
}

/// Text the bot did not write — typed by a user, returned by AWS or another
/// service — shown as data: `&`, `<` and `>` are escaped, so it can never ping,
/// mention or link. Takes the text decoded (as [`tokenize`](crate::text::tokenize)
/// gives it): it is escaped exactly once, here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserText(String);

impl UserText {
    /// The text as it is, line breaks included (a message body, an upload comment).
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The text on one line ([`one_line`]): a list item, an audit line, an error
    /// quoting it.
    pub fn line(text: &str) -> Self {
        Self(one_line(text))
    }

    /// The text on one line as [`line`](Self::line) shows it, but never cut: a
    /// name from outside (an alarm's, an instance's) or a reason, shown whole
    /// where a line break in it would make a line of its own.
    pub fn flat(text: &str) -> Self {
        Self(crate::text::neutral_str(text))
    }

    /// The text as it was given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Text the bot did not write, in a code span: on one line ([`one_line`], which
/// also turns backticks into `ˋ` so the span cannot be closed early), escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code(String);

impl Code {
    /// `text` for a code span.
    pub fn new(text: &str) -> Self {
        Self(one_line(text))
    }
}

/// A command line in canonical form ([`canonical`](crate::text::canonical)), quoted
/// in a code span, as prompts and their outcomes show the request: user and
/// channel mentions stay readable, anything else in angle brackets (`<!channel>`,
/// a link) is shown as text, never live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine(String);

impl CommandLine {
    /// Quotes `canonical`, a command line made by [`canonical`](crate::text::canonical).
    pub fn new(canonical: &str) -> Self {
        Self(canonical.to_owned())
    }
}

impl Fragment for CommandLine {
    fn render(&self, out: &mut String) {
        out.push('`');
        // Canonical words carry `<` and `>` escaped, so each raw `<` opens an
        // entity; only user and channel mentions stay entities. Line breaks and
        // backticks were neutralised by `canonical`; again here (never cut: a
        // prompt shows a request in full), in case the text did not come from it.
        let text = neutral_str(&self.0);
        let mut rest = text.as_str();
        while let Some(start) = rest.find('<') {
            out.push_str(&rest[..start].replace('>', "&gt;"));
            let entity = &rest[start..];
            let end = entity.find('>').map_or(entity.len(), |e| e + 1);
            if entity.starts_with("<@") || entity.starts_with("<#") {
                out.push_str(&entity[..end]);
            } else {
                out.push_str(&entity[..end].replace('<', "&lt;").replace('>', "&gt;"));
            }
            rest = &entity[end..];
        }
        out.push_str(&rest.replace('>', "&gt;"));
        out.push('`');
    }
}

/// A token as the user typed it: a user or channel mention stays one, a word is
/// text on one line (quoted if it is a phrase), and anything else — a special or
/// user group mention (`<!channel>`, `<!subteam^S1>`), a link — is shown as
/// text, never live.
impl Fragment for Token {
    fn render(&self, out: &mut String) {
        match self {
            Token::User { id, .. } => out.push_str(&id.mention()),
            Token::Channel { id, .. } => out.push_str(&id.mention()),
            Token::Word(w) if w.is_empty() || w.chars().any(char::is_whitespace) => {
                out.push('"');
                UserText::line(w).render(out);
                out.push('"');
            }
            Token::Word(w) => UserText::line(w).render(out),
            Token::Link { url, .. } => UserText::line(&format!("<{url}>")).render(out),
            // A special or user group mention would ping: as Slack sent it, as text.
            other => UserText::line(&other.to_string()).render(out),
        }
    }
}

/// A piece that may go into [`Mrkdwn`]: it renders itself as safe markup.
pub trait Fragment {
    /// Appends the fragment's markup to `out`.
    fn render(&self, out: &mut String);
}

impl<T: Fragment + ?Sized> Fragment for &T {
    fn render(&self, out: &mut String) {
        (**self).render(out);
    }
}

impl Fragment for Mrkdwn {
    fn render(&self, out: &mut String) {
        out.push_str(&self.0);
    }
}

/// A literal, as [`Mrkdwn::from`] takes it (`&`, `<` and `>` escaped); a borrowed
/// `&str` of shorter life is not a fragment (wrap it in [`UserText`]).
impl Fragment for &'static str {
    fn render(&self, out: &mut String) {
        out.push_str(&escape_html(self));
    }
}

impl Fragment for UserText {
    fn render(&self, out: &mut String) {
        out.push_str(&escape_html(&self.0));
    }
}

impl Fragment for Code {
    fn render(&self, out: &mut String) {
        out.push('`');
        out.push_str(&escape_html(&self.0));
        out.push('`');
    }
}

impl<T: Fragment> Fragment for Option<T> {
    /// Nothing for `None`.
    fn render(&self, out: &mut String) {
        if let Some(fragment) = self {
            fragment.render(out);
        }
    }
}

macro_rules! displayed_fragment {
    ($($t:ty),* $(,)?) => {$(
        /// Rendered with `Display`: its characters are never markup.
        impl Fragment for $t {
            fn render(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}

// Numbers, and ids whose parsers admit only letters, digits, `-` and `_`.
displayed_fragment!(
    u8, u16, u32, u64, usize, i32, i64, f64, char, UserId, ChannelId, TeamId, Role
);

/// A time, as the bot shows times ([`format_time`](crate::timespec::format_time)).
impl Fragment for chrono::DateTime<chrono::Utc> {
    fn render(&self, out: &mut String) {
        out.push_str(crate::timespec::format_time(*self).as_str());
    }
}

/// A duration, as the bot shows durations
/// ([`format_duration`](crate::timespec::format_duration)).
impl Fragment for chrono::Duration {
    fn render(&self, out: &mut String) {
        out.push_str(&crate::timespec::format_duration(*self));
    }
}

/// Used by [`mrkdwn!`](crate::mrkdwn!): shows a [`Fragment`] through `Display`, so
/// width and alignment (`{:<8}`) still work.
#[doc(hidden)]
pub struct Shown<'a, T: Fragment + ?Sized>(pub &'a T);

impl<T: Fragment + ?Sized> fmt::Display for Shown<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.0.render(&mut out);
        f.pad(&out)
    }
}

/// Used by [`mrkdwn!`](crate::mrkdwn!) at compile time: true when every `{` of
/// `format` opens an unnamed placeholder (`{}` or `{:…}`) or is doubled (`{{`).
/// A name inside the braces would be captured by `format_args!` without passing
/// through [`Fragment`]. `&`, `<` and `>` are refused too: in a format string
/// they would reach Slack unescaped.
#[doc(hidden)]
pub const fn __unnamed_placeholders(format: &str) -> bool {
    let bytes = format.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if matches!(bytes[i], b'&' | b'<' | b'>') {
            return false;
        }
        if bytes[i] == b'{' {
            if i + 1 >= bytes.len() {
                return false;
            }
            match bytes[i + 1] {
                b'{' => i += 1,
                b'}' => {}
                // A format spec (`{:>8}`) may hold `<` or `>`: skip to its end.
                b':' => {
                    while i < bytes.len() && bytes[i] != b'}' {
                        i += 1;
                    }
                }
                _ => return false,
            }
        }
        i += 1;
    }
    true
}

/// Formats [`Mrkdwn`] like `format!`, from [`Fragment`]s only.
///
/// ```
/// use opkit::mrkdwn;
/// use opkit::slack::mrkdwn::{Code, UserText};
/// let town = "<!channel> & co";
/// let reply = mrkdwn!("I do not know a town called {} ({}).", UserText::line(town), Code::new("weather"));
/// assert_eq!(reply, "I do not know a town called &lt;!channel&gt; &amp; co (`weather`).");
/// ```
///
/// A `String` does not compile (wrap it in [`UserText`]):
///
/// ```compile_fail
/// let town = String::from("<!channel>");
/// let _ = opkit::mrkdwn!("town: {}", town);
/// ```
///
/// Nor does an angle bracket in the format string (write it as text, through a
/// fragment):
///
/// ```compile_fail
/// let _ = opkit::mrkdwn!("<!channel> {}", 1);
/// ```
///
/// Nor does a name captured inside the braces:
///
/// ```compile_fail
/// let town = String::from("<!channel>");
/// let _ = opkit::mrkdwn!("town: {town}");
/// ```
#[macro_export]
macro_rules! mrkdwn {
    ($format:literal $(, $arg:expr)* $(,)?) => {{
        const _: () = ::core::assert!(
            $crate::slack::mrkdwn::__unnamed_placeholders($format),
            "mrkdwn!: use empty placeholders with Fragment arguments (a name in braces would not be escaped), and no `&`, `<` or `>` in the format string"
        );
        $crate::slack::mrkdwn::Mrkdwn::__format(::core::format_args!(
            $format $(, $crate::slack::mrkdwn::Shown(&$arg))*
        ))
    }};
}

/// How many characters [`fit_list`] lets a list take: with a heading, it fits one
/// section block (3,000) and the `text` guidance (4,000).
pub const LIST_BUDGET: usize = 2_500;

/// `items`, one a line, cut to at most `budget` characters (counted as Slack
/// counts them, in characters): whole items are kept while they fit, then a last
/// line says "…and N more." followed by `hint` (how to narrow the query). An item
/// longer than the whole budget is itself cut, never inside an escape or entity.
pub fn cut_list(items: Vec<Mrkdwn>, budget: usize, hint: &Mrkdwn) -> Mrkdwn {
    let (mut kept, more) = fit_items(items, budget, hint);
    kept.extend(more);
    Mrkdwn::join(kept, "\n")
}

/// [`cut_list`] with the [`LIST_BUDGET`].
pub fn fit_list(items: Vec<Mrkdwn>, hint: &Mrkdwn) -> Mrkdwn {
    cut_list(items, LIST_BUDGET, hint)
}

/// The cutter itself, for lists shown in a frame of their own (a code block):
/// the items that fit in `budget` characters, one a line, with room for the
/// "…and N more" line, which comes second when anything was left out.
pub fn fit_items(
    items: Vec<Mrkdwn>,
    budget: usize,
    hint: &Mrkdwn,
) -> (Vec<Mrkdwn>, Option<Mrkdwn>) {
    let total: usize = items.iter().map(|i| i.chars() + 1).sum::<usize>();
    if total <= budget + 1 {
        return (items, None);
    }
    let count = items.len();
    // The last line at its longest (every item left out), so the kept ones
    // always leave room for it.
    let tail = more_line(count, hint).chars() + 1;
    let mut kept = Vec::new();
    let mut used = 0;
    for item in items {
        let len = item.chars() + 1;
        if used + len + tail > budget {
            if kept.is_empty() {
                // Even one item does not fit: show the start of it.
                kept.push(item.cut(budget.saturating_sub(tail + 1)));
            }
            break;
        }
        used += len;
        kept.push(item);
    }
    let more = more_line(count - kept.len(), hint);
    (kept, Some(more))
}

/// "…and `n` more." and the `hint`: the last line of a list that was cut.
pub fn more_line(n: usize, hint: &Mrkdwn) -> Mrkdwn {
    crate::mrkdwn!("…and {} more. {}", n, hint)
}

/// The byte index at which to cut `s` so that at most `max` characters remain and
/// no escape or entity is left open; `None` when `s` already fits.
///
/// Reads bytes, not decoded characters: every byte that decides something is
/// ASCII (`<`, `>`, `&`, `;`, whitespace), a character starts at each byte that
/// is not a UTF-8 continuation byte, and only a non-ASCII character inside an
/// escape is decoded (is it whitespace?).
pub(crate) fn cut_point(s: &str, max: usize) -> Option<usize> {
    if s.len() <= max {
        return None; // no more characters than bytes
    }
    // Where the escape or entity now open starts, and whether it is an escape.
    let mut open: Option<usize> = None;
    let mut escape = false;
    let mut count = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if b & 0xC0 == 0x80 {
            continue;
        }
        if count == max {
            return Some(open.unwrap_or(i));
        }
        count += 1;
        match b {
            b'<' => (open, escape) = (Some(i), false),
            b'&' if open.is_none() => (open, escape) = (Some(i), true),
            b'>' => open = None,
            b';' if escape && open.is_some() => open = None,
            b if escape && open.is_some() && starts_whitespace(s, i, b) => open = None,
            _ => {}
        }
    }
    None
}

/// Whether the character starting at byte `i` of `s` (whose first byte is `b`)
/// is whitespace.
fn starts_whitespace(s: &str, i: usize, b: u8) -> bool {
    if b.is_ascii() {
        (b as char).is_whitespace()
    } else {
        s[i..].chars().next().is_some_and(char::is_whitespace)
    }
}

impl UserId {
    /// A mention of this user, `<@U…>`: Slack shows their name.
    pub fn mention(&self) -> Mrkdwn {
        Mrkdwn(format!("<@{self}>"))
    }
}

impl ChannelId {
    /// A link to this channel, `<#C…>`: Slack shows its name.
    pub fn mention(&self) -> Mrkdwn {
        Mrkdwn(format!("<#{self}>"))
    }
}

/// A link the bot makes, `<url|label>`: the URL is escaped, the label is shown as
/// text (escaped; `|` would end nothing, Slack reads up to `>`).
pub fn link(url: &str, label: &UserText) -> Mrkdwn {
    let label = escape_html(&one_line(label.as_str())).replace('|', "¦");
    Mrkdwn(format!(
        "<{}|{label}>",
        escape_html(url).replace('|', "%7C")
    ))
}

#[cfg(test)]
mod tests;
