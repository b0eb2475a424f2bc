//! `ec2 logs <name|id>`: the last lines of an instance's console output, decoded
//! and cleaned.

use std::sync::Arc;

use base64::Engine as _;

use super::{Instance, Pack};
use crate::packs::aws::format::{self, code_block, sdk_error};
use opkit::engine::command::{CommandError, Ctx};
use opkit::slack::Reply;

/// Lines of console output `ec2 logs` shows.
const LOG_LINES: usize = 30;

pub(super) async fn logs(ctx: &mut Ctx<()>, pack: Arc<Pack>) -> Result<Reply, CommandError> {
    if ctx.args.len() != 1 {
        return Err(CommandError::usage("give one instance name or id"));
    }
    let target = ctx.args.word(0, "an instance name or id")?.to_string();
    let found = pack.resolve(&target, false).await?;
    let instance = match found.as_slice() {
        [] => {
            return Err(CommandError::user(crate::packs::aws::format::plain(
                format!(
                    "No instance named or with id `{target}` in {}.",
                    pack.site.label
                ),
            )));
        }
        [one] => one.clone(),
        many => {
            let ids: Vec<String> = many.iter().map(Instance::label).collect();
            return Err(CommandError::user(crate::packs::aws::format::plain(
                format!(
                    "`{target}` matches {} instances in {}; ask for one by id: {}",
                    many.len(),
                    pack.site.label,
                    ids.join(", ")
                ),
            )));
        }
    };
    let out = pack
        .client
        .get_console_output()
        .instance_id(&instance.id)
        .send()
        .await
        .map_err(|e| sdk_error(&e, "EC2", "read the console output", &pack.site.label))?;
    let text = out.output().map(decode_console).unwrap_or_default();
    if text.trim().is_empty() {
        return Ok(format::reply(
            format::plain(format!(
                "No console output from {} in {} yet (EC2 keeps the last 64 KB, updated after boot and shutdown).",
                instance.label(),
                pack.site.label
            )),
            "",
        ));
    }
    let (tail, cut) = last_lines(&text, LOG_LINES);
    let summary = format!(
        "Console output of {} in {}{}:",
        instance.label(),
        pack.site.label,
        if cut {
            format!(", last {LOG_LINES} lines")
        } else {
            String::new()
        }
    );
    Ok(format::reply(format::plain(summary), code_block(&tail)))
}

/// Base64 console output as printable text: control characters and ANSI escape
/// sequences dropped, invalid UTF-8 replaced.
pub fn decode_console(encoded: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .unwrap_or_else(|_| encoded.as_bytes().to_vec());
    let text = String::from_utf8_lossy(&bytes);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI sequences end with a letter; other escapes are one character.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for d in chars.by_ref() {
                        if d.is_ascii_alphabetic() {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\r' => {}
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The last `n` non-empty-at-the-end lines (each cut to 200 characters), and
/// whether any were left out.
pub fn last_lines(text: &str, n: usize) -> (String, bool) {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let start = lines.len().saturating_sub(n);
    let tail: Vec<String> = lines[start..]
        .iter()
        .map(|l| format::clip(l, 200))
        .collect();
    (tail.join("\n"), start > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_output_is_decoded_cleaned_and_tailed() {
        let raw = "boot\r\n\u{1b}[1;32mOK\u{1b}[0m started\n\u{7}bell\n";
        let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
        assert_eq!(decode_console(&encoded), "boot\nOK started\nbell\n");
        let text: String = (1..=40).map(|i| format!("line {i}\n")).collect();
        let (tail, cut) = last_lines(&text, 30);
        assert!(cut);
        assert!(tail.starts_with("line 11\n") && tail.ends_with("line 40"));
        assert_eq!(last_lines("a\nb\n", 30), ("a\nb".to_string(), false));
    }
}
