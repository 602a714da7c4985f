//! What the installer tells its user: plain lines as it goes (the human form), or one JSON
//! object at the end (`--json`), with the same facts.

use serde_json::{Value, json};

pub struct Report {
    json: bool,
    command: &'static str,
    lines: Vec<String>,
    units: Vec<Value>,
    extra: serde_json::Map<String, Value>,
}

impl Report {
    pub fn new(command: &'static str, json: bool) -> Report {
        Report {
            json,
            command,
            lines: Vec::new(),
            units: Vec::new(),
            extra: serde_json::Map::new(),
        }
    }

    /// One line for the reader; printed at once in the human form (restarts take seconds).
    pub fn say(&mut self, line: impl Into<String>) {
        let line = line.into();
        if !self.json {
            crate::output::line(&line);
        }
        self.lines.push(line);
    }

    /// Several lines, each indented.
    pub fn block(&mut self, indent: &str, text: &str) {
        for l in text.lines() {
            self.say(format!("{indent}{l}"));
        }
    }

    pub fn unit(&mut self, value: Value) {
        self.units.push(value);
    }

    pub fn set(&mut self, key: &str, value: Value) {
        self.extra.insert(key.to_string(), value);
    }

    /// The error, on stderr in the human form.
    pub fn error(&mut self, message: &str) {
        if !self.json {
            crate::log::error(message);
        }
        self.extra.insert("error".into(), json!(message));
    }

    /// Runs a command's steps with a report of its own: a failure is reported as the error,
    /// and its exit code is the command's.
    pub fn run(
        command: &'static str,
        json: bool,
        steps: impl FnOnce(&mut Report) -> Result<i32, crate::error::Failure>,
    ) -> i32 {
        let mut report = Report::new(command, json);
        let code = steps(&mut report).unwrap_or_else(|failure| {
            report.error(&failure.message);
            failure.code
        });
        report.finish(code)
    }

    /// Prints the JSON object (if asked for) and returns the exit code.
    pub fn finish(self, code: i32) -> i32 {
        if self.json {
            let mut out = json!({
                "command": self.command,
                "exit_code": code,
                "units": self.units,
                "messages": self.lines,
            });
            if let Value::Object(map) = &mut out {
                map.extend(self.extra);
            }
            crate::output::line(&format!("{out:#}"));
        }
        code
    }
}
