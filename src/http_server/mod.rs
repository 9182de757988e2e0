//! Serving HTTP connections ourselves instead of through `axum::serve`, which
//! has no header, body or idle timeout and no connection limit: a slowloris
//! client could hold sockets and memory for as long as it liked.
//!
//! Per connection: hyper's HTTP/1 server with a bounded read buffer, the
//! header and idle deadlines of [`deadline`], and the request guard of
//! [`guard`] (header size, early 413, body deadline). Across connections: at
//! most `HTTP_MAX_CONNECTIONS` at once, the rest wait in the listen queue.

mod deadline;
mod guard;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

use crate::config::HttpSettings;
use deadline::{Deadlines, Phase, Timeouts};

/// hyper's read buffer bound. A request head that does not fit is answered
/// by hyper itself (431, no body) and the connection closed, so no client can
/// make a connection hold more than this. It leaves room above the 16 KiB
/// header limit so that heads between the two get the contract's JSON 431.
const MAX_BUF: usize = 32 * 1024;

/// How long an accept error (EMFILE, ENFILE, ENOBUFS) pauses the listener:
/// the failing connection stays queued, so retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// One listener and the router it serves.
pub struct Listener {
    pub listener: TcpListener,
    pub router: Router,
}

/// Serves the main listener (and the metrics one, when set) until `shutdown`
/// resolves; then stops accepting, lets the requests in flight finish, and
/// returns.
pub async fn serve(
    main: Listener,
    metrics: Option<Listener>,
    settings: &HttpSettings,
    shutdown: impl Future<Output = ()>,
) {
    raise_open_files_limit(settings.max_connections);
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let graceful = GracefulShutdown::new();
    let (stop_tx, stop) = watch::channel(false);
    let timeouts = Timeouts {
        head: settings.timeout,
        idle: settings.idle,
    };
    let run = |l: Listener| {
        let router = guard::wrap(l.router, settings.timeout);
        let slots = Arc::clone(&slots);
        accept_loop(l.listener, router, timeouts, slots, &graceful, stop.clone())
    };
    {
        let main = run(main);
        let metrics = metrics.map(run);
        let both = async {
            match metrics {
                Some(metrics) => tokio::join!(main, metrics).0,
                None => main.await,
            }
        };
        tokio::pin!(both);
        tokio::select! {
            _ = &mut both => {}
            _ = shutdown => {
                let _ = stop_tx.send(true);
                both.await;
            }
        }
    }
    // Idle connections close now; the busy ones once their answer is out.
    graceful.shutdown().await;
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    timeouts: Timeouts,
    slots: Arc<Semaphore>,
    graceful: &GracefulShutdown,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        // A free slot first: past the limit, new connections wait in the
        // kernel's listen queue instead of costing us memory.
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = stop.wait_for(|s| *s) => return,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors must not end the server: the open
                // connections finish and free some.
                tracing::warn!(error = %e, "cannot accept a connection; pausing briefly");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let conn = graceful.watch(connection(stream, peer, router.clone(), timeouts));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
}

/// One client connection: HTTP/1.1 only (the router is built for it), with
/// the peer address where axum's `ConnectInfo` extractor looks for it.
fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    timeouts: Timeouts,
) -> http1::Connection<
    TokioIo<Deadlines<TcpStream>>,
    impl hyper::service::HttpService<Incoming, ResBody = axum::body::Body, Future: Send>,
> {
    let _ = stream.set_nodelay(true);
    let phase = Arc::new(Phase::new(timeouts));
    let io = TokioIo::new(Deadlines::new(stream, Arc::clone(&phase)));
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let busy = phase.request_started();
        let router = router.clone();
        async move {
            let response = router.oneshot(req.map(axum::body::Body::new)).await;
            drop(busy);
            response
        }
    });
    http1::Builder::new()
        .max_buf_size(MAX_BUF)
        // hyper's own header timer starts whenever it waits for a request
        // head, idle keep-alive included, so one timer cannot give 10 s for
        // headers and 60 s for idle; `Deadlines` keeps both.
        .header_read_timeout(None)
        .serve_connection(io, service)
}

/// Lifts the soft open-files limit to the hard one (as Go's runtime does), so
/// the usual default of 1024 does not starve the listener long before
/// `HTTP_MAX_CONNECTIONS`; warns when even the hard limit is below it.
fn raise_open_files_limit(max_connections: usize) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read or write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    // Some descriptors go to the database, SMTP and the log.
    const HEADROOM: libc::rlim_t = 64;
    if limit.rlim_cur < max_connections as libc::rlim_t + HEADROOM {
        tracing::warn!(
            open_files = limit.rlim_cur,
            "HTTP_MAX_CONNECTIONS is {max_connections} but the process may open only {} files; \
             raise the limit (ulimit -n, LimitNOFILE=) or lower HTTP_MAX_CONNECTIONS",
            limit.rlim_cur
        );
    }
}
