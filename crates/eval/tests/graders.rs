//! Graders on crafted cases (§8.2, acceptance item 63).

use alc_eval::grader::{self, parse_grader, parse_graders, JudgeScale};
use serde_json::{json, Value};

fn score(spec: Value, output: &str, expected: Value) -> f64 {
    let g = parse_grader(&spec).expect("valid grader");
    grader::grade(&g, output, &expected).score
}

#[test]
fn exact_with_lower_and_default_trim() {
    assert_eq!(
        score(json!({"type":"exact"}), "  Paris \n", json!("Paris")),
        1.0
    );
    assert_eq!(score(json!({"type":"exact"}), "paris", json!("Paris")), 0.0);
    assert_eq!(
        score(
            json!({"type":"exact","normalize":["trim","lower"]}),
            " PARIS",
            json!("Paris")
        ),
        1.0
    );
    assert_eq!(
        score(
            json!({"type":"exact","normalize":["lower","collapse_ws","strip_punct"]}),
            "New   York!",
            json!("new york")
        ),
        1.0
    );
    // Any of several expected values; non-string expected is compared as JSON text.
    assert_eq!(
        score(json!("exact"), "paris", json!(["Paris", "paris"])),
        1.0
    );
    assert_eq!(score(json!("exact"), "42", json!(42)), 1.0);
}

#[test]
fn contains_is_case_insensitive_by_default() {
    assert_eq!(
        score(
            json!({"type":"contains"}),
            "The capital is PARIS.",
            json!("paris")
        ),
        1.0
    );
    assert_eq!(
        score(
            json!({"type":"contains","case_sensitive":true}),
            "The capital is PARIS.",
            json!("paris")
        ),
        0.0
    );
    assert_eq!(score(json!("contains"), "Lyon", json!("paris")), 0.0);
}

#[test]
fn regex_with_flag_i() {
    assert_eq!(
        score(
            json!({"type":"regex","pattern":"^answer: \\d+$"}),
            "ANSWER: 12",
            json!(null)
        ),
        0.0
    );
    assert_eq!(
        score(
            json!({"type":"regex","pattern":"^answer: \\d+$","flags":"i"}),
            "ANSWER: 12",
            json!(null)
        ),
        1.0
    );
    // The expected value is the pattern by default; `m` anchors per line.
    assert_eq!(
        score(
            json!({"type":"regex","flags":"m"}),
            "x\n42\ny",
            json!("^4\\d$")
        ),
        1.0
    );
    assert!(parse_grader(&json!({"type":"regex","pattern":"("})).is_err());
    assert!(parse_grader(&json!({"type":"regex","flags":"x"})).is_err());
}

#[test]
fn numeric_reads_the_last_number_with_thousands_separators() {
    assert_eq!(
        score(json!("numeric"), "The answer is 1,234.", json!(1234)),
        1.0
    );
    assert_eq!(
        score(json!("numeric"), "The answer is 1,234.", json!("1234")),
        1.0
    );
    assert_eq!(
        score(json!("numeric"), "3 apples and 4 pears make 7", json!(7)),
        1.0
    );
    assert_eq!(score(json!("numeric"), "  -2.5 ", json!(-2.5)), 1.0);
    assert_eq!(score(json!("numeric"), "about 1235", json!(1234)), 0.0);
    assert_eq!(
        score(
            json!({"type":"numeric","tolerance":0.01,"relative":true}),
            "1240",
            json!(1234)
        ),
        1.0
    );
    assert_eq!(
        score(json!({"type":"numeric","tolerance":1}), "1236", json!(1234)),
        0.0
    );
    let g = parse_grader(&json!("numeric")).unwrap();
    let r = grader::grade(&g, "no digits here", &json!(3));
    assert_eq!(r.score, 0.0);
    assert!(r.detail.unwrap().contains("no number"));
    assert_eq!(grader::extract_number("The answer is 1,234."), Some(1234.0));
}

#[test]
fn weights_combine_into_a_weighted_mean() {
    let gs = parse_graders(&json!([{"type":"exact"},{"type":"contains","weight":3}])).unwrap();
    let grades: Vec<_> = gs
        .iter()
        .map(|g| grader::grade(g, "Paris, France", &json!("Paris")))
        .collect();
    assert_eq!(grader::combine(&grades), 0.75);
}

#[test]
fn unknown_grader_is_a_clear_error() {
    let e = parse_graders(&json!([{"type":"bleu"}])).unwrap_err();
    assert_eq!(e.code, "invalid_params");
    assert!(e.message.contains("unknown grader 'bleu'"), "{}", e.message);
    assert!(e.message.contains("numeric"), "{}", e.message);
}

#[test]
fn judge_verdicts() {
    assert_eq!(grader::parse_verdict("YES", JudgeScale::Binary).0, 1.0);
    assert_eq!(grader::parse_verdict(" no.", JudgeScale::Binary).0, 0.0);
    let (s, d) = grader::parse_verdict("maybe", JudgeScale::Binary);
    assert_eq!(s, 0.0);
    assert!(d.unwrap().contains("unparseable"));
    assert_eq!(grader::parse_verdict("4", JudgeScale::OneToFive).0, 0.75);
    assert_eq!(grader::parse_verdict("9", JudgeScale::OneToFive).0, 0.0);
    let p = grader::judge_prompt(
        "Be right.",
        JudgeScale::Binary,
        &json!("2+2?"),
        &json!("4"),
        "four",
    );
    assert!(
        p.contains("Be right.")
            && p.contains("2+2?")
            && p.contains("four")
            && p.contains("YES or NO")
    );
}

#[test]
fn number_extraction_edge_cases() {
    assert_eq!(grader::extract_number("1e3"), Some(1000.0));
    assert_eq!(grader::extract_number("12,345,678"), Some(12_345_678.0));
    assert_eq!(grader::extract_number("x = 3, y = 4"), Some(4.0));
    assert_eq!(grader::extract_number("-.5"), Some(-0.5));
    assert_eq!(grader::extract_number("none"), None);
}
