//! Slow and greedy clients against the real binary: slowloris, oversized
//! heads and bodies, stalled bodies, idle keep-alive, the connection cap, the
//! metrics label flood and who may read `/metrics`. Each test prints what it
//! measured (run with `--nocapture`) and asserts the bound.

use std::time::{Duration, Instant};

use crate::support::app::{bin, TestApp};
use crate::support::smtp::free_port;
use crate::support::wait::{eventually, output_within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MB: u64 = 1024;

/// Lets this test process (and the server it starts) open more than the
/// usual 1024 files: the floods hold over a thousand sockets.
fn raise_open_files() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    assert!(limit.rlim_cur >= 4096, "hard open-files limit too low");
}

/// The server's resident memory, in KiB.
fn rss_kib(app: &TestApp) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", app.pid())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Files the server holds open (its sockets among them).
fn open_files(app: &TestApp) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", app.pid()))
        .unwrap()
        .count()
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(("127.0.0.1", app.port)).await.unwrap()
}

/// Everything the server sends until it closes the connection, or `None`
/// when it is still open at `within`.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&got).into_owned())
}

/// One whole response on a connection that stays open (by Content-Length).
async fn one_response(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&got).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_string)
                    })
                    .map_or(0, |n| n.trim().parse().unwrap());
                if body.len() >= length {
                    return Some(text);
                }
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// `/healthz` on a fresh connection, timed.
async fn healthz_time(app: &TestApp) -> Duration {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    let r = client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("/healthz answers");
    assert_eq!(r.status(), 200);
    started.elapsed()
}

const PARTIAL_HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";

#[tokio::test]
async fn slowloris_connections_are_held_cheaply_then_closed_after_http_timeout_secs() {
    raise_open_files();
    let app = TestApp::builder()
        .process()
        .exclusive()
        .env("HTTP_TIMEOUT_SECS", "8")
        .start()
        .await;
    let before = rss_kib(&app);
    let files_before = open_files(&app);
    let opened = Instant::now();
    let mut conns = Vec::new();
    for _ in 0..1_100 {
        let mut c = connect(&app).await;
        c.write_all(PARTIAL_HEAD).await.unwrap();
        conns.push(c);
    }
    let opening = opened.elapsed();
    // The server may still be accepting the last few from its listen queue.
    let held = || open_files(&app).saturating_sub(files_before);
    // Within a few: the start-up probe's socket may close meanwhile.
    let all_held = async {
        while held() < 1_095 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), all_held).await;
    let held = held();
    let rss = rss_kib(&app);
    let healthz = healthz_time(&app).await;
    eprintln!(
        "slowloris: {} partial heads opened in {opening:?}; server holds {held} of them; \
         /healthz in {healthz:?}; RSS {} -> {} MiB",
        conns.len(),
        before / MB,
        rss / MB
    );
    assert!(held >= 1_095, "the server holds the connections: {held}");
    assert!(
        healthz < Duration::from_secs(1),
        "/healthz took {healthz:?}"
    );
    assert!(rss < 100 * MB, "RSS {} MiB", rss / MB);
    // Every one is closed once its 8 s are up (plus slack for a busy machine).
    let limit = opening + Duration::from_secs(8 + 5);
    for c in &mut conns {
        let left = (opened + limit).saturating_duration_since(Instant::now());
        assert!(
            until_closed(c, left).await.is_some(),
            "a partial head still open after {limit:?}"
        );
    }
    let closed_after = opened.elapsed();
    let fds = open_files(&app);
    eprintln!("slowloris: all closed {closed_after:?} after opening; server holds {fds} files");
    assert!(closed_after >= Duration::from_secs(8), "closed early");
    assert!(fds < 100, "sockets released: {fds}");
}

#[tokio::test]
async fn a_thousand_huge_unfinished_heads_keep_memory_bounded() {
    raise_open_files();
    let app = TestApp::builder().process().exclusive().start().await;
    let before = rss_kib(&app);
    let line = format!("X-Filler: {}\r\n", "a".repeat(1_000));
    let mut head = PARTIAL_HEAD.to_vec();
    head.extend_from_slice(b"1\r\n");
    while head.len() < 400 * 1024 {
        head.extend_from_slice(line.as_bytes());
    }
    let head = std::sync::Arc::new(head);
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let peak = {
        let (pid, sampling) = (app.pid(), sampling.clone());
        tokio::spawn(async move {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
                let kib: u64 = status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .unwrap()
                    .parse()
                    .unwrap();
                peak = peak.max(kib);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        })
    };
    let started = Instant::now();
    let floods: Vec<_> = (0..1_000)
        .map(|_| {
            let (port, head) = (app.port, head.clone());
            tokio::spawn(async move {
                let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                // The server stops reading long before 400 KB: the write fails.
                let _ = c.write_all(&head).await;
                until_closed(&mut c, Duration::from_secs(30)).await
            })
        })
        .collect();
    let mut answered_431 = 0;
    for f in floods {
        let reply = f.await.unwrap().expect("the server closes the connection");
        answered_431 += usize::from(reply.starts_with("HTTP/1.1 431"));
    }
    let took = started.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak = peak.await.unwrap();
    let after = rss_kib(&app);
    let healthz = healthz_time(&app).await;
    eprintln!(
        "huge heads: 1000 x 400 KB unfinished heads all closed in {took:?} ({answered_431} got a 431 \
         before the reset); RSS {} -> peak {} -> {} MiB; /healthz in {healthz:?}",
        before / MB,
        peak / MB,
        after / MB
    );
    assert!(peak < 100 * MB, "peak RSS {} MiB", peak / MB);
    assert!(after < 100 * MB, "RSS after {} MiB", after / MB);
    assert!(healthz < Duration::from_secs(1));
}

#[tokio::test]
async fn a_head_over_16_kib_is_431_and_the_connection_closes() {
    let app = TestApp::builder().start().await;
    // Between 16 KiB and the read buffer: the contract's JSON.
    let mut c = connect(&app).await;
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(20 * 1024)
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let reply = until_closed(&mut c, Duration::from_secs(5))
        .await
        .expect("closed after the 431");
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
    assert!(
        reply.to_lowercase().contains("connection: close"),
        "{reply}"
    );
    let body: serde_json::Value =
        serde_json::from_str(reply.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["error"]["code"], "headers_too_large");
    // Far over (past the read buffer): hyper's own 431, closed just the same.
    let mut c = connect(&app).await;
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(100 * 1024)
    );
    let _ = c.write_all(head.as_bytes()).await;
    let reply = until_closed(&mut c, Duration::from_secs(5))
        .await
        .expect("closed after the 431");
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 431"),
        "{reply}"
    );
    // Just under the limit is fine.
    let mut c = connect(&app).await;
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(15 * 1024)
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let reply = one_response(&mut c, Duration::from_secs(5)).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

#[tokio::test]
async fn expect_100_continue_with_a_large_length_is_413_at_once() {
    let app = TestApp::builder().start().await;
    let mut c = connect(&app).await;
    let started = Instant::now();
    c.write_all(
        b"POST /api/auth/send-code HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 10000000\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let reply = until_closed(&mut c, Duration::from_secs(5))
        .await
        .expect("answered and closed without the body");
    eprintln!("expect: 413 in {:?}", started.elapsed());
    assert!(!reply.contains("100 Continue"), "{reply}");
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("\"payload_too_large\""), "{reply}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_stalled_body_is_408_after_http_timeout_secs() {
    let app = TestApp::builder()
        .env("HTTP_TIMEOUT_SECS", "2")
        .start()
        .await;
    let mut c = connect(&app).await;
    let started = Instant::now();
    c.write_all(
        b"POST /api/auth/send-code HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"email\":",
    )
    .await
    .unwrap();
    let reply = until_closed(&mut c, Duration::from_secs(10))
        .await
        .expect("the stalled request is ended");
    let took = started.elapsed();
    eprintln!("stalled body: answered in {took:?}");
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("\"request_timeout\""), "{reply}");
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(5));
}

/// The idle keep-alive time is its own deadline, not the header timeout's:
/// 60 s in production (a unit test of the settings says so), 4 s here so the
/// test does not wait a minute.
#[tokio::test]
async fn idle_keep_alive_closes_after_its_own_time_not_after_the_header_timeout() {
    let app = TestApp::builder()
        .env("HTTP_TIMEOUT_SECS", "1")
        .adjust(|s| s.http.idle = Duration::from_secs(4))
        .start()
        .await;
    let mut c = connect(&app).await;
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let reply = one_response(&mut c, Duration::from_secs(5)).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let idle_from = Instant::now();
    let rest = until_closed(&mut c, Duration::from_secs(15)).await;
    let idle = idle_from.elapsed();
    eprintln!("idle keep-alive: closed after {idle:?}");
    assert_eq!(rest.as_deref(), Some(""), "closed without a word");
    assert!(
        idle >= Duration::from_millis(3900) && idle < Duration::from_secs(7),
        "{idle:?}"
    );
}

#[tokio::test]
async fn past_http_max_connections_new_connections_wait_their_turn() {
    let app = TestApp::builder()
        .exclusive()
        .env("HTTP_MAX_CONNECTIONS", "50")
        .start()
        .await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut served = Vec::new();
    for _ in 0..50 {
        let mut c = connect(&app).await;
        c.write_all(request).await.unwrap();
        let reply = one_response(&mut c, Duration::from_secs(5)).await;
        assert!(reply.unwrap().starts_with("HTTP/1.1 200"));
        served.push(c);
    }
    // Ten more: the kernel completes the handshake, the server takes none.
    let mut waiting = Vec::new();
    for _ in 0..10 {
        let mut c = connect(&app).await;
        c.write_all(request).await.unwrap();
        waiting.push(c);
    }
    for c in &mut waiting {
        let reply = one_response(c, Duration::from_millis(100)).await;
        assert!(reply.is_none(), "served past the limit: {reply:?}");
    }
    // Each connection that closes lets one waiting connection in.
    for (n, c) in waiting.iter_mut().enumerate() {
        drop(served.pop());
        let started = Instant::now();
        let reply = one_response(c, Duration::from_secs(5)).await;
        assert!(
            reply.is_some_and(|r| r.starts_with("HTTP/1.1 200")),
            "waiting connection {n} served once a slot is free"
        );
        if n == 0 {
            eprintln!(
                "max connections: 50 held, the 51st served {:?} after one closed",
                started.elapsed()
            );
        }
    }
}

#[tokio::test]
async fn made_up_methods_are_counted_as_other_and_memory_stays_flat() {
    let app = TestApp::builder().process().exclusive().start().await;
    let method = |n: usize| {
        let letters: String = (0..20_000)
            .map(|i| char::from(b'A' + ((n * 7 + i) % 26) as u8))
            .collect();
        format!("XMETH{n}{letters}")
    };
    let flood = |from: usize, to: usize| {
        let port = app.port;
        async move {
            for n in from..to {
                let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                let req = format!("{} / HTTP/1.1\r\nHost: x\r\n\r\n", method(n));
                c.write_all(req.as_bytes()).await.unwrap();
                let reply = until_closed(&mut c, Duration::from_secs(10)).await;
                assert!(reply.is_some_and(|r| r.starts_with("HTTP/1.1 4")));
            }
        }
    };
    // Warm up the allocator and the label set, then measure.
    flood(0, 50).await;
    let before = rss_kib(&app);
    let batches: Vec<_> = (0..8)
        .map(|b| tokio::spawn(flood(50 + b * 250, 50 + (b + 1) * 250)))
        .collect();
    for b in batches {
        b.await.unwrap();
    }
    let after = rss_kib(&app);
    eprintln!(
        "method flood: 2000 requests with 20 KB methods; RSS {} -> {} KiB",
        before, after
    );
    assert!(after < before + 8 * MB, "RSS grew {} KiB", after - before);
    let metrics = app.get("/metrics").await.raw;
    let series: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("authmail_http_requests_total{"))
        .collect();
    assert!(
        series.iter().any(|l| l.contains("method=\"OTHER\"")),
        "{series:?}"
    );
    assert!(!metrics.contains("XMETH"), "no made-up method is a label");
}

#[tokio::test]
async fn metrics_answer_loopback_clients_and_the_metrics_listener_only() {
    let metrics_port = free_port();
    let metrics_bind = format!("127.0.0.1:{metrics_port}");
    let app = TestApp::builder()
        .envs(&[
            ("TRUSTED_PROXIES", "127.0.0.1/32"),
            ("METRICS_BIND", &metrics_bind),
        ])
        .start()
        .await;
    let client = reqwest::Client::new();
    let get = |url: String, forwarded: Option<&'static str>| {
        let mut req = client.get(url);
        if let Some(ip) = forwarded {
            req = req.header("x-forwarded-for", ip);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let main = format!("{}/metrics", app.base);
    let (status, body) = get(main.clone(), None).await;
    assert_eq!(status, 200, "a loopback client");
    assert!(body.contains("authmail_http_requests_total"));
    // A remote client behind the trusted local proxy: the same 404 as any unknown path.
    let (status, body) = get(main.clone(), Some("203.0.113.7")).await;
    assert_eq!(status, 404);
    let unknown = get(format!("{}/no-such-path", app.base), None).await.1;
    assert_eq!(body, unknown);
    assert!(body.contains("\"not_found\""));
    // The metrics listener serves anyone who reaches it, and only /metrics.
    let (status, body) = get(
        format!("http://{metrics_bind}/metrics"),
        Some("203.0.113.7"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("authmail_http_requests_total"));
    let (status, body) = get(format!("http://{metrics_bind}/healthz"), None).await;
    assert_eq!(status, 404);
    assert!(body.contains("\"not_found\""));
    let (status, _) = get(format!("http://{metrics_bind}/api/auth/me"), None).await;
    assert_eq!(status, 404);
}

#[test]
fn bad_http_settings_stop_start_up_with_one_line_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("HTTP_TIMEOUT_SECS", "0"),
        ("HTTP_TIMEOUT_SECS", "301"),
        ("HTTP_TIMEOUT_SECS", "ten"),
        ("HTTP_MAX_CONNECTIONS", "0"),
        ("HTTP_MAX_CONNECTIONS", "1000001"),
        ("METRICS_BIND", "9090"),
        ("METRICS_BIND", "localhost:9090"),
    ];
    for (name, value) in cases {
        let child = std::process::Command::new(bin())
            .arg("serve")
            .current_dir(dir.path())
            .env_clear()
            .env("BIND", format!("127.0.0.1:{}", free_port()))
            .env(name, value)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = output_within(child, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("{name}={value} did not stop start-up"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}={value}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(name), "{stderr}");
    }
}

#[tokio::test]
async fn sigterm_stops_accepting_and_finishes_the_request_in_flight() {
    let mut app = TestApp::builder().process().start().await;
    let mut c = connect(&app).await;
    let body = r#"{"email":"inflight@example.com","purpose":"register"}"#;
    let head = format!(
        "POST /api/auth/send-code HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).await.unwrap();
    // `100 Continue` says the request is in the server's hands, waiting for its body.
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 100 Continue"));
    std::process::Command::new("kill")
        .args(["-TERM", &app.pid().to_string()])
        .status()
        .unwrap();
    eventually(Duration::from_secs(5), || async {
        match TcpStream::connect(("127.0.0.1", app.port)).await {
            Ok(_) => Err("still accepting after SIGTERM"),
            Err(_) => Ok(()),
        }
    })
    .await;
    c.write_all(body.as_bytes()).await.unwrap();
    let reply = one_response(&mut c, Duration::from_secs(5)).await;
    assert!(
        reply
            .as_deref()
            .is_some_and(|r| r.starts_with("HTTP/1.1 202")),
        "{reply:?}"
    );
    assert!(app.terminate().success(), "{}", app.logs());
}

#[tokio::test]
async fn running_out_of_files_pauses_accepting_but_never_ends_the_server() {
    raise_open_files();
    let app = TestApp::builder()
        .process()
        .exclusive()
        .env("HTTP_TIMEOUT_SECS", "2")
        .start()
        .await;
    let limit = open_files(&app) as u64 + 20;
    let low = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: sets the limit of the server we started; reads nothing back.
    let set = unsafe {
        libc::prlimit(
            app.pid() as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &low,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(set, 0, "prlimit on the server");
    // More slow clients than descriptors: accept fails with EMFILE.
    let mut conns = Vec::new();
    for _ in 0..60 {
        let mut c = connect(&app).await;
        c.write_all(PARTIAL_HEAD).await.unwrap();
        conns.push(c);
    }
    let started = Instant::now();
    while !app.logs().contains("cannot accept a connection") {
        assert!(started.elapsed() < Duration::from_secs(5), "no EMFILE seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The slow ones time out, free their descriptors, and the server goes on.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    eventually(Duration::from_secs(30), || async {
        let r = client.get(format!("{}/healthz", app.base)).send().await;
        match r.is_ok_and(|r| r.status() == 200) {
            true => Ok(()),
            false => Err("/healthz never answered again"),
        }
    })
    .await;
    let pauses = app.logs().matches("cannot accept a connection").count();
    eprintln!(
        "out of files: served again {:?} after the first EMFILE, {pauses} paused accepts",
        started.elapsed()
    );
    assert!(pauses < 500, "accepting must back off, not spin: {pauses}");
}
