//! Filesystem persister: the embedded default for local use (`OPKIT_DATA_DIR`,
//! default `.opkit`).
//!
//! ```text
//! .opkit/
//!   state/<script>.json   {"version": 3, "state": {...}}
//!   grants.json           {"version": 7, "grants": [...]}
//!   audit.jsonl           one AuditRecord per line, oldest first
//!   jobs/<job id>.json    {"status": "running", "until": "..."}: job claims
//!   locks/<name>.lock     advisory locks (flock) serialising writers; the jobs
//!                         share JOB_LOCKS of them (`job-<n>.lock`)
//! ```
//!
//! What it keeps is bounded by time, as DynamoDB's TTL bounds the table: a job's
//! claim file is deleted once its time is up (a running claim's lease, a finished
//! job's keep), by a sweep of `jobs/` that a claim makes once the claims made
//! since the last sweep outnumber the files it left (amortised: each file read is
//! paid for by a claim); audit records are kept [`AUDIT_RETENTION`] and dropped
//! from `audit.jsonl` once its oldest record is a tenth of that past it (so a
//! rewrite of the file drops at least nine days of records).
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
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::{
    AUDIT_RETENTION, AuditLog, Claim, EncodedState, GrantStore, JobClaims, JobRecord, JobStatus,
    StateStore, StoreError, Versioned, newest_first,
};
use crate::BoxFuture;
use crate::access::Grant;
use crate::audit::AuditRecord;
use crate::ids::{Role, UserId};

/// Keeps everything in files under one directory.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: Arc<PathBuf>,
    upkeep: Arc<Mutex<Upkeep>>,
}

/// How many lock files the job claims share (`locks/job-<n>.lock`, chosen by a
/// hash of the job id): a bounded set, so that claim files can be deleted without
/// leaving a lock file behind each (a lock file cannot be deleted safely while
/// another process may be about to lock it).
pub const JOB_LOCKS: u32 = 64;

/// No sweep of `jobs/` before this many claims in a process (after the first).
const FIRST_SWEEP: usize = 1024;

/// This process's bookkeeping for dropping what is past its time.
#[derive(Debug)]
struct Upkeep {
    /// Claims made since the last sweep of `jobs/`.
    claims: usize,
    /// Claims that make the next sweep due.
    sweep_due: usize,
    /// When the oldest record of `audit.jsonl` was made, as last read (it only
    /// gets newer: records are appended, and rewrites drop the oldest).
    oldest_audit: Option<DateTime<Utc>>,
}

impl Default for Upkeep {
    fn default() -> Self {
        // The first claim of a process sweeps: short-lived processes clean up too.
        Self {
            claims: 0,
            sweep_due: 1,
            oldest_audit: None,
        }
    }
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
            upkeep: Arc::default(),
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
        self.locked(job_lock(job_id), move |_| {
            let record = read_json::<JobRecord>(&path)?;
            f(&path, record)
        })
    }

    /// Deletes every claim file whose time is up at `now`, each under its lock (a
    /// claim being made meanwhile is re-read, not lost). Returns how many are left.
    fn sweep_jobs(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let dir = self.root.join("jobs");
        let entries = fs::read_dir(&dir).map_err(|source| io_error(&dir, source))?;
        let mut left = 0;
        for entry in entries {
            let entry = entry.map_err(|source| io_error(&dir, source))?;
            let name = entry.file_name();
            let Some(job_id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue; // temporary files of a write in progress, anything else
            };
            if job_id.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let lock = self.lock_file(&job_lock(job_id))?;
            let gone = match read_json::<JobRecord>(&path) {
                Ok(Some(record)) if record.until <= now => match fs::remove_file(&path) {
                    Ok(()) => true,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
                    Err(source) => return Err(io_error(&path, source)),
                },
                Ok(Some(_)) => false,
                Ok(None) => true,
                // A corrupt claim file is left for a person to look at, as elsewhere.
                Err(_) => false,
            };
            drop(lock);
            left += usize::from(!gone);
        }
        Ok(left)
    }

    /// Whether this claim is the one that sweeps `jobs/` (see the module docs).
    fn sweep_is_due(&self) -> bool {
        let mut upkeep = self.upkeep.lock().expect("upkeep lock");
        upkeep.claims += 1;
        if upkeep.claims < upkeep.sweep_due {
            return false;
        }
        upkeep.claims = 0;
        true
    }

    /// After a sweep that left `left` files: the next is due once as many claims
    /// again have been made.
    fn swept(&self, left: usize) {
        self.upkeep.lock().expect("upkeep lock").sweep_due = left.max(FIRST_SWEEP);
    }

    /// Opens and locks `locks/<lock>.lock`; dropping the file unlocks it.
    fn lock_file(&self, lock: &str) -> Result<File, StoreError> {
        let path = self.root.join("locks").join(format!("{lock}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| io_error(&path, source))?;
        file.lock().map_err(|source| io_error(&path, source))?;
        Ok(file)
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
                let file = store.lock_file(&lock)?;
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

/// The lock of a job's claim: one of [`JOB_LOCKS`], by the job id's FNV-1a hash
/// (the same in every process and build, unlike std's hasher).
fn job_lock(job_id: &str) -> String {
    let hash = job_id.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("job-{}", hash % JOB_LOCKS)
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
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|e| StoreError::Backend(e.to_string()))?;
    bytes.push(b'\n');
    write_atomically(path, &bytes)
}

/// Writes `bytes` to a temporary file in the same directory, syncs it, and renames
/// it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("data"),
        uuid::Uuid::new_v4().simple()
    ));
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
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
        let now = record.at;
        self.locked("audit".to_string(), move |store| {
            let path = store.root.join("audit.jsonl");
            if let Err(e) = store.drop_old_audit(&path, now) {
                // Left as it is for a person to look at; the record is still appended,
                // and this process looks again a retention's tenth later.
                tracing::warn!(error = %e, "could not drop the audit records past their retention");
                store.upkeep.lock().expect("upkeep lock").oldest_audit = Some(now);
            }
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
            let records = read_audit(&store.root.join("audit.jsonl"))?;
            Ok(newest_first(records.iter(), user.as_ref(), limit))
        })
    }
}

impl FileStore {
    /// Under the audit lock, before an append at `now`: rewrites `audit.jsonl`
    /// without its records older than [`AUDIT_RETENTION`], once its oldest is a
    /// tenth of the retention past it. Reads the first line only when the oldest
    /// record this process knows of is that old.
    fn drop_old_audit(&self, path: &Path, now: DateTime<Utc>) -> Result<(), StoreError> {
        let cutoff = now - AUDIT_RETENTION;
        let due = cutoff - AUDIT_RETENTION / 10;
        let known = self.upkeep.lock().expect("upkeep lock").oldest_audit;
        if known.is_some_and(|oldest| oldest > due) {
            return Ok(());
        }
        let oldest = oldest_audit(path)?;
        if oldest.is_none_or(|oldest| oldest > due) {
            self.upkeep.lock().expect("upkeep lock").oldest_audit = oldest;
            return Ok(());
        }
        let records = read_audit(path)?;
        let kept: Vec<&AuditRecord> = records.iter().filter(|r| r.at > cutoff).collect();
        let mut text = String::new();
        for record in &kept {
            text.push_str(
                &serde_json::to_string(record).map_err(|e| StoreError::Backend(e.to_string()))?,
            );
            text.push('\n');
        }
        write_atomically(path, text.as_bytes())?;
        self.upkeep.lock().expect("upkeep lock").oldest_audit = kept.first().map(|r| r.at);
        Ok(())
    }
}

/// When the first (oldest) record of `audit.jsonl` was made; `None` without one.
fn oldest_audit(path: &Path) -> Result<Option<DateTime<Utc>>, StoreError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(io_error(path, source)),
    };
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|source| io_error(path, source))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: AuditRecord = serde_json::from_str(&line).map_err(|e| StoreError::Corrupt {
            what: format!("{} line 1", path.display()),
            detail: e.to_string(),
        })?;
        return Ok(Some(record.at));
    }
    Ok(None)
}

/// Every record of `audit.jsonl`, oldest first (none if there is no file).
fn read_audit(path: &Path) -> Result<Vec<AuditRecord>, StoreError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(io_error(path, source)),
    };
    let mut records = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| io_error(path, source))?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line).map_err(|e| StoreError::Corrupt {
            what: format!("{} line {}", path.display(), n + 1),
            detail: e.to_string(),
        })?;
        records.push(record);
    }
    Ok(records)
}

impl JobClaims for FileStore {
    fn claim<'a>(
        &'a self,
        job_id: &'a str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> BoxFuture<'a, Result<Claim, StoreError>> {
        let claimed = self.with_job(job_id, move |path, record| {
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
        });
        if !self.sweep_is_due() {
            return claimed;
        }
        let swept = self.unlocked(move |store| {
            let left = store.sweep_jobs(now)?;
            store.swept(left);
            Ok(())
        });
        Box::pin(async move {
            let outcome = claimed.await?;
            // The claim is made; a sweep that fails is logged, not the claim's failure.
            if let Err(e) = swept.await {
                tracing::warn!(error = %e, "could not sweep the job claims past their time");
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
mod tests;
