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

use std::sync::Arc;
use std::time::Duration as StdDuration;

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{Filter, Instance as SdkInstance};
use base64::Engine as _;
use chrono::{DateTime, Utc};

use super::format::{self, Table, code_block, sdk_error};
use opkit::access::Access;
use opkit::audit::Outcome;
use opkit::engine::bot::Request;
use opkit::engine::command::{Command, CommandError, Ctx, Script};
use opkit::slack::Reply;
use opkit::timespec::{format_duration, format_time};

/// The opt-in tag's key: start/stop/reboot act only on instances carrying it.
pub const MANAGED_TAG: &str = "opkit:managed";
/// The opt-in tag's value.
pub const MANAGED_VALUE: &str = "true";

/// Lines of console output `ec2 logs` shows.
const LOG_LINES: usize = 30;
/// Instances `ec2 status` describes in full.
const STATUS_MAX: usize = 5;
/// Most instances one command acts on.
const ACT_MAX: usize = 20;

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
}

impl Default for Ec2Options {
    fn default() -> Self {
        Self {
            act: Access::parse(&[&["ops"], &["admin"]]).expect("valid role names"),
            settle: StdDuration::from_secs(4),
            poll_every: StdDuration::from_secs(1),
        }
    }
}

struct Pack {
    client: Client,
    region: String,
    opts: Ec2Options,
}

/// The EC2 script (stateless), on `client`'s region.
pub fn script(client: Client, opts: Ec2Options) -> Script<()> {
    let region = client
        .config()
        .region()
        .map_or_else(|| "an unknown region".to_string(), ToString::to_string);
    let act = opts.act.clone();
    let pack = Arc::new(Pack {
        client,
        region,
        opts,
    });
    let p = |pack: &Arc<Pack>| pack.clone();
    let (list_pack, status_pack, logs_pack) = (p(&pack), p(&pack), p(&pack));
    let mut script = Script::new("ec2")
        .command(
            Command::new("ec2 list")
                .alias("ec2")
                .usage("[<tag>=<value> …]")
                .describe("EC2 instances: name, id, state, type, AZ, uptime")
                .handler(move |ctx| Box::pin(list(ctx, list_pack.clone()))),
        )
        .command(
            Command::new("ec2 status")
                .usage("<name|id>")
                .describe("One EC2 instance in detail")
                .handler(move |ctx| Box::pin(status(ctx, status_pack.clone()))),
        )
        .command(
            Command::new("ec2 logs")
                .usage("<name|id>")
                .describe("The last lines of an EC2 instance's console output")
                .handler(move |ctx| Box::pin(logs(ctx, logs_pack.clone()))),
        );
    for action in [Action::Start, Action::Stop, Action::Reboot] {
        let pack = pack.clone();
        let command = Command::new(&format!("ec2 {}", action.verb()))
            .usage("<name|id> [all]")
            .describe(action.description())
            .access(act.clone())
            .in_channel()
            .handler(move |ctx| Box::pin(act_on(ctx, pack.clone(), action)));
        // Stopping and rebooting interrupt whoever uses the instance: ask first.
        let command = match action {
            Action::Start => command,
            Action::Stop | Action::Reboot => command.confirm(),
        };
        script = script.command(command);
    }
    script
}

/// What start/stop/reboot do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// StartInstances.
    Start,
    /// StopInstances.
    Stop,
    /// RebootInstances.
    Reboot,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Reboot => "reboot",
        }
    }

    fn ing(self) -> &'static str {
        match self {
            Action::Start => "Starting",
            Action::Stop => "Stopping",
            Action::Reboot => "Rebooting",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Action::Start => "Start EC2 instances tagged opkit:managed=true",
            Action::Stop => "Stop EC2 instances tagged opkit:managed=true",
            Action::Reboot => "Reboot EC2 instances tagged opkit:managed=true",
        }
    }

    /// Whether an instance in `state` can be asked to do it (asking a running
    /// instance to start, or a stopped one to stop, is harmless and reported).
    fn applies_to(self, state: &str) -> bool {
        match self {
            Action::Start => matches!(state, "stopped" | "running" | "pending"),
            Action::Stop => matches!(state, "running" | "pending" | "stopped" | "stopping"),
            Action::Reboot => state == "running",
        }
    }

    /// The state it ends in, if it changes the state.
    fn end_state(self) -> Option<&'static str> {
        match self {
            Action::Start => Some("running"),
            Action::Stop => Some("stopped"),
            Action::Reboot => None,
        }
    }
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

/// Decides which instances `action` may touch, or why it must do nothing.
/// `target` is what the user typed; `all` whether they said `all`.
pub fn plan(
    action: Action,
    target: &str,
    found: Vec<Instance>,
    all: bool,
    region: &str,
) -> Result<Vec<Instance>, String> {
    let verb = action.verb();
    if found.is_empty() {
        return Err(format!(
            "No instance named or with id `{target}` in {region} (terminated ones are not counted)."
        ));
    }
    let listing = |list: &[Instance]| {
        list.iter()
            .map(|i| format!("• {} — {}", i.label(), i.state))
            .collect::<Vec<_>>()
            .join("\n")
    };
    if found.len() > 1 && !all {
        return Err(format!(
            "`{target}` matches {} instances in {region}; I changed nothing. \
             Say `ec2 {verb} {target} all` to {verb} every one, or use an id:\n{}",
            found.len(),
            listing(&found)
        ));
    }
    if found.len() > ACT_MAX {
        return Err(format!(
            "`{target}` matches {} instances; I act on at most {ACT_MAX} at once. Nothing was changed.",
            found.len()
        ));
    }
    let unmanaged: Vec<Instance> = found.iter().filter(|i| !i.managed).cloned().collect();
    if !unmanaged.is_empty() {
        return Err(format!(
            "I only {verb} instances tagged `{MANAGED_TAG}={MANAGED_VALUE}`, and these are not; \
             nothing was changed:\n{}",
            listing(&unmanaged)
        ));
    }
    let wrong: Vec<Instance> = found
        .iter()
        .filter(|i| !action.applies_to(&i.state))
        .cloned()
        .collect();
    if !wrong.is_empty() {
        return Err(format!(
            "I cannot {verb} an instance in these states; nothing was changed:\n{}",
            listing(&wrong)
        ));
    }
    Ok(found)
}

/// Splits `<name|id> [all]`.
fn target_and_all(ctx: &Ctx<()>) -> Result<(String, bool), CommandError> {
    let args = &ctx.args;
    let target = args.word(0, "an instance name or id")?.to_string();
    match args.len() {
        1 => Ok((target, false)),
        2 if args.word(1, "`all`")?.eq_ignore_ascii_case("all") => Ok((target, true)),
        _ => Err(CommandError::usage(
            "give one instance name or id (quote a name with spaces), then optionally `all`",
        )),
    }
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
            let page = page.map_err(|e| sdk_error(&e, "EC2", action, &self.region))?;
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
        self.describe(filters, "describe instances").await
    }
}

fn filter<S: AsRef<str>>(name: &str, values: &[S]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(
            values.iter().map(|v| v.as_ref().to_string()).collect(),
        ))
        .build()
}

async fn list(ctx: &mut Ctx<()>, pack: Arc<Pack>) -> Result<Reply, CommandError> {
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
            format!("No EC2 instances{filtered} in {}.", pack.region),
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
        format!(
            "{} EC2 instance{}{filtered} in {} ({running} running):",
            instances.len(),
            plural(instances.len()),
            pack.region
        ),
        table.render_block(format::MAX_ROWS),
    ))
}

async fn status(ctx: &mut Ctx<()>, pack: Arc<Pack>) -> Result<Reply, CommandError> {
    if ctx.args.len() != 1 {
        return Err(CommandError::usage("give one instance name or id"));
    }
    let target = ctx.args.word(0, "an instance name or id")?.to_string();
    let found = pack.resolve(&target, false).await?;
    if found.is_empty() {
        return Err(CommandError::user(format!(
            "No instance named or with id `{target}` in {}.",
            pack.region
        )));
    }
    let (shown, more) = format::truncate(found, STATUS_MAX);
    let mut body: Vec<String> = shown.iter().map(|i| describe(i, ctx.now)).collect();
    body.extend(format::and_more(more));
    let count = shown.len() + more;
    Ok(format::reply(
        format!(
            "`{target}` in {}: {count} instance{}",
            pack.region,
            plural(count)
        ),
        body.join("\n\n"),
    ))
}

fn describe(i: &Instance, now: DateTime<Utc>) -> String {
    let mut lines = vec![format!("*{}* — {}", i.label(), i.state)];
    lines.push(format!("{} in {}", i.kind, i.az));
    if let Some(at) = i.launched {
        let up = if i.state == "running" {
            format!(", up {}", format_duration(now - at))
        } else {
            String::new()
        };
        lines.push(format!("launched {}{up}", format_time(at)));
    }
    let ips: Vec<String> = [("private", &i.private_ip), ("public", &i.public_ip)]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|ip| format!("{k} {ip}")))
        .collect();
    if !ips.is_empty() {
        lines.push(ips.join(", "));
    }
    if let Some(reason) = &i.reason {
        lines.push(format!("reason: {}", format::clip(reason, 200)));
    }
    lines.push(if i.managed {
        format!("managed by Opkit (`{MANAGED_TAG}={MANAGED_VALUE}`): start/stop/reboot allowed")
    } else {
        format!("not managed by Opkit (no `{MANAGED_TAG}={MANAGED_VALUE}` tag): read-only here")
    });
    lines.join("\n")
}

async fn act_on(ctx: &mut Ctx<()>, pack: Arc<Pack>, action: Action) -> Result<Reply, CommandError> {
    let (target, all) = target_and_all(ctx)?;
    let found = pack.resolve(&target, true).await?;
    let targets = plan(action, &target, found, all, &pack.region).map_err(CommandError::user)?;
    let ids: Vec<String> = targets.iter().map(|i| i.id.clone()).collect();
    let verb = action.verb();

    // The ids go to the audit trail before anything changes, with this command's
    // correlation id; the bot then records whether the command succeeded.
    let request = Request {
        correlation_id: ctx.correlation_id,
        caller: ctx.caller.clone(),
        text: format!("ec2 {verb} {}", ctx.args.rest(0)),
    };
    let what = format!("ec2 {verb} {} in {}", ids.join(", "), pack.region);
    ctx.bot
        .audit(
            &request,
            Some(&format!("ec2 {verb}")),
            Outcome::System { action: what },
        )
        .await;

    let client = &pack.client;
    let action_name = format!("{verb} instances");
    let previous: Vec<(String, String)> = match action {
        Action::Start => {
            let out = client
                .start_instances()
                .set_instance_ids(Some(ids.clone()))
                .send()
                .await
                .map_err(|e| sdk_error(&e, "EC2", &action_name, &pack.region))?;
            transitions(out.starting_instances())
        }
        Action::Stop => {
            let out = client
                .stop_instances()
                .set_instance_ids(Some(ids.clone()))
                .send()
                .await
                .map_err(|e| sdk_error(&e, "EC2", &action_name, &pack.region))?;
            transitions(out.stopping_instances())
        }
        Action::Reboot => {
            client
                .reboot_instances()
                .set_instance_ids(Some(ids.clone()))
                .send()
                .await
                .map_err(|e| sdk_error(&e, "EC2", &action_name, &pack.region))?;
            Vec::new()
        }
    };

    let now_states = match action.end_state() {
        Some(end) => pack.settle(&ids, end).await?,
        None => targets.clone(),
    };
    let mut lines = Vec::new();
    let mut pending = 0;
    for t in &targets {
        let before = previous
            .iter()
            .find(|(id, _)| *id == t.id)
            .map_or(t.state.as_str(), |(_, s)| s.as_str());
        let now = now_states
            .iter()
            .find(|i| i.id == t.id)
            .map_or("unknown", |i| i.state.as_str());
        lines.push(match action.end_state() {
            None => format!("• {}: reboot requested ({now})", t.label()),
            Some(end) if before == end => format!("• {}: was already {end}", t.label()),
            Some(end) if now == end => format!("• {}: {before} → {now}", t.label()),
            Some(_) => {
                pending += 1;
                format!("• {}: {before} → {now}, still in progress", t.label())
            }
        });
    }
    if pending > 0 {
        lines.push(format!(
            "_`ec2 status {target}` shows when {} done._",
            if pending == 1 { "it is" } else { "they are" }
        ));
    }
    Ok(format::reply(
        format!(
            "{} {} instance{} in {} for {}:",
            action.ing(),
            targets.len(),
            plural(targets.len()),
            pack.region,
            ctx.caller.user.mention()
        ),
        lines.join("\n"),
    ))
}

fn transitions(changes: &[aws_sdk_ec2::types::InstanceStateChange]) -> Vec<(String, String)> {
    changes
        .iter()
        .filter_map(|c| {
            let id = c.instance_id()?.to_string();
            let before = c.previous_state()?.name()?.as_str().to_string();
            Some((id, before))
        })
        .collect()
}

impl Pack {
    /// Looks at `ids` until all are in `end` or the settle time is up (at least
    /// once, never sleeping when the settle time is zero).
    async fn settle(&self, ids: &[String], end: &str) -> Result<Vec<Instance>, CommandError> {
        let deadline = tokio::time::Instant::now() + self.opts.settle;
        loop {
            let now = self
                .describe(vec![filter("instance-id", ids)], "describe instances")
                .await?;
            let done = now.iter().all(|i| i.state == end);
            if done || tokio::time::Instant::now() + self.opts.poll_every > deadline {
                return Ok(now);
            }
            tokio::time::sleep(self.opts.poll_every).await;
        }
    }
}

async fn logs(ctx: &mut Ctx<()>, pack: Arc<Pack>) -> Result<Reply, CommandError> {
    if ctx.args.len() != 1 {
        return Err(CommandError::usage("give one instance name or id"));
    }
    let target = ctx.args.word(0, "an instance name or id")?.to_string();
    let found = pack.resolve(&target, false).await?;
    let instance = match found.as_slice() {
        [] => {
            return Err(CommandError::user(format!(
                "No instance named or with id `{target}` in {}.",
                pack.region
            )));
        }
        [one] => one.clone(),
        many => {
            let ids: Vec<String> = many.iter().map(Instance::label).collect();
            return Err(CommandError::user(format!(
                "`{target}` matches {} instances in {}; ask for one by id: {}",
                many.len(),
                pack.region,
                ids.join(", ")
            )));
        }
    };
    let out = pack
        .client
        .get_console_output()
        .instance_id(&instance.id)
        .send()
        .await
        .map_err(|e| sdk_error(&e, "EC2", "read the console output", &pack.region))?;
    let text = out.output().map(decode_console).unwrap_or_default();
    if text.trim().is_empty() {
        return Ok(format::reply(
            format!(
                "No console output from {} in {} yet (EC2 keeps the last 64 KB, updated after boot and shutdown).",
                instance.label(),
                pack.region
            ),
            "",
        ));
    }
    let (tail, cut) = last_lines(&text, LOG_LINES);
    let summary = format!(
        "Console output of {} in {}{}:",
        instance.label(),
        pack.region,
        if cut {
            format!(", last {LOG_LINES} lines")
        } else {
            String::new()
        }
    );
    Ok(format::reply(summary, code_block(&tail)))
}

/// Base64 console output as printable text: control characters and ANSI escape
/// sequences dropped, invalid UTF-8 replaced.
pub fn decode_console(encoded: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .unwrap_or_else(|_| encoded.as_bytes().to_vec());
    let text = String::from_utf8_lossy(&bytes);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI sequences end with a letter; other escapes are one character.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for d in chars.by_ref() {
                        if d.is_ascii_alphabetic() {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\r' => {}
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The last `n` non-empty-at-the-end lines (each cut to 200 characters), and
/// whether any were left out.
pub fn last_lines(text: &str, n: usize) -> (String, bool) {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let start = lines.len().saturating_sub(n);
    let tail: Vec<String> = lines[start..]
        .iter()
        .map(|l| format::clip(l, 200))
        .collect();
    (tail.join("\n"), start > 0)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(id: &str, name: &str, state: &str, managed: bool) -> Instance {
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

    #[test]
    fn a_name_matching_several_does_nothing_without_all() {
        let found = vec![
            inst("i-00000001", "web", "running", true),
            inst("i-00000002", "web", "running", true),
        ];
        let err = plan(Action::Stop, "web", found.clone(), false, "eu-west-1").unwrap_err();
        assert!(err.starts_with("`web` matches 2 instances in eu-west-1; I changed nothing."));
        assert!(err.contains("`ec2 stop web all`"), "{err}");
        assert!(err.contains("• web (i-00000002) — running"), "{err}");
        assert_eq!(
            plan(Action::Stop, "web", found, true, "r").unwrap().len(),
            2
        );
    }

    #[test]
    fn untagged_instances_or_wrong_states_refuse_the_whole_request() {
        let mixed = vec![
            inst("i-00000001", "web", "running", true),
            inst("i-00000002", "web", "running", false),
        ];
        let err = plan(Action::Stop, "web", mixed, true, "r").unwrap_err();
        assert!(err.contains("tagged `opkit:managed=true`"), "{err}");
        assert!(
            err.contains("i-00000002") && !err.contains("i-00000001"),
            "{err}"
        );
        let stopped = vec![inst("i-00000001", "db", "stopped", true)];
        let err = plan(Action::Reboot, "db", stopped.clone(), false, "r").unwrap_err();
        assert!(
            err.starts_with("I cannot reboot an instance in these states"),
            "{err}"
        );
        assert!(plan(Action::Start, "db", stopped, false, "r").is_ok());
        let err = plan(Action::Start, "nope", vec![], false, "ap-south-1").unwrap_err();
        assert!(err.starts_with("No instance named or with id `nope` in ap-south-1"));
    }

    #[test]
    fn console_output_is_decoded_cleaned_and_tailed() {
        let raw = "boot\r\n\u{1b}[1;32mOK\u{1b}[0m started\n\u{7}bell\n";
        let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
        assert_eq!(decode_console(&encoded), "boot\nOK started\nbell\n");
        let text: String = (1..=40).map(|i| format!("line {i}\n")).collect();
        let (tail, cut) = last_lines(&text, 30);
        assert!(cut);
        assert!(tail.starts_with("line 11\n") && tail.ends_with("line 40"));
        assert_eq!(last_lines("a\nb\n", 30), ("a\nb".to_string(), false));
    }

    #[test]
    fn status_says_whether_opkit_may_act() {
        let mut i = inst("i-00000001", "web", "running", true);
        i.private_ip = Some("10.0.0.5".into());
        let text = describe(&i, Utc::now());
        assert!(text.starts_with("*web (i-00000001)* — running\nt3.micro in us-east-1a"));
        assert!(text.contains("private 10.0.0.5"));
        assert!(text.contains("start/stop/reboot allowed"));
    }
}
