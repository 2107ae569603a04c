//! Scripted answerer: answers `alc.llm` queries and `alc.ask` questions from
//! rules in a JSONL file (interfaces §1.1).
//!
//! Each non-blank line is one JSON object. A line is one of:
//!
//! - a **matcher rule**: it has at least one of `match` (substring of the
//!   prompt), `regex` (regular expression searched in the prompt), `prompt`
//!   (whole-text equality) or `system_match` (substring of the system prompt);
//!   every matcher given must hold. It fires at most `times` times (default:
//!   unlimited).
//! - a **sequential line**: no matcher, only `response` (or `ask_status`).
//!   Sequential lines are consumed in file order, each once (or `times` times
//!   when given).
//! - a **default line**: `{"default": "text"}`, used when nothing else applies.
//!
//! `kind` (`"llm"`, the default, or `"human"`) restricts a line to `alc.llm`
//! queries or to `alc.ask` questions; a query only ever sees the lines of its
//! kind. `usage` (`{prompt_tokens, completion_tokens}`) is reported with the
//! answer. `ask_status` (`"declined"` or `"cancelled"`) replaces `response` on
//! human lines. In a response, `{{prompt}}`, `{{query_id}}` and `{{n}}` are
//! substituted (`n` is the 1-based number of the answer among those this
//! answerer gave, counting the current one).

use std::fmt;
use std::path::Path;

use regex::Regex;
use serde_json::{Map, Value};

/// Which kind of question is being answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    /// An `alc.llm` query, answered as a model would.
    Llm,
    /// An `alc.ask` question meant for a person.
    Human,
}

/// What the scripted answerer sees of one query.
#[derive(Debug, Clone, Copy)]
pub struct ScriptedQuery<'a> {
    /// Whether this is an `alc.llm` query or an `alc.ask` question.
    pub kind: QueryKind,
    /// The query id (`q-0`, `f-1-2`, ...), substituted for `{{query_id}}`.
    pub query_id: &'a str,
    /// The prompt of an LLM query, or the question text of a human question.
    pub prompt: &'a str,
    /// The system prompt of an LLM query, if any (`None` for human questions).
    pub system: Option<&'a str>,
}

/// The scripted answer to one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptedReply {
    /// The answer text, with placeholders substituted.
    Text {
        /// The answer (for a human `schema` question, compact JSON text when
        /// the line gave an object).
        text: String,
        /// `(prompt_tokens, completion_tokens)` when the line gave `usage`.
        usage: Option<(u64, u64)>,
    },
    /// A human question closed without an answer: `"declined"` or `"cancelled"`.
    AskStatus(String),
    /// No line applies. `message` starts with `"scripted_no_match: "`, names
    /// the query id and shows the first 80 characters of the prompt.
    NoMatch {
        /// Human-readable explanation, suitable as a Lua error message.
        message: String,
    },
}

/// A load error of a scripted answers file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    line: Option<usize>,
    message: String,
}

impl ScriptError {
    fn at(line: usize, message: impl Into<String>) -> Self {
        ScriptError {
            line: Some(line),
            message: format!("line {line}: {}", message.into()),
        }
    }

    /// The 1-based line number the error is about, when it is about a line.
    /// (The [`Display`](fmt::Display) text already names it.)
    #[allow(dead_code)] // the CLI may only print the error
    pub fn line(&self) -> Option<usize> {
        self.line
    }
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ScriptError {}

/// A condition on the prompt text.
#[derive(Debug)]
enum PromptMatcher {
    Substring(String),
    Regex(Regex),
    Exact(String),
}

impl PromptMatcher {
    fn matches(&self, prompt: &str) -> bool {
        match self {
            PromptMatcher::Substring(s) => prompt.contains(s.as_str()),
            PromptMatcher::Regex(re) => re.is_match(prompt),
            PromptMatcher::Exact(s) => prompt == s,
        }
    }
}

/// What a line answers with.
#[derive(Debug)]
enum Action {
    Response {
        text: String,
        usage: Option<(u64, u64)>,
    },
    AskStatus(String),
}

#[derive(Debug)]
enum RuleClass {
    Matcher,
    Sequential,
    Default,
}

#[derive(Debug)]
struct Rule {
    kind: QueryKind,
    class: RuleClass,
    matchers: Vec<PromptMatcher>,
    system_match: Option<String>,
    action: Action,
    /// `None` = unlimited.
    times: Option<u64>,
    used: u64,
}

impl Rule {
    fn has_uses_left(&self) -> bool {
        self.times.is_none_or(|t| self.used < t)
    }

    fn matches(&self, q: &ScriptedQuery) -> bool {
        if !self.matchers.iter().all(|m| m.matches(q.prompt)) {
            return false;
        }
        match &self.system_match {
            None => true,
            Some(s) => q.system.is_some_and(|sys| sys.contains(s.as_str())),
        }
    }
}

/// Answers queries from the rules of a scripted answers file (interfaces §1.1).
#[derive(Debug)]
pub struct ScriptedAnswerer {
    rules: Vec<Rule>,
    answers_given: u64,
}

const KNOWN_KEYS: &[&str] = &[
    "response",
    "match",
    "regex",
    "prompt",
    "system_match",
    "times",
    "usage",
    "default",
    "kind",
    "ask_status",
];

impl ScriptedAnswerer {
    /// Parses JSONL text; errors name the 1-based line number
    /// (`"line 3: expected a JSON object"` etc.). Blank lines are ignored.
    ///
    /// Rejected lines: invalid JSON, non-objects, an unknown key (catches
    /// typos such as `respone`), an unknown `kind`, a line
    /// without `response` (except `default` lines and human lines giving
    /// `ask_status`), a bad `regex`, a `times` that is not a positive
    /// integer, an `ask_status` other than `declined`/`cancelled` or on a
    /// non-human line, matcher values that are not strings, a malformed
    /// `usage`, and `default` combined with matchers, `response` or `times`.
    pub fn parse(text: &str) -> Result<Self, ScriptError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rules = Vec::new();
        for (idx, raw) in text.lines().enumerate() {
            let line_no = idx + 1;
            if raw.trim().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(raw)
                .map_err(|e| ScriptError::at(line_no, format!("invalid JSON: {e}")))?;
            let Value::Object(obj) = value else {
                return Err(ScriptError::at(line_no, "expected a JSON object"));
            };
            rules.push(parse_rule(line_no, &obj)?);
        }
        Ok(ScriptedAnswerer {
            rules,
            answers_given: 0,
        })
    }

    /// Reads and parses a scripted answers file; every error names the path.
    pub fn from_file(path: &Path) -> Result<Self, ScriptError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScriptError {
            line: None,
            message: format!("{}: cannot read scripted answers: {e}", path.display()),
        })?;
        Self::parse(&text).map_err(|e| ScriptError {
            line: e.line,
            message: format!("{}: {}", path.display(), e.message),
        })
    }

    /// True when at least one line has kind `"human"` (the session then has a
    /// human channel, interfaces §1.2).
    pub fn has_human_rules(&self) -> bool {
        self.rules.iter().any(|r| r.kind == QueryKind::Human)
    }

    /// Answers one query, among the lines of its kind only: matcher rules in
    /// file order (the first that matches and has uses left), then the next
    /// unused sequential line, then the `default` line (the first one of the
    /// kind). Placeholders `{{prompt}}`, `{{query_id}}` and `{{n}}` are
    /// substituted in the response. When nothing applies the reply is
    /// [`ScriptedReply::NoMatch`] and no state changes.
    /// Answers one pending engine query: the reply as an `Answer` for that query id
    /// (text with the rule's usage as `provided`, an `ask_status`, or the
    /// `scripted_no_match` error), with `meta.answerer = "scripted"`.
    pub fn answer_pending(&mut self, q: &alc_core::PendingQuery) -> alc_core::Answer {
        use alc_core::{Answer, AskStatus, QueryRequest, TokenSource, TokenUsage};
        let (kind, prompt, system) = match &q.request {
            QueryRequest::Llm { query } => (
                QueryKind::Llm,
                query.prompt.as_str(),
                query.system.as_deref(),
            ),
            QueryRequest::Human { question } => {
                (QueryKind::Human, question.question.as_str(), None)
            }
        };
        let reply = self.answer(&ScriptedQuery {
            kind,
            query_id: q.id.as_str(),
            prompt,
            system,
        });
        let id = Some(q.id.clone());
        let mut a = match reply {
            ScriptedReply::Text { text, usage } => {
                let mut a = Answer::text(id, text);
                a.usage = usage.map(|(p, c)| TokenUsage {
                    prompt_tokens: Some(p),
                    completion_tokens: Some(c),
                    cached_tokens: None,
                    reasoning_tokens: None,
                    source: TokenSource::Provided,
                });
                a
            }
            ScriptedReply::AskStatus(st) if st == "declined" => {
                Answer::ask_status(id, AskStatus::Declined)
            }
            ScriptedReply::AskStatus(_) => Answer::ask_status(id, AskStatus::Cancelled),
            ScriptedReply::NoMatch { message } => Answer::error(id, "scripted_no_match", message),
        };
        a.meta.answerer = Some("scripted".into());
        a
    }

    /// Answers one query described by plain text (see [`ScriptedQuery`]).
    pub fn answer(&mut self, q: &ScriptedQuery) -> ScriptedReply {
        let kind = q.kind;
        let of_kind = |r: &Rule| r.kind == kind;
        let chosen = self
            .rules
            .iter()
            .position(|r| {
                of_kind(r)
                    && matches!(r.class, RuleClass::Matcher)
                    && r.has_uses_left()
                    && r.matches(q)
            })
            .or_else(|| {
                self.rules.iter().position(|r| {
                    of_kind(r) && matches!(r.class, RuleClass::Sequential) && r.has_uses_left()
                })
            })
            .or_else(|| {
                self.rules
                    .iter()
                    .position(|r| of_kind(r) && matches!(r.class, RuleClass::Default))
            });
        let Some(idx) = chosen else {
            return ScriptedReply::NoMatch {
                message: no_match_message(q),
            };
        };
        self.answers_given += 1;
        let rule = &mut self.rules[idx];
        rule.used += 1;
        match &rule.action {
            Action::Response { text, usage } => ScriptedReply::Text {
                text: substitute(text, q, self.answers_given),
                usage: *usage,
            },
            Action::AskStatus(s) => ScriptedReply::AskStatus(s.clone()),
        }
    }
}

fn no_match_message(q: &ScriptedQuery) -> String {
    let mut preview: String = q.prompt.chars().take(80).collect();
    if q.prompt.chars().nth(80).is_some() {
        preview.push('…');
    }
    let what = match q.kind {
        QueryKind::Llm => "alc.llm query",
        QueryKind::Human => "alc.ask question",
    };
    format!(
        "scripted_no_match: no scripted answer for {what} {} (prompt: {preview:?})",
        q.query_id
    )
}

/// Replaces `{{prompt}}`, `{{query_id}}` and `{{n}}` in one pass, so text
/// inserted by a placeholder is never substituted again.
fn substitute(template: &str, q: &ScriptedQuery, n: u64) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(pos) = rest.find("{{") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(r) = after.strip_prefix("{{prompt}}") {
            out.push_str(q.prompt);
            rest = r;
        } else if let Some(r) = after.strip_prefix("{{query_id}}") {
            out.push_str(q.query_id);
            rest = r;
        } else if let Some(r) = after.strip_prefix("{{n}}") {
            out.push_str(&n.to_string());
            rest = r;
        } else {
            out.push_str("{{");
            rest = &after[2..];
        }
    }
    out.push_str(rest);
    out
}

fn string_field(
    line: usize,
    obj: &Map<String, Value>,
    key: &str,
) -> Result<Option<String>, ScriptError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ScriptError::at(line, format!("`{key}` must be a string"))),
    }
}

/// The answer text of `response`/`default`: a string, or for human lines any
/// JSON value (an object answers a `schema` question), sent as compact JSON.
fn answer_text(
    line: usize,
    key: &str,
    value: &Value,
    kind: QueryKind,
) -> Result<String, ScriptError> {
    match (value, kind) {
        (Value::String(s), _) => Ok(s.clone()),
        (Value::Null, _) => Err(ScriptError::at(line, format!("`{key}` must not be null"))),
        (other, QueryKind::Human) => Ok(other.to_string()),
        (_, QueryKind::Llm) => Err(ScriptError::at(line, format!("`{key}` must be a string"))),
    }
}

fn parse_usage(line: usize, value: &Value) -> Result<(u64, u64), ScriptError> {
    let Value::Object(u) = value else {
        return Err(ScriptError::at(
            line,
            "`usage` must be an object {prompt_tokens, completion_tokens}",
        ));
    };
    let field = |name: &str| -> Result<u64, ScriptError> {
        match u.get(name) {
            None => Ok(0),
            Some(v) => v.as_u64().ok_or_else(|| {
                ScriptError::at(
                    line,
                    format!("`usage.{name}` must be a non-negative integer"),
                )
            }),
        }
    };
    Ok((field("prompt_tokens")?, field("completion_tokens")?))
}

fn parse_rule(line: usize, obj: &Map<String, Value>) -> Result<Rule, ScriptError> {
    if let Some(unknown) = obj.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
        return Err(ScriptError::at(
            line,
            format!(
                "unknown key `{unknown}` (expected one of: {})",
                KNOWN_KEYS.join(", ")
            ),
        ));
    }

    let kind = match obj.get("kind") {
        None => QueryKind::Llm,
        Some(Value::String(s)) if s == "llm" => QueryKind::Llm,
        Some(Value::String(s)) if s == "human" => QueryKind::Human,
        Some(other) => {
            return Err(ScriptError::at(
                line,
                format!("unknown kind {other} (expected \"llm\" or \"human\")"),
            ))
        }
    };

    let mut matchers = Vec::new();
    if let Some(s) = string_field(line, obj, "match")? {
        matchers.push(PromptMatcher::Substring(s));
    }
    if let Some(s) = string_field(line, obj, "regex")? {
        let re =
            Regex::new(&s).map_err(|e| ScriptError::at(line, format!("bad regex {s:?}: {e}")))?;
        matchers.push(PromptMatcher::Regex(re));
    }
    if let Some(s) = string_field(line, obj, "prompt")? {
        matchers.push(PromptMatcher::Exact(s));
    }
    let system_match = string_field(line, obj, "system_match")?;

    let times = match obj.get("times") {
        None => None,
        Some(v) => match v.as_u64() {
            Some(t) if t > 0 => Some(t),
            _ => {
                return Err(ScriptError::at(
                    line,
                    format!("`times` must be a positive integer, got {v}"),
                ))
            }
        },
    };

    let usage = obj.get("usage").map(|v| parse_usage(line, v)).transpose()?;

    let ask_status = match obj.get("ask_status") {
        None => None,
        Some(v) => {
            if kind != QueryKind::Human {
                return Err(ScriptError::at(
                    line,
                    "`ask_status` is only allowed on lines with \"kind\": \"human\"",
                ));
            }
            match v.as_str() {
                Some(s @ ("declined" | "cancelled")) => Some(s.to_string()),
                _ => {
                    return Err(ScriptError::at(
                        line,
                        format!("`ask_status` must be \"declined\" or \"cancelled\", got {v}"),
                    ))
                }
            }
        }
    };

    let has_matcher = !matchers.is_empty() || system_match.is_some();

    if let Some(default) = obj.get("default") {
        if has_matcher || obj.contains_key("response") || ask_status.is_some() || times.is_some() {
            return Err(ScriptError::at(
                line,
                "a `default` line takes only `default`, `kind` and `usage`",
            ));
        }
        let text = answer_text(line, "default", default, kind)?;
        return Ok(Rule {
            kind,
            class: RuleClass::Default,
            matchers,
            system_match,
            action: Action::Response { text, usage },
            times: None,
            used: 0,
        });
    }

    let action = match (obj.get("response"), ask_status) {
        (Some(_), Some(_)) => {
            return Err(ScriptError::at(
                line,
                "a line gives either `response` or `ask_status`, not both",
            ))
        }
        (Some(r), None) => Action::Response {
            text: answer_text(line, "response", r, kind)?,
            usage,
        },
        (None, Some(status)) => {
            if usage.is_some() {
                return Err(ScriptError::at(
                    line,
                    "`usage` makes no sense with `ask_status`",
                ));
            }
            Action::AskStatus(status)
        }
        (None, None) => {
            let hint = if kind == QueryKind::Human {
                "missing `response` (or `ask_status`)"
            } else {
                "missing `response`"
            };
            return Err(ScriptError::at(line, hint));
        }
    };

    Ok(Rule {
        kind,
        class: if has_matcher {
            RuleClass::Matcher
        } else {
            RuleClass::Sequential
        },
        matchers,
        system_match,
        action,
        times: if has_matcher {
            times
        } else {
            Some(times.unwrap_or(1))
        },
        used: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn llm<'a>(id: &'a str, prompt: &'a str) -> ScriptedQuery<'a> {
        ScriptedQuery {
            kind: QueryKind::Llm,
            query_id: id,
            prompt,
            system: None,
        }
    }

    fn human<'a>(id: &'a str, question: &'a str) -> ScriptedQuery<'a> {
        ScriptedQuery {
            kind: QueryKind::Human,
            query_id: id,
            prompt: question,
            system: None,
        }
    }

    fn text(r: ScriptedReply) -> String {
        match r {
            ScriptedReply::Text { text, .. } => text,
            other => panic!("expected text, got {other:?}"),
        }
    }

    fn parse_err(src: &str) -> ScriptError {
        ScriptedAnswerer::parse(src).expect_err("expected a parse error")
    }

    #[test]
    fn matcher_rules_come_before_sequential_and_default() {
        let mut a = ScriptedAnswerer::parse(concat!(
            "{\"response\": \"seq1\"}\n",
            "{\"default\": \"dflt\"}\n",
            "{\"match\": \"plan\", \"response\": \"matched\"}\n",
            "{\"response\": \"seq2\"}\n",
        ))
        .unwrap();
        assert_eq!(text(a.answer(&llm("q-0", "make a plan"))), "matched");
        assert_eq!(text(a.answer(&llm("q-0", "other"))), "seq1");
        assert_eq!(text(a.answer(&llm("q-0", "make a plan again"))), "matched");
        assert_eq!(text(a.answer(&llm("q-0", "other"))), "seq2");
        assert_eq!(text(a.answer(&llm("q-0", "other"))), "dflt");
        assert_eq!(text(a.answer(&llm("q-0", "other"))), "dflt");
    }

    #[test]
    fn matcher_rules_apply_in_file_order() {
        let mut a = ScriptedAnswerer::parse(concat!(
            "{\"match\": \"a\", \"response\": \"first\"}\n",
            "{\"match\": \"ab\", \"response\": \"second\"}\n",
        ))
        .unwrap();
        assert_eq!(text(a.answer(&llm("q-0", "xab"))), "first");
    }

    #[test]
    fn times_limits_a_matcher_rule_then_the_next_applies() {
        let mut a = ScriptedAnswerer::parse(concat!(
            "{\"match\": \"x\", \"response\": \"limited\", \"times\": 2}\n",
            "{\"match\": \"x\", \"response\": \"fallback\"}\n",
        ))
        .unwrap();
        assert_eq!(text(a.answer(&llm("q-0", "x"))), "limited");
        assert_eq!(text(a.answer(&llm("q-0", "x"))), "limited");
        assert_eq!(text(a.answer(&llm("q-0", "x"))), "fallback");
        assert_eq!(text(a.answer(&llm("q-0", "x"))), "fallback");
    }

    #[test]
    fn matcher_rules_are_unlimited_by_default() {
        let mut a = ScriptedAnswerer::parse("{\"match\": \"x\", \"response\": \"r\"}").unwrap();
        for _ in 0..10 {
            assert_eq!(text(a.answer(&llm("q-0", "x"))), "r");
        }
    }

    #[test]
    fn sequential_lines_are_used_once_each_in_order() {
        let mut a = ScriptedAnswerer::parse(concat!(
            "{\"response\": \"one\"}\n",
            "\n",
            "   \n",
            "{\"response\": \"two\", \"times\": 2}\n",
            "{\"response\": \"three\"}\n",
        ))
        .unwrap();
        let got: Vec<String> = (0..4).map(|_| text(a.answer(&llm("q-0", "p")))).collect();
        assert_eq!(got, ["one", "two", "two", "three"]);
        assert!(matches!(
            a.answer(&llm("q-0", "p")),
            ScriptedReply::NoMatch { .. }
        ));
    }

    #[test]
    fn default_is_used_when_nothing_else_applies() {
        let mut a = ScriptedAnswerer::parse(concat!(
            "{\"match\": \"never\", \"response\": \"no\"}\n",
            "{\"default\": \"fallback {{n}}\"}\n",
        ))
        .unwrap();
        assert_eq!(text(a.answer(&llm("q-0", "hello"))), "fallback 1");
        assert_eq!(text(a.answer(&llm("q-1", "hello"))), "fallback 2");
    }

    #[test]
    fn regex_and_exact_prompt_matchers() {
        let mut a = ScriptedAnswerer::parse(concat!(
            "{\"prompt\": \"exactly this\", \"response\": \"exact\"}\n",
            "{\"regex\": \"^score: \\\\d+$\", \"response\": \"re\"}\n",
            "{\"default\": \"d\"}\n",
        ))
        .unwrap();
        assert_eq!(text(a.answer(&llm("q-0", "exactly this"))), "exact");
        assert_eq!(text(a.answer(&llm("q-0", "exactly this!"))), "d");
        assert_eq!(text(a.answer(&llm("q-0", "score: 42"))), "re");
        assert_eq!(text(a.answer(&llm("q-0", "score: x"))), "d");
    }

    #[test]
    fn system_match_requires_the_system_prompt_to_contain_the_text() {
        let mut a = ScriptedAnswerer::parse(concat!(
            "{\"match\": \"q\", \"system_match\": \"judge\", \"response\": \"as judge\"}\n",
            "{\"system_match\": \"critic\", \"response\": \"as critic\"}\n",
            "{\"default\": \"plain\"}\n",
        ))
        .unwrap();
        let mut q = llm("q-0", "q?");
        assert_eq!(text(a.answer(&q)), "plain");
        q.system = Some("You are a judge.");
        assert_eq!(text(a.answer(&q)), "as judge");
        q.system = Some("You are a critic.");
        assert_eq!(text(a.answer(&q)), "as critic");
        q.system = Some("You are nobody.");
        assert_eq!(text(a.answer(&q)), "plain");
    }

    #[test]
    fn substitutions_in_one_pass() {
        let mut a = ScriptedAnswerer::parse(concat!(
            "{\"match\": \"keep\", \"response\": \"keep {{unknown}} {{ and }}\"}\n",
            "{\"default\": \"#{{n}} {{query_id}}: {{prompt}}/{{prompt}}\"}\n",
        ))
        .unwrap();
        assert_eq!(text(a.answer(&llm("q-3", "hi"))), "#1 q-3: hi/hi");
        // Text inserted by {{prompt}} is not substituted again.
        assert_eq!(
            text(a.answer(&llm("f-1-2", "{{n}}"))),
            "#2 f-1-2: {{n}}/{{n}}"
        );
        assert_eq!(
            text(a.answer(&llm("q-0", "keep"))),
            "keep {{unknown}} {{ and }}"
        );
    }

    #[test]
    fn n_counts_answers_of_both_kinds_but_not_misses() {
        let mut a = ScriptedAnswerer::parse(concat!(
            "{\"kind\": \"human\", \"response\": \"h{{n}}\"}\n",
            "{\"match\": \"hit\", \"response\": \"l{{n}}\"}\n",
        ))
        .unwrap();
        assert_eq!(text(a.answer(&llm("q-0", "hit"))), "l1");
        assert!(matches!(
            a.answer(&llm("q-0", "miss")),
            ScriptedReply::NoMatch { .. }
        ));
        assert_eq!(text(a.answer(&human("q-1", "who?"))), "h2");
        assert_eq!(text(a.answer(&llm("q-0", "hit"))), "l3");
    }

    #[test]
    fn usage_is_reported() {
        let mut a = ScriptedAnswerer::parse(
            "{\"response\": \"r\", \"usage\": {\"prompt_tokens\": 12, \"completion_tokens\": 3}}\n\
             {\"response\": \"s\"}",
        )
        .unwrap();
        assert_eq!(
            a.answer(&llm("q-0", "p")),
            ScriptedReply::Text {
                text: "r".into(),
                usage: Some((12, 3))
            }
        );
        assert_eq!(
            a.answer(&llm("q-0", "p")),
            ScriptedReply::Text {
                text: "s".into(),
                usage: None
            }
        );
    }

    #[test]
    fn human_lines_only_answer_human_questions() {
        let mut a = ScriptedAnswerer::parse(concat!(
            "{\"kind\": \"human\", \"match\": \"colour\", \"response\": \"blue ({{prompt}})\"}\n",
            "{\"kind\": \"human\", \"match\": \"secret\", \"ask_status\": \"declined\"}\n",
            "{\"kind\": \"human\", \"match\": \"form\", \"response\": {\"age\": 3, \"ok\": true}}\n",
            "{\"kind\": \"human\", \"ask_status\": \"cancelled\"}\n",
            "{\"kind\": \"human\", \"default\": \"whatever\"}\n",
            "{\"response\": \"llm answer\"}\n",
        ))
        .unwrap();
        assert!(a.has_human_rules());
        assert_eq!(
            text(a.answer(&human("q-0", "favourite colour?"))),
            "blue (favourite colour?)"
        );
        assert_eq!(
            a.answer(&human("q-0", "tell me a secret")),
            ScriptedReply::AskStatus("declined".into())
        );
        assert_eq!(
            text(a.answer(&human("q-0", "fill the form"))),
            r#"{"age":3,"ok":true}"#
        );
        assert_eq!(
            a.answer(&human("q-0", "anything")),
            ScriptedReply::AskStatus("cancelled".into())
        );
        assert_eq!(text(a.answer(&human("q-0", "anything"))), "whatever");
        // The llm line is not used by human questions and vice versa.
        assert_eq!(
            text(a.answer(&llm("q-0", "favourite colour?"))),
            "llm answer"
        );
        assert!(matches!(
            a.answer(&llm("q-0", "more")),
            ScriptedReply::NoMatch { .. }
        ));
    }

    #[test]
    fn has_human_rules_is_false_without_human_lines() {
        let a = ScriptedAnswerer::parse("{\"kind\": \"llm\", \"response\": \"r\"}").unwrap();
        assert!(!a.has_human_rules());
        assert!(!ScriptedAnswerer::parse("").unwrap().has_human_rules());
    }

    #[test]
    fn no_match_message_names_query_and_truncates_prompt() {
        let mut a = ScriptedAnswerer::parse("{\"match\": \"zzz\", \"response\": \"r\"}").unwrap();
        let long = format!("{}TAIL", "é".repeat(80));
        let ScriptedReply::NoMatch { message } = a.answer(&llm("q-7", &long)) else {
            panic!("expected no match");
        };
        assert!(message.starts_with("scripted_no_match: "), "{message}");
        assert!(message.contains("q-7"), "{message}");
        assert!(message.contains(&"é".repeat(80)), "{message}");
        assert!(!message.contains("TAIL"), "{message}");

        let ScriptedReply::NoMatch { message } = a.answer(&human("q-1", "short?")) else {
            panic!("expected no match");
        };
        assert!(message.starts_with("scripted_no_match: "));
        assert!(
            message.contains("q-1") && message.contains("short?"),
            "{message}"
        );
    }

    #[test]
    fn no_match_does_not_consume_anything() {
        let mut a = ScriptedAnswerer::parse("{\"kind\": \"human\", \"response\": \"h\"}").unwrap();
        assert!(matches!(
            a.answer(&llm("q-0", "p")),
            ScriptedReply::NoMatch { .. }
        ));
        assert_eq!(text(a.answer(&human("q-0", "p"))), "h");
    }

    #[test]
    fn parse_errors_name_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("{\"response\": \"a\"}\n[1, 2]", 2, "expected a JSON object"),
            ("\n\n\"text\"", 3, "expected a JSON object"),
            ("{\"response\": \"a\"}\n{not json", 2, "invalid JSON"),
            (
                "{\"kind\": \"robot\", \"response\": \"a\"}",
                1,
                "unknown kind",
            ),
            ("{\"kind\": 3, \"response\": \"a\"}", 1, "unknown kind"),
            ("{}\n", 1, "missing `response`"),
            ("{\"match\": \"x\"}", 1, "missing `response`"),
            (
                "{\"kind\": \"human\", \"match\": \"x\"}",
                1,
                "missing `response`",
            ),
            ("{\"regex\": \"(\", \"response\": \"a\"}", 1, "bad regex"),
            (
                "{\"match\": \"x\", \"response\": \"a\", \"times\": 0}",
                1,
                "`times`",
            ),
            (
                "{\"match\": \"x\", \"response\": \"a\", \"times\": -1}",
                1,
                "`times`",
            ),
            (
                "{\"match\": \"x\", \"response\": \"a\", \"times\": 1.5}",
                1,
                "`times`",
            ),
            (
                "{\"match\": \"x\", \"response\": \"a\", \"times\": \"2\"}",
                1,
                "`times`",
            ),
            (
                "{\"kind\": \"human\", \"ask_status\": \"timeout\"}",
                1,
                "`ask_status`",
            ),
            (
                "{\"ask_status\": \"declined\"}",
                1,
                "only allowed on lines with",
            ),
            (
                "{\"kind\": \"human\", \"response\": \"a\", \"ask_status\": \"declined\"}",
                1,
                "not both",
            ),
            (
                "{\"match\": 3, \"response\": \"a\"}",
                1,
                "`match` must be a string",
            ),
            ("{\"response\": 3}", 1, "`response` must be a string"),
            ("{\"response\": \"a\", \"usage\": 5}", 1, "`usage`"),
            (
                "{\"response\": \"a\", \"usage\": {\"prompt_tokens\": -1}}",
                1,
                "usage.prompt_tokens",
            ),
            (
                "{\"default\": \"a\", \"match\": \"x\"}",
                1,
                "`default` line",
            ),
            (
                "{\"response\": \"a\", \"respnse\": \"b\"}",
                1,
                "unknown key `respnse`",
            ),
        ];
        for (src, line, needle) in cases {
            let err = parse_err(src);
            assert_eq!(err.line(), Some(*line), "{src}: {err}");
            assert!(
                err.to_string().starts_with(&format!("line {line}: ")),
                "{src}: {err}"
            );
            assert!(err.to_string().contains(needle), "{src}: {err}");
        }
    }

    #[test]
    fn default_lines_may_be_human_and_need_no_response() {
        let mut a = ScriptedAnswerer::parse(concat!(
            "{\"default\": \"llm default\", \"kind\": \"llm\"}\n",
            "{\"default\": \"human default\", \"kind\": \"human\"}\n",
        ))
        .unwrap();
        assert_eq!(text(a.answer(&llm("q-0", "p"))), "llm default");
        assert_eq!(text(a.answer(&human("q-0", "p"))), "human default");
    }

    #[test]
    fn from_file_reads_and_names_the_path_in_errors() {
        let dir = std::env::temp_dir().join(format!("alc-scripted-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.jsonl");
        std::fs::write(&good, "\u{feff}{\"response\": \"ok\"}\n").unwrap();
        let mut a = ScriptedAnswerer::from_file(&good).unwrap();
        assert_eq!(text(a.answer(&llm("q-0", "p"))), "ok");

        let bad = dir.join("bad.jsonl");
        std::fs::write(&bad, "{\"response\": \"ok\"}\n\n42\n").unwrap();
        let err = ScriptedAnswerer::from_file(&bad).unwrap_err();
        assert_eq!(err.line(), Some(3));
        assert!(err.to_string().contains("bad.jsonl: line 3: "), "{err}");

        let missing = dir.join("missing.jsonl");
        let err = ScriptedAnswerer::from_file(&missing).unwrap_err();
        assert_eq!(err.line(), None);
        assert!(err.to_string().contains("missing.jsonl"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
