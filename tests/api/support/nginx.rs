//! nginx (Debian's package) as a round-robin load balancer in front of
//! several authmail instances, run in the foreground from a temp dir.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::smtp::free_port;
use super::wait::eventually_blocking;

pub struct Nginx {
    pub base: String,
    dir: tempfile::TempDir,
    child: Child,
}

fn binary() -> &'static str {
    if std::path::Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}

impl Nginx {
    pub fn start(upstreams: &[u16]) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let servers: String = upstreams
            .iter()
            .map(|p| format!("server 127.0.0.1:{p};"))
            .collect();
        let d = dir.path().display();
        // The client's X-Forwarded-For is passed on with nginx's own peer
        // appended, as a real edge proxy does.
        let conf = format!(
            "daemon off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log warn;
             events {{ worker_connections 1024; }}
             http {{
               access_log off;
               client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
               fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
               upstream authmail {{ {servers} keepalive 64; }}
               server {{
                 listen 127.0.0.1:{port};
                 location / {{
                   proxy_pass http://authmail;
                   proxy_http_version 1.1;
                   proxy_set_header Connection \"\";
                   proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                 }}
               }}
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
        let nginx = Nginx {
            base: format!("http://127.0.0.1:{port}"),
            dir,
            child,
        };
        eventually_blocking(Duration::from_secs(10), || {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            let log =
                std::fs::read_to_string(nginx.dir.path().join("error.log")).unwrap_or_default();
            Err(format!("nginx did not start: {log}"))
        });
        nginx
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
