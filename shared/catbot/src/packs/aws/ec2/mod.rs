//! EC2 instances: list them, look at one, start, stop or reboot the ones that
//! opted in, read the console.
//!
//! ```text
//! ec2 list [<tag>=<value> …]          Name, id, state, type, AZ, uptime
//! ec2 status <name|id>                one instance (or each of a name's) in detail
//! ec2 start <name|id> [all]           role-guarded (ops or admin by default)
//! ec2 stop <name|id> [all]            role-guarded
//! ec2 reboot <name|id> [all]          role-guarded
//! ec2 logs <name|id>                  the last lines of the console output
//! ```
//!
//! Start, stop and reboot act only on instances tagged `opkit:managed=true` (the
//! IAM policy of the deployment requires the same tag), refuse a name that
//! matches several instances unless the user adds `all`, and refuse the whole
//! request — changing nothing — when any target is not tagged or not in a state
//! the action applies to. The instance ids are written to the audit trail before
//! the call is made.

mod actions;
mod list;
mod logs;
mod managed;
mod status;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, Instance as SdkInstance};
use chrono::{DateTime, Utc};

use super::format::sdk_error;
use super::targets::{Accounts, Located, Site, Targeted};
use opkit::access::Access;
use opkit::engine::command::{Command, CommandError, Script};
use opkit::timespec::format_duration;

pub use actions::{Action, plan};
pub use logs::{decode_console, last_lines};

/// The opt-in tag's key: start/stop/reboot act only on instances carrying it.
pub const MANAGED_TAG: &str = "opkit:managed";
/// The opt-in tag's value.
pub const MANAGED_VALUE: &str = "true";

/// How the EC2 pack behaves in one deployment.
#[derive(Debug, Clone)]
pub struct Ec2Options {
    /// Who may start, stop and reboot (default: `ops` or `admin`).
    pub act: Access,
    /// How long start/stop wait for the new state before saying it is still in
    /// progress (default 4 s; zero: look once, do not wait).
    pub settle: StdDuration,
    /// How often to look while waiting (default 1 s).
    pub poll_every: StdDuration,
    /// The accounts `in <account>` may name (default: none, the bot's own).
    pub accounts: Arc<Accounts>,
}

impl Default for Ec2Options {
    fn default() -> Self {
        Self {
            act: Access::parse(&[&["ops"], &["admin"]]).expect("valid role names"),
            settle: StdDuration::from_secs(4),
            poll_every: StdDuration::from_secs(1),
            accounts: Arc::default(),
        }
    }
}

/// The pack as one command sees it: its client aimed at the account and region
/// the command looks at ([`Targeted`]), and how replies name them.
struct Pack {
    client: Client,
    site: Site,
    opts: Ec2Options,
}

impl Located for Pack {
    fn location(&self) -> &str {
        &self.site.label
    }
}

/// The EC2 script (stateless): `client` as configured for the deployment, aimed
/// by each command at the account and region it names ([`Ec2Options::accounts`]).
pub fn script(client: Client, opts: Ec2Options) -> Script<()> {
    let act = opts.act.clone();
    let accounts = opts.accounts.clone();
    let pack = Targeted::new(accounts, move |place| {
        let (client, site) = place.bind(&client);
        Pack {
            client,
            site,
            opts: opts.clone(),
        }
    });
    let p = |pack: &Arc<Targeted<Pack>>| pack.clone();
    let (list_pack, status_pack, logs_pack) = (p(&pack), p(&pack), p(&pack));
    let mut script = Script::new("ec2")
        .command(
            Command::new("ec2 list")
                .alias("ec2")
                .usage("[<tag>=<value> …]")
                .describe("EC2 instances: name, id, state, type, AZ, uptime")
                .example("ec2 list")
                .example("ec2 list env=staging")
                .example("ec2 list in prod")
                .handler(move |ctx| {
                    list_pack
                        .clone()
                        .run(ctx, "ec2 list", |c, p| Box::pin(list::list(c, p)))
                }),
        )
        .command(
            Command::new("ec2 status")
                .usage("<name|id>")
                .describe("One EC2 instance in detail")
                .example("ec2 status web-1")
                .handler(move |ctx| {
                    status_pack
                        .clone()
                        .run(ctx, "ec2 status", |c, p| Box::pin(status::status(c, p)))
                }),
        )
        .command(
            Command::new("ec2 logs")
                .usage("<name|id>")
                .describe("The last lines of an EC2 instance's console output")
                .example("ec2 logs i-0123456789abcdef0")
                .handler(move |ctx| {
                    logs_pack
                        .clone()
                        .run(ctx, "ec2 logs", |c, p| Box::pin(logs::logs(c, p)))
                }),
        );
    for action in [Action::Start, Action::Stop, Action::Reboot] {
        let pack = pack.clone();
        let command = Command::new(action.command())
            .usage("<name|id> [all]")
            .describe(action.description())
            .example(&format!("ec2 {} web-1", action.verb()))
            .example(&format!("ec2 {} web all", action.verb()))
            .access(act.clone())
            .in_channel()
            .handler(move |ctx| {
                pack.clone().run(ctx, action.command(), move |c, p| {
                    Box::pin(actions::act_on(c, p, action))
                })
            });
        // Stopping and rebooting interrupt whoever uses the instance: ask first.
        let command = match action {
            Action::Start => command,
            Action::Stop | Action::Reboot => command.confirm(),
        };
        script = script.command(command);
    }
    script
}

/// The parts of an instance the commands show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `i-…`.
    pub id: String,
    /// The `Name` tag.
    pub name: Option<String>,
    /// `running`, `stopped`, …
    pub state: String,
    /// `t3.micro`.
    pub kind: String,
    /// The availability zone.
    pub az: String,
    /// When it was last launched (started).
    pub launched: Option<DateTime<Utc>>,
    /// Whether it carries the opt-in tag.
    pub managed: bool,
    /// Private IPv4 address.
    pub private_ip: Option<String>,
    /// Public IPv4 address.
    pub public_ip: Option<String>,
    /// Why it is in its state, if EC2 says.
    pub reason: Option<String>,
}

impl Instance {
    fn from_sdk(i: &SdkInstance) -> Self {
        let tag = |key: &str| {
            i.tags()
                .iter()
                .find(|t| t.key() == Some(key))
                .and_then(|t| t.value())
                .map(str::to_string)
        };
        let reason = i
            .state_reason()
            .and_then(|r| r.message())
            .or(i.state_transition_reason())
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        Self {
            id: i.instance_id().unwrap_or("?").to_string(),
            name: tag("Name"),
            state: i
                .state()
                .and_then(|s| s.name())
                .map_or("unknown", |n| n.as_str())
                .to_string(),
            kind: i.instance_type().map_or("?", |t| t.as_str()).to_string(),
            az: i
                .placement()
                .and_then(|p| p.availability_zone())
                .unwrap_or("?")
                .to_string(),
            launched: i
                .launch_time()
                .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
            managed: tag(MANAGED_TAG).as_deref() == Some(MANAGED_VALUE),
            private_ip: i.private_ip_address().map(str::to_string),
            public_ip: i.public_ip_address().map(str::to_string),
            reason,
        }
    }

    /// `web-1 (i-0abc)`, or the id alone.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("{name} ({})", self.id),
            None => self.id.clone(),
        }
    }

    fn uptime(&self, now: DateTime<Utc>) -> String {
        match (self.state.as_str(), self.launched) {
            ("running", Some(at)) => format_duration(now - at),
            _ => "-".to_string(),
        }
    }
}

/// Whether `s` looks like an instance id (`i-` and 8 or 17 hex digits).
pub fn is_instance_id(s: &str) -> bool {
    s.strip_prefix("i-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17) && hex.chars().all(|c| c.is_ascii_hexdigit())
    })
}

impl Pack {
    /// Instances matching `filters`, every page.
    async fn describe(
        &self,
        filters: Vec<Filter>,
        action: &str,
    ) -> Result<Vec<Instance>, CommandError> {
        let mut pages = self
            .client
            .describe_instances()
            .set_filters(Some(filters))
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error(&e, "EC2", action, &self.site.label))?;
            for reservation in page.reservations() {
                out.extend(reservation.instances().iter().map(Instance::from_sdk));
            }
        }
        out.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Ok(out)
    }

    /// Instances called `target` (the Name tag) or with that id.
    async fn resolve(&self, target: &str, live_only: bool) -> Result<Vec<Instance>, CommandError> {
        let mut filters = vec![if is_instance_id(target) {
            filter("instance-id", &[target])
        } else {
            filter("tag:Name", &[target])
        }];
        if live_only {
            filters.push(filter(
                "instance-state-name",
                &["pending", "running", "stopping", "stopped"],
            ));
        }
        let mut found = self.describe(filters, "describe instances").await?;
        // Names are literal: whatever the API's matching does, keep exact matches only.
        if !is_instance_id(target) {
            found.retain(|i| i.name.as_deref() == Some(target));
        }
        Ok(found)
    }
}

/// An EC2 filter that matches `values` literally. EC2 filter values treat `*` and
/// `?` as wildcards, escaped with a backslash (EC2 API reference, "Filter"), so
/// `ec2 stop web*` can only ever mean the instance called `web*`.
fn filter<S: AsRef<str>>(name: &str, values: &[S]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| literal(v.as_ref())).collect()))
        .build()
}

/// `value` with EC2's filter wildcards (`*`, `?`) and the escape (`\`) escaped.
fn literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '*' | '?' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_literal_never_wildcards() {
        let f = filter("tag:Name", &["web*", "db?", "a\\b", "plain"]);
        assert_eq!(f.values(), ["web\\*", "db\\?", "a\\\\b", "plain"]);
    }

    /// An instance as the commands' tests need it.
    pub(super) fn inst(id: &str, name: &str, state: &str, managed: bool) -> Instance {
        Instance {
            id: id.into(),
            name: Some(name.into()),
            state: state.into(),
            kind: "t3.micro".into(),
            az: "us-east-1a".into(),
            launched: None,
            managed,
            private_ip: None,
            public_ip: None,
            reason: None,
        }
    }

    #[test]
    fn instance_ids_are_told_from_names() {
        assert!(is_instance_id("i-0123456789abcdef0"));
        assert!(is_instance_id("i-12345678"));
        assert!(!is_instance_id("i-123"));
        assert!(!is_instance_id("web-1"));
        assert!(!is_instance_id("i-0123456789abcdefg"));
    }
}
