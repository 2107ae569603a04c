//! Graders (§8.2): `exact`, `contains`, `regex`, `numeric`, `llm_judge`.
//!
//! The deterministic graders run here; `llm_judge` only builds its prompt and parses
//! the verdict — the runner asks the judge answerer.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::EvalError;

/// Normalisations of the `exact` grader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// Strip leading and trailing whitespace.
    Trim,
    /// Lowercase.
    Lower,
    /// Collapse runs of whitespace into one space.
    CollapseWs,
    /// Remove ASCII and Unicode punctuation.
    StripPunct,
}

/// Scale of the `llm_judge` verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JudgeScale {
    /// YES / NO.
    #[serde(rename = "binary")]
    Binary,
    /// A digit 1..5, scored (n − 1) / 4.
    #[serde(rename = "1-5")]
    OneToFive,
}

/// A grader and its options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GraderKind {
    /// Normalised equality.
    Exact {
        /// Normalisations (default `[trim]`).
        normalize: Vec<Normalize>,
    },
    /// Substring.
    Contains {
        /// Case-sensitive match (default false).
        case_sensitive: bool,
    },
    /// Regular expression.
    Regex {
        /// Pattern (default: the expected value).
        pattern: Option<String>,
        /// Flags: `i`, `m`, `s`.
        flags: String,
    },
    /// Number within a tolerance.
    Numeric {
        /// Tolerance (default 1e-6).
        tolerance: f64,
        /// Tolerance relative to |expected|.
        relative: bool,
    },
    /// An LLM verdict.
    LlmJudge {
        /// What a good answer is.
        rubric: String,
        /// Verdict scale.
        scale: JudgeScale,
        /// Judge model override.
        model: Option<String>,
        /// Token cap of the verdict.
        max_tokens: u32,
    },
}

/// A grader with its weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraderSpec {
    /// The grader.
    #[serde(flatten)]
    pub kind: GraderKind,
    /// Weight in the case score (default 1.0).
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

impl GraderSpec {
    /// `exact` with the default normalisation.
    pub fn exact() -> Self {
        GraderSpec {
            kind: GraderKind::Exact {
                normalize: vec![Normalize::Trim],
            },
            weight: 1.0,
        }
    }

    /// The grader's type name.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            GraderKind::Exact { .. } => "exact",
            GraderKind::Contains { .. } => "contains",
            GraderKind::Regex { .. } => "regex",
            GraderKind::Numeric { .. } => "numeric",
            GraderKind::LlmJudge { .. } => "llm_judge",
        }
    }

    /// True for `llm_judge`.
    pub fn is_judge(&self) -> bool {
        matches!(self.kind, GraderKind::LlmJudge { .. })
    }
}

/// The outcome of one grader on one output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grade {
    /// Grader type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Score in [0, 1].
    pub score: f64,
    /// Explanation when something was off (unparseable verdict, bad pattern).
    pub detail: Option<String>,
    /// The grader's weight.
    #[serde(default = "one")]
    pub weight: f64,
}

const KNOWN: &str = "exact, contains, regex, numeric, llm_judge";

fn opt_bool(
    obj: &serde_json::Map<String, Value>,
    key: &str,
    default: bool,
) -> Result<bool, EvalError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(EvalError::invalid(format!(
            "grader option `{key}` must be a boolean"
        ))),
    }
}

fn opt_f64(
    obj: &serde_json::Map<String, Value>,
    key: &str,
    default: f64,
) -> Result<f64, EvalError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| EvalError::invalid(format!("grader option `{key}` must be a number"))),
    }
}

fn opt_str(obj: &serde_json::Map<String, Value>, key: &str) -> Result<Option<String>, EvalError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(EvalError::invalid(format!(
            "grader option `{key}` must be a string"
        ))),
    }
}

/// Parses one grader: a type name string or an object with `type` and options.
pub fn parse_grader(v: &Value) -> Result<GraderSpec, EvalError> {
    let obj = match v {
        Value::String(s) => {
            let mut m = serde_json::Map::new();
            m.insert("type".into(), Value::String(s.clone()));
            m
        }
        Value::Object(m) => m.clone(),
        _ => {
            return Err(EvalError::invalid(
                "a grader must be a type name or an object with `type`",
            ))
        }
    };
    let ty = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| EvalError::invalid(format!("grader without `type` (known: {KNOWN})")))?;
    let weight = opt_f64(&obj, "weight", 1.0)?;
    if weight < 0.0 {
        return Err(EvalError::invalid("grader `weight` must be ≥ 0"));
    }
    let kind = match ty {
        "exact" | "exact_match" => {
            let normalize = match obj.get("normalize") {
                None | Some(Value::Null) => vec![Normalize::Trim],
                Some(Value::String(s)) => vec![parse_norm(s)?],
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|n| {
                        n.as_str()
                            .ok_or_else(|| {
                                EvalError::invalid("`normalize` entries must be strings")
                            })
                            .and_then(parse_norm)
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(EvalError::invalid("`normalize` must be a list")),
            };
            GraderKind::Exact { normalize }
        }
        "contains" => GraderKind::Contains {
            case_sensitive: opt_bool(&obj, "case_sensitive", false)?,
        },
        "regex" => {
            let pattern = opt_str(&obj, "pattern")?;
            let flags = opt_str(&obj, "flags")?.unwrap_or_default();
            if let Some(bad) = flags.chars().find(|c| !matches!(c, 'i' | 'm' | 's')) {
                return Err(EvalError::invalid(format!(
                    "regex flag '{bad}' is not supported (use i, m, s)"
                )));
            }
            if let Some(p) = &pattern {
                build_regex(p, &flags).map_err(EvalError::invalid)?;
            }
            GraderKind::Regex { pattern, flags }
        }
        "numeric" => {
            let tolerance = opt_f64(&obj, "tolerance", 1e-6)?;
            if tolerance < 0.0 {
                return Err(EvalError::invalid("numeric `tolerance` must be ≥ 0"));
            }
            GraderKind::Numeric {
                tolerance,
                relative: opt_bool(&obj, "relative", false)?,
            }
        }
        "llm_judge" => {
            let scale = match opt_str(&obj, "scale")?.as_deref() {
                None | Some("binary") => JudgeScale::Binary,
                Some("1-5") => JudgeScale::OneToFive,
                Some(other) => {
                    return Err(EvalError::invalid(format!(
                        "llm_judge scale '{other}' is not supported (binary or 1-5)"
                    )))
                }
            };
            GraderKind::LlmJudge {
                rubric: opt_str(&obj, "rubric")?
                    .unwrap_or_else(|| "The output correctly answers the input and agrees with the expected answer.".into()),
                scale,
                model: opt_str(&obj, "model")?,
                max_tokens: opt_f64(&obj, "max_tokens", 64.0)?.max(1.0) as u32,
            }
        }
        other => {
            return Err(EvalError::invalid(format!(
                "unknown grader '{other}' (known: {KNOWN})"
            )))
        }
    };
    Ok(GraderSpec { kind, weight })
}

fn parse_norm(s: &str) -> Result<Normalize, EvalError> {
    Ok(match s {
        "trim" => Normalize::Trim,
        "lower" => Normalize::Lower,
        "collapse_ws" => Normalize::CollapseWs,
        "strip_punct" => Normalize::StripPunct,
        other => {
            return Err(EvalError::invalid(format!(
                "unknown normalisation '{other}' (trim, lower, collapse_ws, strip_punct)"
            )))
        }
    })
}

/// Parses a grader list (a JSON array, or a single grader).
pub fn parse_graders(v: &Value) -> Result<Vec<GraderSpec>, EvalError> {
    match v {
        Value::Array(a) => {
            if a.is_empty() {
                return Err(EvalError::invalid("the grader list is empty"));
            }
            a.iter().map(parse_grader).collect()
        }
        other => Ok(vec![parse_grader(other)?]),
    }
}

fn build_regex(pattern: &str, flags: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(flags.contains('i'))
        .multi_line(flags.contains('m'))
        .dot_matches_new_line(flags.contains('s'))
        .build()
        .map_err(|e| format!("invalid regex /{pattern}/: {e}"))
}

/// The text form of an expected value: strings as they are, anything else compact JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn normalize(s: &str, norms: &[Normalize]) -> String {
    let mut out = s.to_string();
    for n in norms {
        out = match n {
            Normalize::Trim => out.trim().to_string(),
            Normalize::Lower => out.to_lowercase(),
            Normalize::CollapseWs => out.split_whitespace().collect::<Vec<_>>().join(" "),
            Normalize::StripPunct => out
                .chars()
                .filter(|c| !c.is_ascii_punctuation() && !is_unicode_punct(*c))
                .collect(),
        };
    }
    out
}

fn is_unicode_punct(c: char) -> bool {
    matches!(
        c,
        '“' | '”' | '‘' | '’' | '«' | '»' | '…' | '–' | '—' | '¡' | '¿' | '。' | '、'
    )
}

fn number_re() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?|[-+]?\.\d+")
            .expect("number regex")
    })
}

/// The number an output states: the whole text as a number, else the last number in it
/// (thousands separators removed).
pub fn extract_number(text: &str) -> Option<f64> {
    let t = text.trim();
    let mut last = None;
    for m in number_re().find_iter(t) {
        let x = m.as_str().replace(',', "").parse::<f64>().ok();
        if m.start() == 0 && m.end() == t.len() {
            return x;
        }
        last = x.or(last);
    }
    last
}

fn expected_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => extract_number(s),
        _ => None,
    }
}

/// Scores `output` against one expected value with a deterministic grader.
/// Panics never; `llm_judge` returns score 0 (the runner handles it).
pub fn grade_one(kind: &GraderKind, output: &str, expected: &Value) -> (f64, Option<String>) {
    match kind {
        GraderKind::Exact { normalize: norms } => {
            let ok = normalize(output, norms) == normalize(&value_text(expected), norms);
            (ok as u8 as f64, None)
        }
        GraderKind::Contains { case_sensitive } => {
            let exp = value_text(expected);
            let ok = if *case_sensitive {
                output.contains(&exp)
            } else {
                output.to_lowercase().contains(&exp.to_lowercase())
            };
            (ok as u8 as f64, None)
        }
        GraderKind::Regex { pattern, flags } => {
            let pat = pattern.clone().unwrap_or_else(|| value_text(expected));
            match build_regex(&pat, flags) {
                Ok(re) => (re.is_match(output) as u8 as f64, None),
                Err(e) => (0.0, Some(e)),
            }
        }
        GraderKind::Numeric {
            tolerance,
            relative,
        } => {
            let Some(e) = expected_number(expected) else {
                return (
                    0.0,
                    Some(format!("expected value {expected} is not a number")),
                );
            };
            let Some(x) = extract_number(output) else {
                return (0.0, Some("no number in the output".into()));
            };
            let tol = if *relative {
                tolerance * e.abs()
            } else {
                *tolerance
            };
            if (x - e).abs() <= tol {
                (1.0, None)
            } else {
                (0.0, Some(format!("got {x}, expected {e}")))
            }
        }
        GraderKind::LlmJudge { .. } => (0.0, Some("llm_judge is graded by the runner".into())),
    }
}

/// Scores a deterministic grader against `expected`; an array means "any of these"
/// (the best score counts).
pub fn grade(spec: &GraderSpec, output: &str, expected: &Value) -> Grade {
    let (score, detail) = match expected {
        Value::Array(options) if !options.is_empty() => {
            let mut best = (0.0, None);
            for (i, e) in options.iter().enumerate() {
                let (s, d) = grade_one(&spec.kind, output, e);
                if i == 0 || s > best.0 {
                    best = (s, d);
                }
            }
            best
        }
        e => grade_one(&spec.kind, output, e),
    };
    Grade {
        kind: spec.type_name().into(),
        score,
        detail,
        weight: spec.weight,
    }
}

/// The judge prompt (our own text): rubric, case input, expected answer, output.
pub fn judge_prompt(
    rubric: &str,
    scale: JudgeScale,
    input: &Value,
    expected: &Value,
    output: &str,
) -> String {
    let ask = match scale {
        JudgeScale::Binary => "Does the output satisfy the rubric? Reply with YES or NO only.",
        JudgeScale::OneToFive => {
            "Rate how well the output satisfies the rubric on a scale from 1 (not at all) to 5 (fully). Reply with a single digit only."
        }
    };
    format!(
        "You are grading the output of an AI system.\n\nRubric:\n{rubric}\n\nInput:\n{}\n\nExpected answer:\n{}\n\nOutput to grade:\n{output}\n\n{ask}",
        value_text(input),
        if expected.is_null() {
            "(none given)".to_string()
        } else {
            value_text(expected)
        }
    )
}

/// Parses a judge verdict; unparseable verdicts score 0 with a detail.
pub fn parse_verdict(text: &str, scale: JudgeScale) -> (f64, Option<String>) {
    let t = text.trim();
    match scale {
        JudgeScale::Binary => {
            let word: String = t
                .chars()
                .skip_while(|c| !c.is_alphabetic())
                .take_while(|c| c.is_alphabetic())
                .collect::<String>()
                .to_uppercase();
            match word.as_str() {
                "YES" => (1.0, None),
                "NO" => (0.0, None),
                _ => (0.0, Some(format!("unparseable verdict: {}", preview(t)))),
            }
        }
        JudgeScale::OneToFive => match t.chars().find(|c| c.is_ascii_digit()) {
            Some(d @ '1'..='5') => ((d as u8 - b'1') as f64 / 4.0, None),
            _ => (0.0, Some(format!("unparseable verdict: {}", preview(t)))),
        },
    }
}

fn preview(s: &str) -> String {
    let p: String = s.chars().take(60).collect();
    format!("{p:?}")
}

/// Weighted mean of grades (0 when all weights are 0).
pub fn combine(grades: &[Grade]) -> f64 {
    let w: f64 = grades.iter().map(|g| g.weight).sum();
    if w <= 0.0 {
        return 0.0;
    }
    grades.iter().map(|g| g.score * g.weight).sum::<f64>() / w
}
