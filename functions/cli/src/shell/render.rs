//! Replies for a terminal: Slack's mrkdwn made readable.
//!
//! ```text
//! <@U0BOB>  <@U0BOB|bob>          @U0BOB  @bob
//! <#C0123|ops>  <#C0123>          #ops    #C0123
//! <!here>  <!subteam^S1|@oncall>  @here   @oncall
//! <!date^1700000000^{date}|…>     the time in the shell's zone (OPKIT_TIME_ZONE, else this machine's)
//! <https://x.example|docs>        docs (https://x.example)
//! &lt; &gt; &amp;                 < > &   (decoded once, after the markup is read)
//! *bold*  _italic_                bold and italic on a colour terminal; as typed otherwise
//! `code`  :emoji:                 kept as they are (in code, mentions stay as typed)
//! ```
//!
//! Formatting follows Slack's rules (mrkdwn reference, "Formatting text for app
//! surfaces"): a `*` opens bold only at the start of a word and closes at the end
//! of one, on the same line, and nothing inside a `code` span is formatting.

use chrono::DateTime;
use opkit::slack::{Block, Reply};
use opkit::timespec::{Tz, format_time_in};

const BOLD: (&str, &str) = ("\x1b[1m", "\x1b[22m");
const ITALIC: (&str, &str) = ("\x1b[3m", "\x1b[23m");

/// How to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// Bold and italic as terminal escapes (a colour terminal without `NO_COLOR`).
    pub color: bool,
    /// The zone Slack's date tokens are shown in.
    pub zone: Tz,
}

impl Style {
    /// Colour when standard output is a terminal that wants it; dates in `zone`.
    pub fn for_stdout(zone: Tz) -> Self {
        use std::io::IsTerminal;
        let color = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::env::var("TERM").map_or(true, |t| t != "dumb");
        Style { color, zone }
    }
}

/// The reply as the terminal shows it: its blocks when they carry text (they hold
/// the whole answer; `text` is Slack's notification fallback), else its text.
/// Buttons are left out: the shell asks its own question.
pub fn reply(reply: &Reply, style: Style) -> String {
    let parts: Vec<String> = reply
        .blocks
        .iter()
        .filter_map(|block| match block {
            Block::Section { text } | Block::Context { text } => Some(mrkdwn(text, style)),
            Block::Header { text } => Some(if style.color {
                format!("{}{}{}", BOLD.0, text, BOLD.1)
            } else {
                text.clone()
            }),
            Block::Divider => Some("—".repeat(8)),
            Block::Actions { .. } => None,
        })
        .collect();
    if parts.iter().any(|p| !p.is_empty() && p != &"—".repeat(8)) {
        parts.join("\n")
    } else {
        mrkdwn(&reply.text, style)
    }
}

/// One mrkdwn text, rendered.
pub fn mrkdwn(text: &str, style: Style) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut code = false;
    // Where the open bold / italic closes, and with what.
    let mut closes: Vec<(usize, &str)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(pos) = closes.iter().position(|(at, _)| *at == i) {
            out.push_str(closes.remove(pos).1);
            i += 1;
            continue;
        }
        match c {
            '`' => {
                code = !code;
                out.push(c);
            }
            // Inside code, markup is what to type: `roles revoke <@U2> ops`.
            '<' if code => out.push(c),
            '<' => match chars[i + 1..].iter().position(|&c| c == '>') {
                Some(len) => {
                    let inner: String = chars[i + 1..i + 1 + len].iter().collect();
                    out.push_str(&entity(&inner, style.zone));
                    i += len + 2;
                    continue;
                }
                None => out.push(c),
            },
            '&' => {
                let rest: String = chars[i..chars.len().min(i + 5)].iter().collect();
                let (decoded, len) = if rest.starts_with("&lt;") {
                    ('<', 4)
                } else if rest.starts_with("&gt;") {
                    ('>', 4)
                } else if rest.starts_with("&amp;") {
                    ('&', 5)
                } else {
                    ('&', 1)
                };
                out.push(decoded);
                i += len;
                continue;
            }
            '*' | '_' if style.color && !code => {
                let (on, off) = if c == '*' { BOLD } else { ITALIC };
                match span_end(&chars, i) {
                    Some(end) if !closes.iter().any(|(_, o)| *o == off) => {
                        out.push_str(on);
                        closes.push((end, off));
                    }
                    _ => out.push(c),
                }
            }
            _ => out.push(c),
        }
        i += 1;
    }
    // A span whose end was inside an entity still ends.
    for (_, off) in closes {
        out.push_str(off);
    }
    out
}

/// Where the bold or italic span opened at `start` closes, if it is one: the
/// marker opens a word, and the same marker ends a word later on the line.
fn span_end(chars: &[char], start: usize) -> Option<usize> {
    let marker = chars[start];
    let opens_word = start == 0 || !chars[start - 1].is_alphanumeric();
    let next = chars.get(start + 1)?;
    if !opens_word || next.is_whitespace() || *next == marker {
        return None;
    }
    (start + 2..chars.len())
        .take_while(|&j| chars[j] != '\n' && chars[j] != '`')
        .find(|&j| {
            chars[j] == marker
                && !chars[j - 1].is_whitespace()
                && chars.get(j + 1).is_none_or(|c| !c.is_alphanumeric())
        })
}

/// What one `<…>` stands for.
fn entity(inner: &str, zone: Tz) -> String {
    let (target, label) = match inner.split_once('|') {
        Some((t, l)) => (t, Some(decode(l))),
        None => (inner, None),
    };
    match target.chars().next() {
        Some('@') => label.map_or_else(|| target.to_string(), |l| format!("@{l}")),
        Some('#') => label.map_or_else(|| target.to_string(), |l| format!("#{l}")),
        Some('!') => special(&target[1..], label, zone),
        _ => {
            let url = decode(target);
            match label {
                Some(l) if !l.is_empty() && l != url && !url.ends_with(&format!("//{l}")) => {
                    format!("{l} ({url})")
                }
                Some(l) if !l.is_empty() => l,
                _ => url,
            }
        }
    }
}

/// `<!here>`, `<!subteam^…>`, `<!date^…>` and their kin.
fn special(target: &str, label: Option<String>, zone: Tz) -> String {
    let mut parts = target.split('^');
    match parts.next().unwrap_or_default() {
        "here" | "channel" | "everyone" => format!("@{target}"),
        "date" => parts
            .next()
            .and_then(|ts| ts.parse::<i64>().ok())
            .and_then(|ts| DateTime::from_timestamp(ts, 0))
            .map(|at| format_time_in(at, zone))
            .or(label)
            .unwrap_or_else(|| format!("<!{target}>")),
        "subteam" => label.unwrap_or_else(|| format!("@{}", parts.next().unwrap_or("team"))),
        _ => label.unwrap_or_else(|| format!("<!{target}>")),
    }
}

fn decode(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Style = Style {
        color: false,
        zone: Tz::UTC,
    };
    const COLOR: Style = Style {
        color: true,
        zone: Tz::UTC,
    };

    #[test]
    fn mentions_channels_and_links_are_readable() {
        assert_eq!(
            mrkdwn(
                "<@U0BOB> and <@U0AL|al> in <#C0123|ops> (<#C0999>), <!here>, <!subteam^S1|@oncall>",
                PLAIN
            ),
            "@U0BOB and @al in #ops (#C0999), @here, @oncall"
        );
        assert_eq!(
            mrkdwn(
                "see <https://example.com/a?b=1&amp;c=2|the docs>, <http://staging.example.com|staging.example.com>, <https://x.example>",
                PLAIN
            ),
            "see the docs (https://example.com/a?b=1&c=2), staging.example.com, https://x.example"
        );
    }

    #[test]
    fn entities_are_decoded_once_and_markup_typed_by_a_user_stays_text() {
        // what a user typed reaches a reply escaped: it is shown, never read as markup
        assert_eq!(
            mrkdwn("no town called &lt;!channel&gt; &amp;lt; R&amp;D", PLAIN),
            "no town called <!channel> &lt; R&D"
        );
        assert_eq!(mrkdwn("a < b & c", PLAIN), "a < b & c");
    }

    #[test]
    fn bold_and_italic_follow_slacks_word_rules_and_only_in_colour() {
        assert_eq!(
            mrkdwn("*perf* is _free_ :white_check_mark:", COLOR),
            "\x1b[1mperf\x1b[22m is \x1b[3mfree\x1b[23m :white_check_mark:"
        );
        assert_eq!(
            mrkdwn("*perf* is _free_ :white_check_mark:", PLAIN),
            "*perf* is _free_ :white_check_mark:"
        );
        // not formatting: inside a word, with a space inside the marker, across a
        // line, inside code
        for text in [
            "2*3*4",
            "snake_case_name",
            "* not bold *",
            "*one\ntwo*",
            "`*code*`",
            "every */5 * * * *",
        ] {
            assert_eq!(mrkdwn(text, COLOR), text, "{text:?}");
        }
        assert_eq!(
            mrkdwn("<@U1> withdrew `roles revoke <@U2> &lt;x&gt;`", PLAIN),
            "@U1 withdrew `roles revoke <@U2> <x>`"
        );
        assert_eq!(
            mrkdwn("*<@U1>* holds it", COLOR),
            "\x1b[1m@U1\x1b[22m holds it"
        );
    }

    #[test]
    fn dates_show_in_local_time_and_unknown_specials_keep_their_label() {
        let shown = mrkdwn(
            "ends <!date^1800000000^{date_short} {time}|2027-01-15 08:00 UTC>",
            PLAIN,
        );
        assert_eq!(shown, "ends 2027-01-15 08:00 UTC");
        let tokyo = Style {
            zone: Tz::Asia__Tokyo,
            ..PLAIN
        };
        assert_eq!(
            mrkdwn(
                "ends <!date^1800000000^{date_short} {time}|2027-01-15 08:00 UTC>",
                tokyo
            ),
            "ends 2027-01-15 17:00 JST"
        );
        assert_eq!(mrkdwn("<!date^soon|later>", PLAIN), "later");
        assert_eq!(mrkdwn("<!whatever>", PLAIN), "<!whatever>");
        assert_eq!(mrkdwn("an open < bracket", PLAIN), "an open < bracket");
    }

    #[test]
    fn blocks_carry_the_answer_and_buttons_are_left_out() {
        let r = Reply::text("fallback")
            .block(Block::Header {
                text: "Queue".into(),
            })
            .block(Block::Section {
                text: opkit::mrkdwn!("*perf*: {}", u("U1").mention()),
            })
            .block(Block::Divider)
            .block(Block::Context {
                text: opkit::mrkdwn!("asked by {}", u("U2").mention()),
            })
            .block(Block::Actions { buttons: vec![] });
        assert_eq!(
            reply(&r, PLAIN),
            "Queue\n*perf*: @U1\n————————\nasked by @U2"
        );
        let just = Reply::text(opkit::mrkdwn!("just {}", u("U1").mention()));
        assert_eq!(reply(&just, PLAIN), "just @U1");
        // A literal's angle brackets are text, and read as typed.
        assert_eq!(
            reply(&Reply::text("help <command>"), PLAIN),
            "help <command>"
        );
    }

    fn u(id: &str) -> opkit::ids::UserId {
        opkit::ids::UserId::parse(id).unwrap()
    }
}
