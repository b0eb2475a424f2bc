//! Several AWS accounts and regions: the named accounts of `OPKIT_ACCOUNTS`, the
//! `in <account>` / `in <region>` words every AWS command takes, and which
//! account and region a command looks at.
//!
//! ```text
//! OPKIT_ACCOUNTS = {"prod":    {"role_arn": "arn:aws:iam::111111111111:role/opkit",
//!                               "region": "us-west-2", "external_id": "…"},
//!                   "staging": {"role_arn": "arn:aws:iam::222222222222:role/opkit"},
//!                   "tools":   {"region": "eu-west-1"}}
//!
//! ec2 list in prod                   prod's role, prod's region
//! alarms in staging us-west-2        staging's role, us-west-2
//! sqs list in eu-central-1           the channel's default account (or the bot's own), eu-central-1
//! accounts use prod                  (admin) this channel's default account
//! ```
//!
//! Everything here is pure: [`AccountBook`] (the parsed setting), [`split_in`]
//! (the one parser of the `in …` words), [`AccountBook::target`] (the one
//! resolution: typed words, else the channel's default, else the bot's own
//! account) and [`AccountBook::describe`] (how replies and the audit name it).
//! Assuming the roles is `packs::aws::targets`' business; the `accounts`
//! commands are in [`commands`].

pub mod commands;
pub mod regions;

use std::collections::BTreeMap;
use std::fmt;

use opkit::engine::command::{Args, CommandError};
use opkit::mrkdwn;
use opkit::slack::mrkdwn::{Code, Mrkdwn};
use opkit::text::Token;
use serde::Deserialize;

pub use commands::{ChannelDefaults, SCRIPT, script};
pub use regions::{KNOWN_REGIONS, is_known_region, is_region_shaped};

/// The setting that names the accounts.
pub const SETTING: &str = "OPKIT_ACCOUNTS";

/// Longest account name.
pub const MAX_NAME: usize = 32;

/// Words an account may not be called: `none` clears a channel's default
/// (`accounts use none`), and `in` starts the clause.
const RESERVED: [&str; 2] = ["none", "in"];

/// An IAM role's ARN, checked: `arn:<partition>:iam::<12-digit account>:role/<path/name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    arn: String,
    account_id: String,
}

impl RoleArn {
    /// Parses a role ARN in the `aws`, `aws-cn`, `aws-us-gov` or `aws-eusc`
    /// partition (IAM User Guide, "IAM identifiers": role ARNs). The error
    /// says what is wrong.
    pub fn parse(arn: &str) -> Result<Self, String> {
        let bad =
            || format!("`{arn}` is not an IAM role ARN (arn:aws:iam::123456789012:role/name)");
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad());
        };
        let name = resource.strip_prefix("role/").ok_or_else(bad)?;
        let name_ok = !name.is_empty()
            && name.len() <= 512
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c));
        if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov" | "aws-eusc")
            || account.len() != 12
            || !account.chars().all(|c| c.is_ascii_digit())
            || !name_ok
        {
            return Err(bad());
        }
        Ok(Self {
            arn: arn.to_string(),
            account_id: account.to_string(),
        })
    }

    /// The ARN as written.
    pub fn as_str(&self) -> &str {
        &self.arn
    }

    /// The 12-digit id of the account the role is in.
    pub fn account_id(&self) -> &str {
        &self.account_id
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

/// One named account.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// What users type after `in`: lower case, `[a-z0-9][a-z0-9_-]*`, at most
    /// [`MAX_NAME`] characters, never region-shaped.
    pub name: String,
    /// The role the worker assumes to act in it; `None`: the bot's own
    /// credentials (the deployment's own account, given a name).
    pub role_arn: Option<RoleArn>,
    /// The region its commands look at unless one is typed; `None`: the
    /// deployment's (`AWS_REGION`).
    pub region: Option<String>,
    /// The external id the role's trust policy demands (`sts:ExternalId`), if
    /// any. Not a secret by AWS's account, but never shown in Slack.
    pub external_id: Option<String>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("role_arn", &self.role_arn.as_ref().map(RoleArn::as_str))
            .field("region", &self.region)
            .field("external_id", &self.external_id.as_ref().map(|_| "…"))
            .finish()
    }
}

impl Account {
    /// The account's id, when it is reached through a role.
    pub fn account_id(&self) -> Option<&str> {
        self.role_arn.as_ref().map(RoleArn::account_id)
    }

    /// Its `region`, when AWS does not list it ([`KNOWN_REGIONS`]): a typo
    /// (`us-wset-2`), or a region launched after this build. Such a region is
    /// used as written, so that a new region can be named; start-up logs a
    /// warning ([`AccountBook::warnings`]) and `accounts` shows it with the
    /// same "did you mean" as `in <region>`.
    pub fn unlisted_region(&self) -> Option<UnlistedRegion<'_>> {
        let region = self.region.as_deref()?;
        (!is_known_region(region)).then(|| UnlistedRegion {
            region,
            nearest: nearest(region, KNOWN_REGIONS.iter().copied()),
        })
    }
}

/// An account's region that AWS does not list ([`Account::unlisted_region`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnlistedRegion<'a> {
    /// The region as configured.
    pub region: &'a str,
    /// The listed region it is a near miss of, if any.
    pub nearest: Option<&'static str>,
}

impl UnlistedRegion<'_> {
    /// One line of mrkdwn: `` `us-wset-2` is not a region AWS lists (did you mean `us-west-2`?) ``
    pub fn note(&self) -> Mrkdwn {
        let hint = match self.nearest {
            Some(near) => mrkdwn!(" (did you mean {}?)", Code::new(near)),
            None => Mrkdwn::from(" (a region launched after this bot was built?)"),
        };
        mrkdwn!(
            "{} is not a region AWS lists{}",
            Code::new(self.region),
            hint
        )
    }
}

/// One entry of `OPKIT_ACCOUNTS` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    #[serde(default)]
    role_arn: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
}

/// The setting's entries in the order written, a name written twice kept
/// twice (deserializing into a map would keep only the last).
struct Entries(Vec<(String, RawAccount)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// The named accounts, parsed from `OPKIT_ACCOUNTS` (empty: one account, the
/// bot's own, and `in` takes only regions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountBook {
    /// By name.
    accounts: BTreeMap<String, Account>,
}

impl AccountBook {
    /// No named accounts.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses the setting's JSON: an object of account name → `{"role_arn",
    /// "region", "external_id"}`, each optional. At most one account goes
    /// without `role_arn` (the bot's own account, named). The error says which
    /// account and what is wrong with it.
    /// A name written twice is refused, naming it: JSON allows it and a map
    /// would keep the last silently (RFC 8259, 4: names "SHOULD be unique").
    pub fn parse(json: &str) -> Result<Self, String> {
        let Entries(raw) = serde_json::from_str(json).map_err(|e| {
            format!(
                "expected a JSON object of account name → {{\"role_arn\", \"region\", \"external_id\"}}: {e}"
            )
        })?;
        let mut accounts = BTreeMap::new();
        let mut own = None;
        for (name, raw) in raw {
            let account =
                check_account(&name, raw).map_err(|e| format!("account `{name}`: {e}"))?;
            if accounts.contains_key(&name) {
                return Err(format!(
                    "account `{name}` is named twice: name each account once"
                ));
            }
            if account.role_arn.is_none()
                && let Some(other) = own.replace(name.clone())
            {
                return Err(format!(
                    "accounts `{other}` and `{name}` both have no role_arn: only the bot's \
                     own account goes without one"
                ));
            }
            accounts.insert(name, account);
        }
        Ok(Self { accounts })
    }

    /// What start-up should warn about without refusing the setting: each
    /// account whose region AWS does not list ([`Account::unlisted_region`]),
    /// one line each, naming the account.
    pub fn warnings(&self) -> Vec<String> {
        self.accounts
            .values()
            .filter_map(|a| {
                let unlisted = a.unlisted_region()?;
                Some(format!(
                    "{SETTING}: account `{}`: {}; it is used as written",
                    a.name,
                    unlisted.note().as_str()
                ))
            })
            .collect()
    }

    /// Whether no account is named.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// The accounts, by name.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    /// The account called `name` (any case).
    pub fn get(&self, name: &str) -> Option<&Account> {
        self.accounts.get(&name.to_ascii_lowercase())
    }

    /// The account named for the bot's own credentials (no `role_arn`), if any.
    pub fn own(&self) -> Option<&Account> {
        self.accounts.values().find(|a| a.role_arn.is_none())
    }

    /// Whether `region` may be typed: a region AWS lists, or one an account
    /// names (how a region launched after this list is admitted).
    pub fn knows_region(&self, region: &str) -> bool {
        is_known_region(region)
            || self
                .accounts
                .values()
                .any(|a| a.region.as_deref() == Some(region))
    }

    /// Where a command looks: the account typed after `in`, else the channel's
    /// default (`accounts use`), else the bot's own account; the region typed,
    /// else that account's, else `None` (the deployment's). A channel default
    /// naming an account no longer configured is refused, not ignored: the
    /// command would otherwise look somewhere the channel did not choose.
    pub fn target(
        &self,
        clause: &InClause,
        channel_default: Option<&str>,
    ) -> Result<Target<'_>, CommandError> {
        let account = match (&clause.account, channel_default) {
            (Some(name), _) => Some(self.get(name).ok_or_else(|| self.unknown_account(name))?),
            (None, Some(name)) => Some(self.get(name).ok_or_else(|| {
                CommandError::user(mrkdwn!(
                    "This channel's default AWS account is {}, which is no longer configured. \
                     An admin can choose another with {} (or {}).",
                    Code::new(name),
                    Code::new("accounts use <name>"),
                    Code::new("accounts use none")
                ))
            })?),
            (None, None) => self.own(),
        };
        let region = clause
            .region
            .clone()
            .or_else(|| account.and_then(|a| a.region.clone()));
        Ok(Target { account, region })
    }

    /// How a reply and the audit name where a command looked, given the region
    /// it used: `account prod, us-west-2`; the region alone when no account is
    /// named at all; `the bot's own account, us-east-1` otherwise.
    pub fn describe(&self, account: Option<&Account>, region: &str) -> String {
        match account {
            Some(account) => format!("account {}, {region}", account.name),
            None if self.is_empty() => region.to_string(),
            None => format!("the bot's own account, {region}"),
        }
    }

    /// "I know no account …", with a did-you-mean.
    fn unknown_account(&self, typed: &str) -> CommandError {
        if self.is_empty() {
            return CommandError::user(mrkdwn!(
                "{} is neither an AWS region nor an account: no accounts are configured here \
                 ({}), so {} takes a region, such as {}.",
                Code::new(typed),
                Code::new(SETTING),
                Code::new("in"),
                Code::new("us-west-2")
            ));
        }
        let names: Vec<&str> = self.accounts.keys().map(String::as_str).collect();
        let listed = Mrkdwn::join(names.iter().map(|n| Mrkdwn::from(Code::new(n))), ", ");
        match nearest(typed, names.iter().copied()) {
            Some(near) => CommandError::user(mrkdwn!(
                "I know no AWS account {}. Did you mean {}? The accounts are {}.",
                Code::new(typed),
                Code::new(near),
                listed
            )),
            None => CommandError::user(mrkdwn!(
                "I know no AWS account or region {}. The accounts are {}; a region is \
                 written like {}. To use the word {} itself, quote it.",
                Code::new(typed),
                listed,
                Code::new("us-west-2"),
                Code::new("in")
            )),
        }
    }

    /// The refusal of a region-shaped word no region answers to: "I know no AWS
    /// region `us-west-3`. Did you mean …?", with how to admit a region launched
    /// after this bot was built.
    pub fn unknown_region(&self, typed: &str) -> CommandError {
        let configured = self.accounts.values().filter_map(|a| a.region.as_deref());
        let near = nearest(typed, KNOWN_REGIONS.iter().copied().chain(configured));
        let hint = match near {
            Some(near) => mrkdwn!(" Did you mean {}?", Code::new(near)),
            None => Mrkdwn::new(),
        };
        CommandError::user(mrkdwn!(
            "I know no AWS region {}.{} (A region launched after this bot was built can be \
             named as an account's region in {}.)",
            Code::new(typed),
            hint,
            Code::new(SETTING)
        ))
    }

    /// What a word after `in` is.
    fn classify(&self, word: &str) -> Result<Kind<'_>, CommandError> {
        let lower = word.to_ascii_lowercase();
        if let Some(account) = self.get(&lower) {
            Ok(Kind::Account(account))
        } else if self.knows_region(&lower) {
            Ok(Kind::Region(lower))
        } else if is_region_shaped(&lower) {
            Err(self.unknown_region(&lower))
        } else {
            Ok(Kind::Other)
        }
    }
}

/// Checks one entry of the setting.
fn check_account(name: &str, raw: RawAccount) -> Result<Account, String> {
    let name_ok = (1..=MAX_NAME).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !name_ok {
        return Err(format!(
            "a name is 1 to {MAX_NAME} lower-case letters, digits, `-` or `_`, starting with a \
             letter or digit"
        ));
    }
    if RESERVED.contains(&name) || is_region_shaped(name) {
        return Err("that name is reserved (`none`, `in`, or a region's shape)".into());
    }
    let role_arn = raw.role_arn.as_deref().map(RoleArn::parse).transpose()?;
    if let Some(region) = &raw.region
        && !is_region_shaped(region)
    {
        return Err(format!("`{region}` is not a region code such as us-west-2"));
    }
    if let Some(id) = &raw.external_id {
        // STS AssumeRole, ExternalId: 2–1224 characters of [\w+=,.@:/-].
        let ok = (2..=1224).contains(&id.len())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c));
        if !ok {
            return Err(
                "external_id must be 2 to 1224 letters, digits or `_+=,.@:/-` (STS AssumeRole)"
                    .into(),
            );
        }
        if role_arn.is_none() {
            return Err("external_id needs a role_arn: it is sent when assuming the role".into());
        }
    }
    Ok(Account {
        name: name.to_string(),
        role_arn,
        region: raw.region,
        external_id: raw.external_id,
    })
}

/// The typed word nearest `typed` among `candidates`, if it is a near miss: at
/// most one edit away (two for words of six or more letters), as the command
/// names' own "did you mean".
fn nearest<'a>(typed: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let allowed = if typed.chars().count() >= 6 { 2 } else { 1 };
    candidates
        .map(|c| (strsim::osa_distance(typed, c), c))
        .filter(|(d, _)| *d <= allowed)
        .min()
        .map(|(_, c)| c)
}

enum Kind<'a> {
    Account(&'a Account),
    Region(String),
    Other,
}

/// What a command's `in …` words asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InClause {
    /// The account typed (its configured name).
    pub account: Option<String>,
    /// The region typed (lower case).
    pub region: Option<String>,
}

impl InClause {
    /// Whether nothing was typed.
    pub fn is_empty(&self) -> bool {
        self.account.is_none() && self.region.is_none()
    }
}

/// Where a command looks, resolved by [`AccountBook::target`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    /// The named account; `None`: the bot's own, unnamed.
    pub account: Option<&'a Account>,
    /// The region; `None`: the deployment's.
    pub region: Option<String>,
}

/// Where the `in …` words start among `tokens`: at the plain word `in` (any
/// case) followed by a word; `None` without one; a usage error when there are
/// two. A quoted `"in"`, or a last `in`, is an argument.
pub fn in_clause_start(tokens: &[Token]) -> Result<Option<usize>, CommandError> {
    let is_in = |t: &Token| t.as_word().is_some_and(|w| w.eq_ignore_ascii_case("in"));
    let starts: Vec<usize> = (0..tokens.len())
        .filter(|&i| is_in(&tokens[i]) && tokens.get(i + 1).and_then(Token::as_word).is_some())
        .collect();
    match starts.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(CommandError::usage(mrkdwn!(
            "say {} once: {}",
            Code::new("in"),
            Code::new("in <account> [<region>]")
        ))),
    }
}

/// Splits the `in …` words off a command's arguments, wherever they stand:
/// `in <account>`, `in <region>`, `in <account> <region>` or
/// `in <region> <account>`. Returns the other arguments, in order, and what
/// was asked for.
///
/// `in` is a plain word (any case) followed by a word; a quoted `"in"` is an
/// argument like any other, and so is a last `in` with nothing after it (`sqs
/// list in`). The word after `in` must be an account or a region: an unknown
/// name gets "did you mean", a region AWS does not list a clear refusal. The
/// word after that is taken when it is the other kind; two accounts or two
/// regions are refused, and so is `in` given twice.
pub fn split_in(args: &Args, book: &AccountBook) -> Result<(Args, InClause), CommandError> {
    let tokens = args.tokens();
    let Some(start) = in_clause_start(tokens)? else {
        return Ok((args.clone(), InClause::default()));
    };
    let mut clause = InClause::default();
    let first = tokens[start + 1].as_word().unwrap_or_default();
    let first_kind = book.classify(first)?;
    match &first_kind {
        Kind::Account(a) => clause.account = Some(a.name.clone()),
        Kind::Region(r) => clause.region = Some(r.clone()),
        Kind::Other => return Err(book.unknown_account(first)),
    }
    let mut end = start + 2;
    if let Some(second) = tokens.get(end).and_then(Token::as_word) {
        match (book.classify(second)?, &first_kind) {
            (Kind::Region(r), Kind::Account(_)) => {
                clause.region = Some(r);
                end += 1;
            }
            (Kind::Account(a), Kind::Region(_)) => {
                clause.account = Some(a.name.clone());
                end += 1;
            }
            (Kind::Other, _) => {}
            _ => {
                return Err(CommandError::usage(mrkdwn!(
                    "{} takes one account and one region: {}",
                    Code::new("in"),
                    Code::new("in <account> [<region>]")
                )));
            }
        }
    }
    let rest: Vec<Token> = tokens[..start]
        .iter()
        .chain(&tokens[end..])
        .cloned()
        .collect();
    Ok((Args::new(rest), clause))
}

#[cfg(test)]
mod tests;
