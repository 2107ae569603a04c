//! The eval report (§8.5), its terminal table and a self-contained HTML page.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::runner::CaseResult;
use crate::stats;

/// Score statistics over all case × repeat results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Mean score.
    pub mean: f64,
    /// Sample standard deviation.
    pub std: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
    /// Number of results.
    pub n: usize,
    /// Bootstrap percentile 95 % interval of the mean (2000 resamples, seed 42).
    pub ci_95: [f64; 2],
}

/// Aggregated numbers of an eval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregated {
    /// Case × repeat results.
    pub total: usize,
    /// Passed.
    pub passed: usize,
    /// Graded and not passed.
    pub failed: usize,
    /// The strategy failed.
    pub errored: usize,
    /// passed / total.
    pub pass_rate: f64,
    /// Wilson 95 % interval of the pass rate.
    pub pass_rate_ci_95: [f64; 2],
    /// Score statistics.
    pub scores: Scores,
}

/// Usage totals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// LLM calls of the strategy sessions.
    pub llm_calls: u64,
    /// Tokens of the strategy sessions.
    pub tokens: u64,
    /// Cost in USD when known.
    pub cost_usd: Option<f64>,
    /// Answers served from the response cache instead of the provider.
    #[serde(default)]
    pub cache_hits: u64,
}

/// Per-case latency percentiles in ms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

/// The report document (§8.5, plus usage, latency and run settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Scenario name.
    pub name: String,
    /// Strategy.
    pub strategy: String,
    /// Scenario name (reference key).
    pub scenario: String,
    /// Eval id (set when stored).
    pub eval_id: String,
    /// Aggregated numbers.
    pub aggregated: Aggregated,
    /// One-line summary.
    pub summary: String,
    /// Usage totals.
    pub usage: Usage,
    /// Latency percentiles per case.
    pub latency_ms: Latency,
    /// `completed`, `failed` or `cancelled`.
    pub status: String,
    /// Answerer name.
    pub answerer: String,
    /// Model selector.
    pub model: Option<String>,
    /// Repeats per case.
    pub repeats: u32,
    /// Pass threshold.
    pub pass_threshold: f64,
    /// Content hash of the cases.
    pub scenario_hash: String,
    /// Strategy options.
    pub strategy_opts: Value,
    /// Default graders.
    pub graders: Value,
    /// Start (Unix ms).
    pub started_at: i64,
    /// End (Unix ms).
    pub finished_at: i64,
    /// Warnings (skipped dataset lines, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Per case × repeat results.
    pub cases: Vec<CaseResult>,
}

/// Settings recorded with a report.
#[derive(Debug, Clone)]
pub struct ReportMeta {
    /// Strategy.
    pub strategy: String,
    /// Scenario name.
    pub scenario: String,
    /// Content hash of the cases.
    pub scenario_hash: String,
    /// Answerer name.
    pub answerer: String,
    /// Model selector.
    pub model: Option<String>,
    /// Repeats.
    pub repeats: u32,
    /// Pass threshold.
    pub pass_threshold: f64,
    /// Strategy options.
    pub strategy_opts: Value,
    /// Default graders.
    pub graders: Value,
    /// Start (Unix ms).
    pub started_at: i64,
    /// End (Unix ms).
    pub finished_at: i64,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// Aggregates case results.
pub fn aggregate(cases: &[CaseResult]) -> Aggregated {
    let scores: Vec<f64> = cases.iter().map(|c| c.score).collect();
    let passed = cases.iter().filter(|c| c.passed).count();
    let errored = cases.iter().filter(|c| c.errored).count();
    let total = cases.len();
    Aggregated {
        total,
        passed,
        failed: total - passed - errored,
        errored,
        pass_rate: if total == 0 {
            0.0
        } else {
            passed as f64 / total as f64
        },
        pass_rate_ci_95: stats::wilson(passed as u64, total as u64, stats::Z_95),
        scores: Scores {
            mean: stats::mean(&scores),
            std: stats::std_dev(&scores),
            min: if scores.is_empty() {
                0.0
            } else {
                scores.iter().cloned().fold(f64::INFINITY, f64::min)
            },
            max: scores.iter().cloned().fold(0.0, f64::max),
            n: total,
            ci_95: stats::bootstrap_mean_ci(&scores, 2000, 42),
        },
    }
}

/// Builds the report (eval id empty until stored).
pub fn build(meta: ReportMeta, cases: Vec<CaseResult>) -> Report {
    let aggregated = aggregate(&cases);
    let lat: Vec<f64> = cases.iter().map(|c| c.elapsed_ms as f64).collect();
    let mut cost = None;
    for c in &cases {
        if let Some(x) = c.cost_usd {
            cost = Some(cost.unwrap_or(0.0) + x);
        }
    }
    let usage = Usage {
        llm_calls: cases.iter().map(|c| c.llm_calls).sum(),
        tokens: cases.iter().map(|c| c.tokens).sum(),
        cost_usd: cost,
        cache_hits: cases.iter().map(|c| c.cache_hits).sum(),
    };
    let latency_ms = Latency {
        p50: stats::percentile(&lat, 50.0),
        p90: stats::percentile(&lat, 90.0),
        p95: stats::percentile(&lat, 95.0),
        p99: stats::percentile(&lat, 99.0),
        max: lat.iter().cloned().fold(0.0, f64::max),
    };
    let summary = format!(
        "{} on {}: {}/{} passed ({:.1}%), mean score {:.3}{}",
        meta.strategy,
        meta.scenario,
        aggregated.passed,
        aggregated.total,
        aggregated.pass_rate * 100.0,
        aggregated.scores.mean,
        if aggregated.errored > 0 {
            format!(", {} errored", aggregated.errored)
        } else {
            String::new()
        }
    ) + &if usage.cache_hits > 0 {
        format!(", {} answers from the cache", usage.cache_hits)
    } else {
        String::new()
    };
    Report {
        name: meta.scenario.clone(),
        strategy: meta.strategy,
        scenario: meta.scenario,
        eval_id: String::new(),
        aggregated,
        summary,
        usage,
        latency_ms,
        status: "completed".into(),
        answerer: meta.answerer,
        model: meta.model,
        repeats: meta.repeats,
        pass_threshold: meta.pass_threshold,
        scenario_hash: meta.scenario_hash,
        strategy_opts: meta.strategy_opts,
        graders: meta.graders,
        started_at: meta.started_at,
        finished_at: meta.finished_at,
        warnings: meta.warnings,
        cases,
    }
}

fn trunc(s: &str, n: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= n {
        one_line
    } else {
        let mut t: String = one_line.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn fmt_cost(c: Option<f64>) -> String {
    c.map(|x| format!("${x:.4}")).unwrap_or_else(|| "-".into())
}

/// A readable terminal rendering: summary block plus one row per case × repeat.
pub fn terminal_table(r: &Report) -> String {
    let a = &r.aggregated;
    let mut s = String::new();
    s.push_str(&format!("eval {}\n", r.eval_id));
    s.push_str(&format!(
        "  strategy {}   scenario {}   answerer {}{}   status {}\n",
        r.strategy,
        r.scenario,
        r.answerer,
        r.model
            .as_deref()
            .map(|m| format!("   model {m}"))
            .unwrap_or_default(),
        r.status
    ));
    s.push_str(&format!(
        "  pass rate  {:.1}% ({}/{})  95% CI [{:.1}%, {:.1}%]   failed {}  errored {}\n",
        a.pass_rate * 100.0,
        a.passed,
        a.total,
        a.pass_rate_ci_95[0] * 100.0,
        a.pass_rate_ci_95[1] * 100.0,
        a.failed,
        a.errored
    ));
    s.push_str(&format!(
        "  mean score {:.3}  95% CI [{:.3}, {:.3}]  std {:.3}  n {}\n",
        a.scores.mean, a.scores.ci_95[0], a.scores.ci_95[1], a.scores.std, a.scores.n
    ));
    s.push_str(&format!(
        "  usage      {} LLM calls, {} tokens, cost {}\n",
        r.usage.llm_calls,
        r.usage.tokens,
        fmt_cost(r.usage.cost_usd)
    ));
    s.push_str(&format!(
        "  latency    p50 {:.0} ms  p90 {:.0} ms  p95 {:.0} ms  p99 {:.0} ms  max {:.0} ms\n\n",
        r.latency_ms.p50, r.latency_ms.p90, r.latency_ms.p95, r.latency_ms.p99, r.latency_ms.max
    ));
    let rows: Vec<[String; 7]> = r
        .cases
        .iter()
        .map(|c| {
            [
                c.case_id.clone(),
                c.repeat.to_string(),
                if c.errored {
                    "ERROR".into()
                } else if c.passed {
                    "pass".into()
                } else {
                    "FAIL".into()
                },
                format!("{:.3}", c.score),
                trunc(c.output.as_deref().or(c.error.as_deref()).unwrap_or(""), 40),
                trunc(&crate::grader::value_text(&c.expected), 20),
                format!("{}", c.elapsed_ms),
            ]
        })
        .collect();
    let head = ["case", "rep", "result", "score", "output", "expected", "ms"];
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i] - c.chars().count();
            l.push_str(c);
            if i + 1 < cells.len() {
                l.push_str(&" ".repeat(pad + 2));
            }
        }
        l.trim_end().to_string() + "\n"
    };
    s.push_str(&line(&head.map(String::from)));
    s.push_str(&line(
        &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(),
    ));
    for row in &rows {
        s.push_str(&line(row));
    }
    if !r.warnings.is_empty() {
        s.push('\n');
        for w in &r.warnings {
            s.push_str(&format!("warning: {w}\n"));
        }
    }
    s
}

/// Escapes text for HTML.
pub fn html_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Cost of a report for the chart's x axis: USD when known, else tokens.
fn chart_x(r: &Report) -> (f64, bool) {
    match r.usage.cost_usd {
        Some(c) => (c, true),
        None => (r.usage.tokens as f64, false),
    }
}

/// An inline SVG scatter plot of mean score against cost (USD, or tokens when no
/// report has prices), one point per report (strategy).
pub fn svg_chart(reports: &[&Report]) -> String {
    let (w, h, ml, mb, mt, mr) = (560.0, 320.0, 56.0, 44.0, 16.0, 16.0);
    let usd = reports.iter().all(|r| r.usage.cost_usd.is_some());
    let xs: Vec<f64> = reports
        .iter()
        .map(|r| {
            if usd {
                chart_x(r).0
            } else {
                r.usage.tokens as f64
            }
        })
        .collect();
    let xmax = xs.iter().cloned().fold(0.0, f64::max).max(1e-9) * 1.1;
    let px = |x: f64| ml + (x / xmax) * (w - ml - mr);
    let py = |y: f64| mt + (1.0 - y) * (h - mt - mb);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"mean score versus cost\">\n"
    );
    s.push_str(&format!(
        "<rect x=\"{ml}\" y=\"{mt}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#999\"/>\n",
        w - ml - mr,
        h - mt - mb
    ));
    for i in 0..=4 {
        let y = i as f64 / 4.0;
        s.push_str(&format!(
            "<line x1=\"{ml}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{y:.2}</text>\n",
            w - mr,
            py(y),
            py(y),
            ml - 6.0,
            py(y) + 4.0
        ));
    }
    for i in 0..=4 {
        let x = xmax * i as f64 / 4.0;
        let label = if usd {
            format!("${x:.4}")
        } else {
            format!("{x:.0}")
        };
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{label}</text>\n",
            px(x),
            h - mb + 16.0
        ));
    }
    s.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">{}</text>\n",
        ml + (w - ml - mr) / 2.0,
        h - 6.0,
        if usd { "cost (USD)" } else { "tokens" }
    ));
    s.push_str(&format!(
        "<text x=\"14\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 14 {:.1})\">mean score</text>\n",
        mt + (h - mt - mb) / 2.0,
        mt + (h - mt - mb) / 2.0
    ));
    for (r, x) in reports.iter().zip(&xs) {
        let (cx, cy) = (px(*x), py(r.aggregated.scores.mean.clamp(0.0, 1.0)));
        s.push_str(&format!(
            "<g class=\"point\"><circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"6\" fill=\"#3366cc\"><title>{} ({}): mean {:.3}</title></circle><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\">{}</text></g>\n",
            html_escape(&r.strategy),
            html_escape(&r.eval_id),
            r.aggregated.scores.mean,
            cx + 9.0,
            cy - 6.0,
            html_escape(&r.strategy)
        ));
    }
    s.push_str("</svg>");
    s
}

/// A self-contained HTML report (inline CSS and SVG; no scripts, fonts or images
/// fetched): summary, chart of score vs cost per strategy, per-case drill-down.
/// `others` are further evals plotted in the chart (e.g. other strategies on the
/// same scenario).
pub fn html(r: &Report, others: &[&Report]) -> String {
    let a = &r.aggregated;
    let mut all: Vec<&Report> = vec![r];
    all.extend(others.iter().copied().filter(|o| o.eval_id != r.eval_id));
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str(&format!("<title>eval {}</title>", html_escape(&r.eval_id)));
    h.push_str(
        "<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
         table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
         th{background:#f0f0f0}.pass{color:#17702a}.fail{color:#b00020}.err{color:#8a5a00}\
         details{margin:2px 0}pre{white-space:pre-wrap;margin:4px 0;background:#f7f7f7;padding:4px}\
         .num{font-variant-numeric:tabular-nums}</style></head><body>\n",
    );
    h.push_str(&format!(
        "<h1>Eval <code>{}</code></h1>\n<p>{}</p>\n",
        html_escape(&r.eval_id),
        html_escape(&r.summary)
    ));
    h.push_str("<table id=\"summary\">\n");
    let rows: Vec<(&str, String, &str)> = vec![
        ("strategy", html_escape(&r.strategy), "strategy"),
        ("scenario", html_escape(&r.scenario), "scenario"),
        ("answerer", html_escape(&r.answerer), "answerer"),
        (
            "model",
            html_escape(r.model.as_deref().unwrap_or("-")),
            "model",
        ),
        ("status", html_escape(&r.status), "status"),
        (
            "pass rate",
            format!(
                "{:.1}% ({}/{}), 95% Wilson CI [{:.1}%, {:.1}%]",
                a.pass_rate * 100.0,
                a.passed,
                a.total,
                a.pass_rate_ci_95[0] * 100.0,
                a.pass_rate_ci_95[1] * 100.0
            ),
            "pass-rate",
        ),
        (
            "mean score",
            format!(
                "{:.3}, 95% bootstrap CI [{:.3}, {:.3}], std {:.3}",
                a.scores.mean, a.scores.ci_95[0], a.scores.ci_95[1], a.scores.std
            ),
            "mean-score",
        ),
        (
            "passed / failed / errored",
            format!("{} / {} / {}", a.passed, a.failed, a.errored),
            "counts",
        ),
        (
            "usage",
            format!(
                "{} LLM calls, {} tokens, cost {}",
                r.usage.llm_calls,
                r.usage.tokens,
                fmt_cost(r.usage.cost_usd)
            ),
            "usage",
        ),
        (
            "latency (ms)",
            format!(
                "p50 {:.0}, p90 {:.0}, p95 {:.0}, p99 {:.0}, max {:.0}",
                r.latency_ms.p50,
                r.latency_ms.p90,
                r.latency_ms.p95,
                r.latency_ms.p99,
                r.latency_ms.max
            ),
            "latency",
        ),
    ];
    for (k, v, id) in rows {
        h.push_str(&format!(
            "<tr><th>{k}</th><td id=\"{id}\" class=\"num\">{v}</td></tr>\n"
        ));
    }
    h.push_str("</table>\n<h2>Score vs cost per strategy</h2>\n");
    h.push_str(&svg_chart(&all));
    h.push_str("\n<table id=\"strategies\"><tr><th>eval</th><th>strategy</th><th>pass rate</th><th>mean score</th><th>tokens</th><th>cost</th></tr>\n");
    for o in &all {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{:.1}%</td><td class=\"num\">{:.3}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
            html_escape(&o.eval_id),
            html_escape(&o.strategy),
            o.aggregated.pass_rate * 100.0,
            o.aggregated.scores.mean,
            o.usage.tokens,
            fmt_cost(o.usage.cost_usd)
        ));
    }
    h.push_str("</table>\n<h2>Cases</h2>\n<table id=\"cases\"><tr><th>case</th><th>rep</th><th>result</th><th>score</th><th>details</th></tr>\n");
    for c in &r.cases {
        let (class, label) = if c.errored {
            ("err", "error")
        } else if c.passed {
            ("pass", "pass")
        } else {
            ("fail", "fail")
        };
        let mut detail = String::new();
        detail.push_str(&format!(
            "<details><summary>{}</summary>",
            html_escape(&trunc(
                c.output.as_deref().or(c.error.as_deref()).unwrap_or(""),
                80
            ))
        ));
        detail.push_str(&format!(
            "<b>input</b><pre>{}</pre><b>expected</b><pre>{}</pre><b>output</b><pre>{}</pre>",
            html_escape(&crate::grader::value_text(&c.input)),
            html_escape(&crate::grader::value_text(&c.expected)),
            html_escape(c.output.as_deref().unwrap_or("-"))
        ));
        if let Some(e) = &c.error {
            detail.push_str(&format!("<b>error</b><pre>{}</pre>", html_escape(e)));
        }
        detail.push_str("<b>grades</b><ul>");
        for g in &c.grades {
            detail.push_str(&format!(
                "<li>{} score {:.3} weight {}{}</li>",
                html_escape(&g.kind),
                g.score,
                g.weight,
                g.detail
                    .as_deref()
                    .map(|d| format!(" — {}", html_escape(d)))
                    .unwrap_or_default()
            ));
        }
        detail.push_str(&format!(
            "</ul><small>{} LLM calls, {} tokens, {} ms, session {}</small></details>",
            c.llm_calls,
            c.tokens,
            c.elapsed_ms,
            html_escape(c.session_id.as_deref().unwrap_or("-"))
        ));
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{label}</td><td class=\"num\">{:.3}</td><td>{detail}</td></tr>\n",
            html_escape(&c.case_id),
            c.repeat,
            c.score
        ));
    }
    h.push_str("</table>\n</body></html>\n");
    h
}
