//! Which alarm a command means when several accounts or regions have one of
//! that name: `alarms ack|mute|unmute <name> [in <account> [<region>]]`.
//!
//! ```text
//! in 222222222222 us-west-2    the account id and region a notification shows
//!                              (what its buttons carry: exact)
//! in staging                   an account of OPKIT_ACCOUNTS, by name: its role's
//!                              account id; the bot's own account (no role): any
//!                              account that is not another's
//! in us-west-2                 a region, any account
//! ```
//!
//! Incidents are kept per account, region and name (`AlarmRecord::key`); a
//! command acts on the one its words pick, and a name that picks several
//! asks which, listing each with the words that name it.

use opkit::engine::command::{Args, CommandError};
use opkit::slack::mrkdwn::{Code, Mrkdwn};
use opkit::text::Token;

use super::event::AlarmFacts;
use crate::accounts::{AccountBook, in_clause_start, is_region_shaped};

/// Which accounts and regions a command's alarm may be in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    account: Option<AccountMatch>,
    region: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AccountMatch {
    /// This account id.
    Id(String),
    /// The bot's own account, named: any account but these (the others' ids).
    NotAny(Vec<String>),
}

impl Scope {
    /// Whether an alarm with `facts` is in scope.
    pub fn covers(&self, facts: &AlarmFacts) -> bool {
        let account = match &self.account {
            None => true,
            Some(AccountMatch::Id(id)) => facts.account == *id,
            Some(AccountMatch::NotAny(others)) => !others.contains(&facts.account),
        };
        account && self.region.as_ref().is_none_or(|r| facts.region == *r)
    }

    /// The refusal to give when nothing in scope was found because the region
    /// typed is no region at all (`in us-west-3`): neither one AWS lists or an
    /// account names (`book`), nor one a notification came from (`seen`, so a
    /// region launched after this bot was built still answers once its alarms
    /// have been heard). `None` when the region is real or none was typed.
    pub fn unknown_region<'a>(
        &self,
        book: &AccountBook,
        mut seen: impl Iterator<Item = &'a str>,
    ) -> Option<CommandError> {
        let region = self.region.as_deref()?;
        (!book.knows_region(region) && !seen.any(|r| r == region))
            .then(|| book.unknown_region(region))
    }

    /// Whether nothing narrows it.
    pub fn is_everywhere(&self) -> bool {
        self.account.is_none() && self.region.is_none()
    }
}

/// The words a button carries to name exactly the alarm of `facts`:
/// `in <account id> <region>`. `None` when the event's account is not 12
/// digits or its region not a region's shape: no command can name it.
pub fn words(facts: &AlarmFacts) -> Option<String> {
    let account_ok = facts.account.len() == 12 && facts.account.bytes().all(|b| b.is_ascii_digit());
    (account_ok && is_region_shaped(&facts.region))
        .then(|| format!("in {} {}", facts.account, facts.region))
}

/// Takes the `in …` words out of `args`: an account (a 12-digit id, or a name
/// of `book`) and a region, either or both, in either order. `in` is a plain
/// word followed by a word, as for every AWS command; quoted, it is an argument.
pub fn split_scope(args: &Args, book: &AccountBook) -> Result<(Args, Scope), CommandError> {
    let tokens = args.tokens();
    let Some(start) = in_clause_start(tokens)? else {
        return Ok((args.clone(), Scope::default()));
    };
    let mut scope = Scope::default();
    let mut end = start + 1;
    while let Some(word) = tokens.get(end).and_then(Token::as_word) {
        if end > start + 2 {
            break;
        }
        let lower = word.to_ascii_lowercase();
        if scope.region.is_none() && is_region_shaped(&lower) {
            scope.region = Some(lower);
        } else if scope.account.is_none()
            && let Some(account) = account_match(&lower, book)
        {
            scope.account = Some(account);
        } else if end == start + 1 {
            return Err(CommandError::usage(unknown_place(word, book)));
        } else {
            break;
        }
        end += 1;
    }
    let rest: Vec<Token> = tokens[..start]
        .iter()
        .chain(&tokens[end..])
        .cloned()
        .collect();
    Ok((Args::new(rest), scope))
}

fn account_match(word: &str, book: &AccountBook) -> Option<AccountMatch> {
    if word.len() == 12 && word.chars().all(|c| c.is_ascii_digit()) {
        return Some(AccountMatch::Id(word.to_string()));
    }
    let account = book.get(word)?;
    Some(match account.account_id() {
        Some(id) => AccountMatch::Id(id.to_string()),
        None => AccountMatch::NotAny(
            book.accounts()
                .filter_map(|a| a.account_id().map(str::to_string))
                .collect(),
        ),
    })
}

fn unknown_place(word: &str, book: &AccountBook) -> Mrkdwn {
    let names: Vec<Mrkdwn> = book.accounts().map(|a| Code::new(&a.name).into()).collect();
    let named = if names.is_empty() {
        Mrkdwn::new()
    } else {
        opkit::mrkdwn!(", an account's name ({})", Mrkdwn::join(names, ", "))
    };
    opkit::mrkdwn!(
        "{} is not an account or a region: after {} give the account id the \
         notification shows (12 digits){}, or a region such as {}",
        Code::new(word),
        Code::new("in"),
        named,
        Code::new("us-west-2")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use opkit::text::tokenize;

    fn facts(account: &str, region: &str) -> AlarmFacts {
        AlarmFacts {
            name: "api-5xx".into(),
            account: account.into(),
            region: region.into(),
            metric: None,
            threshold: None,
            runbook: None,
            reason: String::new(),
        }
    }

    fn book() -> AccountBook {
        AccountBook::parse(
            r#"{"prod": {"role_arn": "arn:aws:iam::111111111111:role/o", "region": "us-west-2"},
                "staging": {"role_arn": "arn:aws:iam::222222222222:role/o"},
                "tools": {}}"#,
        )
        .unwrap()
    }

    fn split(text: &str) -> Result<(String, Scope), String> {
        split_scope(&Args::new(tokenize(text)), &book())
            .map(|(rest, scope)| (rest.rest(0), scope))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_buttons_words_pick_exactly_its_alarm() {
        let staging = facts("222222222222", "us-west-2");
        let (rest, scope) = split(&format!("api-5xx {} for 1h", words(&staging).unwrap())).unwrap();
        assert_eq!(rest, "api-5xx for 1h");
        assert!(scope.covers(&staging));
        assert!(
            !scope.covers(&facts("111111111111", "us-west-2")),
            "another account"
        );
        assert!(
            !scope.covers(&facts("222222222222", "eu-west-1")),
            "another region"
        );
    }

    #[test]
    fn names_regions_and_the_bots_own_account() {
        let (_, prod) = split("api-5xx in prod").unwrap();
        assert!(prod.covers(&facts("111111111111", "eu-west-1")));
        assert!(!prod.covers(&facts("222222222222", "eu-west-1")));
        let (_, own) = split("api-5xx in us-east-2 tools").unwrap();
        assert!(
            own.covers(&facts("999999999999", "us-east-2")),
            "not another's"
        );
        assert!(!own.covers(&facts("111111111111", "us-east-2")));
        let (_, region) = split("api-5xx in us-east-2").unwrap();
        assert!(region.covers(&facts("111111111111", "us-east-2")));
        assert!(!region.covers(&facts("111111111111", "us-east-1")));
        let (rest, none) = split("\"in\" staging").unwrap();
        assert!(none.is_everywhere());
        assert_eq!(rest, "\"in\" staging");
    }

    #[test]
    fn an_unknown_word_after_in_is_refused_saying_what_it_takes() {
        let err = split("api-5xx in qa").unwrap_err();
        assert!(err.contains("`qa` is not an account or a region"), "{err}");
        assert!(err.contains("`prod`, `staging`, `tools`"), "{err}");
        assert!(
            split("a in prod x in staging")
                .unwrap_err()
                .contains("once")
        );
    }
}
