mod common;
use common::*;

#[tokio::test]
async fn llm_round_trip() {
    let e = engine();
    let (t, pauses) = run_code(&e, "local a = alc.llm('hi'); return a .. '!'").await;
    assert_eq!(completed(&t), serde_json::json!("A1!"));
    assert_eq!(pauses.len(), 1);
}
