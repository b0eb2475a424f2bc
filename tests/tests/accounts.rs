//! Several AWS accounts on the emulator: `in <account>` assumes the account's
//! role through STS (moto's AssumeRole hands out credentials of the role's
//! account, and keeps each account's resources apart), a channel's default
//! account, the admin-only `accounts use`, unknown names. The bot's AWS calls go
//! through a [`FaultProxy`], which records them: which roles were assumed, how
//! often, with which external id. Run through `bash infra/test.sh`.

use std::sync::Arc;

use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use catbot::AwsPacksConfig;
use catbot::accounts::AccountBook;
use catbot::packs::aws::cloudwatch::{self, CloudWatchOptions};
use catbot::packs::aws::targets::Accounts;
use opkit::audit::Outcome;
use opkit::engine::bot::Bot;
use opkit::store::AuditLog;
use opkit::store::memory::MemoryStore;
use opkit_tests::aws::emulator_endpoint;
use opkit_tests::aws_packs::{bot, cloudwatch_client, ec2_client, run, say};
use opkit_tests::fault_proxy::{FaultProxy, ProxyFault};

const PROD_ID: &str = "111111111111";
const PROD_ROLE: &str = "arn:aws:iam::111111111111:role/opkit-target";
const EXTERNAL_ID: &str = "opkit-test-7f3a";

/// The accounts: prod (a role with an external id, its own region) and staging.
fn book(region: &str) -> AccountBook {
    AccountBook::parse(&format!(
        r#"{{"prod": {{"role_arn": "{PROD_ROLE}", "region": "{region}",
                      "external_id": "{EXTERNAL_ID}"}},
            "staging": {{"role_arn": "arn:aws:iam::222222222222:role/opkit-target"}}}}"#
    ))
    .expect("the accounts parse")
}

/// SDK configuration for `endpoint` (the proxy) in `region`, dummy credentials.
async fn sdk_at(endpoint: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new("test", "test", None, None, "opkit-tests"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// SDK configuration acting in prod: prod's role assumed on the emulator, as a
/// team would seed its other account (not through the proxy).
async fn prod_sdk(region: &str) -> SdkConfig {
    let home = sdk_at(&emulator_endpoint(), region).await;
    let role = AssumeRoleProvider::builder(PROD_ROLE)
        .session_name("seed")
        .configure(&home)
        .build()
        .await;
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .credentials_provider(role)
        .endpoint_url(emulator_endpoint())
        .load()
        .await
}

/// Catbot's AWS packs on `sdk` (through the proxy), with prod and staging.
fn catbot(sdk: &SdkConfig, region: &str) -> (Bot, Arc<MemoryStore>) {
    let opts = AwsPacksConfig {
        accounts: Arc::new(Accounts::new(book(region), sdk)),
        ..AwsPacksConfig::default()
    };
    bot(|b| catbot::with_aws_packs(b, sdk, &opts))
}

fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

#[tokio::test]
async fn in_an_account_assumes_its_role_once_and_looks_there() {
    // GIVEN an instance and a queue in the bot's own account, and others in prod
    let region = "ap-northeast-3";
    let id = run_id();
    let (home_vm, prod_vm) = (format!("home-{id}"), format!("prod-{id}"));
    run(&ec2_client(region).await, &home_vm, &[], 1).await;
    let prod = prod_sdk(region).await;
    run(&aws_sdk_ec2::Client::new(&prod), &prod_vm, &[], 1).await;
    let prod_queue = format!("prod-q-{id}");
    aws_sdk_sqs::Client::new(&prod)
        .create_queue()
        .queue_name(&prod_queue)
        .send()
        .await
        .expect("create prod's queue");
    let proxy = FaultProxy::start().await;
    let sdk = sdk_at(&proxy.url(), region).await;
    let (bot, store) = catbot(&sdk, region);

    // WHEN someone lists prod's instances
    let listed = say(&bot, "UA", "ec2 list in prod").await.text;

    // THEN prod's instance is there, the bot's own is not, and the reply says where
    assert!(listed.contains(&prod_vm), "{listed}");
    assert!(!listed.contains(&home_vm), "{listed}");
    assert!(
        listed.contains("in account prod, ap-northeast-3"),
        "{listed}"
    );

    // AND without `in`, the bot's own account, said as such
    let own = say(&bot, "UA", "ec2 list").await.text;
    assert!(own.contains(&home_vm) && !own.contains(&prod_vm), "{own}");
    assert!(
        own.contains("in the bot's own account, ap-northeast-3"),
        "{own}"
    );

    // AND prod's queue is seen in prod only, by the SQS pack too
    let queues = say(&bot, "UA", "sqs list prod-q in prod").await.text;
    assert!(queues.contains(&prod_queue), "{queues}");
    let own_queues = say(&bot, "UA", &format!("sqs list prod-q-{id}")).await.text;
    assert!(
        own_queues.starts_with("No SQS queues starting with"),
        "{own_queues}"
    );

    // AND the role was assumed once for all three commands (EC2 twice, SQS once):
    // one cached provider per account, with prod's external id
    say(&bot, "UA", "ec2 list in prod").await;
    let assumed = proxy.calls("AssumeRole", PROD_ID);
    assert_eq!(assumed.len(), 1, "{:?}", proxy.seen());
    assert!(
        assumed[0]
            .body
            .contains(&format!("ExternalId={EXTERNAL_ID}")),
        "{}",
        assumed[0].body
    );
    assert!(
        assumed[0].body.contains("RoleSessionName=opkit"),
        "{}",
        assumed[0].body
    );
    assert!(
        proxy.calls("AssumeRole", "222222222222").is_empty(),
        "staging was never asked for"
    );

    // AND the audit trail says where each command looked, with the account's id
    let looked: Vec<String> = store
        .recent(None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.outcome {
            Outcome::System { action } => Some(action),
            _ => None,
        })
        .collect();
    assert!(
        looked.contains(&format!(
            "ec2 list: looked at account prod, {region} (account id {PROD_ID})"
        )),
        "{looked:?}"
    );
    assert!(
        looked.contains(&format!(
            "ec2 list: looked at the bot's own account, {region}"
        )),
        "{looked:?}"
    );
}

#[tokio::test]
async fn a_channel_default_set_by_an_admin_is_where_its_commands_look() {
    let region = "ap-southeast-3";
    let id = run_id();
    let prod_vm = format!("prod-{id}");
    run(
        &aws_sdk_ec2::Client::new(&prod_sdk(region).await),
        &prod_vm,
        &[],
        1,
    )
    .await;
    let proxy = FaultProxy::start().await;
    let sdk = sdk_at(&proxy.url(), region).await;
    let (bot, _) = catbot(&sdk, region);

    // WHEN someone who is not an admin sets the channel's default THEN refused
    let refused = say(&bot, "UBOB", "accounts use prod").await.text;
    assert!(refused.contains("Sorry, you need"), "{refused}");
    assert!(refused.contains("admin"), "{refused}");
    assert!(!say(&bot, "UBOB", "ec2 list").await.text.contains(&prod_vm));

    // WHEN an admin sets it
    let set = say(&bot, "UADMIN", "accounts use prod").await.text;
    assert!(set.contains("now look at account prod"), "{set}");

    // THEN anyone's commands in the channel look at prod, without `in`
    let listed = say(&bot, "UBOB", "ec2 list").await.text;
    assert!(listed.contains(&prod_vm), "{listed}");
    assert!(
        listed.contains(&format!("in account prod, {region}")),
        "{listed}"
    );
    // AND a region typed alone keeps the channel's account
    let elsewhere = say(&bot, "UBOB", "ec2 list in us-east-2").await.text;
    assert!(
        elsewhere.contains("in account prod, us-east-2"),
        "{elsewhere}"
    );
    assert!(!elsewhere.contains(&prod_vm), "{elsewhere}");
    // AND an account typed wins over the channel's
    let staging = say(&bot, "UBOB", "ec2 list in staging").await.text;
    assert!(staging.contains("account staging"), "{staging}");
    assert!(!staging.contains(&prod_vm), "{staging}");
    // AND the listing marks the channel's default
    let list = say(&bot, "UBOB", "accounts").await.text;
    assert!(list.contains("*prod* — 111111111111"), "{list}");
    assert!(list.contains("this channel's default"), "{list}");
    assert!(
        !list.contains(EXTERNAL_ID),
        "the external id is never shown: {list}"
    );

    // WHEN the admin clears it THEN the bot's own account again
    let cleared = say(&bot, "UADMIN", "accounts use none").await.text;
    assert!(cleared.contains("it was prod"), "{cleared}");
    let own = say(&bot, "UBOB", "ec2 list").await.text;
    assert!(own.contains("the bot's own account"), "{own}");
}

#[tokio::test]
async fn unknown_accounts_and_regions_are_refused_before_any_aws_call() {
    let region = "ca-west-1";
    let proxy = FaultProxy::start().await;
    let sdk = sdk_at(&proxy.url(), region).await;
    let (bot, _) = catbot(&sdk, region);

    let typo = say(&bot, "UA", "ec2 list in prdo").await.text;
    assert!(
        typo.contains("I know no AWS account `prdo`. Did you mean `prod`?"),
        "{typo}"
    );
    let region_typo = say(&bot, "UA", "sqs list in ca-west-9").await.text;
    assert!(
        region_typo.contains("I know no AWS region `ca-west-9`"),
        "{region_typo}"
    );
    let twice = say(&bot, "UA", "ec2 list in prod staging").await.text;
    assert!(twice.contains("one account and one region"), "{twice}");
    let setting = say(&bot, "UADMIN", "accounts use prdo").await.text;
    assert!(setting.contains("Did you mean `prod`?"), "{setting}");

    assert!(
        proxy.seen().is_empty(),
        "nothing reached AWS: {:?}",
        proxy.seen()
    );
}

#[tokio::test]
async fn a_role_that_cannot_be_assumed_is_one_clear_sentence() {
    let region = "eu-south-2";
    let proxy = FaultProxy::start().await;
    proxy.inject("AssumeRole", None, 0, 100, ProxyFault::ServerError(500));
    let sdk = sdk_at(&proxy.url(), region).await;
    let (bot, _) = catbot(&sdk, region);

    let reply = say(&bot, "UA", "ec2 list in prod").await.text;
    assert!(
        reply.contains("Could not assume the role of account prod"),
        "{reply}"
    );
    assert!(reply.contains(PROD_ROLE), "{reply}");
    assert!(
        proxy.calls("DescribeInstances", "").is_empty(),
        "no call without credentials"
    );
}

#[tokio::test]
async fn the_issues_form_alarms_in_staging_us_west_2_names_both() {
    // The CloudWatch pack takes the same words (its bridge to moto does not keep
    // accounts apart, so this checks the words and the reply, not the partition).
    let region = "sa-east-1";
    let sdk = sdk_at(&emulator_endpoint(), region).await;
    let opts = CloudWatchOptions {
        accounts: Arc::new(Accounts::new(book(region), &sdk)),
        ..CloudWatchOptions::default()
    };
    let cw = cloudwatch_client(region).await;
    let (bot, _) = bot(|b| b.script(cloudwatch::script(cw, opts)));
    let reply = say(&bot, "UA", "alarms in staging us-west-2").await.text;
    assert!(reply.contains("in account staging, us-west-2"), "{reply}");
}

#[tokio::test]
async fn a_confirmed_reboot_acts_in_the_account_its_prompt_named() {
    // GIVEN an instance `web-<id>` in the bot's own account and one in prod,
    // both managed (the finding F6: prod's role, another region than the own's)
    let region = "eu-central-2";
    let id = run_id();
    let web = format!("web-{id}");
    let managed = [("opkit:managed", "true")];
    let home_ids = run(&ec2_client(region).await, &web, &managed, 1).await;
    let prod_ids = run(
        &aws_sdk_ec2::Client::new(&prod_sdk(region).await),
        &web,
        &managed,
        1,
    )
    .await;
    let proxy = FaultProxy::start().await;
    let sdk = sdk_at(&proxy.url(), region).await;
    let (bot, _) = catbot(&sdk, region);

    // WHEN the channel defaults to prod, a reboot is asked there
    say(&bot, "UADMIN", "accounts use prod").await;
    let prompt = say(&bot, "UADMIN", &format!("ec2 reboot {web}")).await;
    assert!(
        prompt.text.contains(&format!(
            "It would reboot {web} ({}) in account prod, {region}.",
            prod_ids[0]
        )),
        "{}",
        prompt.text
    );
    // AND the channel's default changes before the confirmation
    say(&bot, "UADMIN", "accounts use none").await;
    let pending = prompt
        .blocks
        .iter()
        .find_map(|b| match b {
            opkit::slack::Block::Actions { buttons } => Some(buttons[0].value.clone()),
            _ => None,
        })
        .expect("a confirmation prompt");
    let caller = opkit::engine::command::Caller::user(opkit::ids::UserId::parse("UADMIN").unwrap());
    let done = bot
        .decide(&caller, &pending, opkit::engine::gate::Decision::Confirm)
        .await
        .text;

    // THEN prod's instance was rebooted, the bot's own was not touched
    assert!(
        done.contains(&format!("Rebooting 1 instance in account prod, {region}")),
        "{done}"
    );
    assert!(done.contains(&prod_ids[0]), "{done}");
    assert_eq!(proxy.calls("RebootInstances", &prod_ids[0]).len(), 1);
    assert!(
        proxy.calls("RebootInstances", &home_ids[0]).is_empty(),
        "{:?}",
        proxy.seen()
    );
}

/// Every instance is managed (the tag lookup is not what this checks).
struct AllManaged;

impl catbot::packs::notify::ManagedInstances for AllManaged {
    fn is_managed<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> opkit::BoxFuture<'a, Result<bool, String>> {
        Box::pin(std::future::ready(Ok(true)))
    }
}

#[tokio::test]
async fn opkits_own_stop_in_a_named_account_is_not_news() {
    // GIVEN a managed instance in prod (the finding F4: with accounts configured,
    // `ec2 stop` recorded the place's label, `account prod, …`, as the region, so
    // its own events were posted as news)
    let region = "eu-central-2";
    let web = format!("web-{}", run_id());
    let managed = [("opkit:managed", "true")];
    let prod_ec2 = aws_sdk_ec2::Client::new(&prod_sdk(region).await);
    let prod_ids = run(&prod_ec2, &web, &managed, 1).await;
    let proxy = FaultProxy::start().await;
    let sdk = sdk_at(&proxy.url(), region).await;
    let (bot, _) = catbot(&sdk, region);

    // WHEN Opkit stops it there, confirmed
    let done =
        opkit_tests::aws_packs::say_confirmed(&bot, "UADMIN", &format!("ec2 stop {web} in prod"))
            .await
            .text;
    assert!(done.contains("in account prod"), "{done}");

    // THEN the events EC2 sends for it (prod's id, the real region) post nothing,
    // said as Opkit's own doing
    let notifier = catbot::packs::notify::Notifier::new(bot.clone(), None)
        .with_instances(Arc::new(AllManaged));
    let at = chrono::Utc::now();
    for state in ["stopping", "stopped"] {
        let mut event: serde_json::Value = serde_json::from_str(
            &opkit_tests::eventbridge::instance_change(region, &prod_ids[0], state, at),
        )
        .unwrap();
        event["account"] = PROD_ID.into();
        let out = notifier.handle(&event.to_string()).await.unwrap();
        assert_eq!(
            out.quiet,
            Some(catbot::packs::notify::incident::Why::AskedByOpkit),
            "{state}"
        );
    }
}
