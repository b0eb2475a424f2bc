//! Tokenising what a user typed.
//!
//! Slack sends mentions and links as escapes (Slack's "Formatting text for app
//! surfaces"): `<@U123>`, `<@U123|name>`, `<#C123|general>`,
//! `<https://example.com|label>`, `<mailto:a@example.com|a@example.com>`,
//! `<!subteam^S123|@oncall>`, `<!here>`. Each escape stays one token and is parsed
//! into a typed [`Token`]. Double quotes group words: `"two words"` is one token,
//! a [`Token::Quoted`] phrase that is always an argument, never a word of a
//! command's syntax (`queue "leaf"` is `queue` with the argument `leaf`, not a
//! typo of `queue leave`). Everything else splits on whitespace.
//!
//! Slack also turns what looks like a host name or an address into a link whose
//! label is what was typed: `staging.example.com` arrives as
//! `<http://staging.example.com|staging.example.com>`. [`Token::as_typed`] reads
//! such a link back as the word it was.
//!
//! ```text
//! roles grant <@U123|alice> ops for 2h
//! └─┬─┘ └─┬─┘ └─────┬─────┘ └┬┘ └┬┘ └┬┘
//!  word  word      user     word word word
//! ```
//!
//! Going the other way, [`one_line`] is how text a user typed is shown back in a
//! one-line context — an audit line, a list item, a prompt quoting a command in
//! backticks — so that it cannot start a line of its own or close the code span
//! it is quoted in.

use std::fmt;

use crate::ids::{ChannelId, UserGroupId, UserId};

/// One token of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A plain word.
    Word(String),
    /// A phrase in double quotes (`"New York"`, `"perf"`), without them.
    Quoted(String),
    /// A user mention, `<@U123>` or `<@U123|name>`.
    User {
        /// The mentioned user.
        id: UserId,
        /// The display label, if Slack sent one.
        label: Option<String>,
    },
    /// A channel mention, `<#C123|name>`.
    Channel {
        /// The mentioned channel.
        id: ChannelId,
        /// The channel name, if Slack sent one.
        label: Option<String>,
    },
    /// A link, `<https://…>` or `<https://…|label>`.
    Link {
        /// The URL.
        url: String,
        /// The link text, if any.
        label: Option<String>,
    },
    /// A user group mention, `<!subteam^S123|@oncall>`.
    UserGroup {
        /// The user group.
        id: UserGroupId,
        /// The group's handle as Slack showed it (`@oncall`), if sent.
        label: Option<String>,
    },
    /// A special mention such as `<!here>`, `<!channel>` or `<!date^…>`, without
    /// its label.
    Special(String),
}

impl Token {
    /// The token as a plain word, if it is one: what can spell a command's
    /// syntax or an option keyword (a quoted phrase cannot).
    pub fn as_word(&self) -> Option<&str> {
        match self {
            Token::Word(w) => Some(w),
            _ => None,
        }
    }

    /// What the user typed, if this token is a word: a plain word, or a link
    /// Slack made of a word — its label is the URL without `http://`,
    /// `https://` or `mailto:` (`<http://staging.example.com|staging.example.com>`
    /// is `staging.example.com`). A link whose label says something else than
    /// where it points is not a word.
    pub fn as_typed(&self) -> Option<&str> {
        match self {
            Token::Word(w) | Token::Quoted(w) => Some(w),
            Token::Link {
                url,
                label: Some(label),
            } if ["http://", "https://", "mailto:"]
                .iter()
                .any(|scheme| url.strip_prefix(scheme) == Some(label.as_str())) =>
            {
                Some(label)
            }
            _ => None,
        }
    }

    /// What kind of token this is, for an error: "a mention of a user", "a link".
    pub fn kind(&self) -> &'static str {
        match self {
            Token::Word(_) | Token::Quoted(_) => "a word",
            Token::User { .. } => "a mention of a user",
            Token::Channel { .. } => "a channel",
            Token::Link { .. } => "a link",
            Token::UserGroup { .. } => "a user group",
            Token::Special(_) => "a special mention",
        }
    }
}

impl fmt::Display for Token {
    /// Renders the token back as Slack mrkdwn (mentions stay mentions).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Word(w) if w.is_empty() || w.chars().any(char::is_whitespace) => {
                write!(f, "\"{}\"", escape_html(w))
            }
            Token::Word(w) => f.write_str(&escape_html(w)),
            Token::Quoted(w) => write!(f, "\"{}\"", escape_html(w)),
            Token::User { id, .. } => write!(f, "<@{id}>"),
            Token::Channel { id, .. } => write!(f, "<#{id}>"),
            // The URL was unescaped when read: escape it again, as Slack sends it.
            Token::Link { url, .. } => write!(f, "<{}>", escape_html(url)),
            Token::UserGroup { id, .. } => write!(f, "<!subteam^{id}>"),
            Token::Special(s) => write!(f, "<!{s}>"),
        }
    }
}

/// Splits a command line into tokens. Never fails: text that looks like an escape
/// but is not a valid one stays a plain word.
pub fn tokenize(input: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut rest = input.trim();
    while !rest.is_empty() {
        let (token, after) = next_token(rest);
        tokens.push(token);
        rest = after.trim_start();
    }
    tokens
}

fn next_token(s: &str) -> (Token, &str) {
    if let Some(body) = s.strip_prefix('<')
        && let Some(end) = body.find('>')
    {
        let inner = &body[..end];
        // Slack's escapes hold no spaces, no control or bidirectional characters
        // and no `<` (they do not nest); anything else in angle brackets is text.
        if !inner
            .chars()
            .any(|c| c == '<' || c.is_whitespace() || (c != '`' && neutralised(c)))
            && let Some(token) = parse_escape(inner)
        {
            return (token, &body[end + 1..]);
        }
    }
    if let Some(body) = s.strip_prefix('"').or_else(|| s.strip_prefix('“'))
        && let Some(end) = body.find(['"', '”'])
    {
        let close_len = body[end..].chars().next().map_or(1, char::len_utf8);
        // Slack escapes `&`, `<` and `>` inside quotes too: decode exactly once.
        return (
            Token::Quoted(unescape_html(&body[..end])),
            &body[end + close_len..],
        );
    }
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    (Token::Word(unescape_html(&s[..end])), &s[end..])
}

fn parse_escape(inner: &str) -> Option<Token> {
    let (target, label) = match inner.split_once('|') {
        Some((t, l)) => (t, Some(unescape_html(l))),
        None => (inner, None),
    };
    if let Some(id) = target.strip_prefix('@') {
        return UserId::parse(id).ok().map(|id| Token::User { id, label });
    }
    if let Some(id) = target.strip_prefix('#') {
        return ChannelId::parse(id)
            .ok()
            .map(|id| Token::Channel { id, label });
    }
    if let Some(group) = target.strip_prefix("!subteam^") {
        return UserGroupId::parse(group)
            .ok()
            .map(|id| Token::UserGroup { id, label });
    }
    if let Some(special) = target.strip_prefix('!') {
        return (!special.is_empty()).then(|| Token::Special(special.to_string()));
    }
    if target.contains("://") || target.starts_with("mailto:") {
        return Some(Token::Link {
            url: unescape_html(target),
            label,
        });
    }
    None
}

/// The most characters [`one_line`] keeps, `…` included.
pub const ONE_LINE_MAX: usize = 200;

/// Text a user typed, made safe to show in a one-line context: an audit line, a
/// list item, a prompt or an error quoting it (usually in backticks).
///
/// - line breaks (`\n`, `\r\n`, `\r`, and Unicode's line and paragraph
///   separators) become a visible `⏎`, so the text cannot begin a line that looks
///   like the bot's own;
/// - tabs, other control characters and bidirectional overrides become a space;
/// - characters that show nothing (zero-width spaces, joiners, soft hyphens,
///   invisible tags: [`is_invisible`]) are shown by their code, `⟨U+200B⟩`, so
///   a quoted value never hides one;
/// - backticks become `ˋ` (U+02CB), so the text cannot close the code span it is
///   quoted in;
/// - text longer than [`ONE_LINE_MAX`] characters is cut, ending in `…`.
///
/// Everything else, mentions and emoji included, is left as it is.
///
/// ```
/// use opkit::text::one_line;
/// assert_eq!(one_line("whoami\n• `roles grant`"), "whoami⏎• ˋroles grantˋ");
/// ```
pub fn one_line(s: &str) -> String {
    // No more characters than bytes, so nothing to cut; without `\r`, no `\r\n`
    // to fold into one mark.
    if s.len() <= ONE_LINE_MAX && !s.contains('\r') {
        return neutral_str(s);
    }
    let mut out = String::with_capacity(s.len().min(ONE_LINE_MAX * 4));
    let mut kept = 0;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if kept == ONE_LINE_MAX - 1 && chars.peek().is_some() {
            out.push('…');
            return out;
        }
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push('⏎');
            }
            c => push_neutral(c, &mut out),
        }
        kept += 1;
    }
    out
}

/// The canonical form of a command line: each token as it was parsed, rendered
/// the way Slack sends it (mentions as `<@U…>`, words with `&`, `<`, `>`
/// escaped, phrases quoted), one space between tokens, and line breaks,
/// backticks and control characters neutralised as [`one_line`] does — but never
/// shortened. What a confirmation or approval prompt shows, and what then runs:
/// [`tokenize`] reads it back to the same tokens (mention labels aside), so
/// padding, line breaks and spacing cannot hide a part of the request.
///
/// ```
/// use opkit::text::{canonical, tokenize};
/// let padded = format!("roles grant <@U0BOB|bob> {} admin", "\n".repeat(3200));
/// assert_eq!(canonical(&tokenize(&padded)), "roles grant <@U0BOB> admin");
/// ```
pub fn canonical(tokens: &[Token]) -> String {
    tokens
        .iter()
        .map(|token| match token {
            // Neutralise first, then quote: a tab inside a phrase becomes a space,
            // and the phrase is quoted for it. The only quote marks in the result
            // are those that delimit phrases: any other (`"`, `“`, `”`) would open
            // or close a phrase when read back, so it becomes `'`.
            Token::Word(w) | Token::Quoted(w) => {
                let mut shown = String::with_capacity(w.len());
                for c in w.chars() {
                    match c {
                        '"' | '“' | '”' => shown.push('\''),
                        c => push_neutral(c, &mut shown),
                    }
                }
                let w = shown;
                match token {
                    Token::Quoted(_) => Token::Quoted(w),
                    _ => Token::Word(w),
                }
                .to_string()
            }
            other => neutral_str(&other.to_string()),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// How to type `text` as one argument of a command line, so that [`tokenize`]
/// reads it back as exactly `text`: a quoted phrase — always an argument, never
/// a word of a command's syntax nor a keyword such as `for` or `in` — or, for
/// text with a double quote (which a phrase cannot hold), a plain word. `None`
/// when neither reads back exactly: text with both whitespace and a double
/// quote, or a word that starts with a quote mark.
///
/// Whatever builds a command line out of someone else's text (a button's
/// command from an AWS alarm name) quotes it with this, never by splicing it in:
/// then the text is one argument, whatever it holds.
///
/// ```
/// use opkit::text::{Token, quote, tokenize};
/// assert_eq!(quote("api 5xx").as_deref(), Some("\"api 5xx\""));
/// assert_eq!(quote("for").as_deref(), Some("\"for\""));
/// assert_eq!(quote("db\"down").as_deref(), Some("db\"down"));
/// assert_eq!(quote("a \"b"), None);
/// let typed = format!("alarms ack {} for 1h", quote("a<b & c").unwrap());
/// assert_eq!(tokenize(&typed)[2], Token::Quoted("a<b & c".into()));
/// ```
pub fn quote(text: &str) -> Option<String> {
    let phrase = Some(Token::Quoted(text.to_string()));
    // A word that starts with a quote mark would open a phrase if a later
    // argument held one.
    let word = (!text.starts_with(['"', '“'])).then(|| Token::Word(text.to_string()));
    [phrase, word].into_iter().flatten().find_map(|token| {
        let typed = token.to_string();
        (tokenize(&typed) == [token]).then_some(typed)
    })
}

/// Whether `c` shows nothing where it stands, though it is there: zero-width
/// spaces and non-joiners, word joiners, the soft hyphen, the BOM, Hangul and
/// Mongolian fillers, invisible operators and Unicode tags (which can carry a
/// hidden text). Kept out: the zero-width joiner and variation selectors,
/// which emoji are made of.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{AD}'
            | '\u{34F}'
            | '\u{61C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200C}'
            | '\u{2060}'..='\u{2064}'
            | '\u{206A}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// How [`one_line`], [`canonical`] and every quote of a command line show one
/// character: the one place that decides it.
pub(crate) fn push_neutral(c: char, out: &mut String) {
    match c {
        '\r' | '\n' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}' => out.push('⏎'),
        '`' => out.push('ˋ'),
        '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => {
            out.push(' ')
        }
        c if c.is_control() => out.push(' '),
        c if is_invisible(c) => {
            use std::fmt::Write;
            let _ = write!(out, "⟨U+{:04X}⟩", u32::from(c));
        }
        c => out.push(c),
    }
}

/// `s` as [`one_line`] shows it — line breaks as `⏎` (`\r\n` as one),
/// control characters, bidirectional overrides and invisible characters
/// neutralised — but with its backticks kept and never cut: for a sentence the
/// bot writes around values from outside (an EC2 Name tag, an alarm's name),
/// whose own code spans must stay, but where a value must not start a line of
/// its own (a made-up `> approved` line in a prompt) or reorder what is read.
///
/// ```
/// use opkit::text::unbroken;
/// assert_eq!(unbroken("reboot nl\r\n> *ok* `x`"), "reboot nl⏎> *ok* `x`");
/// assert_eq!(unbroken("a\u{202E}b"), "a b");
/// ```
pub fn unbroken(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '`' => out.push('`'),
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push('⏎');
            }
            c => push_neutral(c, &mut out),
        }
    }
    out
}

/// Whether [`push_neutral`] shows `c` as something else.
pub(crate) fn neutralised(c: char) -> bool {
    let mut shown = String::new();
    push_neutral(c, &mut shown);
    shown.chars().ne(std::iter::once(c))
}

/// Every character of `s` as [`push_neutral`] shows it, never cut.
pub(crate) fn neutral_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    // Runs of printable ASCII other than the backtick are shown as they are
    // (copied at once); every other character goes through `push_neutral`.
    let mut rest = s;
    while !rest.is_empty() {
        let plain = rest
            .bytes()
            .position(|b| !matches!(b, b' '..=b'~') || b == b'`')
            .unwrap_or(rest.len());
        out.push_str(&rest[..plain]);
        rest = &rest[plain..];
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            push_neutral(c, &mut out);
            rest = chars.as_str();
        }
    }
    out
}

/// Escapes `&`, `<` and `>` as Slack does in message text.
pub(crate) fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Slack escapes `&`, `<` and `>` in message text.
fn unescape_html(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests;
