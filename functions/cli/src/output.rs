//! Standard output for the commands that print and end (`say`, `notify`,
//! `commands push`, `init`, the shell's replies).
//!
//! Rust ignores SIGPIPE, so `println!` panics when the reader has gone away
//! (`opkit say … | head -1`), after the command has done its work: a script saw
//! exit status 101 and a backtrace for a push that happened. Everything printed
//! goes through [`write`] instead.

use std::io::{ErrorKind, Write};

/// Prints a line on standard output, as `println!` takes it.
macro_rules! outln {
    () => {
        $crate::output::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Writes `text` to standard output and flushes it. When the reader has gone
/// away (EPIPE), only output nobody reads is lost: the process ends at once with
/// status 0, its work done. Any other write error (a full disk behind `>`) ends
/// it with status 1 and the error on standard error.
pub fn write(text: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(text).and_then(|()| out.flush()) {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("opkit: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}
