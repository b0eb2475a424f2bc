//! Helpers for the AWS pack tests: clients per region (each test uses its own
//! region, so tests sharing one emulator cannot see each other's alarms,
//! instances or queues), seeding, a bot, and a fake graph renderer.
//!
//! CloudWatch goes through `infra/cloudwatch_bridge.py` (started by
//! `infra/test.sh`, named by `AWS_ENDPOINT_URL_CLOUDWATCH`): the current SDK
//! speaks Smithy RPC v2 CBOR, which moto does not.

use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
use catbot::packs::aws::cloudwatch::MetricImages;
use catbot::packs::aws::format::AwsFailure;
use opkit::BoxFuture;
use opkit::engine::bot::{Bot, BotBuilder, Request};
use opkit::engine::command::Caller;
use opkit::ids::{ChannelId, UserId};
use opkit::slack::Reply;
use opkit::store::memory::MemoryStore;

use crate::aws::emulator_endpoint;

/// The variable naming the CloudWatch bridge.
pub const CLOUDWATCH_VAR: &str = "AWS_ENDPOINT_URL_CLOUDWATCH";

/// A real 1×1 PNG, as GetMetricWidgetImage would return (smaller).
pub const TINY_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
    0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0x00,
    0x00, 0x03, 0x01, 0x01, 0x00, 0xc9, 0xfe, 0x92, 0xef, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];

/// SDK configuration for the emulator in `region` (dummy credentials).
pub async fn sdk_config_in(region: &str) -> SdkConfig {
    let endpoint = emulator_endpoint();
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new("test", "test", None, None, "opkit-tests"))
        .load()
        .await;
    assert_eq!(config.endpoint_url(), Some(endpoint.as_str()));
    config
}

/// The CloudWatch bridge's URL; panics, saying what to run, when there is none.
pub fn cloudwatch_endpoint() -> String {
    let Ok(url) = std::env::var(CLOUDWATCH_VAR) else {
        panic!(
            "{CLOUDWATCH_VAR} is not set: CloudWatch tests need the bridge to moto. \
             Run them through `bash infra/test.sh`"
        );
    };
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "{CLOUDWATCH_VAR}={url} is not a loopback address"
    );
    url
}

/// A CloudWatch client on the bridge in `region`.
pub async fn cloudwatch_client(region: &str) -> aws_sdk_cloudwatch::Client {
    let sdk = sdk_config_in(region).await;
    let config = aws_sdk_cloudwatch::config::Builder::from(&sdk)
        .endpoint_url(cloudwatch_endpoint())
        .build();
    aws_sdk_cloudwatch::Client::from_conf(config)
}

/// An EC2 client in `region`.
pub async fn ec2_client(region: &str) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&sdk_config_in(region).await)
}

/// An SQS client in `region`.
pub async fn sqs_client(region: &str) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sdk_config_in(region).await)
}

/// A bot on memory with `UADMIN` as admin, the built-ins, and whatever `add` adds.
pub fn bot(add: impl FnOnce(BotBuilder) -> BotBuilder) -> (Bot, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let builder = Bot::builder(store.clone())
        .admins([UserId::parse("UADMIN").expect("user id")])
        .script(opkit::builtin::script(Default::default()));
    (add(builder).build().expect("bot builds"), store)
}

/// `user` says `text` in channel `C0PS`.
pub async fn say(bot: &Bot, user: &str, text: &str) -> Reply {
    let caller = Caller::in_channel(
        UserId::parse(user).expect("user id"),
        ChannelId::parse("C0PS").expect("channel id"),
    );
    bot.handle(&Request::new(caller, text)).await
}

/// [`say`], then — when the command asks for a confirmation — clicks *Confirm*
/// as the same user, returning the outcome.
pub async fn say_confirmed(bot: &Bot, user: &str, text: &str) -> Reply {
    let prompt = say(bot, user, text).await;
    let pending = prompt.blocks.iter().find_map(|b| match b {
        opkit::slack::Block::Actions { buttons } => buttons
            .iter()
            .find(|b| b.action_id == opkit::engine::gate::actions::CONFIRM)
            .map(|b| b.value.clone()),
        _ => None,
    });
    let Some(pending) = pending else {
        return prompt;
    };
    let caller = Caller::user(UserId::parse(user).expect("user id"));
    bot.decide(&caller, &pending, opkit::engine::gate::Decision::Confirm)
        .await
}

/// Starts `count` instances named `name`, with extra tags; returns their ids.
pub async fn run(
    ec2: &aws_sdk_ec2::Client,
    name: &str,
    tags: &[(&str, &str)],
    count: i32,
) -> Vec<String> {
    let mut spec = TagSpecification::builder()
        .resource_type(ResourceType::Instance)
        .tags(Tag::builder().key("Name").value(name).build());
    for (k, v) in tags {
        spec = spec.tags(Tag::builder().key(*k).value(*v).build());
    }
    let out = ec2
        .run_instances()
        .image_id(image_id(ec2).await)
        .instance_type(InstanceType::T3Micro)
        .min_count(count)
        .max_count(count)
        .tag_specifications(spec.build())
        .send()
        .await
        .expect("run instances");
    out.instances()
        .iter()
        .map(|i| i.instance_id().unwrap().to_string())
        .collect()
}

/// Creates a metric alarm on `AWS/EC2 CPUUtilization InstanceId=<name>` and sets
/// its state.
pub async fn seed_alarm(cw: &aws_sdk_cloudwatch::Client, name: &str, state: &str, reason: &str) {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, StateValue, Statistic};
    cw.put_metric_alarm()
        .alarm_name(name)
        .namespace("AWS/EC2")
        .metric_name("CPUUtilization")
        .dimensions(Dimension::builder().name("InstanceId").value(name).build())
        .statistic(Statistic::Average)
        .period(300)
        .evaluation_periods(1)
        .threshold(80.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .expect("put metric alarm");
    cw.set_alarm_state()
        .alarm_name(name)
        .state_value(StateValue::from(state))
        .state_reason(reason)
        .send()
        .await
        .expect("set alarm state");
}

/// A graph renderer that records the widgets it is asked for and answers with
/// [`TINY_PNG`] (moto has no GetMetricWidgetImage).
#[derive(Default)]
pub struct FakeImages {
    widgets: Mutex<Vec<String>>,
}

impl FakeImages {
    /// The widget JSON of every request so far.
    pub fn widgets(&self) -> Vec<serde_json::Value> {
        self.widgets
            .lock()
            .expect("lock")
            .iter()
            .map(|w| serde_json::from_str(w).expect("widget is JSON"))
            .collect()
    }
}

impl MetricImages for FakeImages {
    fn render<'a>(&'a self, widget: &'a str) -> BoxFuture<'a, Result<Vec<u8>, AwsFailure>> {
        self.widgets.lock().expect("lock").push(widget.to_string());
        Box::pin(std::future::ready(Ok(TINY_PNG.to_vec())))
    }
}

/// An image moto has in the client's region: its usual `ami-12c6146b` (asked for
/// by id, which is quick), else the first of the full list.
pub async fn image_id(ec2: &aws_sdk_ec2::Client) -> String {
    const USUAL: &str = "ami-12c6146b";
    let usual = ec2.describe_images().image_ids(USUAL).send().await;
    if usual.is_ok_and(|out| !out.images().is_empty()) {
        return USUAL.to_string();
    }
    let images = ec2.describe_images().send().await.expect("describe images");
    images
        .images()
        .iter()
        .find_map(|i| i.image_id().map(str::to_string))
        .expect("moto has images")
}

/// Starts one instance named `name` with extra tags; returns its id.
pub async fn run_instance(ec2: &aws_sdk_ec2::Client, name: &str, tags: &[(&str, &str)]) -> String {
    run(ec2, name, tags, 1).await.remove(0)
}
