//! SQLite under faults: 8 concurrent writers, a lock held by another process
//! past `DATABASE_TIMEOUT_SECS`, and a full disk (a small tmpfs, mounted here:
//! this needs root, as CI has; without it the test fails saying so). During a
//! fault the API answers 503 `unavailable`, never 500; afterwards it recovers
//! without a restart, and no code was written without its mail or the reverse.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::api::Reply;
use crate::support::app::{Builder, TestApp};
use crate::support::db::TestDb;
use crate::support::wait::eventually;
use futures_util::future::join_all;

/// An app whose SQLite database is the file at `path` (whatever backend the
/// suite runs on: these faults are SQLite's).
fn app_on(path: &Path) -> Builder {
    TestApp::builder()
        .process()
        .no_limits()
        .sqlite_file(path.to_path_buf())
}

fn assert_no_500(r: &Reply) {
    assert!(
        r.status == 202 || (r.status == 503 && r.error_code() == "unavailable"),
        "{} {}",
        r.status,
        r.raw
    );
}

/// Every code has its mail and every code mail its code: one transaction wrote both.
async fn assert_pairs_whole(db: &TestDb) {
    let codes = db.int("SELECT COUNT(*) FROM codes").await;
    let mails = db
        .int("SELECT COUNT(DISTINCT recipient) FROM outbox WHERE kind = 'register'")
        .await;
    let orphans = db
        .int("SELECT COUNT(*) FROM codes c WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.recipient = c.email)")
        .await;
    println!("pairs: {codes} codes, {mails} addresses mailed, {orphans} codes without a mail");
    assert_eq!(codes, mails);
    assert_eq!(orphans, 0);
}

#[tokio::test]
async fn eight_concurrent_writers_get_no_500() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    let app = app_on(&path).start().await;
    let started = Instant::now();
    let replies = join_all((0..8).map(|w| {
        let app = &app;
        async move {
            let mut out = Vec::new();
            for i in 0..40 {
                out.push(
                    app.send_code(&format!("w{w}n{i}@example.com"), "register")
                        .await,
                );
            }
            out
        }
    }))
    .await;
    let all: Vec<&Reply> = replies.iter().flatten().collect();
    let ok = all.iter().filter(|r| r.status == 202).count();
    let unavailable = all.iter().filter(|r| r.status == 503).count();
    println!(
        "8 writers x 40 send-code: {ok} x 202, {unavailable} x 503, {} others, in {:.1} s",
        all.len() - ok - unavailable,
        started.elapsed().as_secs_f64()
    );
    for r in &all {
        assert_no_500(r);
    }
    assert_eq!(
        ok, 320,
        "within the busy timeout every writer gets its turn"
    );
    assert_pairs_whole(&app.db).await;
}

#[tokio::test]
async fn a_lock_held_past_the_timeout_is_503_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.db");
    let app = app_on(&path)
        .env("DATABASE_TIMEOUT_SECS", "1")
        .start()
        .await;
    assert_eq!(
        app.send_code("before@example.com", "register").await.status,
        202
    );

    // Another process takes SQLite's write lock and sits on it.
    let mut holder = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys,time; c=sqlite3.connect(sys.argv[1], isolation_level=None); \
             c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); sys.stdin.read()",
        ])
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");

    let started = Instant::now();
    let r = app.send_code("during@example.com", "register").await;
    let waited = started.elapsed();
    println!(
        "write lock held elsewhere: {} {} after {:.2} s",
        r.status,
        r.error_code(),
        waited.as_secs_f64()
    );
    assert_eq!(
        (r.status, r.error_code()),
        (503, "unavailable"),
        "{}",
        r.raw
    );
    assert!(waited < Duration::from_secs(5), "an answer, not a hang");
    assert_eq!(app.get("/healthz").await.status, 200);

    drop(holder.stdin.take()); // EOF: the holder exits and its lock goes
    holder.wait().unwrap();
    let r = app.send_code("after@example.com", "register").await;
    assert_eq!(r.status, 202, "recovered without a restart: {}", r.raw);
    assert_pairs_whole(&app.db).await;
}

struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "the disk-full test mounts a small tmpfs and needs root for it (CI has it): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// Fills the file system at `dir` to the last byte.
fn fill(dir: &Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    while f.write_all(&[0]).is_ok() {}
    let _ = f.sync_all();
    path
}

#[tokio::test]
async fn a_full_disk_is_503_then_recovers() {
    let fs = Tmpfs::mount("4m");
    let path = fs.0.path().join("full.db");
    let mut app = app_on(&path)
        .env("DATABASE_TIMEOUT_SECS", "2")
        .start()
        .await;
    for i in 0..5 {
        assert_eq!(
            app.send_code(&format!("pre{i}@example.com"), "register")
                .await
                .status,
            202
        );
    }
    let filler = fill(fs.0.path());

    // SQLite may still have room in its WAL; keep writing until the disk says no.
    let mut first_503 = None;
    let mut answers = (0, 0);
    for i in 0..2000 {
        let r = app
            .send_code(&format!("full{i}@example.com"), "register")
            .await;
        assert_no_500(&r);
        if r.status == 202 {
            answers.0 += 1;
        } else {
            answers.1 += 1;
            first_503.get_or_insert(i);
            if answers.1 >= 5 {
                break;
            }
        }
    }
    println!(
        "disk full: {} accepted from the WAL's room, then 503 from request {:?}; {} x 503",
        answers.0, first_503, answers.1
    );
    assert!(first_503.is_some(), "the full disk was never noticed");
    assert_eq!(app.get("/healthz").await.status, 200);

    std::fs::remove_file(&filler).unwrap();
    eventually(Duration::from_secs(30), || async {
        let r = app.send_code("recovered@example.com", "register").await;
        if r.status == 500 {
            let logs = app.logs();
            let errors: Vec<&str> = logs.lines().filter(|l| l.contains("ERROR")).collect();
            panic!(
                "500 after the disk has room again: {}\n{}",
                r.raw,
                errors.join("\n")
            );
        }
        assert_no_500(&r);
        match r.status == 202 {
            true => Ok(()),
            false => Err(format!("no recovery: {}", r.raw)),
        }
    })
    .await;
    assert_eq!(app.get("/readyz").await.status, 200);
    // The worker writes again too: the new code reaches the dev mailbox.
    let code = app
        .dev_code("recovered@example.com", Duration::from_secs(20))
        .await;
    assert_eq!(code.len(), 6);
    assert_pairs_whole(&app.db).await;
    assert!(app.terminate().success());
}
