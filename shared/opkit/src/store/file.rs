//! Filesystem persister: the embedded default for local use (`OPKIT_DATA_DIR`,
//! default `.opkit`).
//!
//! ```text
//! .opkit/
//!   state/<script>.json   {"version": 3, "state": {...}}
//!   grants.json           {"version": 7, "grants": [...]}
//!   audit.jsonl           one AuditRecord per line, oldest first
//!   jobs/<job id>.json    {"status": "running", "until": "..."}: job claims
//!   locks/<name>.lock     advisory locks (flock) serialising writers
//! ```
//!
//! Writes go to a temporary file that is renamed over the old one, so a reader
//! never sees half a file and a crash never leaves one. Every read-modify-write
//! holds an exclusive lock on the matching lock file, so several `opkit` processes
//! can share one directory: state saves are still checked against the version the
//! command loaded, exactly as the DynamoDB persister does, and a stale save is a
//! [`StoreError::Conflict`]. A file that does not parse is reported and left as it
//! is; nothing overwrites it.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::{
    AuditLog, Claim, EncodedState, GrantStore, JobClaims, JobRecord, JobStatus, StateStore,
    StoreError, Versioned, newest_first,
};
use crate::BoxFuture;
use crate::access::Grant;
use crate::audit::AuditRecord;
use crate::ids::{Role, UserId};

/// Keeps everything in files under one directory.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: Arc<PathBuf>,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u64,
    state: Value,
}

#[derive(Serialize, Deserialize, Default)]
struct GrantsFile {
    version: u64,
    grants: Vec<Grant>,
}

impl FileStore {
    /// Opens (creating if needed) a data directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let root = root.into();
        for dir in [root.join("state"), root.join("locks"), root.join("jobs")] {
            fs::create_dir_all(&dir).map_err(|source| io_error(&dir, source))?;
        }
        Ok(Self {
            root: Arc::new(root),
        })
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn state_path(&self, script: &str) -> Result<PathBuf, StoreError> {
        let valid = !script.is_empty()
            && script
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(StoreError::Backend(format!(
                "script name `{script}` cannot be used as a file name"
            )));
        }
        Ok(self.root.join("state").join(format!("{script}.json")))
    }

    fn job_path(&self, job_id: &str) -> Result<PathBuf, StoreError> {
        let valid = !job_id.is_empty()
            && job_id.len() <= 200
            && !job_id.starts_with('.')
            && job_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(StoreError::Backend(format!(
                "job id `{job_id}` cannot be used as a file name"
            )));
        }
        Ok(self.root.join("jobs").join(format!("{job_id}.json")))
    }

    /// Runs `f` on a blocking thread while holding the lock of one job.
    fn with_job<T: Send + 'static>(
        &self,
        job_id: &str,
        f: impl FnOnce(&Path, Option<JobRecord>) -> Result<T, StoreError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let path = match self.job_path(job_id) {
            Ok(path) => path,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        self.locked(format!("job-{job_id}"), move |_| {
            let record = read_json::<JobRecord>(&path)?;
            f(&path, record)
        })
    }

    /// Runs `f` on a blocking thread while holding the named exclusive lock.
    fn locked<T: Send + 'static>(
        &self,
        lock: String,
        f: impl FnOnce(&FileStore) -> Result<T, StoreError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let store = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let path = store.root.join("locks").join(format!("{lock}.lock"));
                let file = OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                    .map_err(|source| io_error(&path, source))?;
                file.lock().map_err(|source| io_error(&path, source))?;
                let result = f(&store);
                // Closing the file releases the lock; unlock explicitly for clarity.
                let _ = file.unlock();
                result
            })
            .await
            .map_err(|e| StoreError::Backend(format!("file store task failed: {e}")))?
        })
    }

    /// Runs `f` on a blocking thread without a lock (readers: renames are atomic).
    fn unlocked<T: Send + 'static>(
        &self,
        f: impl FnOnce(&FileStore) -> Result<T, StoreError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let store = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || f(&store))
                .await
                .map_err(|e| StoreError::Backend(format!("file store task failed: {e}")))?
        })
    }

    fn read_grants(&self) -> Result<GrantsFile, StoreError> {
        Ok(read_json(&self.root.join("grants.json"))?.unwrap_or_default())
    }

    fn update_grants<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<Grant>) -> T + Send + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        self.locked("grants".to_string(), move |store| {
            let mut file = store.read_grants()?;
            let out = f(&mut file.grants);
            file.version += 1;
            write_json_atomically(&store.root.join("grants.json"), &file)?;
            Ok(out)
        })
    }

    fn query_grants(
        &self,
        keep: impl Fn(&Grant) -> bool + Send + 'static,
    ) -> BoxFuture<'static, Result<Vec<Grant>, StoreError>> {
        self.unlocked(move |store| {
            Ok(store
                .read_grants()?
                .grants
                .into_iter()
                .filter(|g| keep(g))
                .collect())
        })
    }
}

fn io_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        what: path.display().to_string(),
        source,
    }
}

/// Reads and parses a JSON file; `None` if it does not exist.
fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, StoreError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(io_error(path, source)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StoreError::Corrupt {
            what: path.display().to_string(),
            detail: e.to_string(),
        })
}

/// Writes JSON to a temporary file in the same directory, syncs it, and renames it
/// over `path`: readers see the old file or the new one, never a mix.
fn write_json_atomically<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("data"),
        uuid::Uuid::new_v4().simple()
    ));
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        serde_json::to_writer_pretty(&mut file, value).map_err(std::io::Error::other)?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|source| {
        let _ = fs::remove_file(&tmp);
        io_error(path, source)
    })
}

impl StateStore for FileStore {
    fn load<'a>(&'a self, script: &'a str) -> BoxFuture<'a, Result<Versioned<Value>, StoreError>> {
        let path = match self.state_path(script) {
            Ok(path) => path,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        self.unlocked(move |_| {
            Ok(match read_json::<StateFile>(&path)? {
                Some(file) => Versioned {
                    version: file.version,
                    value: Some(file.state),
                },
                None => Versioned {
                    version: 0,
                    value: None,
                },
            })
        })
    }

    fn save<'a>(
        &'a self,
        script: &'a str,
        state: &'a EncodedState,
        expected: u64,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        let path = match self.state_path(script) {
            Ok(path) => path,
            Err(e) => return Box::pin(std::future::ready(Err(e))),
        };
        let value = state.value().clone();
        let script = script.to_string();
        self.locked(format!("state-{script}"), move |_| {
            let current = read_json::<StateFile>(&path)?.map_or(0, |f| f.version);
            if current != expected {
                return Err(StoreError::Conflict {
                    what: format!("state of {script}"),
                });
            }
            let version = current + 1;
            write_json_atomically(
                &path,
                &StateFile {
                    version,
                    state: value,
                },
            )?;
            Ok(version)
        })
    }
}

impl GrantStore for FileStore {
    fn grants_for<'a>(&'a self, user: &'a UserId) -> BoxFuture<'a, Result<Vec<Grant>, StoreError>> {
        let user = user.clone();
        self.query_grants(move |g| g.user == user)
    }

    fn grants_with_role<'a>(
        &'a self,
        role: &'a Role,
    ) -> BoxFuture<'a, Result<Vec<Grant>, StoreError>> {
        let role = role.clone();
        self.query_grants(move |g| g.role == role)
    }

    fn all_grants(&self) -> BoxFuture<'_, Result<Vec<Grant>, StoreError>> {
        self.query_grants(|_| true)
    }

    fn put_grant<'a>(&'a self, grant: &'a Grant) -> BoxFuture<'a, Result<(), StoreError>> {
        let grant = grant.clone();
        let added = self.update_grants(move |grants| super::add_in(grants, &grant));
        Box::pin(async move { added.await? })
    }

    fn remove_grants<'a>(
        &'a self,
        user: &'a UserId,
        role: &'a Role,
    ) -> BoxFuture<'a, Result<Vec<Grant>, StoreError>> {
        let (user, role) = (user.clone(), role.clone());
        self.update_grants(move |grants| super::remove_all_in(grants, &user, &role))
    }

    fn replace_grant<'a>(
        &'a self,
        old: &'a Grant,
        new: Option<&'a Grant>,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let (old, new) = (old.clone(), new.cloned());
        self.update_grants(move |grants| super::replace_in(grants, &old, new.as_ref()))
    }

    fn grants_ended_by(&self, now: DateTime<Utc>) -> BoxFuture<'_, Result<Vec<Grant>, StoreError>> {
        self.query_grants(move |g| g.has_ended(now))
    }
}

impl AuditLog for FileStore {
    fn append<'a>(&'a self, record: &'a AuditRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        let line = match serde_json::to_string(record) {
            Ok(line) => line + "\n",
            Err(e) => return Box::pin(std::future::ready(Err(StoreError::Backend(e.to_string())))),
        };
        self.locked("audit".to_string(), move |store| {
            let path = store.root.join("audit.jsonl");
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|source| io_error(&path, source))?;
            file.write_all(line.as_bytes())
                .map_err(|source| io_error(&path, source))
        })
    }

    fn recent<'a>(
        &'a self,
        user: Option<&'a UserId>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<AuditRecord>, StoreError>> {
        let user = user.cloned();
        self.unlocked(move |store| {
            let path = store.root.join("audit.jsonl");
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(source) => return Err(io_error(&path, source)),
            };
            let mut records = Vec::new();
            for (n, line) in BufReader::new(file).lines().enumerate() {
                let line = line.map_err(|source| io_error(&path, source))?;
                if line.trim().is_empty() {
                    continue;
                }
                let record = serde_json::from_str(&line).map_err(|e| StoreError::Corrupt {
                    what: format!("{} line {}", path.display(), n + 1),
                    detail: e.to_string(),
                })?;
                records.push(record);
            }
            Ok(newest_first(records.iter(), user.as_ref(), limit))
        })
    }
}

impl JobClaims for FileStore {
    fn claim<'a>(
        &'a self,
        job_id: &'a str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        self.with_job(job_id, move |path, record| {
            let outcome = JobRecord::claim_outcome(record.as_ref(), now);
            if outcome == Claim::Acquired {
                let running = JobRecord {
                    status: JobStatus::Running,
                    until: now + lease,
                    reply: None,
                };
                write_json_atomically(path, &running)?;
            }
            Ok(outcome)
        })
    }

    fn finish_with_reply<'a>(
        &'a self,
        job_id: &'a str,
        now: DateTime<Utc>,
        keep: chrono::Duration,
        reply: Option<&'a super::CommittedReply>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let done = JobRecord {
            status: JobStatus::Done,
            until: now + keep,
            reply: reply.cloned(),
        };
        self.with_job(job_id, move |path, _| write_json_atomically(path, &done))
    }

    fn release<'a>(&'a self, job_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.with_job(job_id, |path, record| match record {
            Some(r) if r.status == JobStatus::Running => {
                fs::remove_file(path).map_err(|source| io_error(path, source))
            }
            _ => Ok(()),
        })
    }
}

impl super::Commits for FileStore {
    fn commit<'a>(
        &'a self,
        commit: super::Commit<'a>,
    ) -> BoxFuture<'a, Result<Option<u64>, StoreError>> {
        Box::pin(super::commit_in_steps(self, commit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("opkit-{name}-{}", uuid::Uuid::new_v4()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn file_store_honours_the_store_contract() {
        let store = FileStore::open(temp_dir("contract")).unwrap();
        crate::store::contract::check_all(&store).await;
    }

    #[tokio::test]
    async fn state_survives_reopening_the_directory() {
        let dir = temp_dir("reopen");
        let store = FileStore::open(&dir).unwrap();
        store
            .save(
                "queue",
                &EncodedState::new("queue", json!({"perf": ["U1"]})).unwrap(),
                0,
            )
            .await
            .unwrap();
        let again = FileStore::open(&dir).unwrap();
        let loaded = again.load("queue").await.unwrap();
        assert_eq!(loaded.version, 1);
        assert_eq!(loaded.value, Some(json!({"perf": ["U1"]})));
    }

    #[tokio::test]
    async fn corrupt_state_is_reported_and_left_untouched() {
        // GIVEN a state file that is not JSON
        let dir = temp_dir("corrupt");
        let store = FileStore::open(&dir).unwrap();
        let path = dir.join("state").join("queue.json");
        fs::write(&path, b"{not json").unwrap();
        // WHEN it is loaded, or a save is attempted
        let load = store.load("queue").await;
        let save = store
            .save("queue", &EncodedState::new("queue", json!({})).unwrap(), 0)
            .await;
        // THEN both fail clearly, naming the file, and the file is unchanged
        let err = load.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("queue.json"), "{err}");
        assert!(matches!(save, Err(StoreError::Corrupt { .. })));
        assert_eq!(fs::read(&path).unwrap(), b"{not json");
    }

    #[tokio::test]
    async fn script_names_cannot_escape_the_directory() {
        let store = FileStore::open(temp_dir("escape")).unwrap();
        assert!(store.load("../etc/passwd").await.is_err());
        assert!(
            store
                .save("a/b", &EncodedState::new("a/b", json!({})).unwrap(), 0)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn concurrent_writers_never_lose_an_update() {
        // GIVEN 16 tasks each adding one item with load / modify / save-at-version,
        // retrying on conflict (what the bot does)
        let store = FileStore::open(temp_dir("race")).unwrap();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let loaded = store.load("counter").await.unwrap();
                    let mut items = loaded.value.unwrap_or(json!([]));
                    items.as_array_mut().unwrap().push(json!(i));
                    match store
                        .save(
                            "counter",
                            &EncodedState::new("counter", items.clone()).unwrap(),
                            loaded.version,
                        )
                        .await
                    {
                        Ok(_) => break,
                        Err(e) if e.is_conflict() => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        // THEN every item is there
        let items = store.load("counter").await.unwrap().value.unwrap();
        assert_eq!(items.as_array().unwrap().len(), 16);
    }
}
