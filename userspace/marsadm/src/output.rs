//! The output pattern every command follows: a value that renders both as text for people and
//! as JSON for scripts; errors likewise (text on stderr, or a JSON object on stdout).

use std::fmt::Display;
use std::io::{ErrorKind, Write};

use anyhow::Result;
use serde::Serialize;

/// Prints `value` as pretty JSON when `json` is set, else through its `Display` text.
///
/// A reader that goes away early (`marsadm view | head -1`) is not an error: the output simply
/// stops there.
pub fn emit<T: Serialize + Display>(value: &T, json: bool) -> Result<()> {
    let text = if json { format!("{}\n", serde_json::to_string_pretty(value)?) } else { value.to_string() };
    write_stdout(&text)
}

/// Writes `text` to stdout, treating a closed pipe as the reader's choice to stop.
fn write_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// The JSON shape of a failed command.
#[derive(Serialize)]
struct JsonError {
    error: String,
    causes: Vec<String>,
}

/// Prints a failed command's error with its chain of causes.
pub fn print_error(err: &anyhow::Error, json: bool) {
    if json {
        let e = JsonError { error: err.to_string(), causes: err.chain().skip(1).map(ToString::to_string).collect() };
        match serde_json::to_string_pretty(&e) {
            Ok(s) => {
                let _ = write_stdout(&format!("{s}\n"));
            }
            Err(_) => eprintln!("marsadm: {err:#}"),
        }
    } else {
        eprintln!("marsadm: {err:#}");
    }
}
