//! The protocol's stdin and stdout as non-blocking pipes driven by the async runtime.
//!
//! `tokio::io::stdin()` and a `tokio::fs::File` for stdout hand every read and write to a
//! blocking-pool thread, so each response waits for that thread to be scheduled (hundreds
//! of microseconds on a busy machine). When stdin and stdout are pipes (as under an MCP
//! client), [`Pipe`] reads and writes them from the runtime's own threads instead, with
//! readiness from the reactor.
//!
//! The descriptors are reopened through `/proc/self/fd` before `O_NONBLOCK` is set: that
//! gives this process a description of its own, so the flag never reaches other holders
//! of the pipe (children that inherited it, the parent).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// One end of a pipe, non-blocking, registered with the reactor.
pub struct Pipe {
    fd: AsyncFd<OwnedFd>,
}

impl Pipe {
    /// The pipe behind `fd` opened for reading, or `None` when `fd` is not a pipe (a
    /// terminal, a file, a socket) or cannot be reopened. Call inside the runtime.
    pub fn reader(fd: RawFd) -> Option<Pipe> {
        Pipe::reopen(fd, libc::O_RDONLY)
    }

    /// The pipe behind `fd` opened for writing; see [`Pipe::reader`].
    pub fn writer(fd: RawFd) -> Option<Pipe> {
        Pipe::reopen(fd, libc::O_WRONLY)
    }

    fn reopen(fd: RawFd, access: libc::c_int) -> Option<Pipe> {
        if !is_fifo(fd) {
            return None;
        }
        let path = std::ffi::CString::new(format!("/proc/self/fd/{fd}")).ok()?;
        // SAFETY: `open` with a valid C string; a non-negative result is a new descriptor
        // owned by nothing else. `OwnedFd` keeps it open, unchanged, for as long as the
        // `AsyncFd` holds it.
        unsafe {
            let n = libc::open(path.as_ptr(), access | libc::O_NONBLOCK | libc::O_CLOEXEC);
            if n < 0 {
                return None;
            }
            AsyncFd::register(OwnedFd::from_raw_fd(n))
                .ok()
                .map(|fd| Pipe { fd })
        }
    }
}

/// True when `fd` is a FIFO (an anonymous or named pipe).
fn is_fifo(fd: RawFd) -> bool {
    // SAFETY: `fstat` writes into the zeroed struct it is given.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFIFO
    }
}

/// The result of a `read`/`write` call as `io::Result`.
fn check(n: isize) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

impl AsyncRead for Pipe {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let dst = buf.initialize_unfilled();
            // SAFETY: reads at most `dst.len()` bytes into `dst`.
            let r = guard.try_io(|fd| {
                check(unsafe { libc::read(fd.as_raw_fd(), dst.as_mut_ptr().cast(), dst.len()) })
            });
            match r {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => {}
            }
        }
    }
}

impl AsyncWrite for Pipe {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            // SAFETY: writes at most `src.len()` bytes from `src`.
            let r = guard.try_io(|fd| {
                check(unsafe { libc::write(fd.as_raw_fd(), src.as_ptr().cast(), src.len()) })
            });
            match r {
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => {}
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the pipe.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: `pipe` fills both descriptors, owned by the returned values only.
        unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
            (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
        }
    }

    #[tokio::test]
    async fn a_large_write_waits_for_the_reader_and_arrives_whole() {
        let (r, w) = pipe();
        let mut reader = Pipe::reader(r.as_raw_fd()).unwrap();
        let mut writer = Pipe::writer(w.as_raw_fd()).unwrap();
        drop((r, w));
        // More than a pipe buffer holds: the writer must wait for the reader.
        let data: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        let expected = data.clone();
        let send = tokio::spawn(async move {
            writer.write_all(&data).await.unwrap();
            writer.flush().await.unwrap();
        });
        let mut got = Vec::new();
        let reading = reader.read_to_end(&mut got);
        let (n, sent) = tokio::join!(reading, send);
        sent.unwrap();
        assert_eq!(n.unwrap(), expected.len(), "EOF once the writer is dropped");
        assert_eq!(got, expected);
    }

    #[tokio::test]
    async fn the_original_descriptor_stays_blocking_and_files_are_left_alone() {
        let (r, _w) = pipe();
        let _reader = Pipe::reader(r.as_raw_fd()).unwrap();
        // SAFETY: reads the flags of a descriptor owned by this test.
        let flags = unsafe { libc::fcntl(r.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0);
        let file = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
        assert!(Pipe::reader(file.as_raw_fd()).is_none());
    }
}
