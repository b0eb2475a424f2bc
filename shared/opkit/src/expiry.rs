//! The expiry pass: end what is due on time, and say so where it began.
//!
//! Run every minute by the expiry Lambda (an EventBridge schedule), by
//! `opkit expire` once, and by `opkit serve` in the background. One pass:
//!
//! 1. grants whose window has closed (a query on the end-time index, not a scan)
//!    are removed — unless renewed meanwhile — audited, and announced in the
//!    channel where they were granted;
//! 2. scheduled windows that have opened are announced once;
//! 3. every script's ticker runs (queue holds that ran out hand over);
//! 4. scheduled commands that are due run, as their identity, and their answers
//!    are posted to their channels: put on the queue for the worker when there is
//!    one, otherwise run here — through [`run_claimed`], the same claim the
//!    worker takes, so a scheduled job runs once either way.
//!
//! DynamoDB's TTL only tidies up later: authorization checks each grant's window
//! itself, so an ended grant denies even while it is still stored.

use std::sync::Arc;

use crate::access::Grant;
use crate::audit::Outcome;
use crate::engine::bot::{Bot, Request};
use crate::engine::command::{Caller, CommandError, Notice};
use crate::ids::UserId;
use crate::job::Job;
use crate::job::{JobQueue, QueueError};
use crate::mrkdwn;
use crate::schedule;
use crate::slack::mrkdwn::Mrkdwn;
use crate::slack::web::{OwnPost, post_or_tell_owner};
use crate::slack::{ChannelPoster, Code, Reply};
use crate::worker::{Claimed, KEEP, LEASE, run_claimed};

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExpiryReport {
    /// Grants ended.
    pub grants_ended: usize,
    /// Scheduled windows announced as started.
    pub windows_started: usize,
    /// Notices from script tickers.
    pub script_notices: usize,
    /// Scheduled commands run (or, with a queue, put on it for the worker).
    pub scheduled_runs: usize,
    /// Scheduled commands due that the queue did not take (full, or down):
    /// not run, and said so in their channel ([`not_run_reply`]).
    pub scheduled_not_run: usize,
    /// Announcements posted to channels.
    pub posted: usize,
    /// Announcements that could not be posted (logged).
    pub not_posted: usize,
    /// Of those, the ones whose channel would not take the bot, told to their
    /// owner in a DM instead ([`post_or_tell_owner`]).
    pub owners_told: usize,
}

impl ExpiryReport {
    /// Counts what became of one post.
    fn count(&mut self, post: Option<Result<OwnPost, ()>>) {
        match post {
            Some(Ok(OwnPost::Posted(_))) => self.posted += 1,
            Some(Ok(OwnPost::ToldOwner { .. })) => {
                self.not_posted += 1;
                self.owners_told += 1;
            }
            Some(Ok(OwnPost::Refused { .. })) => self.not_posted += 1,
            Some(Err(())) => self.not_posted += 1,
            None => {}
        }
    }
}

/// Runs expiry passes.
pub struct Expiry {
    bot: Bot,
    channels: Option<Arc<dyn ChannelPoster>>,
    queue: Option<Arc<dyn JobQueue>>,
}

impl Expiry {
    /// Announces with `channels` (needs a bot token); without one, only audits and logs.
    pub fn new(bot: Bot, channels: Option<Arc<dyn ChannelPoster>>) -> Self {
        Self {
            bot,
            channels,
            queue: None,
        }
    }

    /// Puts due scheduled commands on `queue` for the worker (which has the
    /// permissions their commands need), instead of running them in the pass.
    pub fn with_queue(mut self, queue: Arc<dyn JobQueue>) -> Self {
        self.queue = Some(queue);
        self
    }

    /// One pass. A pass that fails midway (the store stops answering) still
    /// announces what it ended or started before the failure — the next pass will
    /// not see those again — and then returns the error; the next pass does the rest.
    pub async fn run_once(&self) -> Result<ExpiryReport, CommandError> {
        let mut report = ExpiryReport::default();
        let mut notices = Vec::new();
        let done = self.steps(&mut report, &mut notices).await;
        for (notice, owner) in &notices {
            let post = self.announce(notice, owner).await;
            report.count(post);
        }
        crate::metrics::expiry_pass(&report);
        match done {
            Ok(()) => {
                tracing::info!(?report, "expiry pass");
                Ok(report)
            }
            Err(e) => {
                tracing::error!(?report, error = %crate::telemetry::ErrorChain(&e), "expiry pass stopped midway");
                Err(e)
            }
        }
    }

    /// The steps of a pass, gathering the notices to announce.
    async fn steps(
        &self,
        report: &mut ExpiryReport,
        notices: &mut Vec<(Notice, UserId)>,
    ) -> Result<(), CommandError> {
        let store = self.bot.store();
        let now = self.bot.now();

        for grant in store.grants_ended_by(now).await? {
            if store.replace_grant(&grant, None).await? {
                report.grants_ended += 1;
                // Grants of one role coexist: say so when another still counts. The
                // grant is gone already: if this look-up fails, its end is still told.
                let kept = store.grants_for(&grant.user).await.unwrap_or_else(|e| {
                    tracing::warn!(user = %grant.user, error = %e, "could not read the grants still held");
                    Vec::new()
                });
                let still = kept
                    .iter()
                    .filter(|g| g.role == grant.role && g.is_active(now))
                    .max_by_key(|g| g.ends_at.map_or(i64::MAX, |e| e.timestamp()));
                let mut text = ended_text(&grant);
                if let Some(still) = still {
                    text.push(mrkdwn!(
                        " {} still holds *{}* {}.",
                        grant.user.mention(),
                        grant.role,
                        still.describe_window(now)
                    ));
                }
                notices.push((self.audited(&grant, text).await, owner_of(&grant)));
            }
        }

        for grant in store.all_grants().await? {
            let opened =
                grant.starts_at.is_some() && !grant.start_announced && grant.is_active(now);
            if !opened {
                continue;
            }
            let announced = Grant {
                start_announced: true,
                ..grant.clone()
            };
            if store.replace_grant(&grant, Some(&announced)).await? {
                report.windows_started += 1;
                let notice = self.audited(&grant, started_text(&grant)).await;
                notices.push((notice, owner_of(&grant)));
            }
        }

        let ticked = self.bot.tick().await?;
        report.script_notices = ticked.len();
        // A script's notice (a hold that ran out) concerns its user: they hear of
        // it if the channel will not take the bot.
        notices.extend(ticked.into_iter().map(|n| {
            let owner = n.user.clone();
            (n, owner)
        }));

        for entry in self.due_schedules(now).await? {
            let job = Job::scheduled(&entry, now);
            if let Some(queue) = &self.queue {
                match queue.enqueue(&job).await {
                    Ok(()) => report.scheduled_runs += 1,
                    Err(e) => {
                        report.scheduled_not_run += 1;
                        tracing::error!(schedule = %entry.name, error = %e, "could not queue a scheduled command: not run");
                        let reply = not_run_reply(&entry, &e);
                        let post = self.post_scheduled(&entry, &reply).await;
                        report.count(post);
                    }
                }
                continue;
            }
            let request = job.request();
            let run = self.bot.handle_unattended(&request);
            let reply = match run_claimed(&**store, &self.bot, &job, LEASE, KEEP, run).await {
                Ok(Claimed::Ran(reply)) => reply,
                Ok(Claimed::AlreadyDone) => {
                    tracing::info!(schedule = %entry.name, job_id = %job.id, "scheduled job already ran");
                    continue;
                }
                Err(e) => {
                    tracing::error!(schedule = %entry.name, error = %e, "scheduled command not run");
                    continue;
                }
            };
            report.scheduled_runs += 1;
            let reply = schedule::posted_reply(reply, &entry.name, &entry.run_as);
            let post = self.post_scheduled(&entry, &reply).await;
            report.count(post);
        }
        Ok(())
    }

    /// Posts a scheduled run's answer in its channel ([`schedule::post_answer`]):
    /// `None` without a token, else what became of it (`Err`: logged).
    async fn post_scheduled(
        &self,
        entry: &schedule::Entry,
        reply: &Reply,
    ) -> Option<Result<OwnPost, ()>> {
        let Some(poster) = &self.channels else {
            tracing::warn!(channel = %entry.channel, text = %reply.text, "no SLACK_BOT_TOKEN: not posted");
            return None;
        };
        let post = schedule::post_answer(
            &self.bot,
            &**poster,
            &entry.name,
            &entry.channel,
            reply,
            &entry.run_as,
        )
        .await
        .map_err(|e| {
            tracing::error!(channel = %entry.channel, error = %e, "could not post to a channel");
        });
        Some(post)
    }

    async fn audited(&self, grant: &Grant, text: Mrkdwn) -> Notice {
        let request = Request::new(
            Caller {
                channel: grant.channel.clone(),
                ..Caller::user(grant.user.clone())
            },
            String::new(),
        );
        self.bot
            .audit(
                &request,
                None,
                Outcome::System {
                    action: text.to_string(),
                },
            )
            .await;
        Notice {
            user: grant.user.clone(),
            channel: grant.channel.clone(),
            text,
            thread_ts: None,
        }
    }

    /// Takes the scheduled commands due at `now`, moving each to its next time.
    async fn due_schedules(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<schedule::Entry>, CommandError> {
        schedule::update(&self.bot, |schedules| {
            // Due entries move on even while suspended (and then run none).
            let moving = schedules.entries.values().any(|e| e.next_at <= now);
            (schedule::take_due(schedules, now), moving)
        })
        .await
    }

    /// Posts a notice to its channel: `None` if it has none (or there is no
    /// token), else whether it was posted.
    async fn announce(&self, notice: &Notice, owner: &UserId) -> Option<Result<OwnPost, ()>> {
        let channel = notice.channel.as_ref()?;
        let reply = Reply::in_channel(notice.text.clone());
        self.post(channel, &reply, notice.thread_ts.as_deref(), owner)
            .await
    }

    /// Posts to a channel, or tells `owner` where the channel will not take the
    /// bot: `None` without a token, else what became of it (`Err`: logged).
    async fn post(
        &self,
        channel: &crate::ids::ChannelId,
        reply: &Reply,
        thread_ts: Option<&str>,
        owner: &UserId,
    ) -> Option<Result<OwnPost, ()>> {
        let Some(poster) = &self.channels else {
            tracing::warn!(channel = %channel, text = %reply.text, "no SLACK_BOT_TOKEN: not posted");
            return None;
        };
        match post_or_tell_owner(&**poster, channel.as_str(), reply, thread_ts, owner).await {
            Ok(post) => Some(Ok(post)),
            Err(e) => {
                tracing::error!(channel = %channel, error = %e, "could not post to a channel");
                Some(Err(()))
            }
        }
    }
}

/// What a scheduled run's channel is told when the queue did not take it
/// (`error`): that this run did not happen, and why in plain words (never the
/// queue service's own error), marked as the schedule's as its answers are.
pub fn not_run_reply(entry: &schedule::Entry, error: &QueueError) -> Reply {
    let why = match error {
        e if e.is_busy() => "I had too many commands waiting or running to take it",
        _ => "I could not queue it",
    };
    let text = mrkdwn!(
        "Sorry, {} did not run this time: {}. It runs again when it is next due.",
        Code::new(&entry.text),
        why
    );
    schedule::posted_reply(Reply::text(text), &entry.name, &entry.run_as)
}

/// Who hears of a grant's notice when its channel will not take the bot: whoever
/// granted it, else its holder.
fn owner_of(grant: &Grant) -> UserId {
    grant
        .granted_by
        .clone()
        .unwrap_or_else(|| grant.user.clone())
}

fn ended_text(grant: &Grant) -> Mrkdwn {
    let why = if grant.starts_at.is_some() {
        "maintenance window over"
    } else {
        "its time is up"
    };
    mrkdwn!(
        "*{}* role for {} ended — {}.",
        grant.role,
        grant.user.mention(),
        why
    )
}

fn started_text(grant: &Grant) -> Mrkdwn {
    let until = grant.ends_at.map(|e| mrkdwn!(" until {}", e));
    mrkdwn!(
        "*{}* role for {} started — maintenance window open{}.",
        grant.role,
        grant.user.mention(),
        until
    )
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::slack::MemoryChannelPoster;
    use crate::store::{AuditLog, GrantStore};
    use crate::testing::TestBot;

    fn expiry(t: &TestBot) -> (Expiry, Arc<MemoryChannelPoster>) {
        let poster = Arc::new(MemoryChannelPoster::new());
        (Expiry::new(t.bot.clone(), Some(poster.clone())), poster)
    }

    #[tokio::test]
    async fn a_window_opens_and_closes_on_time_and_both_are_announced() {
        // GIVEN a maintenance window 22:00-24:00 granted in channel C0PS (now 08:00)
        let t = TestBot::new();
        t.say("UADMIN", "roles grant <@UBOB> admin from 22:00 for 2h")
            .await;
        let (expiry, poster) = expiry(&t);
        assert_eq!(expiry.run_once().await.unwrap(), ExpiryReport::default());

        // WHEN 22:00 comes
        t.advance(Duration::hours(14));
        let report = expiry.run_once().await.unwrap();
        assert_eq!(report.windows_started, 1);
        // a second pass does not announce it again
        assert_eq!(expiry.run_once().await.unwrap().windows_started, 0);

        // AND WHEN midnight comes
        t.advance(Duration::hours(2));
        let report = expiry.run_once().await.unwrap();
        assert_eq!(report.grants_ended, 1);
        assert_eq!(report.posted, 1);

        let texts: Vec<String> = poster
            .posts()
            .iter()
            .map(|p| p.reply.text.to_string())
            .collect();
        assert_eq!(
            texts,
            [
                "*admin* role for <@UBOB> started — maintenance window open until <!date^1800057600^{date_short_pretty} at {time}|2027-01-16 00:00 UTC>.",
                "*admin* role for <@UBOB> ended — maintenance window over."
            ]
        );
        assert!(poster.posts().iter().all(|p| p.channel == "C0PS"));
        // THEN the grant is gone, the user is denied, and it is audited
        assert!(t.store.all_grants().await.unwrap().is_empty());
        assert_eq!(
            t.text("UBOB", "audit").await,
            "Sorry, you need admin to run `audit`."
        );
        let audit = t.store.recent(None, 5).await.unwrap();
        assert!(audit.iter().any(|r| r.outcome
            == Outcome::System {
                action: "*admin* role for <@UBOB> ended — maintenance window over.".into()
            }));
    }

    #[tokio::test]
    async fn a_renewal_is_a_grant_of_its_own_and_outlives_the_one_that_ended() {
        // GIVEN an hour of ops that has just run out, renewed before the pass
        let t = TestBot::new();
        t.say("UADMIN", "roles grant <@UBOB> ops for 1h").await;
        t.advance(Duration::hours(1));
        t.say("UADMIN", "roles grant <@UBOB> ops for 1h").await;
        // WHEN the pass runs
        let (expiry, poster) = expiry(&t);
        assert_eq!(expiry.run_once().await.unwrap().grants_ended, 1);
        // THEN only the grant that ended is gone, and the notice says ops stays
        assert!(t.text("UBOB", "whoami").await.contains("holding ops"));
        assert_eq!(t.store.all_grants().await.unwrap().len(), 1);
        assert_eq!(
            poster.posts()[0].reply.text,
            "*ops* role for <@UBOB> ended — its time is up. <@UBOB> still holds *ops* \
             until <!date^1800007200^{date_short_pretty} at {time}|2027-01-15 10:00 UTC> (1h left)."
        );
    }

    #[tokio::test]
    async fn a_window_inside_a_standing_grant_ends_without_taking_the_standing_one() {
        // the defect: a future window silently replaced a standing grant
        let t = TestBot::new();
        t.say("UADMIN", "roles grant <@UBOB> ops").await;
        let reply = t
            .text("UADMIN", "roles grant <@UBOB> ops from 22:00 for 2h")
            .await;
        assert!(
            reply.ends_with("<@UBOB> also keeps *ops* until revoked."),
            "{reply}"
        );
        assert!(
            t.text("UBOB", "whoami").await.contains("holding ops"),
            "now"
        );
        let (expiry, _) = expiry(&t);
        t.advance(Duration::hours(14));
        assert_eq!(expiry.run_once().await.unwrap().windows_started, 1);
        t.advance(Duration::hours(2));
        assert_eq!(expiry.run_once().await.unwrap().grants_ended, 1);
        assert!(
            t.text("UBOB", "whoami").await.contains("holding ops"),
            "after"
        );
        let revoked = t.text("UADMIN", "roles revoke <@UBOB> ops").await;
        assert!(revoked.starts_with("Run `roles revoke"), "{revoked}");
    }

    #[tokio::test]
    async fn a_scheduled_job_run_here_takes_the_same_claim_as_the_worker() {
        use crate::store::{JobClaims, StateStore};
        // GIVEN two schedules due now, one of whose jobs a worker already ran
        let t = TestBot::new();
        let entry = |name: &str| schedule::Entry {
            name: name.into(),
            when: schedule::When::parse("daily 08:00", crate::timespec::Tz::UTC).unwrap(),
            channel: crate::ids::ChannelId::parse("C0PS").unwrap(),
            run_as: crate::ids::UserId::parse("UADMIN").unwrap(),
            text: "whoami".into(),
            next_at: t.now(),
            owner_told: false,
        };
        let mut state = schedule::ScheduleState::default();
        for name in ["done", "due"] {
            state.entries.insert(name.into(), entry(name));
        }
        let state = serde_json::to_value(&state).unwrap();
        let state = crate::store::EncodedState::new(schedule::SCRIPT, state).unwrap();
        t.store.save(schedule::SCRIPT, &state, 0).await.unwrap();
        let done = Job::scheduled(&entry("done"), t.now()).id.to_string();
        t.store.claim(&done, t.now(), LEASE).await.unwrap();
        t.store.finish(&done, t.now(), KEEP).await.unwrap();
        // WHEN a pass without a queue runs them
        let (expiry, poster) = expiry(&t);
        let report = expiry.run_once().await.unwrap();
        // THEN only the other one runs
        assert_eq!((report.scheduled_runs, report.posted), (1, 1));
        let posts = poster.posts();
        assert!(
            posts[0].reply.text.contains("Scheduled `due`"),
            "{}",
            posts[0].reply.text
        );
        // AND it is claimed as done, like a job the worker ran
        let due = Job::scheduled(&entry("due"), t.now()).id.to_string();
        assert_eq!(
            t.store.claim(&due, t.now(), LEASE).await.unwrap(),
            crate::store::Claim::AlreadyDone
        );
    }

    #[tokio::test]
    async fn a_schedule_whose_channel_refuses_the_bot_tells_its_owner_once_a_streak() {
        // GIVEN an hourly schedule of UADMIN's in #ops, which the bot is not in
        let t = TestBot::new();
        save_schedule(&t, "every 1h").await;
        let (expiry, poster) = expiry(&t);
        poster.refuse("C0PS", Some("not_in_channel"));
        let dms = || {
            poster
                .posts()
                .iter()
                .filter(|p| p.channel == "UADMIN")
                .count()
        };
        // WHEN two runs are refused
        let first = expiry.run_once().await.unwrap();
        t.advance(Duration::hours(1));
        let second = expiry.run_once().await.unwrap();
        // THEN the owner got one DM, which says what to do
        assert_eq!(dms(), 1);
        let dm = &poster.posts()[0].reply.text;
        assert!(
            dm.starts_with(
                "I could not post this in <#C0PS> (Slack said `not_in_channel`): invite me there"
            ),
            "{dm}"
        );
        assert!(dm.contains("I will not message you about it again until one of its runs is posted there. To stop it instead: `schedule remove standup`."), "{dm}");
        assert_eq!((first.owners_told, first.not_posted), (1, 1));
        assert_eq!((second.owners_told, second.not_posted), (0, 1));
        // WHEN the bot is let in, a run is posted, and then it is refused again
        poster.refuse("C0PS", None);
        t.advance(Duration::hours(1));
        assert_eq!(expiry.run_once().await.unwrap().posted, 1);
        poster.refuse("C0PS", Some("channel_not_found"));
        t.advance(Duration::hours(1));
        let again = expiry.run_once().await.unwrap();
        // THEN the new streak gets a new DM
        assert_eq!(again.owners_told, 1);
        assert_eq!(dms(), 2);
    }

    #[tokio::test]
    async fn a_token_slack_refuses_suspends_the_schedules_tried_again_hourly() {
        // GIVEN a schedule every minute, and Slack refusing the bot's token as it
        // does once the app is uninstalled
        let t = TestBot::new();
        save_schedule(&t, "every 1m").await;
        let (expiry, poster) = expiry(&t);
        poster.refuse("C0PS", Some("account_inactive"));
        // WHEN the passes run for an hour
        let first = expiry.run_once().await.unwrap();
        let mut runs = 0;
        for _ in 0..59 {
            t.advance(Duration::minutes(1));
            runs += expiry.run_once().await.unwrap().scheduled_runs;
        }
        // THEN it ran once, was refused, and nothing ran for the rest of the hour
        assert_eq!(
            (first.scheduled_runs, first.not_posted, first.owners_told),
            (1, 1, 0)
        );
        assert_eq!(runs, 0);
        let state = crate::store::StateStore::load(&*t.store, schedule::SCRIPT)
            .await
            .unwrap();
        let state = state.value.unwrap();
        let state: schedule::ScheduleState = serde_json::from_value(state).unwrap();
        let suspended = state.suspended.unwrap();
        assert_eq!(suspended.error, "account_inactive");
        // AND an hour on it is tried again: still refused, suspended again
        t.advance(Duration::minutes(1));
        assert_eq!(expiry.run_once().await.unwrap().scheduled_runs, 1);
        t.advance(Duration::minutes(1));
        assert_eq!(expiry.run_once().await.unwrap().scheduled_runs, 0);
        // WHEN the app is back, the next try is posted and lifts the suspension
        poster.refuse("C0PS", None);
        t.advance(Duration::hours(1));
        assert_eq!(expiry.run_once().await.unwrap().posted, 1);
        t.advance(Duration::minutes(1));
        assert_eq!(expiry.run_once().await.unwrap().posted, 1);
        assert!(
            poster.posts().iter().all(|p| p.channel == "C0PS"),
            "nobody is DMed for a dead token"
        );
    }

    /// Stores one schedule, `standup`, of UADMIN's in #ops (C0PS), due now.
    async fn save_schedule(t: &TestBot, when: &str) {
        let entry = schedule::Entry {
            name: "standup".into(),
            when: schedule::When::parse(when, crate::timespec::Tz::UTC).unwrap(),
            channel: crate::ids::ChannelId::parse("C0PS").unwrap(),
            run_as: crate::ids::UserId::parse("UADMIN").unwrap(),
            text: "whoami".into(),
            next_at: t.now(),
            owner_told: false,
        };
        let mut state = schedule::ScheduleState::default();
        state.entries.insert("standup".into(), entry);
        let state = serde_json::to_value(&state).unwrap();
        let state = crate::store::EncodedState::new(schedule::SCRIPT, state).unwrap();
        crate::store::StateStore::save(&*t.store, schedule::SCRIPT, &state, 0)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn without_a_token_notices_are_audited_not_posted() {
        let t = TestBot::new();
        t.say("UADMIN", "roles grant <@UBOB> ops for 1h").await;
        t.advance(Duration::hours(1));
        let report = Expiry::new(t.bot.clone(), None).run_once().await.unwrap();
        assert_eq!(
            (report.grants_ended, report.posted, report.not_posted),
            (1, 0, 0)
        );
    }
}
