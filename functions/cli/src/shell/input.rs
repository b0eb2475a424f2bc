//! Where the shell's lines come from: a line editor with history on a terminal
//! (rustyline), plain lines from a pipe or a file otherwise.
//!
//! Either way a line that is not UTF-8 is reported and skipped, never the end of
//! the session.

use std::io::BufRead;
use std::path::PathBuf;

use rustyline::error::ReadlineError;
use rustyline::{Config, DefaultEditor};

/// Lines kept in the history file.
const HISTORY_MAX: usize = 1_000;

/// Errors from the terminal in a row before the shell gives up (a terminal that
/// went away fails every read).
const ERRORS_MAX: u32 = 10;

/// One read.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// A line, without its line ending.
    Line(String),
    /// A line that is not UTF-8: skipped.
    NotUtf8,
    /// Ctrl-C on a terminal: the line is dropped.
    Interrupted,
    /// End of input (Ctrl-D, or the pipe closed).
    Eof,
}

/// The shell's input.
pub enum Input {
    /// A terminal: line editing, and history kept in `history`.
    Terminal {
        /// The editor.
        editor: Box<DefaultEditor>,
        /// The history file, if it can be written.
        history: Option<PathBuf>,
    },
    /// A pipe or a file: one line at a time.
    Lines(Box<dyn BufRead + Send>),
}

impl Input {
    /// A line editor whose history lives in `history` (read now, written after
    /// each line).
    pub fn terminal(history: Option<PathBuf>) -> Result<Self, String> {
        let config = Config::builder()
            .max_history_size(HISTORY_MAX)
            .map_err(|e| e.to_string())?
            .auto_add_history(false)
            .build();
        let mut editor = DefaultEditor::with_config(config).map_err(|e| e.to_string())?;
        if let Some(path) = &history
            && path.exists()
            && let Err(e) = editor.load_history(path)
        {
            eprintln!(
                "(the shell history {} could not be read: {e})",
                path.display()
            );
        }
        Ok(Input::Terminal {
            editor: Box::new(editor),
            history,
        })
    }

    /// Lines from `reader`.
    pub fn lines(reader: impl BufRead + Send + 'static) -> Self {
        Input::Lines(Box::new(reader))
    }

    /// Reads one line, showing `prompt` on a terminal.
    pub fn read(&mut self, prompt: &str) -> Result<Read, String> {
        match self {
            Input::Lines(reader) => read_line(reader.as_mut()),
            Input::Terminal { editor, .. } => {
                let mut errors = 0;
                loop {
                    match editor.readline(prompt) {
                        Ok(line) => return Ok(Read::Line(line)),
                        Err(ReadlineError::Eof) => return Ok(Read::Eof),
                        Err(ReadlineError::Interrupted) => return Ok(Read::Interrupted),
                        Err(ReadlineError::Io(e))
                            if e.kind() == std::io::ErrorKind::InvalidData =>
                        {
                            return Ok(Read::NotUtf8);
                        }
                        Err(e) => {
                            errors += 1;
                            if errors >= ERRORS_MAX {
                                return Err(format!("the terminal cannot be read: {e}"));
                            }
                        }
                    }
                }
            }
        }
    }

    /// Remembers a command in the history (a terminal's only).
    pub fn remember(&mut self, line: &str) {
        if let Input::Terminal { editor, history } = self {
            let _ = editor.add_history_entry(line);
            if let Some(path) = history
                && let Err(e) = editor.save_history(path)
            {
                eprintln!(
                    "(the shell history {} could not be written: {e})",
                    path.display()
                );
                *history = None;
            }
        }
    }

    /// Whether a person is typing (prompts are shown by the editor).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Input::Terminal { .. })
    }
}

/// One line from a pipe: bytes up to `\n`, checked for UTF-8 here so that a bad
/// line costs only itself.
fn read_line(reader: &mut dyn BufRead) -> Result<Read, String> {
    let mut bytes = Vec::new();
    let n = reader
        .read_until(b'\n', &mut bytes)
        .map_err(|e| format!("standard input cannot be read: {e}"))?;
    if n == 0 {
        return Ok(Read::Eof);
    }
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    Ok(String::from_utf8(bytes).map_or(Read::NotUtf8, Read::Line))
}

/// Prints `text` and flushes (a question that waits for its answer on the same line).
pub fn ask(text: &str) {
    crate::output::write(format_args!("{text}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_that_is_not_utf8_is_skipped_and_the_next_one_read() {
        let mut input = Input::lines(&b"whoami\n\xff\xfe oops\r\nhelp\nlast"[..]);
        assert_eq!(input.read("").unwrap(), Read::Line("whoami".into()));
        assert_eq!(input.read("").unwrap(), Read::NotUtf8);
        assert_eq!(input.read("").unwrap(), Read::Line("help".into()));
        assert_eq!(input.read("").unwrap(), Read::Line("last".into()));
        assert_eq!(input.read("").unwrap(), Read::Eof);
        assert!(!input.is_terminal());
    }
}
