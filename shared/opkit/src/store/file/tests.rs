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

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
}

fn claim_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.join("jobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_claim_file_is_kept_for_its_time_and_deleted_by_a_later_sweep() {
    // GIVEN two jobs finished at t(0), kept a day, in one process
    let dir = temp_dir("sweep");
    let keep = chrono::Duration::days(1);
    let lease = chrono::Duration::minutes(5);
    let store = FileStore::open(&dir).unwrap();
    for job in ["job-a", "job-b"] {
        assert_eq!(
            store.claim(job, at(0), lease).await.unwrap(),
            Claim::Acquired
        );
        store.finish(job, at(0), keep).await.unwrap();
    }
    // WHEN another process claims a job a second before the day is up (its
    // first claim sweeps)
    let late = at(0) + keep - chrono::Duration::seconds(1);
    let next = FileStore::open(&dir).unwrap();
    assert_eq!(
        next.claim("job-c", late, lease).await.unwrap(),
        Claim::Acquired
    );
    // THEN the finished jobs are still there and still refused
    assert_eq!(
        claim_files(&dir),
        ["job-a.json", "job-b.json", "job-c.json"]
    );
    assert_eq!(
        next.claim("job-a", late, lease).await.unwrap(),
        Claim::AlreadyDone
    );
    // WHEN a third process claims once the day is up
    let third = FileStore::open(&dir).unwrap();
    assert_eq!(
        third.claim("job-d", at(0) + keep, lease).await.unwrap(),
        Claim::Acquired
    );
    // THEN their files are gone; the running claims (leases not over) stay
    assert_eq!(claim_files(&dir), ["job-c.json", "job-d.json"]);
}

#[test]
fn a_sweep_is_due_once_the_claims_since_the_last_outnumber_the_files_it_left() {
    let store = FileStore::open(temp_dir("due")).unwrap();
    assert!(store.sweep_is_due(), "the first claim of a process sweeps");
    store.swept(5000);
    let due: Vec<usize> = (1..=10_000).filter(|_| store.sweep_is_due()).collect();
    assert_eq!(due.len(), 2, "every 5,000 claims");
    store.swept(10);
    let due = (1..=FIRST_SWEEP).filter(|_| store.sweep_is_due()).count();
    assert_eq!(due, 1, "at least {FIRST_SWEEP} claims between sweeps");
}

#[tokio::test]
async fn job_claims_share_a_bounded_set_of_lock_files() {
    let dir = temp_dir("locks");
    let store = FileStore::open(&dir).unwrap();
    for i in 0..300 {
        let job = format!("job-{i}");
        store
            .claim(&job, at(0), chrono::Duration::minutes(5))
            .await
            .unwrap();
        store.release(&job).await.unwrap();
    }
    let locks = fs::read_dir(dir.join("locks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("job-"))
        .count();
    assert!(locks <= JOB_LOCKS as usize, "{locks} lock files");
    assert_eq!(job_lock("job-1"), job_lock("job-1"));
}

fn audit_record(n: i64, at: DateTime<Utc>) -> AuditRecord {
    AuditRecord {
        id: uuid::Uuid::new_v4(),
        correlation_id: uuid::Uuid::new_v4(),
        at,
        user: UserId::parse("UA").unwrap(),
        channel: None,
        team: None,
        text: format!("cmd {n}"),
        command: None,
        outcome: crate::audit::Outcome::Succeeded,
    }
}

async fn audit_texts(store: &FileStore) -> Vec<String> {
    let mut texts: Vec<String> = store
        .recent(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.text)
        .collect();
    texts.reverse();
    texts
}

#[tokio::test]
async fn audit_records_past_their_retention_are_dropped_from_the_file() {
    // GIVEN records on day 0 and day 20
    let dir = temp_dir("audit-retention");
    let store = FileStore::open(&dir).unwrap();
    let day = |d: i64| at(0) + chrono::Duration::days(d);
    store.append(&audit_record(0, day(0))).await.unwrap();
    store.append(&audit_record(1, day(20))).await.unwrap();
    // WHEN one comes on day 95: the oldest is past the 90 days, but not by a tenth
    store.append(&audit_record(2, day(95))).await.unwrap();
    // THEN nothing is dropped yet
    assert_eq!(audit_texts(&store).await, ["cmd 0", "cmd 1", "cmd 2"]);
    // WHEN one comes on day 100, from another process
    let other = FileStore::open(&dir).unwrap();
    other.append(&audit_record(3, day(100))).await.unwrap();
    // THEN the day-0 record is gone, the rest kept in order
    assert_eq!(audit_texts(&store).await, ["cmd 1", "cmd 2", "cmd 3"]);
    // AND the first process, which knew the oldest as day 0, finds day 20 and keeps all
    store.append(&audit_record(4, day(101))).await.unwrap();
    assert_eq!(
        audit_texts(&store).await,
        ["cmd 1", "cmd 2", "cmd 3", "cmd 4"]
    );
}

#[tokio::test]
async fn a_corrupt_audit_file_is_appended_to_and_left_as_it_is() {
    let dir = temp_dir("audit-corrupt");
    let path = dir.join("audit.jsonl");
    fs::write(&path, "{not json\n").unwrap();
    let store = FileStore::open(&dir).unwrap();
    let far = at(0) + chrono::Duration::days(400);
    store.append(&audit_record(0, far)).await.unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("{not json\n"), "{text}");
    assert!(text.contains("cmd 0"), "{text}");
}
