//! Comparison of two stored evals (§8.7): Welch's t-test and an independent bootstrap
//! on per-case scores (repeats averaged per case), plus a paired comparison on the
//! shared cases (paired bootstrap, wins/losses/ties, McNemar on pass/fail) and a
//! plain-language verdict that states the sample sizes.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::report::Report;
use crate::stats;

/// Options of a comparison.
#[derive(Debug, Clone, Copy)]
pub struct CompareOptions {
    /// Significance level (0.05).
    pub alpha: f64,
    /// Bootstrap resamples (10000).
    pub resamples: usize,
    /// PRNG seed (42).
    pub seed: u64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            alpha: 0.05,
            resamples: 10_000,
            seed: 42,
        }
    }
}

/// Per case: (mean score over repeats, passed by majority of repeats), in first-seen
/// order.
pub fn per_case(r: &Report) -> Vec<(String, f64, bool)> {
    let mut order: Vec<String> = Vec::new();
    let mut acc: BTreeMap<String, (f64, usize, usize)> = BTreeMap::new();
    for c in &r.cases {
        let e = acc.entry(c.case_id.clone()).or_insert_with(|| {
            order.push(c.case_id.clone());
            (0.0, 0, 0)
        });
        e.0 += c.score;
        e.1 += 1;
        e.2 += c.passed as usize;
    }
    order
        .into_iter()
        .map(|id| {
            let (s, n, p) = acc[&id];
            (id, s / n as f64, 2 * p >= n)
        })
        .collect()
}

fn side(r: &Report, scores: &[f64]) -> Value {
    let a = &r.aggregated;
    json!({
        "eval_id": r.eval_id,
        "strategy": r.strategy,
        "scenario": r.scenario,
        "scores": {"mean": stats::mean(scores), "std": stats::std_dev(scores), "n": scores.len()},
        "pass_rate": a.pass_rate,
        "pass_rate_ci_95": a.pass_rate_ci_95,
        "pass_at_1": a.pass_rate,
        "ci_95": stats::t_interval_95(scores),
    })
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Compares `a` against `b`; returns the `result` object of §8.7.
pub fn compare(a: &Report, b: &Report, opts: CompareOptions) -> Value {
    let ca = per_case(a);
    let cb = per_case(b);
    let sa: Vec<f64> = ca.iter().map(|c| c.1).collect();
    let sb: Vec<f64> = cb.iter().map(|c| c.1).collect();
    let (ma, mb) = (stats::mean(&sa), stats::mean(&sb));
    let delta = ma - mb;
    let (la, lb) = if a.strategy == b.strategy {
        (a.eval_id.clone(), b.eval_id.clone())
    } else {
        (a.strategy.clone(), b.strategy.clone())
    };
    let mut warnings: Vec<String> = Vec::new();

    let welch = stats::welch(&sa, &sb);
    let significant = welch.map(|w| w.p < opts.alpha).unwrap_or(false);
    let welch_json = match welch {
        Some(w) => json!({
            "t_stat": w.t,
            "df": w.df,
            "p_value": w.p,
            "significant": significant,
            "direction": if delta > 0.0 { "a > b" } else if delta < 0.0 { "a < b" } else { "a = b" },
        }),
        None => Value::Null,
    };
    let boot = stats::bootstrap_delta_ci(&sa, &sb, opts.resamples, opts.seed);

    // Paired comparison on shared case ids.
    let bmap: BTreeMap<&str, (f64, bool)> = cb
        .iter()
        .map(|(id, s, p)| (id.as_str(), (*s, *p)))
        .collect();
    let shared: Vec<(f64, f64, bool, bool)> = ca
        .iter()
        .filter_map(|(id, s, p)| bmap.get(id.as_str()).map(|(t, q)| (*s, *t, *p, *q)))
        .collect();
    let paired_json = if shared.is_empty() {
        warnings.push(format!(
            "evals {} and {} have no cases in common (scenarios '{}' and '{}'): the paired comparison and McNemar's test were skipped; run both strategies on the same dataset to pair them",
            a.eval_id, b.eval_id, a.scenario, b.scenario
        ));
        Value::Null
    } else {
        if a.scenario_hash != b.scenario_hash {
            warnings.push(format!(
                "the evals ran different case sets (dataset hash differs); {} shared case ids are paired by id",
                shared.len()
            ));
        }
        let diffs: Vec<f64> = shared.iter().map(|(x, y, _, _)| x - y).collect();
        let wins = diffs.iter().filter(|d| **d > 1e-12).count();
        let losses = diffs.iter().filter(|d| **d < -1e-12).count();
        let ties = diffs.len() - wins - losses;
        let bc = shared.iter().filter(|s| s.2 && !s.3).count() as u64;
        let cc = shared.iter().filter(|s| !s.2 && s.3).count() as u64;
        let mc = stats::mcnemar(bc, cc);
        json!({
            "n": diffs.len(),
            "mean_diff": stats::mean(&diffs),
            "ci_95": stats::bootstrap_mean_ci(&diffs, opts.resamples, opts.seed),
            "wins": wins, "losses": losses, "ties": ties,
            "mcnemar": {
                "a_only_passed": bc, "b_only_passed": cc,
                "p_value": mc.p(), "method": mc.method(),
                "p_exact": mc.p_exact, "chi2": mc.chi2, "p_chi2": mc.p_chi2,
                "significant": mc.p() < opts.alpha,
            },
        })
    };

    let winner = if significant {
        if delta > 0.0 {
            "a"
        } else {
            "b"
        }
    } else {
        "none"
    };
    let pp = (a.aggregated.pass_rate - b.aggregated.pass_rate) * 100.0;
    let sizes = format!(
        "n = {} vs {}",
        plural(sa.len(), "case", "cases"),
        plural(sb.len(), "case", "cases")
    );
    let mut summary = match welch {
        None => format!(
            "Too few cases to test a difference between {la} and {lb} ({sizes}; Welch's test needs at least 2 per side); delta mean {delta:+.3}"
        ),
        Some(w) if significant => {
            let (win, lose) = if delta > 0.0 { (&la, &lb) } else { (&lb, &la) };
            format!(
                "{win} beats {lose} by {:.3} mean score (Welch p={:.3}, 95% CI {:.3}..{:.3}; {sizes}); pass rate {pp:+.1} pp",
                delta.abs(),
                w.p,
                boot[0],
                boot[1]
            )
        }
        Some(w) => {
            let mut s = format!(
                "No significant difference between {la} and {lb}: delta mean {delta:+.3} (Welch p={:.3}, 95% CI {:.3}..{:.3}; {sizes}); pass rate {pp:+.1} pp",
                w.p, boot[0], boot[1]
            );
            if sa.len().min(sb.len()) < 30 {
                s.push_str(". With this few cases only large differences can be detected");
            }
            s
        }
    };
    if let Some(p) = paired_json.as_object() {
        summary.push_str(&format!(
            ". Paired on {}: {} for {la}, {} for {lb}, {} (McNemar p={:.3})",
            plural(
                p["n"].as_u64().unwrap_or(0) as usize,
                "shared case",
                "shared cases"
            ),
            plural(p["wins"].as_u64().unwrap_or(0) as usize, "win", "wins"),
            plural(p["losses"].as_u64().unwrap_or(0) as usize, "win", "wins"),
            plural(p["ties"].as_u64().unwrap_or(0) as usize, "tie", "ties"),
            p["mcnemar"]["p_value"].as_f64().unwrap_or(1.0)
        ));
    } else {
        summary.push_str(". No shared cases, so no paired comparison");
    }
    summary.push('.');
    let mut comparison = json!({
        "delta_mean": delta,
        "welch_t": welch_json,
        "bootstrap": {"delta_ci_95": boot, "resamples": opts.resamples, "seed": opts.seed},
        "paired": paired_json,
        "winner": winner,
        "alpha": opts.alpha,
        "summary": summary,
    });
    if welch.is_none() {
        comparison["reason"] = json!("insufficient_samples");
    }
    let mut out = json!({
        "a": side(a, &sa),
        "b": side(b, &sb),
        "comparison": comparison,
    });
    if !warnings.is_empty() {
        out["warnings"] = json!(warnings);
    }
    out
}

/// A readable terminal rendering of a comparison result.
pub fn terminal(result: &Value) -> String {
    let mut s = String::new();
    for k in ["a", "b"] {
        let x = &result[k];
        s.push_str(&format!(
            "{k}: {} ({})  mean {:.3}  std {:.3}  n {}  pass rate {:.1}%\n",
            x["eval_id"].as_str().unwrap_or(""),
            x["strategy"].as_str().unwrap_or(""),
            x["scores"]["mean"].as_f64().unwrap_or(0.0),
            x["scores"]["std"].as_f64().unwrap_or(0.0),
            x["scores"]["n"].as_u64().unwrap_or(0),
            x["pass_rate"].as_f64().unwrap_or(0.0) * 100.0
        ));
    }
    s.push_str(&format!(
        "\n{}\n",
        result["comparison"]["summary"].as_str().unwrap_or("")
    ));
    s
}
