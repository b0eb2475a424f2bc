//! File uploads: [`SlackApi::upload_file`] with Slack's external upload flow, behind
//! the [`FileUploader`] port.
//!
//! Source: <https://docs.slack.dev/messaging/working-with-files#upload>.

use crate::slack::mrkdwn::Mrkdwn;
use std::fmt;

use reqwest::header::CONTENT_TYPE;
use serde_json::{Map, Value, json};

use super::{SlackApi, WebApiError};
use crate::BoxFuture;
use crate::slack::poster::send_with_retries;

/// A file to post to a channel with [`FileUploader::upload_file`].
#[derive(Clone)]
pub struct FileUpload {
    /// The conversation id to share it in.
    pub channel: String,
    /// The file name, e.g. `cpu.png`.
    pub filename: String,
    /// The title shown above it.
    pub title: String,
    /// The content.
    pub bytes: Vec<u8>,
    /// A message posted with it (`initial_comment`, mrkdwn: user text gets in
    /// only escaped), cut to [`TEXT_MAX`](crate::slack::reply::TEXT_MAX) characters.
    pub initial_comment: Option<Mrkdwn>,
    /// The thread to post it in, if any.
    pub thread_ts: Option<String>,
}

impl fmt::Debug for FileUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileUpload")
            .field("channel", &self.channel)
            .field("filename", &self.filename)
            .field("bytes", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// A file Slack accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedFile {
    /// Slack's file id (`F…`).
    pub id: String,
}

/// Posts files to channels (the `graph` command's pictures).
pub trait FileUploader: Send + Sync {
    /// Uploads `file` and shares it in its channel.
    fn upload_file<'a>(
        &'a self,
        file: &'a FileUpload,
    ) -> BoxFuture<'a, Result<UploadedFile, WebApiError>>;
}

/// Largest file [`SlackApi::upload_file`] sends (Slack allows more; graphs are small).
pub const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;

impl SlackApi {
    /// Slack's external upload flow: `files.getUploadURLExternal` for an upload URL,
    /// a POST of the bytes to it, then `files.completeUploadExternal` to share the
    /// file in `file.channel` (the bot must be a member).
    pub async fn upload_file(&self, file: &FileUpload) -> Result<UploadedFile, WebApiError> {
        const GET_URL: &str = "files.getUploadURLExternal";
        const UPLOAD: &str = "file upload";
        const COMPLETE: &str = "files.completeUploadExternal";
        if file.bytes.is_empty() || file.bytes.len() > MAX_UPLOAD_BYTES {
            return Err(WebApiError::InvalidResponse {
                method: GET_URL,
                reason: format!("a file of {} bytes cannot be uploaded", file.bytes.len()),
            });
        }
        let answer = self
            .call_form(
                GET_URL,
                &[
                    ("filename", file.filename.clone()),
                    ("length", file.bytes.len().to_string()),
                ],
            )
            .await?;
        let field = |name: &str| answer.get(name).and_then(Value::as_str).map(str::to_owned);
        let (Some(upload_url), Some(id)) = (field("upload_url"), field("file_id")) else {
            return Err(WebApiError::InvalidResponse {
                method: GET_URL,
                reason: "the answer has no `upload_url` and `file_id`".to_owned(),
            });
        };
        // The upload URL carries its own authorization: the token is not sent there.
        let request = || {
            self.client
                .post(&upload_url)
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(file.bytes.clone())
        };
        send_with_retries(request, self.timeout, &self.policy, UPLOAD)
            .await
            .map_err(|source| WebApiError::Http {
                method: UPLOAD,
                source,
            })?;
        let files = json!([{ "id": id, "title": file.title }]).to_string();
        let mut fields = vec![("files", files), ("channel_id", file.channel.clone())];
        if let Some(comment) = &file.initial_comment {
            let comment = comment.cut(crate::slack::reply::TEXT_MAX).into_string();
            fields.push(("initial_comment", comment));
        }
        if let Some(thread_ts) = &file.thread_ts {
            fields.push(("thread_ts", thread_ts.clone()));
        }
        self.call_form(COMPLETE, &fields).await?;
        Ok(UploadedFile { id })
    }

    /// POSTs form-encoded `fields` to `method` (some methods, such as
    /// `files.getUploadURLExternal`, take no JSON) and returns Slack's answer if it
    /// says `"ok": true`.
    async fn call_form(
        &self,
        method: &'static str,
        fields: &[(&str, String)],
    ) -> Result<Map<String, Value>, WebApiError> {
        let body =
            serde_urlencoded::to_string(fields).map_err(|e| WebApiError::InvalidResponse {
                method,
                reason: format!("could not encode the request: {e}"),
            })?;
        self.send(method, "application/x-www-form-urlencoded", body)
            .await
    }
}

impl FileUploader for SlackApi {
    fn upload_file<'a>(
        &'a self,
        file: &'a FileUpload,
    ) -> BoxFuture<'a, Result<UploadedFile, WebApiError>> {
        Box::pin(SlackApi::upload_file(self, file))
    }
}
