//! The command registry and matching.
//!
//! Text is tokenised ([`crate::text`]); the syntax form with the most words that
//! matches the start of the text wins (case-insensitively), and the remaining
//! tokens are the arguments. Only plain words spell a form: a mention, a link or
//! a quoted phrase is always an argument.
//!
//! Near misses are caught word by word, in every word of a form, not only the
//! first: `queue statuss`, `queue joni perf`, `ec2 strat web`, `roles grnt …` are
//! not taken as `queue` / `ec2` with an argument, nor refused as unknown without a
//! hint; they get "did you mean `queue status`?". A typed word is a near miss of a
//! syntax word when their optimal-string-alignment distance (a swap of two
//! neighbours counts once) is at most 1 for words of 3 to 5 letters and 2 for
//! longer ones; words of 1 or 2 letters (`in`) must be exact. When a form with more
//! words than the exact match is a near miss of what was typed, the near miss
//! wins: the reply suggests it and says how to pass the word as an argument
//! instead (quote it).
//!
//! Commands declared in a file ([`crate::declare`]; a spec with
//! [`CommandSpec::defined_at`]) are kept off the built-in ones' words: a
//! declared form may not be a built-in's form, nor begin or extend one
//! (`ec2 reboot web` would take `ec2 reboot`'s argument `web`; `roles` would
//! take the word of `roles grant`, `roles who`, …). An alias ([`CommandSpec::runs`])
//! must run a command that is not an alias, and is given that command's access
//! (besides its own) and rule: `help`, `can` and dispatch answer for it as for
//! what it runs. [`Registry::build`] is the one place all of this is checked —
//! at start-up, for each version of stored commands, and by `opkit commands
//! check|push`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::access::{Access, Alternative};
use crate::engine::command::{Args, CommandSpec};
use crate::slack::Reply;
use crate::text::Token;

/// How far a typed word may be from a syntax word of `len` characters and still
/// count as a near miss of it.
fn allowed_distance(len: usize) -> usize {
    match len {
        0..=2 => 0,
        3..=5 => 1,
        _ => 2,
    }
}

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
    #[error("syntax `{form}` is claimed by both {first} and {second}")]
    FormClaimedTwice {
        /// The form.
        form: String,
        /// The command registered first, and where it comes from: "`help`
        /// (built in)", "`deploy` (commands.toml:3)".
        first: String,
        /// The command that tried to claim it again, and where it comes from.
        second: String,
    },
    /// A declared command's form begins or extends a built-in command's form,
    /// so that it would take that command's words or arguments.
    #[error(
        "{command}: its form `{form}` {} the built-in {built_in}: a declared command may not \
         take a built-in's words; choose another name",
        if *extends { "would hide" } else { "would take the first words of" }
    )]
    HidesBuiltIn {
        /// The declared command, and where it was declared: "`roles`
        /// (commands.toml:3)".
        command: String,
        /// Its form.
        form: String,
        /// Whether it extends the built-in's form (or begins it).
        extends: bool,
        /// The built-in form: "`ec2 reboot`", "`ec2` (of `ec2 list`)".
        built_in: String,
    },
    /// An alias runs text that is not a command, or is another alias.
    #[error("{alias}: it runs `{runs}`, {why}")]
    AliasTarget {
        /// The alias, and where it was declared.
        alias: String,
        /// What it runs.
        runs: String,
        /// What is wrong with that.
        why: String,
    },
}

/// A command in an error: "`help` (built in)", "`deploy` (commands.toml:3)".
fn claimant(command: &CommandSpec) -> String {
    format!(
        "`{}` ({})",
        command.name,
        command.defined_at.as_deref().unwrap_or("built in")
    )
}

/// How many words a form has.
fn words(form: &str) -> usize {
    form.split(' ').count()
}

/// A built-in form in an error: "`ec2 reboot`", "`ec2` (of `ec2 list`)".
fn shown_built_in(form: &str, command: &str) -> String {
    if form == command {
        format!("`{form}`")
    } else {
        format!("`{form}` (of `{command}`)")
    }
}

/// Whether the words of `form` begin with the words of `prefix`.
fn begins_with(form: &str, prefix: &str) -> bool {
    form.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
}

/// What both `a` and `b` require: each way of satisfying one, together with
/// each way of satisfying the other.
fn both(a: &Access, b: &Access) -> Access {
    match (a, b) {
        (Access::Open, other) | (other, Access::Open) => other.clone(),
        (Access::AnyOf(left), Access::AnyOf(right)) => {
            let mut alternatives: Vec<Alternative> = Vec::new();
            for l in left {
                for r in right {
                    let mut roles = l.0.clone();
                    for role in &r.0 {
                        if !roles.contains(role) {
                            roles.push(role.clone());
                        }
                    }
                    let alternative = Alternative(roles);
                    if !alternatives.contains(&alternative) {
                        alternatives.push(alternative);
                    }
                }
            }
            Access::AnyOf(alternatives)
        }
    }
}

/// All registered commands.
#[derive(Debug, Default)]
pub struct Registry {
    commands: Vec<Arc<CommandSpec>>,
    by_form: HashMap<String, usize>,
    /// `help`'s listings, by the commands they list ([`Registry::listing`]).
    listings: Mutex<HashMap<Vec<bool>, Reply>>,
}

/// How many of `help`'s listings a registry keeps: one per set of commands
/// allowed, so one per access level in use; past it they are all dropped and
/// rendered again as asked.
const LISTINGS_KEPT: usize = 32;

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
    /// Nothing matched, or what was typed is a near miss of a longer form than
    /// the one it matched exactly.
    Unknown {
        /// The closest command, if one is close.
        suggestion: Option<Arc<CommandSpec>>,
        /// How many of the leading words typed the suggestion (or, without one,
        /// the first word) stands for: what to quote back as not understood.
        typed_words: usize,
        /// How many leading words matched a shorter form exactly, when a near
        /// miss of a longer form was preferred to it (1 for `queue statuss`:
        /// `queue`); 0 if none did.
        exact_words: usize,
    },
}

/// A form that is a near miss of the typed words.
struct NearMiss {
    /// Sum of the words' distances.
    distance: usize,
    /// How many words the form has.
    words: usize,
    /// The command's index.
    index: usize,
}

impl Registry {
    /// `help`'s listing of the commands `allowed` marks (one flag per command of
    /// [`Registry::commands`], in order): rendered by `render` the first time
    /// that set is asked for, then kept with this registry (at most
    /// [`LISTINGS_KEPT`] sets). A registry is replaced whole when its commands
    /// change, so a listing never outlives them; who may run what is decided
    /// before, at every call (`allowed`), never kept.
    pub(crate) fn listing(&self, allowed: &[bool], render: impl FnOnce() -> Reply) -> Reply {
        debug_assert_eq!(allowed.len(), self.commands.len());
        let listings = || self.listings.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(kept) = listings().get(allowed) {
            return kept.clone();
        }
        let reply = render();
        let mut kept = listings();
        if kept.len() >= LISTINGS_KEPT {
            kept.clear();
        }
        kept.insert(allowed.to_vec(), reply.clone());
        reply
    }

    /// The registry of `specs`: no two share a syntax form, no declared form
    /// begins or extends a built-in's, and each alias runs a command that is
    /// not an alias and answers with its access and rule (see the module's
    /// documentation).
    ///
    /// # Errors
    /// The first [`BuildError`], naming the commands and where each declared
    /// one was declared.
    pub fn build(specs: impl IntoIterator<Item = Arc<CommandSpec>>) -> Result<Self, BuildError> {
        let mut registry = Registry::default();
        registry.add_shared(specs)?;
        registry.keep_built_ins_apart()?;
        registry.link_aliases()?;
        Ok(registry)
    }

    /// Adds commands; two commands may not share a syntax form.
    #[cfg(test)]
    pub(crate) fn add(&mut self, specs: Vec<CommandSpec>) -> Result<(), BuildError> {
        self.add_shared(specs.into_iter().map(Arc::new))
    }

    /// Refuses a declared form that begins or extends a built-in's form (the
    /// error names the built-in form closest to it: `ec2 reboot`, not `ec2`).
    fn keep_built_ins_apart(&self) -> Result<(), BuildError> {
        let built_in = || self.commands.iter().filter(|c| c.defined_at.is_none());
        for declared in &self.commands {
            if declared.defined_at.is_none() {
                continue;
            }
            for form in &declared.forms {
                let closest = built_in()
                    .flat_map(|c| c.forms.iter().map(move |f| (c, f)))
                    .filter(|(_, b)| begins_with(form, b) || begins_with(b, form))
                    .min_by_key(|(_, b)| words(b).abs_diff(words(form)));
                if let Some((command, theirs)) = closest {
                    return Err(BuildError::HidesBuiltIn {
                        command: claimant(declared),
                        form: form.clone(),
                        extends: words(form) > words(theirs),
                        built_in: shown_built_in(theirs, &command.name),
                    });
                }
            }
        }
        Ok(())
    }

    /// Checks what each alias runs, and gives the alias that command's access
    /// (with its own) and rule.
    fn link_aliases(&mut self) -> Result<(), BuildError> {
        for index in 0..self.commands.len() {
            let alias = &self.commands[index];
            let Some(text) = alias.runs.clone() else {
                continue;
            };
            let refuse = |why: String| BuildError::AliasTarget {
                alias: claimant(alias),
                runs: text.clone(),
                why,
            };
            let (target, args) = match self.resolve(&crate::text::tokenize(&text)) {
                Resolution::Matched { command, args } => (command, args),
                _ => return Err(refuse("which is not a command".into())),
            };
            if target.runs.is_some() {
                return Err(refuse(format!(
                    "which is the alias `{}`: an alias runs a command, not another alias",
                    target.name
                )));
            }
            let mut linked = CommandSpec::clone(alias);
            linked.access = both(&alias.access, &target.access);
            // What keeps its target off a schedule keeps the alias off too (its
            // own gate stays its own: the target asks when the alias runs it).
            if let (None, Some(why)) = (&linked.attended, target.why_attended()) {
                linked.attended = Some(format!("runs {text}, which {why}"));
            }
            linked.rule = target.rule.clone().map(|rule| {
                let bound: Arc<crate::engine::command::RuleFn> =
                    Arc::new(move |bot, user, _typed| {
                        let (rule, args) = (rule.clone(), args.clone());
                        Box::pin(async move { rule(bot, user, &args).await })
                    });
                bound
            });
            self.commands[index] = Arc::new(linked);
        }
        Ok(())
    }

    /// Adds commands another registry holds too (see [`add`](Self::add)).
    pub(crate) fn add_shared(
        &mut self,
        specs: impl IntoIterator<Item = Arc<CommandSpec>>,
    ) -> Result<(), BuildError> {
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
                        first: claimant(&self.commands[other]),
                        second: claimant(&spec),
                    });
                }
                self.by_form.insert(form.clone(), index);
            }
            self.commands.push(spec);
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
        let exact = (1..=words.len())
            .rev()
            .find_map(|len| Some((len, *self.by_form.get(&words[..len].join(" "))?)));
        let matched = exact.map_or(0, |(len, _)| len);
        // A near miss of a longer form beats a shorter exact match: `queue
        // statuss` is a typo of `queue status`, not `queue` asked about `statuss`.
        if let Some(near) = self.nearest(&words, matched) {
            return Resolution::Unknown {
                suggestion: Some(self.commands[near.index].clone()),
                typed_words: near.words,
                exact_words: matched,
            };
        }
        match exact {
            Some((len, i)) => Resolution::Matched {
                command: self.commands[i].clone(),
                args: Args::new(tokens[len..].to_vec()),
            },
            None => Resolution::Unknown {
                suggestion: None,
                typed_words: 1,
                exact_words: 0,
            },
        }
    }

    /// The form with more than `longer_than` words that the typed words miss by
    /// the least (every word exact or a near miss, at least one a near miss); on
    /// a tie, the form with more words, then the one registered first.
    fn nearest(&self, words: &[String], longer_than: usize) -> Option<NearMiss> {
        let mut best: Option<NearMiss> = None;
        for (form, &index) in &self.by_form {
            let syntax: Vec<&str> = form.split(' ').collect();
            if syntax.len() <= longer_than || syntax.len() > words.len() {
                continue;
            }
            let mut distance = 0;
            let close = syntax.iter().zip(words).all(|(want, typed)| {
                let d = strsim::osa_distance(want, typed);
                distance += d;
                d <= allowed_distance(want.chars().count())
            });
            if !close || distance == 0 {
                continue;
            }
            let better = best.as_ref().is_none_or(|b| {
                (distance, std::cmp::Reverse(syntax.len()), index)
                    < (b.distance, std::cmp::Reverse(b.words), b.index)
            });
            if better {
                best = Some(NearMiss {
                    distance,
                    words: syntax.len(),
                    index,
                });
            }
        }
        best
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

    /// The suggestion for `text`, and how many words it stands for.
    fn suggested(r: &Registry, text: &str) -> Option<(String, usize)> {
        match r.resolve(&tokenize(text)) {
            Resolution::Unknown {
                suggestion,
                typed_words,
                ..
            } => suggestion.map(|c| (c.name.clone(), typed_words)),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn near_misses_get_a_suggestion_and_far_misses_none() {
        let r = registry();
        assert_eq!(suggested(&r, "wether Paris"), Some(("weather".into(), 1)));
        assert_eq!(suggested(&r, "deploy prod"), None);
        assert!(matches!(r.resolve(&[]), Resolution::Empty));
    }

    #[test]
    fn a_typo_in_a_later_word_is_a_near_miss_not_an_argument() {
        // the defect: `queue statuss` ran `queue` with the argument `statuss`
        let r = registry();
        assert_eq!(
            suggested(&r, "queue jion perf"),
            Some(("queue join".into(), 2))
        );
        assert_eq!(
            suggested(&r, "queue joni perf"),
            Some(("queue join".into(), 2))
        );
        assert_eq!(suggested(&r, "qeue join"), Some(("queue join".into(), 2)));
        match r.resolve(&tokenize("queue joins perf")) {
            Resolution::Unknown { exact_words, .. } => {
                assert_eq!(exact_words, 1, "`queue` matched exactly");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn far_words_and_quoted_words_stay_arguments() {
        let r = registry();
        // `perf` is nothing like `join`; two-letter syntax words must be exact
        assert_eq!(
            matched(&r, "queue perf"),
            ("queue".into(), vec!["perf".into()])
        );
        assert_eq!(
            matched(&r, "weather is Paris"),
            ("weather".into(), vec!["is".into(), "Paris".into()])
        );
        // a quoted phrase is always an argument, even one that looks like a typo
        assert_eq!(
            matched(&r, "queue \"joins\""),
            ("queue".into(), vec!["\"joins\"".into()])
        );
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
