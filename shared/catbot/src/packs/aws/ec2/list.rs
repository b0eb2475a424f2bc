//! `ec2 list [<tag>=<value> …]`: instances as a table.

use std::sync::Arc;

use aws_sdk_ec2::types::Filter;

use super::{Pack, filter, plural};
use crate::packs::aws::format::{self, Table};
use opkit::engine::command::{CommandError, Ctx};
use opkit::slack::Reply;

pub(super) async fn list(ctx: &mut Ctx<()>, pack: Arc<Pack>) -> Result<Reply, CommandError> {
    let pairs = format::parse_pairs(&ctx.args, 0, "a tag filter", 10)?;
    let mut filters: Vec<Filter> = pairs
        .iter()
        .map(|(k, v)| filter(&format!("tag:{k}"), &[v]))
        .collect();
    filters.push(filter(
        "instance-state-name",
        &["pending", "running", "stopping", "stopped", "shutting-down"],
    ));
    let instances = pack.describe(filters, "list instances").await?;
    let filtered = if pairs.is_empty() {
        String::new()
    } else {
        let shown: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(" tagged {}", shown.join(" "))
    };
    if instances.is_empty() {
        return Ok(format::reply(
            format::plain(format!(
                "No EC2 instances{filtered} in {}.",
                pack.site.label
            )),
            "",
        ));
    }
    let running = instances.iter().filter(|i| i.state == "running").count();
    let mut table = Table::new(&["Name", "ID", "State", "Type", "AZ", "Uptime"]);
    for i in &instances {
        table.row(vec![
            i.name.clone().unwrap_or_else(|| "-".into()),
            i.id.clone(),
            i.state.clone(),
            i.kind.clone(),
            i.az.clone(),
            i.uptime(ctx.now),
        ]);
    }
    Ok(format::reply(
        format::plain(format!(
            "{} EC2 instance{}{filtered} in {} ({running} running):",
            instances.len(),
            plural(instances.len()),
            pack.site.label
        )),
        table.render_block(format::MAX_ROWS),
    ))
}
