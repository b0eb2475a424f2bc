//! The `accounts` commands: which accounts there are, and a channel's default.
//!
//! ```text
//! accounts list / accounts       the named accounts (id, role, region), this channel's default marked
//! accounts show [<name>]         one account in detail; without a name, where this channel's commands look
//! accounts use <name>|none       (admin) this channel's default account; `none` clears it
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use opkit::access::Access;
use opkit::engine::bot::Bot;
use opkit::engine::command::{Command, CommandError, Ctx, Script};
use opkit::ids::ChannelId;
use opkit::mrkdwn;
use opkit::slack::Reply;
use opkit::slack::mrkdwn::{Code, Mrkdwn, UserText};
use serde::{Deserialize, Serialize};

use super::{Account, AccountBook, SETTING};

/// The script's name, which keys its state ([`ChannelDefaults`]) in the store:
/// every AWS command reads it for its channel's default.
pub const SCRIPT: &str = "accounts";

/// Most channels with a default account: the state stays small whatever admins do.
pub const MAX_CHANNELS: usize = 1_000;

/// The channels' default accounts (the `accounts` script's state).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelDefaults {
    /// Channel id → account name.
    #[serde(default)]
    pub channels: BTreeMap<String, String>,
}

impl ChannelDefaults {
    /// The default account of `channel`, if one was chosen.
    pub fn of(&self, channel: &ChannelId) -> Option<&str> {
        self.channels.get(channel.as_str()).map(String::as_str)
    }

    /// The stored defaults, read from `bot`'s store (for commands of other
    /// scripts; the `accounts` commands get them as their state).
    pub async fn load(bot: &Bot) -> Result<Self, CommandError> {
        let stored = bot.store().load(SCRIPT).await?;
        match stored.value {
            Some(value) => serde_json::from_value(value).map_err(|e| {
                CommandError::internal_with("stored channel defaults do not parse", e)
            }),
            None => Ok(Self::default()),
        }
    }
}

struct Book {
    accounts: Arc<AccountBook>,
    /// The deployment's region (`AWS_REGION`), for the bot's own account.
    home_region: String,
}

/// The `accounts` script on `accounts`; `home_region` is the deployment's region.
pub fn script(accounts: Arc<AccountBook>, home_region: &str) -> Script<ChannelDefaults> {
    let book = Arc::new(Book {
        accounts,
        home_region: home_region.to_string(),
    });
    let (b1, b2, b3) = (book.clone(), book.clone(), book);
    Script::new(SCRIPT)
        .command(
            Command::new("accounts list")
                .alias("accounts")
                .describe("The AWS accounts the bot can look at, and this channel's default")
                .example("accounts list")
                .handler(move |ctx| Box::pin(list(ctx, b1.clone()))),
        )
        .command(
            Command::new("accounts show")
                .usage("[<name>]")
                .describe("One AWS account in detail, or where this channel's commands look")
                .example("accounts show")
                .example("accounts show prod")
                .handler(move |ctx| Box::pin(show(ctx, b2.clone()))),
        )
        .command(
            Command::new("accounts use")
                .usage("<name>|none")
                .describe("Set this channel's default AWS account (none: the bot's own)")
                .example("accounts use prod")
                .example("accounts use none")
                .access(Access::parse(&[&["admin"]]).expect("a valid role"))
                .in_channel()
                .handler(move |ctx| Box::pin(use_account(ctx, b3.clone()))),
        )
}

impl Book {
    /// Where this channel's commands look when no account is typed.
    fn default_line(&self, defaults: &ChannelDefaults, channel: Option<&ChannelId>) -> Mrkdwn {
        let chosen = channel.and_then(|c| defaults.of(c));
        match chosen {
            Some(name) => match self.accounts.get(name) {
                Some(account) => {
                    let region = account.region.as_deref().unwrap_or(&self.home_region);
                    mrkdwn!(
                        "Commands here look at {} unless told otherwise (this channel's default).",
                        UserText::new(self.accounts.describe(Some(account), region))
                    )
                }
                None => mrkdwn!(
                    "This channel's default is {}, which is no longer configured: AWS commands \
                     here are refused until an admin runs {}.",
                    Code::new(name),
                    Code::new("accounts use <name>|none")
                ),
            },
            None => {
                let own = self.accounts.own();
                let region = own
                    .and_then(|a| a.region.as_deref())
                    .unwrap_or(&self.home_region);
                mrkdwn!(
                    "Commands here look at {} unless told otherwise ({} …).",
                    UserText::new(self.accounts.describe(own, region)),
                    Code::new("in <account> [<region>]")
                )
            }
        }
    }
}

async fn list(ctx: &mut Ctx<ChannelDefaults>, book: Arc<Book>) -> Result<Reply, CommandError> {
    if !ctx.args.is_empty() {
        return Err(CommandError::usage("`accounts list` takes nothing more"));
    }
    let default_line = book.default_line(&ctx.state, ctx.caller.channel.as_ref());
    if book.accounts.is_empty() {
        let chosen = ctx.caller.channel.as_ref().and_then(|c| ctx.state.of(c));
        // A default chosen while accounts were named still holds (refused):
        // say so rather than where commands would look without it.
        if chosen.is_some() {
            return Ok(Reply::text(mrkdwn!(
                "No AWS accounts are named ({}).\n{}",
                Code::new(SETTING),
                default_line
            )));
        }
        return Ok(Reply::text(mrkdwn!(
            "No AWS accounts are named ({}): commands look at the bot's own account, in {} \
             unless a region is typed ({}).",
            Code::new(SETTING),
            UserText::new(&book.home_region),
            Code::new("ec2 list in us-west-2")
        )));
    }
    let chosen = ctx.caller.channel.as_ref().and_then(|c| ctx.state.of(c));
    let lines: Vec<Mrkdwn> = book
        .accounts
        .accounts()
        .map(|a| {
            let who = match &a.role_arn {
                Some(arn) => format!("{}, role {}", arn.account_id(), arn),
                None => "the bot's own credentials".to_string(),
            };
            let region = a.region.as_deref().unwrap_or(&book.home_region);
            let mark = if chosen == Some(a.name.as_str()) {
                " — this channel's default"
            } else {
                ""
            };
            mrkdwn!(
                "• *{}* — {}, {}{}{}",
                UserText::new(&a.name),
                UserText::new(who),
                UserText::new(region),
                unlisted_note(a),
                mark
            )
        })
        .collect();
    let count = match lines.len() {
        1 => "1 AWS account".to_string(),
        n => format!("{n} AWS accounts"),
    };
    Ok(Reply::text(mrkdwn!(
        "{}:\n{}\n{}",
        UserText::new(count),
        Mrkdwn::join(lines, "\n"),
        default_line
    )))
}

async fn show(ctx: &mut Ctx<ChannelDefaults>, book: Arc<Book>) -> Result<Reply, CommandError> {
    if ctx.args.is_empty() {
        return Ok(Reply::text(
            book.default_line(&ctx.state, ctx.caller.channel.as_ref()),
        ));
    }
    if ctx.args.len() > 1 {
        return Err(CommandError::usage("name one account"));
    }
    let name = ctx.args.word(0, "an account name")?;
    let Some(account) = book.accounts.get(name) else {
        return Err(book.accounts.unknown_account(name));
    };
    let region = account.region.as_deref().unwrap_or(&book.home_region);
    let role = match &account.role_arn {
        Some(arn) => mrkdwn!(
            "account {}, assumed role {}{}",
            UserText::new(arn.account_id()),
            Code::new(arn.as_str()),
            if account.external_id.is_some() {
                " (with an external id)"
            } else {
                ""
            }
        ),
        None => Mrkdwn::from("the bot's own credentials"),
    };
    let channels: Vec<Mrkdwn> = ctx
        .state
        .channels
        .iter()
        .filter(|(_, a)| **a == account.name)
        .filter_map(|(c, _)| ChannelId::parse(c).ok())
        .map(|c| c.mention())
        .collect();
    let used = if channels.is_empty() {
        Mrkdwn::from("No channel has it as its default.")
    } else {
        mrkdwn!("The default of {}.", Mrkdwn::join(channels, ", "))
    };
    Ok(Reply::text(mrkdwn!(
        "*{}*: {}; region {}{} unless one is typed. {}",
        UserText::new(&account.name),
        role,
        UserText::new(region),
        unlisted_note(account),
        used
    )))
}

/// ` — `us-wset-2` is not a region AWS lists (did you mean `us-west-2`?)` after
/// an account's region AWS does not list; nothing otherwise.
fn unlisted_note(account: &Account) -> Mrkdwn {
    match account.unlisted_region() {
        Some(unlisted) => mrkdwn!(" — {}", unlisted.note()),
        None => Mrkdwn::new(),
    }
}

async fn use_account(
    ctx: &mut Ctx<ChannelDefaults>,
    book: Arc<Book>,
) -> Result<Reply, CommandError> {
    let Some(channel) = ctx.caller.channel.clone() else {
        return Err(CommandError::user(
            "A default account belongs to a channel: run this in the channel it is for.",
        ));
    };
    if ctx.args.len() != 1 {
        return Err(CommandError::usage("name one account, or none"));
    }
    let typed = ctx.args.word(0, "an account name")?.to_ascii_lowercase();
    if typed == "none" {
        let was = ctx.state.channels.remove(channel.as_str());
        let own = book.accounts.own();
        let region = own
            .and_then(|a| a.region.as_deref())
            .unwrap_or(&book.home_region);
        let now = UserText::new(book.accounts.describe(own, region));
        return Ok(Reply::text(match was {
            Some(was) => mrkdwn!(
                "{} has no default account any more (it was {}): commands here look at {}.",
                channel.mention(),
                UserText::new(was),
                now
            ),
            None => mrkdwn!(
                "{} had no default account: commands here look at {}.",
                channel.mention(),
                now
            ),
        }));
    }
    let Some(account) = book.accounts.get(&typed) else {
        return Err(book.accounts.unknown_account(&typed));
    };
    if !ctx.state.channels.contains_key(channel.as_str())
        && ctx.state.channels.len() >= MAX_CHANNELS
    {
        return Err(CommandError::user(mrkdwn!(
            "{} channels have a default account already, the most there may be; clear one \
             with {} in its channel first.",
            MAX_CHANNELS,
            Code::new("accounts use none")
        )));
    }
    ctx.state
        .channels
        .insert(channel.as_str().to_string(), account.name.clone());
    let region = account.region.as_deref().unwrap_or(&book.home_region);
    Ok(Reply::text(mrkdwn!(
        "AWS commands in {} now look at {} unless told otherwise ({}).",
        channel.mention(),
        UserText::new(book.accounts.describe(Some(account), region)),
        Code::new("in <account> [<region>]")
    )))
}
