//! Resolving and binding the place: the credentials per account, the clients
//! re-aimed, and — at handler level, through a pack that calls nothing and
//! only says where it is — where a command and its confirmation look.

use super::*;
use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::identity::ResolveIdentity;
use opkit::engine::bot::Bot;
use opkit::engine::command::{Caller, Command, Script};
use opkit::engine::gate::Decision;
use opkit::ids::{ChannelId, UserId};
use opkit::slack::mrkdwn::UserText;
use opkit::store::StateStore;
use opkit::store::memory::MemoryStore;
use opkit::testing::{TestBot, pending_id};

const BOOK: &str = r#"{
    "prod": {"role_arn": "arn:aws:iam::111111111111:role/opkit", "region": "us-west-2"},
    "staging": {"role_arn": "arn:aws:iam::222222222222:role/opkit"},
    "tools": {}
}"#;

async fn home() -> SdkConfig {
    // Nothing is called: the providers are built, never asked.
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new("a", "b", None, None, "test"))
        .load()
        .await
}

#[tokio::test]
async fn one_credentials_provider_per_account_and_none_for_the_bots_own() {
    let accounts = Accounts::new(AccountBook::parse(BOOK).unwrap(), &home().await);
    let book = accounts.book().clone();
    let partition = |p: Option<SharedCredentialsProvider>| p.unwrap().cache_partition();
    // GIVEN prod asked for twice THEN one provider (one cache partition)
    let first = partition(accounts.credentials(book.get("prod").unwrap()).await);
    let again = partition(accounts.credentials(book.get("prod").unwrap()).await);
    assert_eq!(first, again);
    // AND staging has its own
    let staging = partition(accounts.credentials(book.get("staging").unwrap()).await);
    assert_ne!(first, staging);
    // AND the bot's own account is the deployment's credentials
    assert!(
        accounts
            .credentials(book.get("tools").unwrap())
            .await
            .is_none()
    );
}

#[cfg(feature = "sqs")]
#[tokio::test]
async fn bind_keeps_the_client_for_its_own_place_and_re_aims_it_elsewhere() {
    let base = aws_sdk_sqs::Client::new(&home().await);
    let book = Arc::new(AccountBook::parse(BOOK).unwrap());
    let place = |account: Option<&str>, region: Option<&str>| Place {
        account: account.map(|a| book.get(a).unwrap().clone()),
        region: region.map(str::to_string),
        credentials: None,
        cache: IdentityCache::lazy().build(),
        book: book.clone(),
    };
    let (own, site) = place(None, None).bind(&base);
    assert_eq!(ServiceClient::region(&own).as_deref(), Some("eu-west-1"));
    assert_eq!(site.label, "the bot's own account, eu-west-1");
    assert_eq!((site.region.as_str(), site.account_id), ("eu-west-1", None));
    let (there, site) = place(Some("prod"), Some("us-west-2")).bind(&base);
    assert_eq!(ServiceClient::region(&there).as_deref(), Some("us-west-2"));
    // what replies show, and apart from it what AWS names (the finding F4: the
    // label was recorded as the region of Opkit's own instance changes)
    assert_eq!(site.label, "account prod, us-west-2");
    assert_eq!(site.region, "us-west-2");
    assert_eq!(
        site.account_id.as_deref(),
        book.get("prod").unwrap().account_id()
    );
    assert!(site.account_id.is_some());
    assert_eq!(
        ServiceClient::region(&base).as_deref(),
        Some("eu-west-1"),
        "the base is untouched"
    );
}

/// A client that calls nothing: where it is aimed is all it has.
#[derive(Clone)]
struct Aimed(Option<String>);

impl ServiceClient for Aimed {
    fn region(&self) -> Option<String> {
        self.0.clone()
    }

    fn retarget(
        &self,
        region: Option<&str>,
        _: Option<(&SharedCredentialsProvider, &SharedIdentityCache)>,
    ) -> Self {
        Aimed(region.map(str::to_string).or_else(|| self.0.clone()))
    }
}

/// A pack that only says where it was made for.
struct Probe(String);

impl Located for Probe {
    fn location(&self) -> &str {
        &self.0
    }
}

/// `probe look` (no gate) and `probe act` (confirmed), each through
/// [`Targeted`], answering where they looked or acted.
fn probe_script(accounts: Arc<Accounts>) -> Script<()> {
    let targeted = Targeted::new(accounts, |place| {
        Probe(place.bind(&Aimed(Some("eu-west-1".into()))).1.label)
    });
    let (look, act) = (targeted.clone(), targeted);
    Script::new("probe")
        .command(
            Command::new("probe look")
                .usage("[in <account>]")
                .handler(move |ctx| {
                    look.clone().run(ctx, "probe look", |_, pack| {
                        Box::pin(async move {
                            Ok(Reply::text(opkit::mrkdwn!(
                                "looked in {}",
                                UserText::new(pack.location())
                            )))
                        })
                    })
                }),
        )
        .command(
            Command::new("probe act")
                .usage("[in <account>]")
                .confirm()
                .handler(move |ctx| {
                    act.clone().run(ctx, "probe act", |ctx, pack| {
                        Box::pin(async move {
                            ctx.confirm(opkit::mrkdwn!(
                                "It would act in {}.",
                                UserText::new(pack.location())
                            ))?;
                            Ok(Reply::text(opkit::mrkdwn!(
                                "acted in {}",
                                UserText::new(pack.location())
                            )))
                        })
                    })
                }),
        )
}

/// A test bot with `book`'s accounts, the `accounts` commands and the probe.
async fn probe_bot(book: &str) -> TestBot {
    let book = AccountBook::parse(book).unwrap();
    let accounts = Arc::new(Accounts::new(book, &home().await));
    let (book, probe) = (accounts.book().clone(), probe_script(accounts));
    TestBot::with(move |b| {
        b.script(crate::accounts::script(book, "eu-west-1"))
            .script(probe)
    })
}

/// `user` types `text` in `channel`.
async fn say_in(t: &TestBot, channel: &str, user: &str, text: &str) -> String {
    let caller = Caller {
        user: UserId::parse(user).unwrap(),
        channel: Some(ChannelId::parse(channel).unwrap()),
        team: None,
        thread_ts: None,
    };
    t.bot
        .handle(&opkit::engine::bot::Request::new(caller, text))
        .await
        .text
        .into_string()
}

#[tokio::test]
async fn a_confirmation_acts_where_its_prompt_said_though_the_channel_default_changed() {
    // GIVEN the channel's default is prod (the finding's sequence: F6)
    let t = probe_bot(BOOK).await;
    assert!(
        t.text("UADMIN", "accounts use prod")
            .await
            .contains("account prod")
    );
    // WHEN someone asks, and the prompt names prod
    let prompt = t.say("UOPS", "probe act").await;
    assert!(
        prompt
            .text
            .contains("It would act in account prod, us-west-2."),
        "{}",
        prompt.text
    );
    // AND an admin points the channel at tools before the click
    assert!(
        t.text("UADMIN", "accounts use tools")
            .await
            .contains("account tools")
    );
    assert!(t.text("UOPS", "probe look").await.contains("account tools"));
    // THEN the confirmation acts in prod, as its prompt said
    let done = t.click("UOPS", &prompt, Decision::Confirm).await.text;
    assert!(done.contains("acted in account prod, us-west-2"), "{done}");
    assert!(!done.contains("tools"), "{done}");
}

#[tokio::test]
async fn a_typed_confirm_in_another_channel_acts_where_the_prompt_said() {
    let t = probe_bot(BOOK).await;
    // GIVEN the prompt's channel defaults to staging, another to prod
    say_in(&t, "C0PS", "UADMIN", "accounts use staging").await;
    say_in(&t, "C0OTHER", "UADMIN", "accounts use prod").await;
    let prompt = t.say("UOPS", "probe act").await;
    assert!(prompt.text.contains("account staging"), "{}", prompt.text);
    // WHEN the asker types the confirmation in the other channel
    let id = pending_id(&prompt)[..8].to_string();
    let done = say_in(&t, "C0OTHER", "UOPS", &format!("confirm {id}")).await;
    // THEN it acts in staging
    assert!(done.contains("acted in account staging"), "{done}");
}

#[tokio::test]
async fn a_typed_place_and_the_bots_own_account_are_bound_too() {
    let t = probe_bot(BOOK).await;
    // GIVEN no channel default: the named own account, tools
    let prompt = t.say("UOPS", "probe act").await;
    assert!(prompt.text.contains("account tools"), "{}", prompt.text);
    t.text("UADMIN", "accounts use prod").await;
    let done = t.click("UOPS", &prompt, Decision::Confirm).await.text;
    assert!(done.contains("acted in account tools"), "{done}");
    // AND a typed region alone keeps the account resolved when asked
    t.text("UADMIN", "accounts use staging").await;
    let prompt = t.say("UOPS", "probe act in us-east-2").await;
    assert!(
        prompt.text.contains("account staging, us-east-2"),
        "{}",
        prompt.text
    );
    t.text("UADMIN", "accounts use prod").await;
    let done = t.click("UOPS", &prompt, Decision::Confirm).await.text;
    assert!(
        done.contains("acted in account staging, us-east-2"),
        "{done}"
    );
    // AND without named own account, the bot's own account stays unnamed
    let t = probe_bot(r#"{"prod": {"role_arn": "arn:aws:iam::111111111111:role/opkit"}}"#).await;
    let prompt = t.say("UOPS", "probe act").await;
    assert!(
        prompt.text.contains("the bot's own account, eu-west-1"),
        "{}",
        prompt.text
    );
    t.text("UADMIN", "accounts use prod").await;
    let done = t.click("UOPS", &prompt, Decision::Confirm).await.text;
    assert!(
        done.contains("acted in the bot's own account, eu-west-1"),
        "{done}"
    );
}

/// A bot on `store` with `accounts`, the `accounts` commands and the probe:
/// bots on one store with other settings are one deployment before and after
/// a change of `OPKIT_ACCOUNTS`.
fn probe_bot_on(store: &Arc<MemoryStore>, accounts: Accounts) -> Bot {
    let accounts = Arc::new(accounts);
    Bot::builder(store.clone())
        .admins([UserId::parse("UADMIN").unwrap()])
        .script(opkit::builtin::script(Default::default()))
        .script(crate::accounts::script(
            accounts.book().clone(),
            "eu-west-1",
        ))
        .script(probe_script(accounts))
        .build()
        .unwrap()
}

/// `user` types `text` in `channel` to `bot`.
async fn tell(bot: &Bot, channel: &str, user: &str, text: &str) -> Reply {
    let caller = Caller {
        user: UserId::parse(user).unwrap(),
        channel: Some(ChannelId::parse(channel).unwrap()),
        team: None,
        thread_ts: None,
    };
    bot.handle(&opkit::engine::bot::Request::new(caller, text))
        .await
}

async fn accounts_of(book: &str) -> Accounts {
    Accounts::new(AccountBook::parse(book).unwrap(), &home().await)
}

#[tokio::test]
async fn a_channel_default_no_longer_configured_is_refused_with_no_accounts_named() {
    // GIVEN a channel pointed at staging while it was configured (F7)
    let store = Arc::new(MemoryStore::new());
    let before = probe_bot_on(&store, accounts_of(BOOK).await);
    tell(&before, "C0STG", "UADMIN", "accounts use staging").await;
    // WHEN the setting is emptied (or unset: no accounts either way)
    let after = probe_bot_on(&store, Accounts::none());
    let say = |text: &'static str| {
        let after = after.clone();
        async move { tell(&after, "C0STG", "U1", text).await.text.into_string() }
    };
    // THEN its commands are refused, as `accounts show` says, not run in the bot's own
    let refused = say("probe look").await;
    assert!(
        refused.contains("default AWS account is `staging`, which is no longer configured"),
        "{refused}"
    );
    let shown = say("accounts show").await;
    assert!(shown.contains("AWS commands here are refused"), "{shown}");
    let listed = say("accounts").await;
    assert!(listed.contains("AWS commands here are refused"), "{listed}");
    // AND another channel, without a default, looks at the bot's own account
    let elsewhere = tell(&after, "C0OTHER", "U1", "probe look").await.text;
    assert_eq!(elsewhere, "looked in eu-west-1");
    // AND `accounts use none` clears it
    tell(&after, "C0STG", "UADMIN", "accounts use none").await;
    assert_eq!(say("probe look").await, "looked in eu-west-1");
}

#[tokio::test]
async fn a_held_place_that_no_longer_resolves_the_same_is_refused_not_moved() {
    let store = Arc::new(MemoryStore::new());
    let no_own =
        r#"{"prod": {"role_arn": "arn:aws:iam::111111111111:role/opkit", "region": "us-west-2"}}"#;
    let before = probe_bot_on(&store, accounts_of(no_own).await);
    // GIVEN requests asked in prod and in the bot's own account, unnamed
    let in_prod = tell(&before, "C0PS", "UOPS", "probe act in prod").await;
    let own = tell(&before, "C0PS", "UOPS", "probe act").await;
    assert!(
        own.text.contains("the bot's own account, eu-west-1"),
        "{}",
        own.text
    );
    let pending: opkit::engine::gate::PendingState = serde_json::from_value(
        store
            .load(opkit::engine::gate::PENDING_SCRIPT)
            .await
            .unwrap()
            .value
            .unwrap(),
    )
    .unwrap();
    let mut held: Vec<&str> = pending
        .requests
        .values()
        .filter_map(|p| p.bound.get(PLACE).map(String::as_str))
        .collect();
    held.sort_unstable();
    assert_eq!(
        held,
        [
            "in prod us-west-2",
            "the bot's own account, in the deployment's region"
        ],
        "the place is held with each request"
    );
    // WHEN the setting changes before the clicks: prod gone, the own account named
    let after = probe_bot_on(
        &store,
        accounts_of(r#"{"tools": {"region": "eu-west-1"}}"#).await,
    );
    let click = |prompt: Reply| {
        let after = after.clone();
        async move {
            let caller = Caller::user(UserId::parse("UOPS").unwrap());
            after
                .decide(&caller, &pending_id(&prompt), Decision::Confirm)
                .await
                .text
                .into_string()
        }
    };
    // THEN neither acts elsewhere: prod is unknown, and the own account moved
    let gone = click(in_prod).await;
    assert!(gone.contains("I know no AWS account"), "{gone}");
    assert!(!gone.contains("acted"), "{gone}");
    let moved = click(own).await;
    assert!(
        moved.contains(
            "The AWS account and region changed since this request was asked: it was the \
             bot's own account, in the deployment's region, it is now in tools eu-west-1. \
             Nothing was run"
        ),
        "{moved}"
    );
}

#[tokio::test]
async fn accounts_counts_in_the_singular_and_flags_a_region_aws_does_not_list() {
    let t = probe_bot(
        r#"{"prod": {"role_arn": "arn:aws:iam::111111111111:role/o", "region": "us-wset-2"}}"#,
    )
    .await;
    let listed = t.text("U1", "accounts").await;
    assert!(listed.starts_with("1 AWS account:\n"), "{listed}");
    assert!(
        listed.contains(
            "us-wset-2 — `us-wset-2` is not a region AWS lists (did you mean `us-west-2`?)"
        ),
        "{listed}"
    );
    let shown = t.text("U1", "accounts show prod").await;
    assert!(shown.contains("did you mean `us-west-2`?"), "{shown}");
    let two = probe_bot(BOOK).await.text("U1", "accounts").await;
    assert!(two.starts_with("3 AWS accounts:\n"), "{two}");
}

#[cfg(all(feature = "ec2", feature = "cloudwatch", feature = "sqs"))]
#[tokio::test]
async fn every_aws_command_takes_the_in_words_in_its_usage() {
    // A command whose usage line is empty takes no words at all: `health in
    // prod` would be refused as extra words before it looked anywhere.
    let sdk = home().await;
    let opts = crate::AwsPacksConfig::default();
    let t = TestBot::with(|b| crate::with_aws_packs(b, &sdk, &opts));
    let registry = t.bot.registry();
    let aws: Vec<_> = registry
        .commands()
        .iter()
        .filter(|c| ["cloudwatch", "ec2", "sqs"].contains(&&*c.script))
        .collect();
    assert!(aws.len() >= 10, "{}", aws.len());
    for command in aws {
        assert!(
            !command.usage.is_empty(),
            "`{}` has no usage line",
            command.name
        );
    }
}
