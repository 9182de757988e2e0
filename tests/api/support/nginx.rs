//! nginx (Debian's package) in front of authmail instances with TLS, run in
//! the foreground from a temp dir with the repository's own site config,
//! `contrib/nginx/authmail.conf`: only its ports, upstreams and certificate
//! are put in, so the tests run what the deployment guide tells people to run.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::smtp::{free_port, Certs};
use super::wait::eventually_blocking;

pub struct Nginx {
    /// `https://127.0.0.1:PORT`, with the throwaway CA's certificate.
    pub base: String,
    /// `http://127.0.0.1:PORT`: the plain-HTTP server, which only redirects.
    pub http_base: String,
    /// Trusts the throwaway CA only; follows no redirects.
    pub client: reqwest::Client,
    dir: tempfile::TempDir,
    child: Child,
}

const SITE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/nginx/authmail.conf");

fn binary() -> &'static str {
    if std::path::Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}

/// `text` with its one `from` replaced: a config edited so that `from` is
/// gone (or doubled) fails here, instead of quietly testing something else.
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "{SITE} should hold {from:?} exactly once; update tests/api/support/nginx.rs with it"
    );
    text.replacen(from, to, 1)
}

/// The site config with this test's upstreams, loopback ports and certificate.
fn site(upstreams: &[u16], https: u16, http: u16, certs: &Certs) -> String {
    let conf = std::fs::read_to_string(SITE).expect("contrib/nginx/authmail.conf");
    let servers: String = upstreams
        .iter()
        .map(|p| format!("    server 127.0.0.1:{p};\n"))
        .collect();
    let (cert, key) = certs.pair("server");
    let conf = replace_once(&conf, "    server 127.0.0.1:8080;\n", &servers);
    let conf = replace_once(&conf, "listen 80;", &format!("listen 127.0.0.1:{http};"));
    let conf = replace_once(&conf, "    listen [::]:80;\n", "");
    let conf = replace_once(
        &conf,
        "listen 443 ssl;",
        &format!("listen 127.0.0.1:{https} ssl;"),
    );
    let conf = replace_once(&conf, "    listen [::]:443 ssl;\n", "");
    let conf = replace_once(
        &conf,
        "/etc/letsencrypt/live/auth.example.com/fullchain.pem",
        cert.to_str().unwrap(),
    );
    replace_once(
        &conf,
        "/etc/letsencrypt/live/auth.example.com/privkey.pem",
        key.to_str().unwrap(),
    )
}

impl Nginx {
    /// nginx with TLS (the `server` certificate of `certs`) in front of the
    /// authmail instances on `upstreams`, round robin.
    pub fn start(upstreams: &[u16], certs: &Certs) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let (https, http) = (free_port(), free_port());
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("authmail.conf"),
            site(upstreams, https, http, certs),
        )
        .unwrap();
        // The rest of an nginx.conf, as a distribution's would be, kept in
        // the temp dir.
        let conf = format!(
            "daemon off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log warn;
             events {{ worker_connections 1024; }}
             http {{
               access_log off;
               client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
               fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
               include {d}/authmail.conf;
             }}"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new(binary())
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx must be installed (scripts/test installs it)");
        let ca = std::fs::read(certs.ca()).unwrap();
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let nginx = Nginx {
            base: format!("https://127.0.0.1:{https}"),
            http_base: format!("http://127.0.0.1:{http}"),
            client,
            dir,
            child,
        };
        eventually_blocking(Duration::from_secs(10), || {
            let up = |port| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            if up(https) && up(http) {
                return Ok(());
            }
            Err(format!("nginx did not start: {}", nginx.error_log()))
        });
        nginx
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    /// SIGTERM, as systemd stops it (nginx's fast shutdown), and a check that
    /// it ended cleanly; SIGKILL only for one that did not.
    fn drop(&mut self) {
        // SAFETY: kill only reads its two integer arguments.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            match self.child.try_wait().unwrap() {
                Some(status) => break Some(status),
                None if Instant::now() > deadline => break None,
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        let Some(status) = status else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            if !std::thread::panicking() {
                panic!("nginx did not stop on SIGTERM: {}", self.error_log());
            }
            return;
        };
        if !status.success() && !std::thread::panicking() {
            panic!("nginx exited with {status}: {}", self.error_log());
        }
    }
}
