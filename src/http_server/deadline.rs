//! The header and idle deadlines of one connection, kept by its socket.
//!
//! A connection is waiting (for the first byte of a request: idle, 60 s),
//! reading a request head (`HTTP_TIMEOUT_SECS` from its first byte, or from
//! the accept for a new connection), or busy (the service has the request;
//! the body deadline is the guard's). Reads are where a slow client shows, so
//! the socket wrapper checks the deadline on every read and sleeps on it
//! while a read waits, which wakes hyper when it passes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How long a connection may take: to send a request head (from its first
/// byte, or from the accept), and to start its next request when idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub head: Duration,
    pub idle: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle(Instant),
    Head(Instant),
    /// `read`: bytes came in meanwhile (a pipelined next request).
    Busy {
        read: bool,
    },
}

/// What a read found: go on, or the deadline passed.
#[derive(Debug, PartialEq, Eq)]
enum Check {
    NoDeadline,
    Until(Instant),
    IdleOver,
    HeadOver,
}

/// Shared by the socket wrapper and the service of one connection.
pub struct Phase {
    timeouts: Timeouts,
    state: Mutex<State>,
    /// The task of the last read that waited. Once the answer is out hyper
    /// waits on the socket alone (it starts no read of its own), so it must
    /// be woken to read again, which arms the idle deadline.
    reader: Mutex<Option<Waker>>,
}

impl Phase {
    /// A new connection must send its first request head within `head`.
    pub fn new(timeouts: Timeouts) -> Self {
        Self {
            timeouts,
            state: Mutex::new(State::Head(Instant::now() + timeouts.head)),
            reader: Mutex::new(None),
        }
    }

    /// The service took a request; the phase is idle again when the guard drops.
    pub fn request_started(self: &Arc<Self>) -> Busy {
        *self.lock() = State::Busy { read: false };
        Busy(Arc::clone(self))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Option<Waker>> {
        self.reader.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn after_read(&self, got_bytes: bool, now: Instant) -> Check {
        let mut state = self.lock();
        match *state {
            State::Busy { ref mut read } => {
                *read |= got_bytes;
                Check::NoDeadline
            }
            State::Idle(_) if got_bytes => {
                let until = now + self.timeouts.head;
                *state = State::Head(until);
                Check::Until(until)
            }
            State::Idle(until) if now >= until => Check::IdleOver,
            State::Head(until) if now >= until => Check::HeadOver,
            State::Idle(until) | State::Head(until) => Check::Until(until),
        }
    }

    fn request_finished(&self, now: Instant) {
        {
            let mut state = self.lock();
            *state = match *state {
                // Part of the next request is already in: its clock runs now.
                State::Busy { read: true } => State::Head(now + self.timeouts.head),
                _ => State::Idle(now + self.timeouts.idle),
            };
        }
        if let Some(reader) = self.reader().take() {
            reader.wake();
        }
    }
}

/// Marks the connection busy while a request is being served.
pub struct Busy(Arc<Phase>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.request_finished(Instant::now());
    }
}

/// A socket that fails reads past the connection's deadline.
pub struct Deadlines<S> {
    io: S,
    phase: Arc<Phase>,
    sleep: Pin<Box<Sleep>>,
}

impl<S> Deadlines<S> {
    pub fn new(io: S, phase: Arc<Phase>) -> Self {
        // Reset to the phase's deadline before every wait.
        let sleep = Box::pin(tokio::time::sleep(phase.timeouts.head));
        Self { io, phase, sleep }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deadlines<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.io).poll_read(cx, buf);
        let got_bytes = matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before;
        if read.is_pending() {
            let mut reader = self.phase.reader();
            if !reader.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *reader = Some(cx.waker().clone());
            }
        }
        match self.phase.after_read(got_bytes, Instant::now()) {
            Check::NoDeadline => read,
            // The client stayed silent: an ordinary keep-alive close (EOF).
            Check::IdleOver => Poll::Ready(Ok(())),
            Check::HeadOver => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the request head was not sent in time",
            ))),
            Check::Until(until) if read.is_pending() => {
                if self.sleep.deadline() != until {
                    self.sleep.as_mut().reset(until);
                }
                // Polled so that the deadline itself wakes the connection.
                match self.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
            Check::Until(_) => read,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadlines<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const TIMEOUT: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);
    const TIMEOUTS: Timeouts = Timeouts {
        head: TIMEOUT,
        idle: IDLE,
    };

    #[tokio::test(start_paused = true)]
    async fn a_silent_new_connection_times_out_after_the_header_timeout() {
        let (client, server) = tokio::io::duplex(1024);
        let phase = Arc::new(Phase::new(TIMEOUTS));
        let mut io = Deadlines::new(server, phase);
        let started = Instant::now();
        let err = io.read(&mut [0u8; 16]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), TIMEOUT);
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_keep_alive_closes_after_60_s_and_a_new_head_gets_the_header_timeout() {
        let (mut client, server) = tokio::io::duplex(1024);
        let phase = Arc::new(Phase::new(TIMEOUTS));
        let mut io = Deadlines::new(server, Arc::clone(&phase));
        drop(phase.request_started()); // one request served: idle from now
        let started = Instant::now();
        assert_eq!(
            io.read(&mut [0u8; 16]).await.unwrap(),
            0,
            "EOF when idle ends"
        );
        assert_eq!(started.elapsed(), IDLE);

        // A head that starts while idle has TIMEOUT from its first byte.
        let phase = Arc::new(Phase::new(TIMEOUTS));
        let (mut client2, server) = tokio::io::duplex(1024);
        let mut io = Deadlines::new(server, Arc::clone(&phase));
        drop(phase.request_started());
        tokio::time::advance(Duration::from_secs(50)).await;
        client2.write_all(b"GET / HT").await.unwrap();
        assert_eq!(io.read(&mut [0u8; 16]).await.unwrap(), 8);
        let head_started = Instant::now();
        let err = io.read(&mut [0u8; 16]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(head_started.elapsed(), TIMEOUT);
        client.shutdown().await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_that_waited_while_busy_meets_the_idle_deadline() {
        let (_client, server) = tokio::io::duplex(1024);
        let phase = Arc::new(Phase::new(TIMEOUTS));
        let mut io = Deadlines::new(server, Arc::clone(&phase));
        let busy = phase.request_started();
        let reader = tokio::spawn(async move { io.read(&mut [0u8; 16]).await });
        tokio::task::yield_now().await; // the read starts, and waits, while busy
        drop(busy);
        let idle_from = Instant::now();
        let read = tokio::time::timeout(IDLE * 2, reader).await;
        assert_eq!(read.expect("woken").unwrap().unwrap(), 0);
        assert_eq!(idle_from.elapsed(), IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_connection_has_no_read_deadline() {
        let (mut client, server) = tokio::io::duplex(1024);
        let phase = Arc::new(Phase::new(TIMEOUTS));
        let mut io = Deadlines::new(server, Arc::clone(&phase));
        let busy = phase.request_started();
        tokio::time::advance(IDLE * 5).await;
        client.write_all(b"x").await.unwrap();
        assert_eq!(io.read(&mut [0u8; 16]).await.unwrap(), 1);
        drop(busy);
        // Bytes of the next request came in while busy: its head clock runs.
        assert!(matches!(*phase.lock(), State::Head(_)));
    }
}
