//! A declarative command's arguments, from its usage line: each placeholder is
//! an argument with a name (what templates call it) and a kind (how
//! [`Args`](crate::engine::Args) reads it).
//!
//! ```text
//! <service>        a word (Args::word)            service = "web"
//! <@owner>         a user mention (Args::user)    owner   = "U0ALICE01"
//! <#where>         a channel link (Args::channel) where   = "C0OPS0001"
//! <reason…>        the rest of the line, as text  reason  = "disk full on db-1"
//!                  (also written <reason...>; last only)
//! [<region>]       optional (only after the required ones); absent: none
//! ```

use std::collections::BTreeMap;

use crate::engine::{Args, CommandError};
use crate::mrkdwn;
use crate::slack::mrkdwn::Code;

/// How one argument is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Word,
    User,
    Channel,
    Rest,
}

/// One argument of a usage line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Param {
    pub name: String,
    pub kind: Kind,
    pub optional: bool,
    /// The placeholder as written (`<service>`), for errors.
    pub shown: String,
}

/// The arguments of a usage line, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub params: Vec<Param>,
}

/// Names an argument cannot have: what templates see besides arguments, and
/// the template language's own words.
const RESERVED: &[&str] = &[
    "env", "secret", "json", "status", "true", "false", "none", "loop", "self", "not", "and", "or",
    "in", "is", "if", "else", "for",
];

impl Usage {
    /// Reads a usage line such as `<service> [<region>]`.
    pub fn parse(usage: &str) -> Result<Self, String> {
        let mut params: Vec<Param> = Vec::new();
        for word in usage.split_whitespace() {
            let (inner, optional) = match word.strip_prefix('[').and_then(|w| w.strip_suffix(']')) {
                Some(inner) => (inner, true),
                None => (word, false),
            };
            let Some(body) = inner.strip_prefix('<').and_then(|w| w.strip_suffix('>')) else {
                return Err(format!(
                    "`{word}` is not an argument: write each as <name>, <@user>, <#channel>, \
                     <text…> or [<optional>]"
                ));
            };
            let (body, kind) = if let Some(name) = body.strip_prefix('@') {
                (name, Kind::User)
            } else if let Some(name) = body.strip_prefix('#') {
                (name, Kind::Channel)
            } else if let Some(name) = body.strip_suffix('…').or_else(|| body.strip_suffix("..."))
            {
                (name, Kind::Rest)
            } else {
                (body, Kind::Word)
            };
            let valid = body.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && body
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                return Err(format!(
                    "`{word}`: an argument's name is lowercase letters, digits and `_`, \
                     starting with a letter"
                ));
            }
            if RESERVED.contains(&body) {
                return Err(format!("`{word}`: `{body}` is a reserved name"));
            }
            if params.iter().any(|p| p.name == body) {
                return Err(format!("`{word}`: the argument `{body}` is named twice"));
            }
            if let Some(last) = params.last() {
                if last.kind == Kind::Rest {
                    return Err(format!(
                        "`{}` takes the rest of the line: it must be last",
                        last.shown
                    ));
                }
                if last.optional && !optional {
                    return Err(format!(
                        "`{word}` is required but follows the optional `{}`",
                        last.shown
                    ));
                }
            }
            params.push(Param {
                name: body.to_string(),
                kind,
                optional,
                shown: word.to_string(),
            });
        }
        Ok(Self { params })
    }

    /// Whether `name` is one of the arguments.
    pub fn has(&self, name: &str) -> bool {
        self.params.iter().any(|p| p.name == name)
    }

    /// The arguments' values from what was typed; an absent optional one is
    /// `None`. Too many words, or a word of the wrong kind, is a usage error.
    pub fn bind(&self, args: &Args) -> Result<BTreeMap<String, Option<String>>, CommandError> {
        let mut values = BTreeMap::new();
        for (i, p) in self.params.iter().enumerate() {
            if p.optional && args.get(i).is_none() {
                values.insert(p.name.clone(), None);
                continue;
            }
            let value = match p.kind {
                Kind::Word => args.word(i, &p.shown)?.to_string(),
                Kind::User => args.user(i)?.to_string(),
                Kind::Channel => args.channel(i)?.to_string(),
                Kind::Rest if args.get(i).is_none() => {
                    return Err(CommandError::usage(mrkdwn!(
                        "missing {}",
                        Code::new(&p.shown)
                    )));
                }
                Kind::Rest => args.rest_text(i),
            };
            values.insert(p.name.clone(), Some(value));
        }
        let takes_rest = self.params.last().is_some_and(|p| p.kind == Kind::Rest);
        if !takes_rest && args.len() > self.params.len() {
            let extra = crate::text::canonical(&args.tokens()[self.params.len()..]);
            return Err(CommandError::usage(mrkdwn!(
                "{} is more than this command takes",
                Code::new(&extra)
            )));
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::tokenize;

    fn bound(usage: &str, typed: &str) -> Result<Vec<(String, Option<String>)>, String> {
        let usage = Usage::parse(usage).unwrap();
        usage
            .bind(&Args::new(tokenize(typed)))
            .map(|v| v.into_iter().collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn each_kind_is_read_as_its_entity() {
        assert_eq!(
            bound("<service> [<region>]", "web").unwrap(),
            [
                ("region".into(), None),
                ("service".into(), Some("web".into()))
            ]
        );
        assert_eq!(
            bound(
                "<@owner> <#where> <why…>",
                "<@U0ALICE01|alice> <#C0OPS0001|ops> disk R&amp;D full"
            )
            .unwrap(),
            [
                ("owner".into(), Some("U0ALICE01".into())),
                ("where".into(), Some("C0OPS0001".into())),
                ("why".into(), Some("disk R&D full".into())),
            ]
        );
        // a quoted phrase is one word, as typed
        assert_eq!(
            bound("<service>", "\"../admin?x=1&y\"").unwrap(),
            [("service".into(), Some("../admin?x=1&y".into()))]
        );
    }

    #[test]
    fn wrong_missing_or_extra_words_are_usage_errors() {
        assert!(bound("<service>", "").is_err());
        assert!(bound("<service>", "web extra").is_err());
        assert!(bound("<@owner>", "alice").is_err());
        assert!(bound("<service>", "<@U0ALICE01>").is_err());
        assert!(bound("<why…>", "").is_err());
    }

    #[test]
    fn a_usage_line_that_cannot_be_read_says_why() {
        for (usage, why) in [
            ("service", "is not an argument"),
            ("<Service>", "lowercase"),
            ("<env>", "reserved"),
            ("<a> <a>", "named twice"),
            ("<a…> <b>", "must be last"),
            ("[<a>] <b>", "follows the optional"),
        ] {
            let err = Usage::parse(usage).unwrap_err();
            assert!(err.contains(why), "{usage}: {err}");
        }
    }
}
