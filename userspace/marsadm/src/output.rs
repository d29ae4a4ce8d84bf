//! The output pattern every command follows: a value that renders both as text for people and
//! as JSON for scripts; errors likewise (text on stderr, or a JSON object on stdout).

use std::fmt::Display;

use anyhow::Result;
use serde::Serialize;

/// Prints `value` as pretty JSON when `json` is set, else through its `Display` text.
pub fn emit<T: Serialize + Display>(value: &T, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{value}");
    }
    Ok(())
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
        let e = JsonError {
            error: err.to_string(),
            causes: err.chain().skip(1).map(ToString::to_string).collect(),
        };
        match serde_json::to_string_pretty(&e) {
            Ok(s) => println!("{s}"),
            Err(_) => eprintln!("marsadm: {err:#}"),
        }
    } else {
        eprintln!("marsadm: {err:#}");
    }
}
