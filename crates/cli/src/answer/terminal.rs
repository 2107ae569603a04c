//! Terminal answerer: a person types the answers (interfaces §4.2).
//!
//! Prompts go to the writer (stderr in the CLI), answers come from the reader
//! (stdin). Both are generic so the dialogue can be tested with in-memory
//! buffers.
//!
//! Commands recognised on the first line of an answer:
//!
//! - `:cancel` cancels the session ([`TerminalReply::Cancel`]);
//! - `:file PATH` takes the answer from a file (free-text answers only);
//! - `:decline` declines a human question (`ask_status: "declined"`).
//!
//! Free-text answers end with a line containing only `.` or with end of
//! input; end of input before any text cancels (an LLM query: the session; a
//! human question: the question, `ask_status: "cancelled"`).

use std::io::{self, BufRead, Write};

use serde_json::{Map, Number, Value};

/// A person answering queries at a terminal.
pub struct TerminalAnswerer<R: BufRead, W: Write> {
    input: R,
    output: W,
}

/// What the terminal shows of one `alc.llm` query.
#[derive(Debug, Clone, Copy)]
pub struct LlmPrompt<'a> {
    /// The query id (`q-0`, ...).
    pub query_id: &'a str,
    /// The round of the pause.
    pub round: u64,
    /// The `max_tokens` the script asked for.
    pub max_tokens: u32,
    /// The model hint of the query, if any.
    pub model: Option<&'a str>,
    /// The system prompt, if any.
    pub system: Option<&'a str>,
    /// The prompt text.
    pub prompt: &'a str,
}

/// What the terminal shows of one `alc.ask` question (interfaces §1.2).
#[derive(Debug, Clone, Copy)]
pub struct HumanPrompt<'a> {
    /// The query id.
    pub query_id: &'a str,
    /// The round of the pause.
    pub round: u64,
    /// The question text.
    pub question: &'a str,
    /// The allowed answers; empty when the question has none.
    pub choices: &'a [String],
    /// A JSON Schema of an object (`properties`, `required`, `enum`), if any.
    pub schema: Option<&'a Value>,
    /// The default the script receives when the question is closed, if any.
    pub default: Option<&'a Value>,
    /// When the question expires, Unix milliseconds.
    pub expires_at: Option<i64>,
}

/// The outcome of asking at the terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TerminalReply {
    /// The answer. For a `schema` question, the object as compact JSON text.
    Text(String),
    /// A human question closed without an answer: `"declined"` (`:decline`)
    /// or `"cancelled"` (end of input before any text).
    AskStatus(String),
    /// The user typed `:cancel` (or, for an LLM query, input ended before any
    /// text): the session is to be cancelled.
    Cancel,
}

/// One free-text block read from the input.
enum Block {
    Text(String),
    /// End of input before any text.
    Eof,
    Cancel,
    Decline,
}

/// One command typed on its own line, or an ordinary line.
enum Command {
    Cancel,
    Decline,
    None,
}

fn command(line: &str, human: bool) -> Command {
    match line.trim() {
        ":cancel" => Command::Cancel,
        ":decline" if human => Command::Decline,
        _ => Command::None,
    }
}

const DECLINED: &str = "declined";
const CANCELLED: &str = "cancelled";

impl<R: BufRead, W: Write> TerminalAnswerer<R, W> {
    /// Creates an answerer reading answers from `input` and writing prompts
    /// to `output`.
    pub fn new(input: R, output: W) -> Self {
        TerminalAnswerer { input, output }
    }

    /// Returns the reader and the writer.
    #[allow(dead_code)] // used by the tests; the CLI keeps the answerer
    pub fn into_inner(self) -> (R, W) {
        (self.input, self.output)
    }

    /// Shows one LLM query (header with query id, round, `max_tokens` and
    /// model hint, then the system prompt and the prompt) and reads the
    /// answer: lines up to one containing only `.` or end of input, joined
    /// with `"\n"`. `:cancel` as the first line, or end of input before any
    /// text, gives [`TerminalReply::Cancel`]; `:file PATH` as the first line
    /// answers with the file's content as is (an unreadable file is reported
    /// and the answer asked again).
    pub fn ask_llm(&mut self, p: &LlmPrompt) -> io::Result<TerminalReply> {
        let out = &mut self.output;
        writeln!(out)?;
        writeln!(
            out,
            "=== llm {} | round {} | max_tokens {} | model hint: {} ===",
            p.query_id,
            p.round,
            p.max_tokens,
            p.model.unwrap_or("(none)")
        )?;
        if let Some(system) = p.system {
            writeln!(out, "--- system ---")?;
            writeln!(out, "{system}")?;
        }
        writeln!(out, "--- prompt ---")?;
        writeln!(out, "{}", p.prompt)?;
        writeln!(
            out,
            "--- answer: end with a line containing only \".\" (or end of input); \
             :cancel cancels the session, :file PATH answers with a file ---"
        )?;
        out.flush()?;
        Ok(match self.read_block(false)? {
            Block::Text(t) => TerminalReply::Text(t),
            Block::Eof | Block::Cancel | Block::Decline => TerminalReply::Cancel,
        })
    }

    /// Shows one human question (a `human` header, the question, the default
    /// and expiry when present) and reads the answer:
    ///
    /// - with `choices`: the numbered choices; a choice is typed by its exact
    ///   text or its number; anything else is explained and asked again;
    /// - with a `schema` that has `properties`: each property in turn (type,
    ///   description, required or optional, allowed values); an empty line
    ///   skips an optional property; values are converted to the declared
    ///   type (`integer`, `number`, `boolean` from yes/no/true/false,
    ///   `string`, or JSON for `array`/`object`) and checked against `enum`;
    ///   an invalid value is explained and asked again. The reply is the
    ///   object as compact JSON text. A schema without properties asks for a
    ///   JSON object on one line;
    /// - otherwise free text, read like [`Self::ask_llm`] (`:file` included).
    ///
    /// At any prompt `:decline` gives `AskStatus("declined")`, `:cancel`
    /// gives [`TerminalReply::Cancel`], and end of input before a complete
    /// answer gives `AskStatus("cancelled")`.
    pub fn ask_human(&mut self, p: &HumanPrompt) -> io::Result<TerminalReply> {
        let out = &mut self.output;
        writeln!(out)?;
        writeln!(out, "=== human {} | round {} ===", p.query_id, p.round)?;
        writeln!(out, "{}", p.question)?;
        if let Some(default) = p.default {
            writeln!(out, "default (if declined or cancelled): {default}")?;
        }
        if let Some(at) = p.expires_at {
            writeln!(out, "expires at {}", format_utc_ms(at))?;
        }
        let properties = p
            .schema
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object);
        if !p.choices.is_empty() {
            self.ask_choice(p.choices)
        } else if let Some(props) = properties.filter(|m| !m.is_empty()) {
            let required = p.schema.map(required_names).unwrap_or_default();
            self.ask_schema(props, &required)
        } else if p.schema.is_some() {
            self.ask_json_object()
        } else {
            writeln!(
                self.output,
                "--- answer: end with a line containing only \".\" (or end of input); \
                 :decline declines, :cancel cancels the session ---"
            )?;
            self.output.flush()?;
            Ok(match self.read_block(true)? {
                Block::Text(t) => TerminalReply::Text(t),
                Block::Eof => TerminalReply::AskStatus(CANCELLED.into()),
                Block::Decline => TerminalReply::AskStatus(DECLINED.into()),
                Block::Cancel => TerminalReply::Cancel,
            })
        }
    }

    fn ask_choice(&mut self, choices: &[String]) -> io::Result<TerminalReply> {
        writeln!(self.output, "choices:")?;
        for (i, c) in choices.iter().enumerate() {
            writeln!(self.output, "  {}) {c}", i + 1)?;
        }
        writeln!(
            self.output,
            "--- type a number or the text of a choice; :decline declines, \
             :cancel cancels the session ---"
        )?;
        loop {
            write!(self.output, "> ")?;
            self.output.flush()?;
            let Some(line) = self.read_line()? else {
                return Ok(TerminalReply::AskStatus(CANCELLED.into()));
            };
            match command(&line, true) {
                Command::Cancel => return Ok(TerminalReply::Cancel),
                Command::Decline => return Ok(TerminalReply::AskStatus(DECLINED.into())),
                Command::None => {}
            }
            if let Some(c) = choices.iter().find(|c| **c == line) {
                return Ok(TerminalReply::Text(c.clone()));
            }
            let t = line.trim();
            if let Some(c) = choices.iter().find(|c| c.as_str() == t) {
                return Ok(TerminalReply::Text(c.clone()));
            }
            if let Ok(n) = t.parse::<usize>() {
                if (1..=choices.len()).contains(&n) {
                    return Ok(TerminalReply::Text(choices[n - 1].clone()));
                }
            }
            writeln!(
                self.output,
                "invalid choice {t:?}: type a number from 1 to {} or the text of a choice",
                choices.len()
            )?;
        }
    }

    fn ask_schema(
        &mut self,
        props: &Map<String, Value>,
        required: &[String],
    ) -> io::Result<TerminalReply> {
        writeln!(
            self.output,
            "--- answer property by property; an empty line skips an optional property; \
             :decline declines, :cancel cancels the session ---"
        )?;
        let mut object = Map::new();
        for (name, prop) in props {
            let ty = declared_type(prop);
            let is_required = required.iter().any(|r| r == name);
            let allowed = prop.get("enum").and_then(Value::as_array);
            write!(
                self.output,
                "{name} ({}, {})",
                ty.unwrap_or("any"),
                if is_required { "required" } else { "optional" }
            )?;
            if let Some(desc) = prop.get("description").and_then(Value::as_str) {
                write!(self.output, ": {desc}")?;
            }
            writeln!(self.output)?;
            if let Some(values) = allowed {
                writeln!(self.output, "  one of: {}", join_values(values))?;
            }
            loop {
                write!(self.output, "{name}> ")?;
                self.output.flush()?;
                let Some(line) = self.read_line()? else {
                    return Ok(TerminalReply::AskStatus(CANCELLED.into()));
                };
                match command(&line, true) {
                    Command::Cancel => return Ok(TerminalReply::Cancel),
                    Command::Decline => return Ok(TerminalReply::AskStatus(DECLINED.into())),
                    Command::None => {}
                }
                let t = line.trim();
                if t.is_empty() {
                    if is_required {
                        writeln!(self.output, "{name} is required: type a value")?;
                        continue;
                    }
                    break;
                }
                let value = match convert(ty, t) {
                    Ok(v) => v,
                    Err(why) => {
                        writeln!(self.output, "invalid value for {name}: {why}")?;
                        continue;
                    }
                };
                if let Some(values) = allowed {
                    if !values.iter().any(|a| json_eq(a, &value)) {
                        writeln!(
                            self.output,
                            "invalid value for {name}: must be one of {}",
                            join_values(values)
                        )?;
                        continue;
                    }
                }
                object.insert(name.clone(), value);
                break;
            }
        }
        Ok(TerminalReply::Text(Value::Object(object).to_string()))
    }

    fn ask_json_object(&mut self) -> io::Result<TerminalReply> {
        writeln!(
            self.output,
            "--- type a JSON object on one line; :decline declines, \
             :cancel cancels the session ---"
        )?;
        loop {
            write!(self.output, "> ")?;
            self.output.flush()?;
            let Some(line) = self.read_line()? else {
                return Ok(TerminalReply::AskStatus(CANCELLED.into()));
            };
            match command(&line, true) {
                Command::Cancel => return Ok(TerminalReply::Cancel),
                Command::Decline => return Ok(TerminalReply::AskStatus(DECLINED.into())),
                Command::None => {}
            }
            match serde_json::from_str::<Value>(line.trim()) {
                Ok(v @ Value::Object(_)) => return Ok(TerminalReply::Text(v.to_string())),
                _ => writeln!(self.output, "invalid answer: expected a JSON object")?,
            }
        }
    }

    /// Reads one line without its line ending; `None` at end of input.
    fn read_line(&mut self) -> io::Result<Option<String>> {
        let mut buf = String::new();
        if self.input.read_line(&mut buf)? == 0 {
            return Ok(None);
        }
        if buf.ends_with('\n') {
            buf.pop();
            if buf.ends_with('\r') {
                buf.pop();
            }
        }
        Ok(Some(buf))
    }

    /// Reads a free-text answer (see the module documentation).
    fn read_block(&mut self, human: bool) -> io::Result<Block> {
        loop {
            let Some(first) = self.read_line()? else {
                return Ok(Block::Eof);
            };
            match command(&first, human) {
                Command::Cancel => return Ok(Block::Cancel),
                Command::Decline => return Ok(Block::Decline),
                Command::None => {}
            }
            if let Some(path) = first.trim().strip_prefix(":file") {
                let path = path.trim();
                if path.is_empty() {
                    writeln!(self.output, "usage: :file PATH; type the answer again")?;
                    self.output.flush()?;
                    continue;
                }
                match std::fs::read_to_string(path) {
                    Ok(content) => return Ok(Block::Text(content)),
                    Err(e) => {
                        writeln!(
                            self.output,
                            "cannot read {path}: {e}; type the answer again"
                        )?;
                        self.output.flush()?;
                        continue;
                    }
                }
            }
            let mut lines = Vec::new();
            let mut line = Some(first);
            while let Some(l) = line {
                if l.trim() == "." {
                    return Ok(Block::Text(lines.join("\n")));
                }
                lines.push(l);
                line = self.read_line()?;
            }
            // End of input.
            let text = lines.join("\n");
            return Ok(if text.trim().is_empty() {
                Block::Eof
            } else {
                Block::Text(text)
            });
        }
    }
}

/// The names listed in the schema's `required` array.
fn required_names(schema: &Value) -> Vec<String> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The declared `type` of a property (the first non-`null` one of a list).
fn declared_type(prop: &Value) -> Option<&str> {
    match prop.get("type")? {
        Value::String(s) => Some(s),
        Value::Array(a) => a.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    }
}

fn join_values(values: &[Value]) -> String {
    values
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// JSON equality where numbers compare by value (`3` equals `3.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Converts a typed value to the declared JSON type.
fn convert(ty: Option<&str>, t: &str) -> Result<Value, String> {
    match ty {
        Some("integer") => {
            if let Ok(i) = t.parse::<i64>() {
                Ok(Value::from(i))
            } else if let Ok(u) = t.parse::<u64>() {
                Ok(Value::from(u))
            } else {
                Err(format!(
                    "expected an integer (a number without fraction), got {t:?}"
                ))
            }
        }
        Some("number") => {
            if let Ok(i) = t.parse::<i64>() {
                return Ok(Value::from(i));
            }
            t.parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("expected a number, got {t:?}"))
        }
        Some("boolean") => match t.to_ascii_lowercase().as_str() {
            "yes" | "y" | "true" => Ok(Value::Bool(true)),
            "no" | "n" | "false" => Ok(Value::Bool(false)),
            _ => Err(format!("expected yes or no (true or false), got {t:?}")),
        },
        Some("string") => Ok(Value::String(t.to_string())),
        Some(kind @ ("array" | "object" | "null")) => {
            let v: Value = serde_json::from_str(t)
                .map_err(|_| format!("expected JSON of type {kind}, got {t:?}"))?;
            let ok = match kind {
                "array" => v.is_array(),
                "object" => v.is_object(),
                _ => v.is_null(),
            };
            if ok {
                Ok(v)
            } else {
                Err(format!("expected JSON of type {kind}, got {t:?}"))
            }
        }
        // No (or an unknown) type: JSON when it parses, else the text.
        _ => Ok(serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.to_string()))),
    }
}

/// Formats Unix milliseconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn format_utc_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Cursor;

    type Term = TerminalAnswerer<Cursor<Vec<u8>>, Vec<u8>>;

    fn term(input: &str) -> Term {
        TerminalAnswerer::new(Cursor::new(input.as_bytes().to_vec()), Vec::new())
    }

    fn output(t: Term) -> String {
        String::from_utf8(t.into_inner().1).unwrap()
    }

    fn llm_prompt() -> LlmPrompt<'static> {
        LlmPrompt {
            query_id: "q-1",
            round: 3,
            max_tokens: 512,
            model: Some("small"),
            system: Some("You are terse."),
            prompt: "Name a colour.",
        }
    }

    fn question<'a>(choices: &'a [String], schema: Option<&'a Value>) -> HumanPrompt<'a> {
        HumanPrompt {
            query_id: "q-0",
            round: 1,
            question: "Which one?",
            choices,
            schema,
            default: None,
            expires_at: None,
        }
    }

    fn text(s: &str) -> TerminalReply {
        TerminalReply::Text(s.into())
    }

    fn status(s: &str) -> TerminalReply {
        TerminalReply::AskStatus(s.into())
    }

    #[test]
    fn llm_header_shows_query_details() {
        let mut t = term("red\n.\n");
        assert_eq!(t.ask_llm(&llm_prompt()).unwrap(), text("red"));
        let out = output(t);
        for needle in [
            "q-1",
            "round 3",
            "max_tokens 512",
            "small",
            "You are terse.",
            "Name a colour.",
        ] {
            assert!(out.contains(needle), "missing {needle:?} in {out}");
        }
    }

    #[test]
    fn llm_multi_line_answer_ends_at_dot_line() {
        let mut t = term("line one\n\nline three\r\n.\nsecond answer\n .\n");
        assert_eq!(
            t.ask_llm(&llm_prompt()).unwrap(),
            text("line one\n\nline three")
        );
        assert_eq!(t.ask_llm(&llm_prompt()).unwrap(), text("second answer"));
        assert_eq!(t.ask_llm(&llm_prompt()).unwrap(), TerminalReply::Cancel);
    }

    #[test]
    fn llm_dot_alone_is_an_empty_answer() {
        let mut t = term(".\n");
        assert_eq!(t.ask_llm(&llm_prompt()).unwrap(), text(""));
    }

    #[test]
    fn llm_end_of_input_ends_the_answer() {
        let mut t = term("a\nb");
        assert_eq!(t.ask_llm(&llm_prompt()).unwrap(), text("a\nb"));
    }

    #[test]
    fn llm_end_of_input_without_text_cancels() {
        assert_eq!(
            term("").ask_llm(&llm_prompt()).unwrap(),
            TerminalReply::Cancel
        );
        assert_eq!(
            term("\n  \n").ask_llm(&llm_prompt()).unwrap(),
            TerminalReply::Cancel
        );
    }

    #[test]
    fn llm_cancel_only_as_first_line() {
        assert_eq!(
            term(":cancel\n").ask_llm(&llm_prompt()).unwrap(),
            TerminalReply::Cancel
        );
        assert_eq!(
            term("text\n:cancel\n.\n").ask_llm(&llm_prompt()).unwrap(),
            text("text\n:cancel")
        );
        // :decline means nothing for an LLM query.
        assert_eq!(
            term(":decline\n.\n").ask_llm(&llm_prompt()).unwrap(),
            text(":decline")
        );
    }

    #[test]
    fn llm_file_answer_and_unreadable_file() {
        let path =
            std::env::temp_dir().join(format!("alc-terminal-test-{}.txt", std::process::id()));
        std::fs::write(&path, "from a file\nsecond line\n").unwrap();
        let mut t = term(&format!(":file {}\n", path.display()));
        assert_eq!(
            t.ask_llm(&llm_prompt()).unwrap(),
            text("from a file\nsecond line\n")
        );
        std::fs::remove_file(&path).unwrap();

        let mut t = term(&format!(":file {}\ntyped instead\n.\n", path.display()));
        assert_eq!(t.ask_llm(&llm_prompt()).unwrap(), text("typed instead"));
        assert!(output(t).contains("cannot read"));
    }

    #[test]
    fn human_header_shows_default_and_expiry() {
        let default = json!("blue");
        let mut p = question(&[], None);
        p.default = Some(&default);
        p.expires_at = Some(1_767_225_600_000 + 3_723_000);
        let mut t = term("green\n.\n");
        assert_eq!(t.ask_human(&p).unwrap(), text("green"));
        let out = output(t);
        assert!(out.contains("human q-0"), "{out}");
        assert!(out.contains("Which one?"), "{out}");
        assert!(out.contains("\"blue\""), "{out}");
        assert!(out.contains("2026-01-01 01:02:03 UTC"), "{out}");
    }

    #[test]
    fn human_free_text() {
        let p = question(&[], None);
        assert_eq!(term("a\nb\n.\n").ask_human(&p).unwrap(), text("a\nb"));
        assert_eq!(term("until eof").ask_human(&p).unwrap(), text("until eof"));
        assert_eq!(
            term(":decline\n").ask_human(&p).unwrap(),
            status("declined")
        );
        assert_eq!(term("").ask_human(&p).unwrap(), status("cancelled"));
        assert_eq!(
            term(":cancel\n").ask_human(&p).unwrap(),
            TerminalReply::Cancel
        );
    }

    #[test]
    fn human_choice_by_number_or_text() {
        let choices = vec!["red".to_string(), "green".to_string(), "3".to_string()];
        let p = question(&choices, None);
        assert_eq!(term("2\n").ask_human(&p).unwrap(), text("green"));
        assert_eq!(term("red\n").ask_human(&p).unwrap(), text("red"));
        assert_eq!(term("  red \n").ask_human(&p).unwrap(), text("red"));
        // Exact text wins over a number.
        assert_eq!(term("3\n").ask_human(&p).unwrap(), text("3"));
        let mut t = term("1\n");
        t.ask_human(&p).unwrap();
        let out = output(t);
        assert!(out.contains("1) red") && out.contains("2) green"), "{out}");
    }

    #[test]
    fn human_invalid_choice_is_explained_and_asked_again() {
        let choices = vec!["red".to_string(), "green".to_string()];
        let p = question(&choices, None);
        let mut t = term("purple\n9\n0\n\n1\n");
        assert_eq!(t.ask_human(&p).unwrap(), text("red"));
        let out = output(t);
        assert_eq!(out.matches("invalid choice").count(), 4, "{out}");
        assert!(out.contains("\"purple\""), "{out}");
    }

    #[test]
    fn human_choice_decline_cancel_and_eof() {
        let choices = vec!["a".to_string()];
        let p = question(&choices, None);
        assert_eq!(
            term(":decline\n").ask_human(&p).unwrap(),
            status("declined")
        );
        assert_eq!(term("").ask_human(&p).unwrap(), status("cancelled"));
        assert_eq!(term("zzz\n").ask_human(&p).unwrap(), status("cancelled"));
        assert_eq!(
            term(":cancel\n").ask_human(&p).unwrap(),
            TerminalReply::Cancel
        );
    }

    fn form_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "age": {"type": "integer", "description": "Age in years"},
                "colour": {"type": "string", "enum": ["red", "green"]},
                "happy": {"type": "boolean"},
                "note": {"type": "string", "description": "Anything else"},
                "score": {"type": "number"}
            },
            "required": ["age", "colour", "happy"]
        })
    }

    fn answer_object(reply: TerminalReply) -> Value {
        match reply {
            TerminalReply::Text(s) => serde_json::from_str(&s).unwrap(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[test]
    fn human_schema_asks_each_property_and_converts() {
        let schema = form_schema();
        let p = question(&[], Some(&schema));
        // Properties are asked in the schema map's order; collect the answers
        // by property name so the test does not depend on that order.
        let answers = [
            ("age", "42"),
            ("colour", "green"),
            ("happy", "yes"),
            ("note", "hello there"),
            ("score", "2.5"),
        ];
        let props = schema["properties"].as_object().unwrap();
        let input: String = props
            .keys()
            .map(|k| format!("{}\n", answers.iter().find(|(n, _)| n == k).unwrap().1))
            .collect();
        let mut t = term(&input);
        let reply = t.ask_human(&p).unwrap();
        if let TerminalReply::Text(s) = &reply {
            let compact = serde_json::from_str::<Value>(s).unwrap().to_string();
            assert_eq!(s, &compact, "not compact JSON");
        }
        assert_eq!(
            answer_object(reply),
            json!({"age": 42, "colour": "green", "happy": true, "note": "hello there", "score": 2.5})
        );
        let out = output(t);
        assert!(
            out.contains("age (integer, required): Age in years"),
            "{out}"
        );
        assert!(
            out.contains("note (string, optional): Anything else"),
            "{out}"
        );
        assert!(out.contains("one of: red, green"), "{out}");
    }

    #[test]
    fn human_schema_invalid_values_are_asked_again_and_optional_skipped() {
        let schema = json!({
            "properties": {
                "a_count": {"type": "integer"},
                "b_flag": {"type": "boolean"},
                "c_pick": {"type": "string", "enum": ["x", "y"]},
                "d_opt": {"type": "number"},
                "e_req": {"type": "string"}
            },
            "required": ["a_count", "b_flag", "c_pick", "e_req"]
        });
        // Keys sort alphabetically without serde_json's preserve_order and
        // keep this order with it: both give a..e.
        let input = "1.5\nabc\n7\nmaybe\nNo\nz\ny\n\n\nvalue\n";
        let p = question(&[], Some(&schema));
        let mut t = term(input);
        let reply = t.ask_human(&p).unwrap();
        assert_eq!(
            answer_object(reply),
            json!({"a_count": 7, "b_flag": false, "c_pick": "y", "e_req": "value"})
        );
        let out = output(t);
        assert_eq!(out.matches("invalid value for a_count").count(), 2, "{out}");
        assert!(out.contains("invalid value for b_flag"), "{out}");
        assert!(
            out.contains("invalid value for c_pick: must be one of x, y"),
            "{out}"
        );
        assert!(out.contains("e_req is required"), "{out}");
    }

    #[test]
    fn human_schema_decline_cancel_and_eof() {
        let schema = form_schema();
        let p = question(&[], Some(&schema));
        assert_eq!(
            term(":decline\n").ask_human(&p).unwrap(),
            status("declined")
        );
        assert_eq!(term("").ask_human(&p).unwrap(), status("cancelled"));
        assert_eq!(term("42\n").ask_human(&p).unwrap(), status("cancelled"));
        assert_eq!(
            term("42\n:cancel\n").ask_human(&p).unwrap(),
            TerminalReply::Cancel
        );
        assert_eq!(
            term("42\n:decline\n").ask_human(&p).unwrap(),
            status("declined")
        );
    }

    #[test]
    fn human_schema_without_properties_takes_a_json_object() {
        let schema = json!({"type": "object"});
        let p = question(&[], Some(&schema));
        let mut t = term("[1]\n{\"k\": [1, 2]}\n");
        assert_eq!(t.ask_human(&p).unwrap(), text(r#"{"k":[1,2]}"#));
        assert!(output(t).contains("expected a JSON object"));
    }

    #[test]
    fn conversions() {
        assert_eq!(convert(Some("integer"), "-3"), Ok(json!(-3)));
        assert!(convert(Some("integer"), "3.0").is_err());
        assert_eq!(convert(Some("number"), "3"), Ok(json!(3)));
        assert_eq!(convert(Some("number"), "-0.25"), Ok(json!(-0.25)));
        assert!(convert(Some("number"), "NaN").is_err());
        assert_eq!(convert(Some("boolean"), "TRUE"), Ok(json!(true)));
        assert_eq!(convert(Some("boolean"), "n"), Ok(json!(false)));
        assert_eq!(convert(Some("array"), "[1]"), Ok(json!([1])));
        assert!(convert(Some("array"), "{}").is_err());
        assert_eq!(convert(None, "12"), Ok(json!(12)));
        assert_eq!(convert(None, "plain"), Ok(json!("plain")));
        assert!(json_eq(&json!(3), &json!(3.0)));
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc_ms(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc_ms(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_utc_ms(-1000), "1969-12-31 23:59:59 UTC");
    }
}
