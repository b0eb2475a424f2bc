//! What the AWS packs share: aligned tables, "and N more" truncation, the
//! `key=value` words of `ec2 list` and `metric`, and one clear sentence for every
//! AWS error (the detail goes to the log).

use std::error::Error;

// Every SDK crate re-exports the same smithy error types; take them from
// whichever client is compiled in.
#[cfg(all(feature = "cloudwatch", not(feature = "sqs"), not(feature = "ec2")))]
use aws_sdk_cloudwatch::error::{ProvideErrorMetadata, SdkError};
#[cfg(all(feature = "ec2", not(feature = "sqs")))]
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
#[cfg(feature = "sqs")]
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};

use super::targets::RoleRefused;
use opkit::engine::command::{Args, CommandError};
use opkit::mrkdwn;
use opkit::slack::mrkdwn::{Code, LIST_BUDGET, Mrkdwn, UserText, fit_items, more_line};
use opkit::slack::{Block, Reply};

/// Most rows a table shows before "and N more".
pub const MAX_ROWS: usize = 20;

/// A table of text cells, rendered with aligned columns (numbers to the right).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank, extra cells are dropped. Each cell
    /// is put on one line ([`one_line`](opkit::text::one_line)): a line break
    /// in a name from AWS would split its row, a backtick close the code block
    /// the table is shown in.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells: Vec<String> = cells.iter().map(|c| opkit::text::one_line(c)).collect();
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines of text, columns two spaces apart, no trailing spaces.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|r| r[i].chars().count())
                .chain([self.headers[i].chars().count()])
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..columns).map(width).collect();
        let numeric: Vec<bool> = (0..columns)
            .map(|i| !self.rows.is_empty() && self.rows.iter().all(|r| is_number(&r[i])))
            .collect();
        let line = |cells: &[String]| {
            let text = cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if numeric[i] {
                        format!("{c:>w$}", w = widths[i])
                    } else {
                        format!("{c:<w$}", w = widths[i])
                    }
                })
                .collect::<Vec<_>>()
                .join("  ");
            text.trim_end().to_string()
        };
        std::iter::once(line(&self.headers))
            .chain(self.rows.iter().map(|r| line(r)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// At most the first `max` rows in a code block, as many as fit in a list's
    /// budget of characters, then "…and N more" if any were left out. The cells
    /// are text (names from AWS): escaped.
    pub fn render_block(&self, max: usize) -> Mrkdwn {
        let rendered = self.render();
        let mut lines = rendered.lines().map(|l| Mrkdwn::from(UserText::new(l)));
        let header = lines.next().unwrap_or_default();
        let rows: Vec<Mrkdwn> = lines.collect();
        let total = rows.len();
        let (rows, _) = truncate(rows, max);
        // The fences and the header take room of their own; the line saying how
        // many were left out is written below the block, for all of them.
        let budget = LIST_BUDGET.saturating_sub(header.chars() + 10);
        let (rows, _) = fit_items(rows, budget, &narrow_hint());
        let more = total - rows.len();
        let body = Mrkdwn::join(std::iter::once(header).chain(rows), "\n");
        let block = mrkdwn!("```\n{}\n```", body);
        match and_more(more) {
            Some(note) => mrkdwn!("{}\n{}", block, note),
            None => block,
        }
    }
}

fn is_number(s: &str) -> bool {
    let s = s.trim_end_matches(['%', 's']);
    !s.is_empty() && s.parse::<f64>().is_ok()
}

/// `text` (from AWS, a log, a queue) in a Slack code block: escaped, and
/// backticks inside cannot close it early.
pub fn code_block(text: &str) -> Mrkdwn {
    mrkdwn!("```\n{}\n```", UserText::new(text.replace("```", "ˋˋˋ")))
}

/// A sentence or a line that quotes names from AWS or words the user typed and
/// has no markup of its own but `*bold*` and backticks (no mention, no link):
/// shown as text, so nothing in it can ping or link, and on one line
/// ([`unbroken`](opkit::text::unbroken)): a line break in a name (an EC2 Name
/// tag) cannot start a line of its own, such as a made-up `> approved` in a
/// confirmation prompt. Several lines: [`plain_lines`].
pub fn plain(text: impl Into<String>) -> Mrkdwn {
    UserText::new(opkit::text::unbroken(&text.into())).into()
}

/// Lines, each as [`plain`] shows one, one under the other.
pub fn plain_lines(lines: impl IntoIterator<Item = String>) -> Mrkdwn {
    Mrkdwn::join(lines.into_iter().map(plain), "\n")
}

/// The hint after a cut list of AWS resources.
fn narrow_hint() -> Mrkdwn {
    Mrkdwn::from("Narrow the query to see them.")
}

/// "…and 3 more. Narrow the query to see them." when `more` > 0: the last line
/// of [`opkit::slack::mrkdwn::fit_list`], for lists cut at a count.
pub fn and_more(more: usize) -> Option<Mrkdwn> {
    (more > 0).then(|| more_line(more, &narrow_hint()))
}

/// Keeps the first `max` items and says how many were left out.
pub fn truncate<T>(mut items: Vec<T>, max: usize) -> (Vec<T>, usize) {
    let more = items.len().saturating_sub(max);
    items.truncate(max);
    (items, more)
}

/// Cuts `s` to `max` characters, marking the cut with an ellipsis.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A reply with a one-line summary and a body: the text fallback holds both,
/// the blocks show them as two sections.
pub fn reply(summary: impl Into<Mrkdwn>, body: impl Into<Mrkdwn>) -> Reply {
    let (summary, body) = (summary.into(), body.into());
    if body.is_empty() {
        return Reply::text(summary.clone()).block(Block::Section { text: summary });
    }
    Reply::text(mrkdwn!("{}\n{}", summary, body))
        .block(Block::Section { text: summary })
        .block(Block::Section { text: body })
}

/// Parses `key=value` words (`Name=web`, `QueueName=jobs`); `what` names them in
/// errors ("a tag filter"). At most `max` pairs; keys must be non-empty.
pub fn parse_pairs(
    args: &Args,
    from: usize,
    what: &str,
    max: usize,
) -> Result<Vec<(String, String)>, CommandError> {
    let mut pairs = Vec::new();
    for i in from..args.len() {
        let word = args.word(i, what)?;
        let Some((key, value)) = word.split_once('=') else {
            return Err(CommandError::usage(mrkdwn!(
                "expected {} like `key=value`, not {}",
                UserText::new(what),
                Code::new(word)
            )));
        };
        if key.is_empty() || value.is_empty() {
            return Err(CommandError::usage(mrkdwn!(
                "{} needs both a key and a value",
                Code::new(word)
            )));
        }
        if key.chars().count() > 255 || value.chars().count() > 255 {
            return Err(CommandError::usage(mrkdwn!(
                "{} is too long",
                Code::new(&clip(word, 40))
            )));
        }
        pairs.push((key.to_string(), value.to_string()));
    }
    if pairs.len() > max {
        return Err(CommandError::usage(mrkdwn!(
            "give at most {} of {}s",
            max,
            UserText::new(what)
        )));
    }
    Ok(pairs)
}

/// What an AWS call's failure means for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The bot's credentials may not do this.
    AccessDenied,
    /// The thing asked about does not exist.
    NotFound,
    /// AWS is rate-limiting the bot (after the SDK's own retries).
    Throttled,
    /// AWS could not be reached, or did not answer in time.
    Unreachable,
    /// No credentials could be found to sign the request.
    NoCredentials,
    /// A named account's role could not be assumed ([`RoleRefused`]).
    RoleRefused,
    /// The request was refused as invalid.
    Invalid,
    /// Anything else.
    Other,
}

/// An AWS call's failure, reduced to what the reply and the log need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsFailure {
    /// How to explain it.
    pub kind: FailureKind,
    /// The service's error code, if it sent one (`AccessDenied`).
    pub code: Option<String>,
    /// One line of detail for the log.
    pub detail: String,
    /// Which role could not be assumed, for [`FailureKind::RoleRefused`]
    /// (`could not assume the role of account prod (arn:…)`).
    pub role: Option<String>,
}

impl AwsFailure {
    /// Classifies a failure by the service's error code and HTTP status.
    pub fn classify(code: Option<&str>, status: Option<u16>, detail: String) -> Self {
        let kind = match (code.unwrap_or_default(), status) {
            (c, _) if is_access_code(c) => FailureKind::AccessDenied,
            (c, _) if is_throttle_code(c) => FailureKind::Throttled,
            (c, _) if is_not_found_code(c) => FailureKind::NotFound,
            (_, Some(403)) => FailureKind::AccessDenied,
            (_, Some(429)) => FailureKind::Throttled,
            (_, Some(404)) => FailureKind::NotFound,
            (c, _) if c.contains("Invalid") || c.contains("Validation") => FailureKind::Invalid,
            _ => FailureKind::Other,
        };
        Self {
            kind,
            code: code.map(str::to_string),
            detail: one_line(&detail),
            role: None,
        }
    }

    /// A failure from an SDK call.
    pub fn from_sdk<E>(err: &SdkError<E>) -> Self
    where
        E: ProvideErrorMetadata + Error + 'static,
    {
        if let Some(refused) = source_of::<RoleRefused>(err) {
            return Self {
                kind: FailureKind::RoleRefused,
                code: None,
                detail: one_line(&chain(err)),
                role: Some(refused.to_string()),
            };
        }
        match err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
                let detail = one_line(&chain(err));
                Self {
                    kind: dispatch_kind(&detail),
                    code: None,
                    detail,
                    role: None,
                }
            }
            SdkError::ServiceError(service) => {
                let status = Some(service.raw().status().as_u16());
                let detail = match (err.code(), err.message()) {
                    (Some(code), Some(message)) => format!("{code}: {message}"),
                    (Some(code), None) => code.to_string(),
                    _ => chain(err),
                };
                Self::classify(err.code(), status, detail)
            }
            other => Self::classify(other.code(), None, chain(other)),
        }
    }

    /// The sentence for the user; `action` says what was being done ("list
    /// alarms"), `region` where. The detail is logged here.
    pub fn to_user(&self, service: &str, action: &str, region: &str) -> CommandError {
        tracing::warn!(service, action, region, code = ?self.code, detail = %self.detail, "AWS call failed");
        // The whole sentence is text: the region may be what the user typed,
        // the code what AWS answered.
        CommandError::user_text(match self.kind {
            FailureKind::AccessDenied => format!(
                "AWS refused: this deployment's role may not {action} in {region} ({service})."
            ),
            FailureKind::NotFound => {
                format!("{service} in {region} found nothing to {action}.")
            }
            FailureKind::Throttled => format!(
                "{service} in {region} is throttling requests right now; try again in a minute."
            ),
            FailureKind::Unreachable => {
                format!("Could not reach {service} in {region} to {action}; try again in a moment.")
            }
            FailureKind::NoCredentials => format!(
                "There are no AWS credentials to {action} in {region} ({service}): configure them \
                 as the AWS SDK expects (a profile, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a role)."
            ),
            FailureKind::RoleRefused => format!(
                "{} to {action} in {region} ({service}): STS refused or did not answer; the \
                 details are in the log. The role's trust policy must let this deployment assume \
                 it (with the external id, if one is set), and the deployment may assume only \
                 the roles it lists in AccountRoleArns (infra/DEPLOY.md).",
                capitalized(self.role.as_deref().unwrap_or("could not assume the role"))
            ),
            FailureKind::Invalid => format!(
                "{service} in {region} refused the request to {action} as invalid ({}).",
                self.code.as_deref().unwrap_or("no error code")
            ),
            FailureKind::Other => format!(
                "{service} in {region} failed to {action} ({}); the details are in the log.",
                self.code.as_deref().unwrap_or("no error code")
            ),
        })
    }
}

/// A request that never reached AWS: missing credentials, or the network.
fn dispatch_kind(detail: &str) -> FailureKind {
    if detail.contains("loading credentials") || detail.contains("no credentials") {
        FailureKind::NoCredentials
    } else {
        FailureKind::Unreachable
    }
}

/// Shorthand: an SDK error straight to the user's sentence.
pub fn sdk_error<E>(err: &SdkError<E>, service: &str, action: &str, region: &str) -> CommandError
where
    E: ProvideErrorMetadata + Error + 'static,
{
    AwsFailure::from_sdk(err).to_user(service, action, region)
}

fn is_access_code(code: &str) -> bool {
    matches!(
        code,
        "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "AuthFailure"
            | "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "NotAuthorized"
            | "SignatureDoesNotMatch"
            | "OptInRequired"
    )
}

fn is_throttle_code(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException"
            | "RequestThrottled"
            | "RequestThrottledException"
            | "SlowDown"
    )
}

fn is_not_found_code(code: &str) -> bool {
    code.ends_with(".NotFound")
        || code.ends_with("NotFound")
        || code.ends_with("NotFoundException")
        || matches!(
            code,
            "AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist"
        )
}

/// The first of `err`'s sources (itself included) that is an `E`.
fn source_of<'a, E: Error + 'static>(err: &'a (dyn Error + 'static)) -> Option<&'a E> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The error and its causes on one line.
fn chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn one_line(s: &str) -> String {
    clip(&s.split_whitespace().collect::<Vec<_>>().join(" "), 500)
}

#[cfg(test)]
mod tests {
    #[test]
    fn missing_credentials_are_told_apart_from_an_unreachable_service() {
        let no_creds = "dispatch failure: other: an error occurred while loading credentials: failed to load IMDS session token";
        assert_eq!(
            super::dispatch_kind(no_creds),
            super::FailureKind::NoCredentials
        );
        assert_eq!(
            super::dispatch_kind("dispatch failure: io: connection refused"),
            super::FailureKind::Unreachable
        );
        let told = super::AwsFailure {
            kind: super::FailureKind::NoCredentials,
            code: None,
            detail: no_creds.into(),
            role: None,
        }
        .to_user("EC2", "list instances", "us-east-1")
        .to_string();
        assert!(
            told.starts_with("There are no AWS credentials to list instances in us-east-1 (EC2)"),
            "{told}"
        );
    }

    use super::*;
    use opkit::text::tokenize;

    #[test]
    fn tables_align_text_left_and_numbers_right() {
        let mut t = Table::new(&["Queue", "Visible", "Note"]);
        t.row(vec!["jobs".into(), "5".into(), "ok".into()]);
        t.row(vec!["jobs-dlq".into(), "120".into()]);
        assert_eq!(
            t.render(),
            "Queue     Visible  Note\njobs            5  ok\njobs-dlq      120"
        );
    }

    #[test]
    fn long_tables_end_with_and_n_more() {
        let mut t = Table::new(&["n"]);
        for i in 0..25 {
            t.row(vec![format!("row{i}")]);
        }
        let text = t.render_block(20);
        assert!(text.starts_with("```\nn\nrow0\n"), "{text}");
        assert!(text.contains("row19\n```\n…and 5 more"), "{text}");
        assert!(!text.contains("row20"));
        assert_eq!(truncate(vec![1, 2, 3], 5), (vec![1, 2, 3], 0));
        assert_eq!(truncate(vec![1, 2, 3], 2), (vec![1, 2], 1));
        assert_eq!(and_more(0), None);
    }

    #[test]
    fn code_blocks_cannot_be_closed_by_their_content() {
        assert_eq!(code_block("a```b"), "```\naˋˋˋb\n```");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }

    #[test]
    fn key_value_pairs_parse_and_say_what_is_wrong() {
        let args = Args::new(tokenize("web Name=web env=prod"));
        assert_eq!(
            parse_pairs(&args, 1, "a tag filter", 5).unwrap(),
            vec![("Name".into(), "web".into()), ("env".into(), "prod".into())]
        );
        let err = |s: &str| {
            parse_pairs(&Args::new(tokenize(s)), 0, "a tag filter", 2)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("web"),
            "expected a tag filter like `key=value`, not `web`"
        );
        assert_eq!(err("=web"), "`=web` needs both a key and a value");
        assert_eq!(err("a=1 b=2 c=3"), "give at most 2 of a tag filters");
        assert!(err("<@U1>").starts_with("expected a tag filter, not"));
    }

    #[test]
    fn failures_become_one_sentence_by_kind() {
        let denied = AwsFailure::classify(Some("UnauthorizedOperation"), Some(403), "x".into());
        assert_eq!(denied.kind, FailureKind::AccessDenied);
        assert_eq!(
            denied
                .to_user("EC2", "stop instances", "eu-west-1")
                .to_string(),
            "AWS refused: this deployment's role may not stop instances in eu-west-1 (EC2)."
        );
        let throttled = AwsFailure::classify(Some("RequestLimitExceeded"), Some(503), "x".into());
        assert!(
            throttled
                .to_user("EC2", "list instances", "us-east-1")
                .to_string()
                .contains("throttling requests right now; try again in a minute")
        );
        assert_eq!(
            AwsFailure::classify(Some("InvalidInstanceID.NotFound"), Some(400), "x".into()).kind,
            FailureKind::NotFound
        );
        assert_eq!(
            AwsFailure::classify(
                Some("AWS.SimpleQueueService.NonExistentQueue"),
                Some(400),
                "x".into()
            )
            .kind,
            FailureKind::NotFound
        );
        assert_eq!(
            AwsFailure::classify(None, Some(429), "x".into()).kind,
            FailureKind::Throttled
        );
        let other = AwsFailure::classify(Some("InternalFailure"), Some(500), "a\n  b".into());
        assert_eq!(other.detail, "a b");
        assert_eq!(
            other
                .to_user("CloudWatch", "list alarms", "us-east-1")
                .to_string(),
            "CloudWatch in us-east-1 failed to list alarms (InternalFailure); the details are in the log."
        );
    }
}
