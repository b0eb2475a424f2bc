//! The command registry and matching.
//!
//! Text is tokenised ([`crate::text`]); the syntax form with the most words that
//! matches the start of the text wins (case-insensitively), and the remaining
//! tokens are the arguments. When nothing matches, the closest form by
//! Jaro-Winkler similarity (> 0.8, as Opkit had it) is offered as "did you mean".

use std::collections::HashMap;
use std::sync::Arc;

use crate::engine::command::{Args, CommandSpec};
use crate::text::Token;

/// Similarity above which a form is offered as a suggestion.
const SUGGEST_THRESHOLD: f64 = 0.8;

/// Why a bot could not be built from its scripts (a programming error in a
/// script, found at start-up rather than when someone types the command).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A [`crate::engine::Command`] was added without `.handler(…)`.
    #[error("command `{command}` has no handler")]
    NoHandler {
        /// The command's main form.
        command: String,
    },
    /// A syntax form with no words.
    #[error("command `{command}` has an empty syntax form")]
    EmptyForm {
        /// The command's main form.
        command: String,
    },
    /// Two commands claim the same syntax form (forms are matched case-insensitively).
    #[error("syntax `{form}` is claimed by both `{first}` and `{second}`")]
    FormClaimedTwice {
        /// The form.
        form: String,
        /// The command registered first.
        first: String,
        /// The command that tried to claim it again.
        second: String,
    },
}

/// All registered commands.
#[derive(Debug, Default)]
pub struct Registry {
    commands: Vec<Arc<CommandSpec>>,
    by_form: HashMap<String, usize>,
}

/// What a line of text resolves to.
#[derive(Debug)]
pub enum Resolution {
    /// Nothing was typed.
    Empty,
    /// A command matched.
    Matched {
        /// The command.
        command: Arc<CommandSpec>,
        /// The tokens after the form.
        args: Args,
    },
    /// Nothing matched.
    Unknown {
        /// The closest command, if one is close.
        suggestion: Option<Arc<CommandSpec>>,
    },
}

impl Registry {
    /// Adds commands; two commands may not share a syntax form.
    pub(crate) fn add(&mut self, specs: Vec<CommandSpec>) -> Result<(), BuildError> {
        for spec in specs {
            let index = self.commands.len();
            for form in &spec.forms {
                if form.is_empty() {
                    return Err(BuildError::EmptyForm {
                        command: spec.name.clone(),
                    });
                }
                if let Some(&other) = self.by_form.get(form) {
                    return Err(BuildError::FormClaimedTwice {
                        form: form.clone(),
                        first: self.commands[other].name.clone(),
                        second: spec.name.clone(),
                    });
                }
                self.by_form.insert(form.clone(), index);
            }
            self.commands.push(Arc::new(spec));
        }
        Ok(())
    }

    /// Every command, in registration order.
    pub fn commands(&self) -> &[Arc<CommandSpec>] {
        &self.commands
    }

    /// A command by any of its forms (`"weather in"` finds `weather`).
    pub fn find(&self, form: &str) -> Option<&Arc<CommandSpec>> {
        let form = form
            .split_whitespace()
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join(" ");
        self.by_form.get(&form).map(|&i| &self.commands[i])
    }

    /// Resolves tokenised text to a command and its arguments.
    pub fn resolve(&self, tokens: &[Token]) -> Resolution {
        if tokens.is_empty() {
            return Resolution::Empty;
        }
        // Leading plain words, lower-cased: only they can spell a form.
        let words: Vec<String> = tokens
            .iter()
            .map_while(|t| t.as_word().map(str::to_lowercase))
            .collect();
        for len in (1..=words.len()).rev() {
            if let Some(&i) = self.by_form.get(&words[..len].join(" ")) {
                return Resolution::Matched {
                    command: self.commands[i].clone(),
                    args: Args::new(tokens[len..].to_vec()),
                };
            }
        }
        Resolution::Unknown {
            suggestion: self.suggest(&words),
        }
    }

    /// The command whose form is most like the first words typed, if any is close.
    fn suggest(&self, words: &[String]) -> Option<Arc<CommandSpec>> {
        let mut best: Option<(f64, usize)> = None;
        for (form, &i) in &self.by_form {
            let n = form.split(' ').count();
            if words.len() < n {
                continue;
            }
            let typed = words[..n].join(" ");
            let score = strsim::jaro_winkler(&typed, form);
            if score > SUGGEST_THRESHOLD && best.is_none_or(|(s, _)| score > s) {
                best = Some((score, i));
            }
        }
        best.map(|(_, i)| self.commands[i].clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::command::{Command, Script};
    use crate::slack::Reply;
    use crate::text::tokenize;

    fn registry() -> Registry {
        let script = Script::<()>::new("t")
            .command(
                Command::new("weather")
                    .alias("weather in")
                    .handler(|_| Box::pin(async { Ok(Reply::text("w")) })),
            )
            .command(
                Command::new("queue join").handler(|_| Box::pin(async { Ok(Reply::text("j")) })),
            )
            .command(Command::new("queue").handler(|_| Box::pin(async { Ok(Reply::text("q")) })));
        let mut r = Registry::default();
        r.add(script.into_specs().unwrap()).unwrap();
        r
    }

    fn matched(r: &Registry, text: &str) -> (String, Vec<String>) {
        match r.resolve(&tokenize(text)) {
            Resolution::Matched { command, args } => (
                command.name.clone(),
                args.tokens().iter().map(ToString::to_string).collect(),
            ),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn longest_form_wins() {
        let r = registry();
        assert_eq!(
            matched(&r, "weather in Raleigh"),
            ("weather".into(), vec!["Raleigh".into()])
        );
        assert_eq!(
            matched(&r, "weather Raleigh"),
            ("weather".into(), vec!["Raleigh".into()])
        );
        assert_eq!(
            matched(&r, "queue join perf"),
            ("queue join".into(), vec!["perf".into()])
        );
        assert_eq!(
            matched(&r, "queue perf"),
            ("queue".into(), vec!["perf".into()])
        );
    }

    #[test]
    fn syntax_words_match_case_insensitively_but_args_keep_case() {
        let r = registry();
        assert_eq!(
            matched(&r, "QUEUE Join PerF"),
            ("queue join".into(), vec!["PerF".into()])
        );
    }

    #[test]
    fn mentions_are_args_never_syntax() {
        let r = registry();
        assert_eq!(
            matched(&r, "queue <@U1> join"),
            ("queue".into(), vec!["<@U1>".into(), "join".into()])
        );
    }

    #[test]
    fn near_misses_get_a_suggestion_and_far_misses_none() {
        let r = registry();
        match r.resolve(&tokenize("wether Paris")) {
            Resolution::Unknown {
                suggestion: Some(c),
            } => assert_eq!(c.name, "weather"),
            other => panic!("{other:?}"),
        }
        match r.resolve(&tokenize("deploy prod")) {
            Resolution::Unknown { suggestion: None } => {}
            other => panic!("{other:?}"),
        }
        assert!(matches!(r.resolve(&[]), Resolution::Empty));
    }

    #[test]
    fn two_commands_cannot_claim_one_form() {
        let mut r = registry();
        let dup = Script::<()>::new("u").command(
            Command::new("Queue  JOIN").handler(|_| Box::pin(async { Ok(Reply::text("x")) })),
        );
        let err = r.add(dup.into_specs().unwrap()).unwrap_err();
        assert!(err.to_string().contains("queue join"), "{err}");
    }
}
