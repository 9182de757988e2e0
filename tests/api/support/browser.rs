//! A browser without JavaScript, for the pages over plain HTTP: a cookie jar,
//! no redirect following, forms posted as a browser posts them.

use std::collections::BTreeMap;

use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};

use super::app::TestApp;

/// A browser without JavaScript: a cookie jar, no redirect following.
pub struct Browser {
    base: String,
    client: reqwest::Client,
    pub jar: BTreeMap<String, String>,
}

pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .map_or("", |v| v.to_str().unwrap())
    }

    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with(&format!("{name}=")))
    }

    pub fn html_lang(&self) -> &str {
        let start = self.body.find("<html lang=\"").expect("an html page") + 12;
        let end = self.body[start..].find('"').unwrap();
        &self.body[start..start + end]
    }

    /// Attribute `name` of the element with `id`, as a browser reads it
    /// (the HTML escapes undone).
    pub fn attr(&self, id: &str, name: &str) -> String {
        let at = self
            .body
            .find(&format!(" id=\"{id}\""))
            .unwrap_or_else(|| panic!("no element #{id}: {}", self.body));
        let open = self.body[..at].rfind('<').unwrap();
        let close = at + self.body[at..].find('>').unwrap();
        let tag = &self.body[open..close];
        let marker = format!(" {name}=\"");
        let start = tag
            .find(&marker)
            .unwrap_or_else(|| panic!("#{id} has no {name}: {tag}"))
            + marker.len();
        let end = start + tag[start..].find('"').unwrap();
        unescape(&tag[start..end])
    }

    /// The value of the first hidden `csrf` field.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.body.find(marker).expect("a form with a CSRF token") + marker.len();
        self.body[start..start + 64].to_string()
    }
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        Browser {
            base: app.base.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: BTreeMap::new(),
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let req = if cookies.is_empty() {
            req
        } else {
            req.header(COOKIE, cookies.join("; "))
        };
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        for c in headers.get_all(SET_COOKIE) {
            let pair = c.to_str().unwrap().split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() {
                self.jar.remove(k);
            } else {
                self.jar.insert(k.to_string(), v.to_string());
            }
        }
        let body = resp.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Page {
        let mut req = self.client.get(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    pub async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let form = "application/x-www-form-urlencoded";
        self.post_raw(path, Some(form), body, headers).await
    }

    /// A post with any body and content type (or none), as a script or a
    /// broken client might send it.
    pub async fn post_raw(
        &mut self,
        path: &str,
        content_type: Option<&str>,
        body: String,
        headers: &[(&str, &str)],
    ) -> Page {
        let mut req = self.client.post(format!("{}{path}", self.base)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }
}

impl Browser {
    pub async fn login(
        &mut self,
        csrf: &str,
        email: &str,
        password: &str,
        headers: &[(&str, &str)],
    ) -> Page {
        let form = [("csrf", csrf), ("email", email), ("password", password)];
        self.post("/login", &form, headers).await
    }

    /// Step 2 of signing in with a code.
    pub async fn login_code(&mut self, csrf: &str, email: &str, code: &str) -> Page {
        let form = [
            ("csrf", csrf),
            ("mode", "code"),
            ("email", email),
            ("code", code),
            ("sent_at", "0"),
        ];
        self.post("/login", &form, &[]).await
    }

    /// Step 1 of a code flow (`sent_at` non-empty: the resend button of step 2).
    pub async fn send_code(&mut self, path: &str, csrf: &str, email: &str, sent_at: &str) -> Page {
        // `mode` matters only on /login, where it picks the code form.
        let form = [
            ("csrf", csrf),
            ("mode", "code"),
            ("action", "send"),
            ("email", email),
            ("sent_at", sent_at),
        ];
        self.post(path, &form, &[]).await
    }
}

pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What minijinja's HTML escaping writes, undone.
fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
