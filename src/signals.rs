//! SIGINT and SIGTERM as a channel, for a long-running command that must stop
//! cleanly. The handler only writes a byte to a pipe (all a signal handler may safely
//! do); a thread reads the pipe and sends on the channel.

use crossbeam_channel::Receiver;

/// A receiver that gets `()` on every SIGINT or SIGTERM from now on.
#[cfg(unix)]
pub fn signals() -> Receiver<()> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    use std::sync::atomic::{AtomicI32, Ordering};

    unsafe extern "C" {
        fn pipe(fds: *mut i32) -> i32;
        fn write(fd: i32, buf: *const u8, count: usize) -> isize;
        fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
    }
    const SIGINT: i32 = 2;
    const SIGTERM: i32 = 15;
    static WRITE_END: AtomicI32 = AtomicI32::new(-1);

    extern "C" fn on_signal(_: i32) {
        let fd = WRITE_END.load(Ordering::Relaxed);
        // SAFETY: write(2) is async-signal-safe; the byte is a static.
        unsafe { write(fd, b"s".as_ptr(), 1) };
    }

    let (tx, rx) = crossbeam_channel::unbounded();
    let mut fds = [-1i32; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    if unsafe { pipe(fds.as_mut_ptr()) } != 0 {
        eprintln!("angrav: cannot catch SIGINT/SIGTERM (pipe failed): they stop angrav at once");
        return rx;
    }
    WRITE_END.store(fds[1], Ordering::Relaxed);
    // SAFETY: the read end is ours alone from here on.
    let mut read_end = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    std::thread::Builder::new()
        .name("signals".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut byte = [0u8; 1];
            while matches!(read_end.read(&mut byte), Ok(1)) {
                if tx.send(()).is_err() {
                    return;
                }
            }
        })
        .expect("spawn the signal thread");
    // SAFETY: the handler only calls write(2) on a descriptor that stays open.
    unsafe {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
    }
    rx
}

/// Elsewhere, Ctrl-C ends the process as it always does: nothing to receive.
#[cfg(not(unix))]
pub fn signals() -> Receiver<()> {
    crossbeam_channel::never()
}
