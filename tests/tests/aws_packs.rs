//! Catbot's AWS commands against the emulator (moto's server) through the real
//! SDK clients; CloudWatch through `infra/cloudwatch_bridge.py`. Run through
//! `bash infra/test.sh`.
//!
//! Each test works in its own region, so tests sharing the emulator cannot see
//! each other's alarms, instances or queues, and every reply names the region.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use aws_sdk_ec2::types::Filter;
use catbot::packs::aws::cloudwatch::{self, CloudWatchOptions};
use catbot::packs::aws::ec2::{self, Ec2Options};
use catbot::packs::aws::sqs::{self, SqsOptions};
use opkit::audit::Outcome;
use opkit::engine::bot::Bot;
use opkit::slack::web::{BotToken, SlackApi};
use opkit::store::AuditLog;
use opkit::store::memory::MemoryStore;
use opkit_tests::aws_packs::{
    FakeImages, TINY_PNG, bot, cloudwatch_client, ec2_client, run, say, say_confirmed,
    sdk_config_in, seed_alarm, sqs_client,
};
use opkit_tests::{CannedResponse, FakeSlack, RecordedBody};
use serde_json::json;

fn cw_bot(cw: aws_sdk_cloudwatch::Client, opts: CloudWatchOptions) -> (Bot, Arc<MemoryStore>) {
    bot(|b| b.script(cloudwatch::script(cw, opts)))
}

/// Eight hex digits no other run uses: names made with it survive re-running
/// the tests against the same emulator.
fn run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// The words of the table row that starts with `first`.
fn row<'a>(table: &'a str, first: &str) -> Vec<&'a str> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(first))
        .unwrap_or_else(|| panic!("no row for `{first}` in:\n{table}"))
        .split_whitespace()
        .collect()
}

/// Where `needle` starts in `haystack`; panics with both if it is not there.
fn at(haystack: &str, needle: &str) -> usize {
    haystack
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in:\n{haystack}"))
}

#[tokio::test]
async fn alarms_lists_a_state_newest_change_first_with_reasons() {
    let region = "eu-west-3";
    let cw = cloudwatch_client(region).await;
    // b's state changes last: newest first puts it before a, against name order
    seed_alarm(
        &cw,
        "alarms-t-a",
        "ALARM",
        "Threshold crossed: 1 datapoint (91.0)",
    )
    .await;
    seed_alarm(
        &cw,
        "alarms-t-b",
        "ALARM",
        "Threshold crossed: 3 datapoints",
    )
    .await;
    seed_alarm(&cw, "alarms-t-fine", "OK", "back to normal").await;
    let (bot, _) = cw_bot(cw, CloudWatchOptions::default());

    let reply = say(&bot, "UA", "alarms").await;
    let text = &reply.text;
    assert!(
        text.starts_with("2 alarms in ALARM in eu-west-3, newest change first:"),
        "{text}"
    );
    assert!(at(text, "*alarms-t-b* — ALARM since ") < at(text, "*alarms-t-a* — ALARM since "));
    assert!(
        text.contains("Threshold crossed: 1 datapoint (91.0)"),
        "{text}"
    );
    assert!(!text.contains("alarms-t-fine"), "{text}");
    assert_eq!(
        reply.blocks.len(),
        2,
        "a summary section and a list section"
    );

    let ok = say(&bot, "UA", "alarms ok").await.text;
    assert!(ok.starts_with("1 alarm in OK in eu-west-3"), "{ok}");
    assert!(
        ok.contains("*alarms-t-fine* — OK") && ok.contains("back to normal"),
        "{ok}"
    );
    let all = say(&bot, "UA", "alarms all").await.text;
    assert!(
        all.starts_with("3 alarms in any state in eu-west-3"),
        "{all}"
    );
    assert!(
        say(&bot, "UA", "alarms insufficient_data")
            .await
            .text
            .starts_with("No alarms in INSUFFICIENT_DATA in eu-west-3.")
    );
    let prefixed = say(&bot, "UA", "alarms prefix alarms-t-a").await.text;
    assert!(
        prefixed.starts_with("1 alarm starting with `alarms-t-a` in any state in eu-west-3"),
        "{prefixed}"
    );
    let prefixed_ok = say(&bot, "UA", "alarms prefix alarms-t ok").await.text;
    assert!(
        prefixed_ok.starts_with("1 alarm starting with `alarms-t` in OK"),
        "{prefixed_ok}"
    );
    assert_eq!(
        say(&bot, "UA", "alarms red").await.text,
        "`red` is not a state: use alarm, ok, insufficient_data or all. \
         Usage: `alarms [alarm|ok|insufficient_data|all]`"
    );
}

#[tokio::test]
async fn alarm_listings_follow_pagination_to_the_end() {
    // GIVEN more alarms than one page holds (the bridge pages by MaxRecords=100)
    let region = "ap-northeast-2";
    let cw = cloudwatch_client(region).await;
    let mut seeding = tokio::task::JoinSet::new();
    for i in 0..130 {
        let cw = cw.clone();
        seeding
            .spawn(async move { seed_alarm(&cw, &format!("page-{i:03}"), "ALARM", "paged").await });
    }
    seeding.join_all().await;
    let (bot, _) = cw_bot(cw, CloudWatchOptions::default());
    // WHEN all are listed THEN every page is counted and the rest is summarised
    let text = say(&bot, "UA", "alarms").await.text;
    assert!(
        text.starts_with("130 alarms in ALARM in ap-northeast-2"),
        "{text}"
    );
    assert!(
        text.ends_with("…and 120 more. Narrow the query to see them."),
        "{text}"
    );
    let health = say(&bot, "UA", "health").await.text;
    assert!(
        health.contains("130 in ALARM, 0 OK, 0 INSUFFICIENT_DATA (130 alarms)"),
        "{health}"
    );
}

#[tokio::test]
async fn the_watchlist_keeps_names_in_state_and_shows_current_states() {
    let region = "eu-west-2";
    let cw = cloudwatch_client(region).await;
    seed_alarm(&cw, "watch-db", "OK", "fine").await;
    seed_alarm(&cw, "watch-web", "ALARM", "5xx over 5%").await;
    seed_alarm(&cw, "watch-other", "ALARM", "not watched").await;
    let (bot, _) = cw_bot(cw.clone(), CloudWatchOptions::default());

    assert_eq!(
        say(&bot, "UA", "alarms watched").await.text,
        "The watchlist is empty: `alarms watch &lt;name&gt;` adds an alarm."
    );
    assert_eq!(
        say(&bot, "UA", "alarms watch watch-db").await.text,
        "Watching *watch-db* (OK now in eu-west-2). `alarms watched` shows the watchlist."
    );
    say(&bot, "UB", "alarms watch watch-web").await;
    assert_eq!(
        say(&bot, "UA", "alarms watch watch-db").await.text,
        "*watch-db* is already watched."
    );
    assert_eq!(
        say(&bot, "UA", "alarms watch watch-nope").await.text,
        "No alarm named *watch-nope* in eu-west-2 (names are case-sensitive)."
    );
    let watched = say(&bot, "UA", "alarms watched").await.text;
    assert!(
        watched.starts_with("2 watched alarms in eu-west-2, 1 in ALARM:"),
        "{watched}"
    );
    assert!(watched.contains("*watch-db* — OK") && watched.contains("*watch-web* — ALARM"));
    assert!(!watched.contains("watch-other") && !watched.contains("watch-nope"));

    // WHEN an alarm's state changes and another is deleted THEN the list says so
    seed_alarm(&cw, "watch-db", "ALARM", "CPU high").await;
    cw.delete_alarms()
        .alarm_names("watch-web")
        .send()
        .await
        .unwrap();
    let watched = say(&bot, "UA", "alarms watched").await.text;
    assert!(
        watched.contains("*watch-db* — ALARM") && watched.contains("CPU high"),
        "{watched}"
    );
    assert!(
        watched.contains("*watch-web* — no longer exists in eu-west-2"),
        "{watched}"
    );

    assert_eq!(
        say(&bot, "UA", "alarms unwatch watch-web").await.text,
        "Stopped watching *watch-web*."
    );
    assert_eq!(
        say(&bot, "UA", "alarms unwatch watch-web").await.text,
        "*watch-web* is not on the watchlist."
    );
    assert!(
        say(&bot, "UA", "alarms watched")
            .await
            .text
            .starts_with("1 watched alarm in")
    );
}

#[tokio::test]
async fn health_counts_alarms_by_state() {
    let cw = cloudwatch_client("ca-central-1").await;
    seed_alarm(&cw, "health-a", "ALARM", "x").await;
    seed_alarm(&cw, "health-b", "OK", "x").await;
    seed_alarm(&cw, "health-c", "OK", "x").await;
    seed_alarm(&cw, "health-d", "INSUFFICIENT_DATA", "x").await;
    let (bot, _) = cw_bot(cw, CloudWatchOptions::default());
    assert_eq!(
        say(&bot, "UA", "health").await.text,
        ":red_circle: Health of ca-central-1: 1 in ALARM, 2 OK, 1 INSUFFICIENT_DATA (4 alarms)\n\
         In ALARM: *health-a*"
    );
}

#[tokio::test]
async fn metric_shows_statistics_and_tells_unknown_metrics_from_missing_data() {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
    let cw = cloudwatch_client("eu-north-1").await;
    let ns = format!("Opkit/Test-{}", run_id());
    let now = chrono::Utc::now().timestamp();
    let data: Vec<MetricDatum> = [(-50, 10.0), (-49, 30.0), (-20, 5.0)]
        .iter()
        .map(|(minutes, v)| {
            MetricDatum::builder()
                .metric_name("Latency")
                .dimensions(Dimension::builder().name("Service").value("api").build())
                .timestamp(DateTime::from_secs(now + minutes * 60))
                .value(*v)
                .unit(StandardUnit::Milliseconds)
                .build()
        })
        .collect();
    cw.put_metric_data()
        .namespace(&ns)
        .set_metric_data(Some(data))
        .send()
        .await
        .expect("put metric data");
    let (bot, _) = cw_bot(cw, CloudWatchOptions::default());

    let avg = say(&bot, "UA", &format!("metric {ns} Latency Service=api"))
        .await
        .text;
    let expected = format!(
        "*{ns} Latency (Service=api)*: Average per 5m over the last 1h in eu-north-1\n```\nTime (UTC)  Average (Milliseconds)\n"
    );
    assert!(avg.starts_with(&expected), "{avg}");
    assert!(
        avg.contains("lowest 5, highest 20"),
        "two periods: (10+30)/2 and 5\n{avg}"
    );
    let max = say(
        &bot,
        "UA",
        &format!("metric {ns} Latency Service=api last 2h stat max"),
    )
    .await
    .text;
    assert!(max.contains("Maximum per 10m over the last 2h"), "{max}");
    assert!(max.contains("lowest 5, highest 30"), "{max}");

    assert_eq!(
        say(&bot, "UA", &format!("metric {ns} Latncy Service=api"))
            .await
            .text,
        format!(
            "CloudWatch has no metric `Latncy` in namespace `{ns}` in eu-north-1 \
             (names are case-sensitive). Did you mean `Latency`?"
        )
    );
    assert_eq!(
        say(&bot, "UA", &format!("metric {ns} Latency Service=web"))
            .await
            .text,
        format!(
            "No datapoints for *{ns} Latency (Service=web)* in the last 1h in eu-north-1. \
             It is published with: Service=api"
        )
    );
    let usage = say(&bot, "UA", &format!("metric {ns} Latency Service"))
        .await
        .text;
    assert!(
        usage.starts_with("expected a dimension like `key=value`, not `Service`. Usage: `metric"),
        "{usage}"
    );
}

#[tokio::test]
async fn graph_draws_an_alarms_metric_and_uploads_it_to_the_channel() {
    // GIVEN an alarm, a fake renderer, and a fake Slack that hands out an upload URL
    let cw = cloudwatch_client("sa-east-1").await;
    seed_alarm(&cw, "graph-cpu", "ALARM", "CPU high").await;
    let slack = FakeSlack::start().await;
    let upload_url = slack.response_url("upload-1");
    slack.push_response(
        CannedResponse::status(200)
            .with_header("Content-Type", "application/json")
            .with_body(
                json!({"ok": true, "upload_url": upload_url, "file_id": "F0GRAPH"}).to_string(),
            ),
    );
    let images = Arc::new(FakeImages::default());
    let api = SlackApi::new(BotToken::new("xoxb-test"), reqwest::Client::new())
        .with_base_url(slack.api_url());
    let opts = CloudWatchOptions {
        images: Some(images.clone()),
        uploader: Some(Arc::new(api)),
        ..CloudWatchOptions::default()
    };
    let (bot, _) = cw_bot(cw, opts);

    // WHEN someone asks for the alarm's graph
    let reply = say(&bot, "UA", "graph graph-cpu last 6h").await.text;

    // THEN the alarm's metric is drawn with its threshold over the asked window
    assert_eq!(
        reply,
        "Posted a graph of AWS/EC2 CPUUtilization (InstanceId=graph-cpu), Average over the last 6h in sa-east-1 (asked by <@UA>)."
    );
    let widget = &images.widgets()[0];
    assert_eq!(
        widget["metrics"][0],
        json!(["AWS/EC2", "CPUUtilization", "InstanceId", "graph-cpu", {"stat": "Average"}])
    );
    assert_eq!(widget["annotations"]["horizontal"][0]["value"], 80.0);
    assert_eq!(widget["start"], "-PT360M");
    assert_eq!(widget["region"], "sa-east-1");
    // AND the PNG went through Slack's external upload flow, shared in the channel
    let requests = slack.requests();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/api/files.getUploadURLExternal",
            "/response/upload-1",
            "/api/files.completeUploadExternal"
        ]
    );
    let RecordedBody::Form(get_url) = &requests[0].body else {
        panic!(
            "getUploadURLExternal is form-encoded: {:?}",
            requests[0].body
        )
    };
    assert!(get_url.contains(&("filename".into(), "CPUUtilization.png".into())));
    assert!(get_url.contains(&("length".into(), TINY_PNG.len().to_string())));
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer xoxb-test")
    );
    assert_eq!(
        requests[1].header("authorization"),
        None,
        "the token stays with Slack's API"
    );
    assert_eq!(
        requests[1].header("content-length"),
        Some(TINY_PNG.len().to_string().as_str())
    );
    let RecordedBody::Form(complete) = &requests[2].body else {
        panic!("completeUploadExternal is form-encoded")
    };
    let field = |k: &str| {
        complete
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(field("channel_id").as_deref(), Some("C0PS"));
    let files: serde_json::Value = serde_json::from_str(&field("files").unwrap()).unwrap();
    assert_eq!(
        files,
        json!([{"id": "F0GRAPH", "title": "graph-cpu (ALARM)"}])
    );
    assert!(field("initial_comment").unwrap().contains("asked by <@UA>"));

    // AND a metric can be drawn directly; unknown alarms and Slack refusals are explained
    slack.push_response(CannedResponse::slack_error("not_in_channel"));
    let refused = say(
        &bot,
        "UA",
        "graph AWS/EC2 CPUUtilization InstanceId=i-1 stat max",
    )
    .await
    .text;
    assert_eq!(
        refused,
        "I drew the graph but Slack would not take it (not_in_channel). Is the bot in this channel?"
    );
    assert_eq!(
        images.widgets()[1]["metrics"][0][4],
        json!({"stat": "Maximum"})
    );
    assert!(
        say(&bot, "UA", "graph nope-alarm")
            .await
            .text
            .starts_with("No alarm named *nope-alarm* in sa-east-1.")
    );
}

#[tokio::test]
async fn graph_without_a_bot_token_says_what_it_needs() {
    let cw = cloudwatch_client("sa-east-1").await;
    let (bot, _) = cw_bot(cw, CloudWatchOptions::default());
    assert_eq!(
        say(&bot, "UA", "graph AWS/EC2 CPUUtilization").await.text,
        "`graph` posts a picture to Slack, which needs the bot token (SLACK_BOT_TOKEN) in this deployment."
    );
}

async fn states(ec2: &aws_sdk_ec2::Client, ids: &[String]) -> Vec<String> {
    let out = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name("instance-id")
                .set_values(Some(ids.to_vec()))
                .build(),
        )
        .send()
        .await
        .expect("describe instances");
    let mut found: Vec<(String, String)> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| {
            let id = i.instance_id().unwrap().to_string();
            let state = i.state().unwrap().name().unwrap().as_str().to_string();
            (id, state)
        })
        .collect();
    found.sort_by_key(|(id, _)| ids.iter().position(|x| x == id));
    found.into_iter().map(|(_, s)| s).collect()
}

fn ec2_bot(ec2: aws_sdk_ec2::Client) -> (Bot, Arc<MemoryStore>) {
    let opts = Ec2Options {
        settle: StdDuration::ZERO, // look once, never wait, in tests
        ..Ec2Options::default()
    };
    bot(|b| b.script(ec2::script(ec2, opts)))
}

#[tokio::test]
async fn ec2_list_status_and_logs_show_the_seeded_instances() {
    let ec2 = ec2_client("us-west-1").await;
    let id = run_id();
    let (web_name, db_name) = (format!("web-{id}"), format!("db-{id}"));
    let run_tag = ("run", id.as_str());
    let web = run(
        &ec2,
        &web_name,
        &[("opkit:managed", "true"), ("env", "prod"), run_tag],
        1,
    )
    .await;
    let db = run(&ec2, &db_name, &[("env", "staging"), run_tag], 1).await;
    let (bot, _) = ec2_bot(ec2);

    let list = say(&bot, "UA", &format!("ec2 list run={id}")).await.text;
    assert!(
        list.starts_with(&format!(
            "2 EC2 instances tagged run={id} in us-west-1 (2 running):\n```\nName  "
        )),
        "{list}"
    );
    assert_eq!(
        row(&list, "Name"),
        ["Name", "ID", "State", "Type", "AZ", "Uptime"]
    );
    let web_row = row(&list, &web_name);
    assert_eq!(
        web_row[1..5],
        [web[0].as_str(), "running", "t3.micro", "us-west-1a"]
    );
    assert_eq!(row(&list, &db_name)[1], db[0]);
    assert!(at(&list, &db_name) < at(&list, &web_name), "sorted by name");

    let prod = say(&bot, "UA", &format!("ec2 list run={id} env=prod"))
        .await
        .text;
    assert!(
        prod.starts_with(&format!(
            "1 EC2 instance tagged run={id} env=prod in us-west-1"
        )),
        "{prod}"
    );
    assert!(!prod.contains(&db_name));
    assert_eq!(
        say(&bot, "UA", &format!("ec2 list run={id} env=none"))
            .await
            .text,
        format!("No EC2 instances tagged run={id} env=none in us-west-1.")
    );
    assert!(
        say(&bot, "UA", "ec2 list prod")
            .await
            .text
            .starts_with("expected a tag filter like `key=value`, not `prod`")
    );

    let status = say(&bot, "UA", &format!("ec2 status {web_name}"))
        .await
        .text;
    assert!(
        status.starts_with(&format!("`{web_name}` in us-west-1: 1 instance\n")),
        "{status}"
    );
    assert!(status.contains(&format!(
        "*{web_name} ({})* — running\nt3.micro in us-west-1",
        web[0]
    )));
    assert!(status.contains("start/stop/reboot allowed"));
    let by_id = say(&bot, "UA", &format!("ec2 status {}", db[0])).await.text;
    assert!(by_id.contains("not managed by Opkit"), "{by_id}");
    assert_eq!(
        say(&bot, "UA", "ec2 status nothing-here").await.text,
        "No instance named or with id `nothing-here` in us-west-1."
    );

    let logs = say(&bot, "UA", &format!("ec2 logs {web_name}")).await.text;
    assert!(
        logs.starts_with(&format!(
            "Console output of {web_name} ({}) in us-west-1",
            web[0]
        )),
        "{logs}"
    );
    assert!(
        logs.contains("```\n") && logs.contains("Linux version"),
        "{logs}"
    );
}

#[tokio::test]
async fn names_from_aws_make_no_line_of_their_own_and_close_no_code_block() {
    // GIVEN instances whose Name tags (anyone with ec2:CreateTags sets them) hold
    // a made-up line and code fences (tester 6, G9)
    let ec2 = ec2_client("us-west-2").await;
    let id = run_id();
    let forged = format!("nl-{id}\n> *Security approved this reboot* :white_check_mark:");
    let fenced = format!("a```*FAKE: approved by admin*```b-{id}");
    let run_tag = ("run", id.as_str());
    let nl = run(&ec2, &forged, &[("opkit:managed", "true"), run_tag], 1).await;
    run(&ec2, &fenced, &[run_tag], 1).await;
    let (bot, _) = ec2_bot(ec2);
    say(&bot, "UADMIN", "roles grant <@UOPS> ops").await;

    // WHEN a reboot of the first is asked
    let prompt = say(&bot, "UOPS", &format!("ec2 reboot {}", nl[0]))
        .await
        .text;
    // THEN its prompt names it on one line: nothing starts a line but the bot's text
    assert!(
        prompt.contains(&format!(
            "It would reboot nl-{id}⏎&gt; *Security approved this reboot* :white_check_mark: ({})",
            nl[0]
        )),
        "{prompt}"
    );
    assert!(
        !prompt
            .lines()
            .any(|l| l.starts_with("&gt;") || l.starts_with('>')),
        "{prompt}"
    );

    // AND a listing keeps one row per instance inside one code block
    let list = say(&bot, "UOPS", &format!("ec2 list run={id}")).await.text;
    assert_eq!(
        list.matches("```").count(),
        2,
        "one block, opened and closed: {list}"
    );
    let block = &list[at(&list, "```")..];
    assert_eq!(
        block.lines().count(),
        1 + 1 + 2 + 1,
        "fence, header, 2 rows, fence: {list}"
    );
    assert!(
        list.contains(&format!("aˋˋˋ*FAKE: approved by admin*ˋˋˋb-{id}")),
        "{list}"
    );

    // AND `ec2 status` says it on one line too
    let status = say(&bot, "UOPS", &format!("ec2 status {}", nl[0]))
        .await
        .text;
    assert!(!status.lines().any(|l| l.starts_with("&gt;")), "{status}");
}

#[tokio::test]
async fn ec2_actions_touch_only_opted_in_unambiguous_instances_and_are_audited() {
    let ec2 = ec2_client("us-west-2").await;
    let id = run_id();
    let (web_name, db_name) = (format!("act-web-{id}"), format!("act-db-{id}"));
    let web = run(&ec2, &web_name, &[("opkit:managed", "true")], 2).await;
    let db = run(&ec2, &db_name, &[], 1).await;
    let (bot, store) = ec2_bot(ec2.clone());
    say(&bot, "UADMIN", "roles grant <@UOPS> ops").await;

    // an instance without the opt-in tag is refused at once (no prompt to click)
    // and keeps running
    let refused = say(&bot, "UOPS", &format!("ec2 stop {db_name}")).await;
    assert!(refused.blocks.is_empty(), "no prompt: {}", refused.text);
    let refused = refused.text;
    assert!(
        refused.starts_with("I only stop instances tagged `opkit:managed=true`"),
        "{refused}"
    );
    assert!(refused.contains(&db[0]));
    assert_eq!(states(&ec2, &db).await, ["running"]);

    // a name matching two instances is refused without `all`, at once
    let ambiguous = say(&bot, "UOPS", &format!("ec2 stop {web_name}")).await;
    assert!(ambiguous.blocks.is_empty(), "no prompt: {}", ambiguous.text);
    let ambiguous = ambiguous.text;
    assert!(
        ambiguous.contains(&format!(
            "`{web_name}` matches 2 instances in us-west-2; I changed nothing."
        )),
        "{ambiguous}"
    );
    assert_eq!(states(&ec2, &web).await, ["running", "running"]);

    // names are literal: a wildcard matches no instance, whatever EC2's filters do
    let prefix = web_name.trim_end_matches(char::is_alphanumeric);
    let wild = say_confirmed(&bot, "UOPS", &format!("ec2 stop {prefix}* all"))
        .await
        .text;
    assert!(!wild.contains("Stopping"), "{wild}");
    assert_eq!(states(&ec2, &web).await, ["running", "running"]);

    // with `all`, both stop; the reply names each transition
    // (stopping asks for a confirmation click first: nothing stops before it)
    let prompt = say(&bot, "UOPS", &format!("ec2 stop {web_name} all")).await;
    assert!(prompt.text.starts_with("Run `ec2 stop"), "{}", prompt.text);
    let mut sorted = web.clone();
    sorted.sort(); // instances are listed by name, then id
    let summary = format!(
        "\nIt would stop {web_name} ({}), {web_name} ({}) in us-west-2.\n",
        sorted[0], sorted[1]
    );
    assert!(
        prompt.text.contains(&summary),
        "the prompt names what would stop: {}",
        prompt.text
    );
    assert_eq!(states(&ec2, &web).await, ["running", "running"]);
    let stopped = say_confirmed(&bot, "UOPS", &format!("ec2 stop {web_name} all")).await;
    assert_eq!(stopped.visibility, opkit::slack::Visibility::InChannel);
    assert!(
        stopped
            .text
            .contains("\nStopping 2 instances in us-west-2 for <@UOPS>:"),
        "{}",
        stopped.text
    );
    for i in &web {
        let line = format!("{web_name} ({i}): running → stopped");
        assert!(stopped.text.contains(&line), "{}", stopped.text);
    }
    assert_eq!(states(&ec2, &web).await, ["stopped", "stopped"]);

    // someone without ops is denied and changes nothing
    assert_eq!(
        say(&bot, "UBOB", &format!("ec2 start {web_name} all"))
            .await
            .text,
        "Sorry, you need ops, or admin to run `ec2 start`."
    );
    assert_eq!(states(&ec2, &web).await, ["stopped", "stopped"]);

    // stopping what is stopped, or rebooting it, or an instance that does not
    // exist, or no instance at all, is refused at once; starting one by id works
    for typed in [
        format!("ec2 stop {web_name} all"),
        format!("ec2 reboot {}", web[0]),
        "ec2 stop i-0000000000000dead".to_string(),
        "ec2 stop".to_string(),
    ] {
        let refused = say(&bot, "UOPS", &typed).await;
        assert!(
            refused.blocks.is_empty(),
            "no prompt for {typed}: {}",
            refused.text
        );
    }
    assert!(
        say(&bot, "UOPS", &format!("ec2 stop {web_name} all"))
            .await
            .text
            .starts_with("Nothing to stop; nothing was changed:")
    );
    assert!(
        say(&bot, "UOPS", &format!("ec2 reboot {}", web[0]))
            .await
            .text
            .starts_with("I cannot reboot an instance in these states")
    );
    let started = say(&bot, "UADMIN", &format!("ec2 start {}", web[0]))
        .await
        .text;
    assert!(
        started.contains(&format!("({}): stopped → running", web[0])),
        "{started}"
    );
    assert_eq!(states(&ec2, &web).await, ["running", "stopped"]);
    let again = say(&bot, "UADMIN", &format!("ec2 start {}", web[0]))
        .await
        .text;
    assert!(again.contains("was already running"), "{again}");
    let rebooted = say_confirmed(&bot, "UOPS", &format!("ec2 reboot {}", web[0]))
        .await
        .text;
    assert!(
        rebooted.contains("reboot requested (running)"),
        "{rebooted}"
    );

    // the audit trail holds the ids acted on, and the denial
    let audit = store.recent(None, 100).await.unwrap();
    let actions: Vec<String> = audit
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::System { action } => Some(action.clone()),
            _ => None,
        })
        .collect();
    let mut both = web.clone();
    both.sort(); // instances are listed by name, then id
    assert!(
        actions.contains(&format!("ec2 stop {} in us-west-2", both.join(", "))),
        "{actions:?}"
    );
    assert!(
        actions.contains(&format!("ec2 start {} in us-west-2", web[0])),
        "{actions:?}"
    );
    assert!(
        !actions.iter().any(|a| a.contains(&db[0])),
        "nothing was done to {db_name}"
    );
    assert!(
        audit
            .iter()
            .any(|r| r.user.as_str() == "UBOB" && r.outcome.name() == "denied"),
        "the denial is audited"
    );
}

#[tokio::test]
async fn sqs_list_depth_and_peek() {
    let region = "ap-southeast-2";
    let id = run_id();
    let (jobs_name, dlq_name, other) = (
        format!("sq{id}-jobs"),
        format!("sq{id}-jobs-dlq"),
        format!("other{id}"),
    );
    let sqs = sqs_client(region).await;
    let dlq = sqs
        .create_queue()
        .queue_name(&dlq_name)
        .send()
        .await
        .unwrap();
    let dlq_url = dlq.queue_url().unwrap().to_string();
    let dlq_arn = format!("arn:aws:sqs:{region}:123456789012:{dlq_name}");
    let jobs = sqs
        .create_queue()
        .queue_name(&jobs_name)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}).to_string(),
        )
        .send()
        .await
        .unwrap();
    let jobs_url = jobs.queue_url().unwrap().to_string();
    sqs.create_queue().queue_name(&other).send().await.unwrap();
    for i in 0..3 {
        sqs.send_message()
            .queue_url(&jobs_url)
            .message_body(format!("job {i}"))
            .send()
            .await
            .unwrap();
    }
    for body in ["{\"order\": 17, \"error\": \"card declined\"}", "poison"] {
        sqs.send_message()
            .queue_url(&dlq_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    // the oldest message's age, as CloudWatch would publish it
    let cw = cloudwatch_client(region).await;
    cw.put_metric_data()
        .namespace("AWS/SQS")
        .metric_data(
            aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name("ApproximateAgeOfOldestMessage")
                .dimensions(
                    aws_sdk_cloudwatch::types::Dimension::builder()
                        .name("QueueName")
                        .value(&jobs_name)
                        .build(),
                )
                .value(125.0)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let opts = SqsOptions::default().with_cloudwatch(cw);
    let (bot, store) = bot(|b| b.script(sqs::script(sqs.clone(), opts)));
    say(&bot, "UADMIN", "roles grant <@UOPS> ops").await;

    let list = say(&bot, "UA", &format!("sqs list sq{id}")).await.text;
    assert!(
        list.starts_with(&format!(
            "2 SQS queues starting with `sq{id}` in ap-southeast-2:\n```\n"
        )),
        "{list}"
    );
    assert_eq!(
        row(&list, "Queue"),
        ["Queue", "Visible", "In", "flight", "Delayed", "DLQ"]
    );
    assert_eq!(
        row(&list, &jobs_name)[1..],
        ["3", "0", "0", dlq_name.as_str()]
    );
    assert_eq!(row(&list, &dlq_name)[1..], ["2", "0", "0", "-"]);
    assert!(!list.contains(&other));
    let all = say(&bot, "UA", "sqs list").await.text;
    assert!(
        all.contains(&other) && all.contains(" SQS queues in ap-southeast-2:"),
        "{all}"
    );

    assert_eq!(
        say(&bot, "UA", &format!("sqs depth {jobs_name}"))
            .await
            .text,
        format!(
            "*{jobs_name}* in ap-southeast-2: 3 visible, 0 in flight, 0 delayed\n\
             oldest message: 2m 5s old (CloudWatch, last 15m)\n\
             :warning: dead-letter queue *{dlq_name}*, after 3 receives: 2 messages (2 visible)"
        )
    );
    let by_url = say(&bot, "UA", &format!("sqs depth {dlq_url}")).await.text;
    assert!(
        by_url.starts_with(&format!("*{dlq_name}* in ap-southeast-2: 2 visible")),
        "{by_url}"
    );
    assert!(
        by_url.contains("oldest message: unknown (no CloudWatch data in the last 15m)"),
        "{by_url}"
    );
    assert!(by_url.ends_with("no dead-letter queue"), "{by_url}");
    assert_eq!(
        say(&bot, "UA", "sqs depth nope").await.text,
        "No queue named *nope* in ap-southeast-2."
    );
    assert!(
        say(&bot, "UA", "sqs depth a/b")
            .await
            .text
            .starts_with("`a/b` is not a queue name")
    );

    // peek: only for ops, never on a queue whose receives count toward a DLQ
    assert_eq!(
        say(&bot, "UBOB", &format!("sqs peek {dlq_name}"))
            .await
            .text,
        "Sorry, you need ops, or admin to run `sqs peek`."
    );
    let refused = say(&bot, "UOPS", &format!("sqs peek {jobs_name}"))
        .await
        .text;
    assert!(
        refused.starts_with(&format!(
            "I do not peek at *{jobs_name}*: it has a dead-letter queue (*{dlq_name}*)"
        )),
        "{refused}"
    );
    let peek = say(&bot, "UOPS", &format!("sqs peek {dlq_name}"))
        .await
        .text;
    assert!(
        peek.starts_with(&format!(
            "2 messages from *{dlq_name}* in ap-southeast-2 (left on the queue"
        )),
        "{peek}"
    );
    assert!(
        peek.contains("card declined") && peek.contains("poison"),
        "{peek}"
    );
    // the messages are still there to be handled
    let after = say(&bot, "UA", &format!("sqs depth {dlq_name}")).await.text;
    assert!(after.contains(": 2 visible, 0 in flight"), "{after}");
    // a deployment's own jobs queue and its dead-letter queue are never peeked at
    let (own, _) = opkit_tests::aws_packs::bot(|b| {
        b.script(sqs::script(
            sqs.clone(),
            SqsOptions::default().protecting(Some(jobs_url.clone())),
        ))
    });
    say(&own, "UADMIN", "roles grant <@UOPS> ops").await;
    for name in [&dlq_name, &jobs_name] {
        let refused = say(&own, "UOPS", &format!("sqs peek {name}")).await.text;
        assert!(
            refused.starts_with(&format!(
                "I do not peek at *{name}*: it is my own job queue"
            )),
            "{refused}"
        );
    }
    let still = say(&bot, "UA", &format!("sqs depth {dlq_name}")).await.text;
    assert!(still.contains(": 2 visible, 0 in flight"), "{still}");
    let audit = store.recent(None, 50).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|r| r.command.as_deref() == Some("sqs peek") && r.outcome.name() == "succeeded")
    );
}

#[tokio::test]
async fn with_aws_packs_builds_every_pack_from_one_sdk_config() {
    // The CloudWatch client built from the SdkConfig must honour
    // AWS_ENDPOINT_URL_CLOUDWATCH (the bridge), as `opkit shell` relies on.
    let region = "eu-central-1";
    seed_alarm(&cloudwatch_client(region).await, "packs-a", "ALARM", "x").await;
    let sdk = sdk_config_in(region).await;
    let opts = catbot::AwsPacksConfig::default();
    let (bot, _) = bot(|b| catbot::with_aws_packs(b, &sdk, &opts));
    let health = say(&bot, "UA", "health").await.text;
    assert!(
        health.contains("Health of eu-central-1: 1 in ALARM"),
        "{health}"
    );
    assert_eq!(
        say(&bot, "UA", "ec2 list").await.text,
        "No EC2 instances in eu-central-1."
    );
    assert_eq!(
        say(&bot, "UA", "sqs list").await.text,
        "No SQS queues in eu-central-1."
    );
    let help = say(&bot, "UA", "help").await.text;
    for command in ["alarms watch", "metric", "graph", "ec2 list", "sqs depth"] {
        assert!(help.contains(command), "help lists `{command}`:\n{help}");
    }
    assert!(
        !help.contains("ec2 stop"),
        "help hides what UA may not run:\n{help}"
    );
}

#[tokio::test]
async fn an_unreachable_aws_endpoint_is_one_clear_sentence() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let sdk = sdk_config_in("us-east-2").await;
    let config = aws_sdk_ec2::config::Builder::from(&sdk)
        .endpoint_url(dead)
        .build();
    let (bot, _) = ec2_bot(aws_sdk_ec2::Client::from_conf(config));
    assert_eq!(
        say(&bot, "UA", "ec2 list").await.text,
        "Could not reach EC2 in us-east-2 to list instances; try again in a moment."
    );
}

#[tokio::test]
async fn an_upload_answer_without_an_upload_url_stops_the_flow() {
    use opkit::slack::web::{FileUpload, WebApiError};
    // GIVEN a Slack that answers `ok` but hands out no upload URL
    let slack = FakeSlack::start().await;
    let api = SlackApi::new(BotToken::new("xoxb-test"), reqwest::Client::new())
        .with_base_url(slack.api_url());
    let file = FileUpload {
        channel: "C0PS".into(),
        filename: "g.png".into(),
        title: "g".into(),
        bytes: TINY_PNG.to_vec(),
        initial_comment: None,
        thread_ts: None,
    };
    // WHEN a file is uploaded THEN it fails clearly and nothing else is called
    let err = api.upload_file(&file).await.unwrap_err();
    assert!(matches!(err, WebApiError::InvalidResponse { .. }), "{err}");
    assert_eq!(slack.requests().len(), 1);
    // AND an empty file is refused before Slack is asked
    let empty = FileUpload {
        bytes: Vec::new(),
        ..file
    };
    assert!(api.upload_file(&empty).await.is_err());
    assert_eq!(slack.requests().len(), 1);
}
