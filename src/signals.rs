//! SIGINT (^C) and SIGTERM as a channel: a command that must finish cleanly selects on
//! [`signals`] next to its other channels (a wait prints what it collected, a dispatch
//! stops handing out prompts, `serve` closes its clients). The handler only writes a
//! byte to a socket (`write` is async-signal-safe); a thread blocked reading the other
//! end turns each byte into a message.

use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::Receiver;

static HAPPENED: AtomicBool = AtomicBool::new(false);

/// A signal came since [`signals`] was first called.
pub fn happened() -> bool {
    HAPPENED.load(Ordering::Relaxed)
}

/// One message per SIGINT or SIGTERM from now on; they no longer end the process by
/// themselves. The first call installs the handler; later calls share its receiver.
#[cfg(unix)]
pub fn signals() -> Receiver<()> {
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
    extern "C" fn on_signal(_: i32) {
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
            // No socket, no handler: the signals end the process as they always do.
            return crossbeam_channel::never();
        };
        let (tx, rx) = crossbeam_channel::unbounded();
        WAKE.store(write.into_raw_fd(), Ordering::Relaxed);
        std::thread::Builder::new()
            .name("signals".into())
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
            .expect("spawn the signal thread");
        // SAFETY: the handler only loads an atomic and calls write(2).
        unsafe {
            signal(SIGINT, on_signal);
            signal(SIGTERM, on_signal);
        }
        rx
    })
    .clone()
}

/// Elsewhere, the signals end the process as they always do: nothing to receive.
#[cfg(not(unix))]
pub fn signals() -> Receiver<()> {
    crossbeam_channel::never()
}

pub const SIGTERM: i32 = 15;
pub const SIGKILL: i32 = 9;

/// Sends `signal` to the process group `group` (a child started in a group of its
/// own: its pid).
#[cfg(unix)]
pub fn signal_group(group: u32, signal: i32) {
    unsafe extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    if let Ok(pid) = i32::try_from(group)
        && pid > 1
    {
        // SAFETY: kill(2) with a negative pid signals that group; no memory involved.
        unsafe { kill(-pid, signal) };
    }
}

#[cfg(not(unix))]
pub fn signal_group(_group: u32, _signal: i32) {}
