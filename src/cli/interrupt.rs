//! ^C as a channel: a command that must finish cleanly on SIGINT selects on
//! [`interrupts`] next to its other channels (a wait prints what it collected, a
//! dispatch stops handing out prompts).
//!
//! The handler only writes a byte to a socket (`write` is async-signal-safe); a
//! thread blocked reading the other end turns each byte into a message.

use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::Receiver;

static HAPPENED: AtomicBool = AtomicBool::new(false);

/// A ^C came since [`interrupts`] was first called.
pub(super) fn happened() -> bool {
    HAPPENED.load(Ordering::Relaxed)
}

/// One message per SIGINT from now on; SIGINT no longer ends the process by itself.
/// The first call installs the handler; later calls share its receiver.
#[cfg(unix)]
pub(super) fn interrupts() -> Receiver<()> {
    use std::io::Read;
    use std::os::fd::IntoRawFd;
    use std::os::unix::net::UnixStream;
    use std::sync::OnceLock;
    use std::sync::atomic::AtomicI32;

    const SIGINT: i32 = 2;
    // In the C library std links.
    unsafe extern "C" {
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
        fn write(fd: i32, buf: *const u8, count: usize) -> isize;
    }
    /// The socket end the handler writes to.
    static WAKE: AtomicI32 = AtomicI32::new(-1);
    extern "C" fn on_sigint(_: i32) {
        let fd = WAKE.load(Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: one byte from a valid buffer to a descriptor this module owns
            // for the life of the process; write(2) is async-signal-safe.
            unsafe { write(fd, [1u8].as_ptr(), 1) };
        }
    }

    static RX: OnceLock<Receiver<()>> = OnceLock::new();
    RX.get_or_init(|| {
        let Ok((mut read, write)) = UnixStream::pair() else {
            // No socket, no handler: ^C ends the process as it always does.
            return crossbeam_channel::never();
        };
        let (tx, rx) = crossbeam_channel::unbounded();
        WAKE.store(write.into_raw_fd(), Ordering::Relaxed);
        std::thread::Builder::new()
            .name("interrupts".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let mut byte = [0u8; 1];
                while matches!(read.read(&mut byte), Ok(1)) {
                    HAPPENED.store(true, Ordering::Relaxed);
                    if tx.send(()).is_err() {
                        return;
                    }
                }
            })
            .expect("spawn the interrupt thread");
        // SAFETY: the handler only loads an atomic and calls write(2).
        unsafe { signal(SIGINT, on_sigint) };
        rx
    })
    .clone()
}

#[cfg(not(unix))]
pub(super) fn interrupts() -> Receiver<()> {
    crossbeam_channel::never()
}
