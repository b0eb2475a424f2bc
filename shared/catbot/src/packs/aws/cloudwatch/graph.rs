//! `graph`: a metric or an alarm's metric drawn by GetMetricWidgetImage (behind
//! the `MetricImages` port) and posted to the channel, in the thread it was asked
//! in (behind `FileUploader`).

use std::sync::Arc;

use aws_sdk_cloudwatch::Client;
use serde_json::json;

use super::metric::parse_window;
use super::{CloudWatchState, MetricQuery, Pack, Stat, one_name};
use crate::packs::aws::format::AwsFailure;
use opkit::BoxFuture;
use opkit::engine::command::{CommandError, Ctx};
use opkit::mrkdwn;
use opkit::slack::web::FileUpload;
use opkit::slack::{Reply, UserText};

/// Renders a CloudWatch metric widget (JSON) as a PNG.
pub trait MetricImages: Send + Sync {
    /// The PNG bytes for `widget`.
    fn render<'a>(&'a self, widget: &'a str) -> BoxFuture<'a, Result<Vec<u8>, AwsFailure>>;
}

/// The real renderer: GetMetricWidgetImage.
impl MetricImages for Client {
    fn render<'a>(&'a self, widget: &'a str) -> BoxFuture<'a, Result<Vec<u8>, AwsFailure>> {
        Box::pin(async move {
            let out = self
                .get_metric_widget_image()
                .metric_widget(widget)
                .output_format("png")
                .send()
                .await
                .map_err(|e| AwsFailure::from_sdk(&e))?;
            Ok(out
                .metric_widget_image()
                .map(|b| b.as_ref().to_vec())
                .unwrap_or_default())
        })
    }
}

impl MetricQuery {
    /// The GetMetricWidgetImage request for this metric.
    pub fn widget(&self, region: &str, title: &str, threshold: Option<f64>) -> String {
        let mut metric = vec![json!(self.namespace), json!(self.metric)];
        for (k, v) in &self.dims {
            metric.push(json!(k));
            metric.push(json!(v));
        }
        metric.push(json!({ "stat": self.stat.name() }));
        let mut widget = json!({
            "metrics": [metric],
            "view": "timeSeries",
            "stacked": false,
            "region": region,
            "stat": self.stat.name(),
            "period": self.period(),
            "start": format!("-PT{}M", self.window.num_minutes().max(1)),
            "end": "P0D",
            "title": title,
            "width": 800,
            "height": 400,
        });
        if let Some(t) = threshold {
            widget["annotations"] = json!({ "horizontal": [{ "label": "threshold", "value": t }] });
        }
        widget.to_string()
    }
}

pub(super) async fn graph(
    ctx: &mut Ctx<CloudWatchState>,
    pack: Arc<Pack>,
) -> Result<Reply, CommandError> {
    let (positional, options) = ctx.args.options(&["last", "stat"])?;
    let (query, title, threshold) = if positional.len() == 1 {
        let name = one_name(&positional)?;
        let Some(alarm) = pack.alarm(&name).await? else {
            return Err(CommandError::user(crate::packs::aws::format::plain(
                format!(
                    "No alarm named *{name}* in {}. For a metric, give its namespace and name: \
                 `graph AWS/EC2 CPUUtilization InstanceId=i-…`",
                    pack.site.label
                ),
            )));
        };
        let Some(mut q) = alarm.metric else {
            let what = if alarm.composite {
                "a composite alarm"
            } else {
                "a metric-math alarm"
            };
            return Err(CommandError::user(crate::packs::aws::format::plain(
                format!(
                    "*{name}* is {what}, which has no single metric to draw; graph its metrics instead."
                ),
            )));
        };
        let (window, given) = parse_window(&options)?;
        if given {
            q.window = window;
        }
        if let Some(stat) = options.get("stat") {
            q.stat = Stat::parse(stat)?;
        }
        let title = format!("{} ({})", name, alarm.state);
        (q, title, alarm.threshold)
    } else {
        let q = MetricQuery::parse(&ctx.args)?;
        let title = format!("{} {}", q.metric, q.stat.name());
        (q, title, None)
    };
    let Some(uploader) = &pack.uploader else {
        return Err(CommandError::user(
            "`graph` posts a picture to Slack, which needs the bot token (SLACK_BOT_TOKEN) in this deployment.",
        ));
    };
    let Some(channel) = ctx.caller.channel.clone() else {
        return Err(CommandError::user(
            "`graph` posts a picture to a channel: run it from one.",
        ));
    };
    let widget = query.widget(&pack.site.region, &title, threshold);
    let png = pack
        .images
        .render(&widget)
        .await
        .map_err(|f| f.to_user("CloudWatch", "draw the graph", &pack.site.label))?;
    if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err(CommandError::internal(format!(
            "GetMetricWidgetImage returned {} bytes that are not a PNG",
            png.len()
        )));
    }
    // The metric, its dimensions and the region are text; the asker a mention.
    let comment = mrkdwn!(
        "{}, {} over the last {} in {} (asked by {})",
        UserText::line(&query.describe()),
        UserText::new(query.stat.name()),
        query.window,
        UserText::new(pack.site.label.as_str()),
        ctx.caller.user.mention()
    );
    let upload = FileUpload {
        channel: channel.as_str().to_string(),
        filename: format!("{}.png", file_stem(&query.metric)),
        title,
        bytes: png,
        initial_comment: Some(comment.clone()),
        // Asked in a thread (a mention there, a notification's Graph button):
        // the picture goes into it.
        thread_ts: ctx.caller.thread_ts.clone(),
    };
    uploader.upload_file(&upload).await.map_err(|e| {
        tracing::warn!(error = %e, "graph upload failed");
        CommandError::user(crate::packs::aws::format::plain(format!(
            "I drew the graph but Slack would not take it ({}). Is the bot in this channel?",
            upload_error(&e)
        )))
    })?;
    Ok(Reply::text(mrkdwn!("Posted a graph of {}.", comment)))
}

fn upload_error(e: &opkit::slack::web::WebApiError) -> String {
    match e {
        opkit::slack::web::WebApiError::Slack { error, .. } => error.clone(),
        _ => "it did not answer".to_string(),
    }
}

fn file_stem(s: &str) -> String {
    let stem: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    if stem.is_empty() {
        "graph".into()
    } else {
        stem
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::q;
    use super::*;

    #[test]
    fn widgets_carry_the_metric_window_and_threshold() {
        let m = q("AWS/EC2 CPUUtilization InstanceId=i-1 last 3h stat max").unwrap();
        let w: serde_json::Value =
            serde_json::from_str(&m.widget("eu-west-1", "cpu", Some(80.0))).unwrap();
        assert_eq!(
            w["metrics"][0],
            json!(["AWS/EC2", "CPUUtilization", "InstanceId", "i-1", {"stat": "Maximum"}])
        );
        assert_eq!(w["start"], "-PT180M");
        assert_eq!(w["period"], 900);
        assert_eq!(w["region"], "eu-west-1");
        assert_eq!(w["annotations"]["horizontal"][0]["value"], 80.0);
        assert_eq!(file_stem("CPU Utilization/x"), "CPU_Utilization_x");
    }
}
