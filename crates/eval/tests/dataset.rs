//! Dataset, suite and scenario parsing (§8.1, §8.3, §8.4).

use alc_eval::dataset::{self, parse_jsonl, parse_lua_scenario};
use serde_json::json;

#[test]
fn jsonl_defaults_and_shapes() {
    let text = "{\"id\":\"add-1\",\"input\":\"What is 2+2?\",\"expected\":\"4\",\"tags\":[\"arith\"]}\n\n\
                {\"input\":{\"task\":\"Capital of France?\",\"hint\":\"one word\"},\"expected\":[\"Paris\",\"paris\"]}\n";
    let ds = parse_jsonl(text, false).unwrap();
    assert_eq!(ds.cases.len(), 2);
    assert_eq!(ds.cases[0].id, "add-1");
    assert_eq!(ds.cases[0].tags, vec!["arith"]);
    assert_eq!(ds.cases[1].id, "case-3", "default id uses the line number");
    assert_eq!(ds.cases[1].expected, json!(["Paris", "paris"]));
}

#[test]
fn malformed_lines_are_reported_with_line_numbers() {
    let text = "{\"input\":\"a\",\"expected\":\"1\"}\nnot json\n{\"expected\":\"2\"}\n{\"id\":\"x\",\"input\":\"b\"}\n{\"id\":\"x\",\"input\":\"c\"}\n{\"input\":\"d\",\"graders\":[{\"type\":\"nope\"}]}\n";
    let e = parse_jsonl(text, false).unwrap_err();
    assert_eq!(e.code, "invalid_params");
    for needle in [
        "line 2: invalid JSON",
        "line 3: missing `input`",
        "line 5: duplicate case id 'x'",
        "line 6: unknown grader 'nope'",
        "4 bad lines",
    ] {
        assert!(e.message.contains(needle), "{needle:?} in {}", e.message);
    }
    assert!(e.hint.unwrap().contains("--skip-bad"));
    let ds = parse_jsonl(text, true).unwrap();
    assert_eq!(ds.cases.len(), 2);
    assert_eq!(
        ds.skipped.iter().map(|b| b.line).collect::<Vec<_>>(),
        vec![2, 3, 5, 6]
    );
}

#[test]
fn shipped_arith50_dataset_loads() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets");
    let s = dataset::load_dataset(&root.join("arith50.jsonl"), false).unwrap();
    assert_eq!(s.cases.len(), 50);
    assert_eq!(s.name, "arith50");
    for c in &s.cases {
        let e = c.expected.as_str().expect("string answers");
        assert!(e.parse::<f64>().is_ok(), "{}: numeric answer {e}", c.id);
    }
    let suite = dataset::load_suite(&root.join("arith50.eval.toml"), false).unwrap();
    assert_eq!(suite.cases.len(), 50);
    assert_eq!(suite.graders[0].type_name(), "numeric");
    assert_eq!(suite.content_hash(), s.content_hash());
}

#[test]
fn suite_with_inline_cases_and_graders() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("small.eval.toml");
    std::fs::write(
        &p,
        "name = \"small\"\npass_threshold = 0.5\noutput_field = \"result.answer\"\n\n[[cases]]\nid = \"a\"\ninput = \"1+1?\"\nexpected = \"2\"\n\n[[graders]]\ntype = \"numeric\"\ntolerance = 0.001\n\n[[graders]]\ntype = \"llm_judge\"\nrubric = \"Correct.\"\nweight = 0.5\n",
    )
    .unwrap();
    let s = dataset::load_suite(&p, false).unwrap();
    assert_eq!(s.name, "small");
    assert_eq!(s.pass_threshold, 0.5);
    assert_eq!(s.output_field.as_deref(), Some("result.answer"));
    assert_eq!(s.graders.len(), 2);
    assert!(s.graders[1].is_judge());
    assert_eq!(s.graders[1].weight, 0.5);
    let bad = dir.path().join("bad.eval.toml");
    std::fs::write(
        &bad,
        "[[cases]]\ninput = \"x\"\n[[graders]]\ntype = \"rouge\"\n",
    )
    .unwrap();
    let e = dataset::load_suite(&bad, false).unwrap_err();
    assert!(
        e.message.contains("unknown grader 'rouge'"),
        "{}",
        e.message
    );
    let e = dataset::load_dataset(&dir.path().join("missing.jsonl"), false).unwrap_err();
    assert_eq!(e.code, "not_found");
}

#[test]
fn lua_simple_scenario_converts_natively() {
    let s = parse_lua_scenario(
        "return { name = 'tiny', cases = { {input = 'What is 2+2?', expected = '4'}, {input = 'Capital of France?', expected = 'Paris'} }, graders = {'exact_match', 'contains'} }",
        "fallback",
    )
    .unwrap();
    assert_eq!(s.name, "tiny");
    assert_eq!(s.cases.len(), 2);
    assert_eq!(s.cases[1].expected, json!("Paris"));
    assert_eq!(
        s.graders.iter().map(|g| g.type_name()).collect::<Vec<_>>(),
        vec!["exact", "contains"]
    );
    let e = parse_lua_scenario("return { cases = {{input='x'}}, graders = {'bleu'} }", "t")
        .unwrap_err();
    assert_eq!(e.code, "invalid_params");
    assert!(e.message.contains("unknown grader 'bleu'"));
    let e = parse_lua_scenario("return { 1, 2 }", "full").unwrap_err();
    assert!(e.message.contains("evalframe"));
    // The scenario chunk has no io/os.
    assert!(parse_lua_scenario("return { cases = { {input = io.read()} } }", "t").is_err());
}
