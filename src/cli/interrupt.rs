//! ^C during a wait: SIGINT becomes a message on a channel, so the wait's `select!`
//! ends with what it has collected. The signal handler only writes one byte to a
//! socket (async-signal-safe); a thread turns that byte into the message.

use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::Receiver;

static HAPPENED: AtomicBool = AtomicBool::new(false);

/// A ^C came since [`on_interrupt`].
pub(super) fn happened() -> bool {
    HAPPENED.load(Ordering::Relaxed)
}

/// A receiver that gets one `()` at the first ^C from now on. After that first one,
/// SIGINT has its default action again: a second ^C ends angrav at once.
#[cfg(unix)]
pub(super) fn on_interrupt() -> Receiver<()> {
    use std::io::Read;
    use std::os::fd::IntoRawFd;
    use std::os::raw::c_int;
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::AtomicI32;

    const SIGINT: c_int = 2;
    const SIG_DFL: usize = 0;
    static WAKE: AtomicI32 = AtomicI32::new(-1);
    // In the C library std links.
    unsafe extern "C" {
        fn signal(signum: c_int, handler: usize) -> usize;
        fn write(fd: c_int, buf: *const u8, count: usize) -> isize;
    }
    extern "C" fn on_sigint(_: c_int) {
        // SAFETY: write(2) is async-signal-safe; WAKE holds the open socket's fd.
        unsafe { write(WAKE.load(Ordering::Relaxed), b"!".as_ptr(), 1) };
    }

    let (tx, rx) = crossbeam_channel::bounded(1);
    let Ok((mut reader, writer)) = UnixStream::pair() else {
        // Without the socket ^C keeps its default: angrav ends at once.
        return rx;
    };
    // The write end stays open for the life of the process.
    WAKE.store(writer.into_raw_fd(), Ordering::Relaxed);
    // SAFETY: the handler is a plain function that only calls write(2).
    unsafe { signal(SIGINT, on_sigint as extern "C" fn(c_int) as usize) };
    std::thread::spawn(move || {
        if reader.read(&mut [0]).is_ok() {
            // SAFETY: restores the default action; no handler of ours stays behind.
            unsafe { signal(SIGINT, SIG_DFL) };
            HAPPENED.store(true, Ordering::Relaxed);
            let _ = tx.send(());
        }
    });
    rx
}

#[cfg(not(unix))]
pub(super) fn on_interrupt() -> Receiver<()> {
    crossbeam_channel::never()
}
