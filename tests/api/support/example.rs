//! `Example`: the example app of `examples/python-backend` as a python3 child
//! process, and a browser for it. The test stands where a reverse proxy would:
//! the app believes its `X-Forwarded-For` (`APP_TRUSTED_PROXIES`), so each
//! request can come from a browser address of the test's choosing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

use super::smtp::free_port;
use super::wait::eventually;

pub const AUDIENCE: &str = "example-app";

pub struct Example {
    pub base: String,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    client: reqwest::Client,
}

/// One answer of the example app.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .map_or("", |v| v.to_str().unwrap())
    }

    /// The value the answer sets cookie `name` to.
    pub fn cookie(&self, name: &str) -> String {
        let prefix = format!("{name}=");
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .find_map(|c| c.strip_prefix(&prefix))
            .and_then(|c| c.split(';').next())
            .unwrap_or_else(|| panic!("no {name} cookie set: {self:?}"))
            .to_string()
    }

    /// The value of the form field `name`, when the page has one.
    pub fn field(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let end = start + self.body[start..].find('"')?;
        Some(self.body[start..end].to_string())
    }
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python-backend")
}

impl Example {
    /// The app on `port`, calling authmail at `authmail` (whose `PUBLIC_URL`
    /// it is too) and verifying webhooks with `secret`. Ready once `/` answers.
    pub async fn start(port: u16, authmail: &str, secret: &str) -> Example {
        let work = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(work.path().join("app.log")).unwrap();
        let child = Command::new("python3")
            .arg(dir().join("app.py"))
            .env("AUTHMAIL_URL", authmail)
            .env("JWT_AUDIENCE", AUDIENCE)
            .env("WEBHOOK_SECRET", secret)
            .env("APP_BIND", format!("127.0.0.1:{port}"))
            .env("APP_DB", work.path().join("app.db"))
            .env("APP_TRUSTED_PROXIES", "127.0.0.1/32")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("python3 (pip install -r tests/requirements.txt)");
        let example = Example {
            base: format!("http://127.0.0.1:{port}"),
            dir: work,
            child: Some(child),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        };
        let url = format!("{}/", example.base);
        eventually(Duration::from_secs(20), || async {
            match example.client.get(&url).send().await {
                Ok(_) => Ok(()),
                Err(_) => Err(format!("the example app is not up:\n{}", example.log())),
            }
        })
        .await;
        example
    }

    pub fn free_port() -> u16 {
        free_port()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("app.log")).unwrap_or_default()
    }

    /// The app's own SQLite file (profiles, webhook events).
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("app.db")
    }

    async fn answer(&self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req.send().await.expect("the example app answers");
        Answer {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap(),
        }
    }

    /// A form posted by a browser at `ip`, through the proxy the test plays.
    pub async fn post_form(&self, path: &str, ip: &str, form: &[(&str, &str)]) -> Answer {
        let req = self.client.post(format!("{}{path}", self.base));
        let req = req.header("x-forwarded-for", ip).form(form);
        self.answer(req).await
    }

    /// GET with these cookies (`name=value`).
    pub async fn get_with_cookies(&self, path: &str, cookies: &[(&str, &str)]) -> Answer {
        let jar: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let req = self.client.get(format!("{}{path}", self.base));
        self.answer(req.header("cookie", jar.join("; "))).await
    }

    /// The log-out button, pressed by a browser holding `session`.
    pub async fn logout(&self, session: &str) -> Answer {
        let req = self.client.post(format!("{}/logout", self.base));
        self.answer(req.header("cookie", format!("session={session}")))
            .await
    }

    /// The app's JSON API with a JWT as the bearer token.
    pub async fn profile(&self, jwt: &str) -> Answer {
        let req = self.client.get(format!("{}/api/profile", self.base));
        self.answer(req.bearer_auth(jwt)).await
    }

    /// A webhook delivery as anyone could post it.
    pub async fn post_hook(&self, headers: &[(&str, String)], body: &str) -> Answer {
        let mut req = self.client.post(format!("{}/hooks/authmail", self.base));
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        self.answer(
            req.header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }
}

impl Drop for Example {
    /// SIGTERM, and wait for it to exit (SIGKILL if it does not within 10 s).
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        // A loop, not `eventually`: a panic here, while a failed test
        // unwinds, would abort the whole test binary.
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
