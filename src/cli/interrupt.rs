//! Ctrl-C as a channel: a command that must finish cleanly on SIGINT selects on
//! [`interrupts`] next to its other channels.
//!
//! The handler only writes a byte to a socket (`write` is async-signal-safe); a
//! thread blocked reading the other end turns each byte into a message.

use std::io::Read;
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};

use crossbeam_channel::Receiver;

const SIGINT: i32 = 2;

unsafe extern "C" {
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    fn write(fd: i32, buf: *const u8, count: usize) -> isize;
}

/// The socket end the handler writes to.
static WAKE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_interrupt(_: i32) {
    let fd = WAKE.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: writing one byte from a valid buffer to a descriptor this module
        // owns for the life of the process.
        unsafe { write(fd, [1u8].as_ptr(), 1) };
    }
}

/// One message per SIGINT from now on; SIGINT no longer ends the process. The first
/// call installs the handler; later calls share its receiver.
pub fn interrupts() -> Receiver<()> {
    static RX: OnceLock<Receiver<()>> = OnceLock::new();
    RX.get_or_init(|| {
        let Ok((mut read, write)) = UnixStream::pair() else {
            // No socket, no handler: Ctrl-C ends the process as it always does.
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
                    if tx.send(()).is_err() {
                        return;
                    }
                }
            })
            .expect("spawn the interrupt thread");
        // SAFETY: the handler only loads an atomic and calls write(2).
        unsafe { signal(SIGINT, on_interrupt) };
        rx
    })
    .clone()
}
