//! Where an AWS command looks, and the clients it looks there with: the one
//! mechanism behind `in <account>` / `in <region>` for every AWS pack.
//!
//! ```text
//! handler registered as  targeted.run(ctx, "ec2 list", |ctx, pack| …)
//!   1. split_in           the `in …` words leave ctx.args (accounts::split_in)
//!   2. channel default    read from the `accounts` script's state, if no account was typed
//!   3. AccountBook::target  typed > channel default > the bot's own account; a
//!                         confirmed request: the place its prompt named (Ctx::bind)
//!   4. Accounts::credentials  one AssumeRoleProvider per account, built once, its
//!                         credentials cached by one identity cache (the SDK's lazy cache)
//!   5. make(&Place)       the pack with its clients for that account and region
//!                         (Place::bind: the pack's client, re-aimed)
//!   6. audit              "ec2 list: looked at account prod (111111111111), us-west-2"
//!   7. the handler        as before, its replies naming the place (`Site::label`), its
//!                         records the region and account id (`Site::region`, `account_id`)
//! ```
//!
//! Assuming a role needs STS, which only the worker (and the local `opkit`) call:
//! the ingress builds no pack. The template lets the worker assume only the
//! configured roles (`AccountRoleArns`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aws_config::identity::IdentityCache;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{
    self as credentials, ProvideCredentials, SharedCredentialsProvider,
};
use aws_smithy_runtime_api::client::identity::SharedIdentityCache;
use tokio::sync::OnceCell;

use crate::accounts::{Account, AccountBook, ChannelDefaults, InClause, Target, split_in};
use opkit::BoxFuture;
use opkit::audit::Outcome;
use opkit::engine::bot::Request;
use opkit::engine::command::{Args, CommandError, Ctx};
use opkit::slack::Reply;
use opkit::text::tokenize;

/// The session name the worker's assumed-role sessions carry (CloudTrail shows
/// it in the target account).
pub const SESSION_NAME: &str = "opkit";

/// The named accounts, with what it takes to act in each: the deployment's
/// SDK configuration (whose credentials assume the roles) and, per account, one
/// credentials provider, built on first use and kept for the process's life.
/// Their credentials are cached by one identity cache until shortly before
/// they expire, so a warm worker calls `sts:AssumeRole` about once an hour per
/// account, whatever the commands, services or regions.
pub struct Accounts {
    book: Arc<AccountBook>,
    sts: Option<SdkConfig>,
    roles: HashMap<String, OnceCell<SharedCredentialsProvider>>,
    cache: SharedIdentityCache,
}

impl fmt::Debug for Accounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accounts")
            .field("book", &self.book)
            .finish_non_exhaustive()
    }
}

impl Default for Accounts {
    fn default() -> Self {
        Self::none()
    }
}

impl Accounts {
    /// No named accounts: commands look at the bot's own, and `in` takes regions.
    pub fn none() -> Self {
        Self {
            book: Arc::new(AccountBook::empty()),
            sts: None,
            roles: HashMap::new(),
            cache: IdentityCache::lazy().build(),
        }
    }

    /// The accounts of `book`, their roles assumed with `sdk`'s credentials
    /// through STS (at `sdk`'s endpoint and region).
    pub fn new(book: AccountBook, sdk: &SdkConfig) -> Self {
        let roles = book
            .accounts()
            .filter(|a| a.role_arn.is_some())
            .map(|a| (a.name.clone(), OnceCell::new()))
            .collect();
        Self {
            book: Arc::new(book),
            sts: Some(sdk.clone()),
            roles,
            cache: IdentityCache::lazy().build(),
        }
    }

    /// The accounts by name.
    pub fn book(&self) -> &Arc<AccountBook> {
        &self.book
    }

    /// The credentials for `account`: `None` for the bot's own.
    pub async fn credentials(&self, account: &Account) -> Option<SharedCredentialsProvider> {
        let arn = account.role_arn.as_ref()?;
        let (cell, sts) = (self.roles.get(&account.name)?, self.sts.as_ref()?);
        let provider = cell
            .get_or_init(|| async {
                let mut builder = AssumeRoleProvider::builder(arn.as_str())
                    .session_name(SESSION_NAME)
                    .configure(sts);
                if sts.region().is_none() {
                    // STS is regional: without a deployment region, ask in the account's.
                    let region = account.region.clone().unwrap_or_else(|| "us-east-1".into());
                    builder = builder.region(Region::new(region));
                }
                if let Some(id) = &account.external_id {
                    builder = builder.external_id(id);
                }
                SharedCredentialsProvider::new(AssumedRole {
                    provider: builder.build().await,
                    account: account.name.clone(),
                    arn: arn.to_string(),
                })
            })
            .await;
        Some(provider.clone())
    }

    /// Where the command of `ctx` looks: its `in …` words (taken out of
    /// `ctx.args`), else its channel's default account (`accounts use`), else
    /// the bot's own account.
    ///
    /// The place is bound to the request ([`Ctx::bind`], as [`PLACE`]): a
    /// confirmed or approved request looks where its prompt said, whatever the
    /// channel's default is by the time of the click, or in whichever channel
    /// `confirm <id>` is typed.
    pub async fn place<S>(&self, ctx: &mut Ctx<S>) -> Result<Place, CommandError> {
        let (rest, clause) = split_in(&ctx.args, &self.book)?;
        ctx.args = rest;
        let target = match ctx.bound_when_asked(PLACE) {
            Some(asked) => self.book.target(&self.asked_clause(asked)?, None)?,
            None => {
                // Read even when no account is named: a default chosen while one
                // was (the setting emptied since) is refused by `target`, as
                // `accounts show` says, not ignored.
                let default = match (&clause.account, &ctx.caller.channel) {
                    (None, Some(channel)) => ChannelDefaults::load(&ctx.bot)
                        .await?
                        .of(channel)
                        .map(str::to_string),
                    _ => None,
                };
                self.book.target(&clause, default.as_deref())?
            }
        };
        ctx.bind(PLACE, bound_place(&target))?;
        let credentials = match target.account {
            Some(account) => self.credentials(account).await,
            None => None,
        };
        Ok(Place {
            account: target.account.cloned(),
            region: target.region,
            credentials,
            cache: self.cache.clone(),
            book: self.book.clone(),
        })
    }
}

/// What [`Accounts::place`] binds a request to ([`Ctx::bind`]): where it looks.
pub const PLACE: &str = "the AWS account and region";

/// How a place is bound: the `in` words that name it exactly (`in prod
/// us-west-2`), or [`OWN_PLACE`] for the bot's own account, unnamed, in the
/// deployment's region.
fn bound_place(target: &Target<'_>) -> String {
    let words: Vec<&str> = target
        .account
        .map(|a| a.name.as_str())
        .into_iter()
        .chain(target.region.as_deref())
        .collect();
    if words.is_empty() {
        OWN_PLACE.to_string()
    } else {
        format!("in {}", words.join(" "))
    }
}

/// The bound place of the bot's own account, unnamed, in the deployment's region.
const OWN_PLACE: &str = "the bot's own account, in the deployment's region";

impl Accounts {
    /// The `in` clause a bound place ([`bound_place`]) names.
    fn asked_clause(&self, asked: &str) -> Result<InClause, CommandError> {
        if asked == OWN_PLACE {
            return Ok(InClause::default());
        }
        let (_, clause) = split_in(&Args::new(tokenize(asked)), &self.book)?;
        Ok(clause)
    }
}

/// An account's role, assumed through STS; a failure says which role it was
/// ([`RoleRefused`]), so the reply can tell it from missing credentials.
#[derive(Debug)]
struct AssumedRole {
    provider: AssumeRoleProvider,
    account: String,
    arn: String,
}

impl ProvideCredentials for AssumedRole {
    fn provide_credentials<'a>(&'a self) -> credentials::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        credentials::future::ProvideCredentials::new(async move {
            self.provider.provide_credentials().await.map_err(|source| {
                CredentialsError::provider_error(RoleRefused {
                    account: self.account.clone(),
                    arn: self.arn.clone(),
                    source,
                })
            })
        })
    }
}

/// STS did not give the credentials of an account's role: it refused (the
/// role's trust policy, the external id, or the worker's own policy) or did not
/// answer. Found in an SDK error's sources by [`super::format::AwsFailure`].
#[derive(Debug, thiserror::Error)]
#[error("could not assume the role of account {account} ({arn})")]
pub struct RoleRefused {
    /// The account's name.
    pub account: String,
    /// The role's ARN.
    pub arn: String,
    /// What the provider said.
    #[source]
    pub source: CredentialsError,
}

/// One account and region a command looks at, resolved by [`Accounts::place`].
pub struct Place {
    account: Option<Account>,
    region: Option<String>,
    credentials: Option<SharedCredentialsProvider>,
    cache: SharedIdentityCache,
    book: Arc<AccountBook>,
}

impl Place {
    /// The named account, if any.
    pub fn account(&self) -> Option<&Account> {
        self.account.as_ref()
    }

    /// `base` (a pack's client, as configured for the deployment) aimed at this
    /// place — its region, and the account's assumed-role credentials — and
    /// where that is ([`Site`]: the region and account id AWS names, and how
    /// replies name the place). The bot's own account in the client's own
    /// region is `base` itself.
    pub fn bind<C: ServiceClient>(&self, base: &C) -> (C, Site) {
        let region = self
            .region
            .clone()
            .or_else(|| base.region())
            .unwrap_or_else(|| "an unknown region".to_string());
        let client = match (&self.region, &self.credentials) {
            (None, None) => base.clone(),
            (region, credentials) => base.retarget(
                region.as_deref(),
                credentials.as_ref().map(|c| (c, &self.cache)),
            ),
        };
        let label = self.book.describe(self.account.as_ref(), &region);
        let account_id = self
            .account
            .as_ref()
            .and_then(Account::account_id)
            .map(str::to_string);
        (
            client,
            Site {
                region,
                account_id,
                label,
            },
        )
    }
}

/// Where a pack's client is aimed: the region and account id as AWS names them
/// (what events carry, what a widget or a record must hold), and the label
/// replies and the audit show (`account prod, us-west-2`). Kept apart so that a
/// label is never stored or compared as a region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The AWS region (`us-west-2`).
    pub region: String,
    /// The account's id, when it is reached through a role; `None`: the bot's
    /// own account, whose id the bot is not told.
    pub account_id: Option<String>,
    /// How replies name the place: `account prod, us-west-2`, `the bot's own
    /// account, us-east-1`, or the region alone when no accounts are configured.
    pub label: String,
}

/// An SDK client that can be aimed at another region and account: the same
/// configuration (endpoint, retries, timeouts, HTTP client), another region,
/// another credentials provider.
pub trait ServiceClient: Clone + Send + Sync + 'static {
    /// The region it was configured for.
    fn region(&self) -> Option<String>;
    /// A copy aimed at `region` (if given) with `credentials`, whose identities
    /// are kept in the shared cache (if given).
    fn retarget(
        &self,
        region: Option<&str>,
        credentials: Option<(&SharedCredentialsProvider, &SharedIdentityCache)>,
    ) -> Self;
}

macro_rules! service_client {
    ($feature:literal, $krate:ident) => {
        #[cfg(feature = $feature)]
        impl ServiceClient for $krate::Client {
            fn region(&self) -> Option<String> {
                self.config().region().map(ToString::to_string)
            }

            fn retarget(
                &self,
                region: Option<&str>,
                credentials: Option<(&SharedCredentialsProvider, &SharedIdentityCache)>,
            ) -> Self {
                let mut builder = self.config().to_builder();
                if let Some(region) = region {
                    builder.set_region(Some(Region::new(region.to_string())));
                }
                if let Some((provider, cache)) = credentials {
                    // The shared provider keeps its cache partition: every client
                    // of one account finds the credentials the first one got.
                    builder.set_credentials_provider(Some(provider.clone()));
                    builder.set_identity_cache(cache.clone());
                }
                Self::from_conf(builder.build())
            }
        }
    };
}

service_client!("ec2", aws_sdk_ec2);
service_client!("cloudwatch", aws_sdk_cloudwatch);
service_client!("sqs", aws_sdk_sqs);

/// A pack made for one place: it says where, for the audit.
pub trait Located {
    /// How replies name the place (`account prod, us-west-2`).
    fn location(&self) -> &str;
}

type Make<P> = dyn Fn(&Place) -> P + Send + Sync;

/// A pack's commands, each run on the place its words and channel choose: the
/// wrapper every AWS command's handler is registered through.
pub struct Targeted<P> {
    accounts: Arc<Accounts>,
    make: Box<Make<P>>,
}

impl<P: Located + Send + Sync + 'static> Targeted<P> {
    /// Commands on `accounts`, whose pack for a place `make` builds (binding its
    /// clients with [`Place::bind`]).
    pub fn new(
        accounts: Arc<Accounts>,
        make: impl Fn(&Place) -> P + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            accounts,
            make: Box::new(make),
        })
    }

    /// Runs `handler` for `command` on the place `ctx` asks for: resolves it
    /// (the `in …` words leave `ctx.args`), builds the pack there, records in the
    /// audit trail where the command looked, then hands over.
    pub fn run<'a, S: Send + 'static>(
        self: Arc<Self>,
        ctx: &'a mut Ctx<S>,
        command: &'static str,
        handler: impl FnOnce(&'a mut Ctx<S>, Arc<P>) -> BoxFuture<'a, Result<Reply, CommandError>>
        + Send
        + 'a,
    ) -> BoxFuture<'a, Result<Reply, CommandError>> {
        Box::pin(async move {
            let typed = ctx.args.rest(0);
            let place = self.accounts.place(ctx).await?;
            let pack = Arc::new((self.make)(&place));
            let id = place
                .account()
                .and_then(Account::account_id)
                .map(|id| format!(" (account id {id})"))
                .unwrap_or_default();
            let request = Request {
                correlation_id: ctx.correlation_id,
                caller: ctx.caller.clone(),
                text: format!("{command} {typed}").trim_end().to_string(),
            };
            let looked = format!("{command}: looked at {}{id}", pack.location());
            ctx.bot
                .audit(&request, Some(command), Outcome::System { action: looked })
                .await;
            handler(ctx, pack).await
        })
    }
}

#[cfg(test)]
mod tests;
