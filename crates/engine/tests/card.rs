//! `alc.card` (lua-api.md §2.9; checklist items 111–117, the card parts of 131 and 134) and
//! the replay of card reads and generated ids after a restart (§1.6).
mod common;
use common::*;

use std::path::Path;
use std::sync::Arc;

use alc_core::{BudgetLimits, Durability, EngineConfig, Outcome, Program, SessionSpec, UntilPause};
use alc_engine::{
    CardStore, Engine, FileCardStore, HostServices, ManualClock, MemoryCardStore, PackageRoots,
    ShutdownMode,
};
use alc_store::SqliteJournal;
use serde_json::json;

const T0: i64 = 1_700_000_000_000;

/// `E(f, ...)` returns the error of a call that must fail (a plain string).
const PRE: &str = r#"
local function E(f, ...)
  local ok, e = pcall(f, ...)
  assert(not ok, "call was expected to fail")
  assert(type(e) == "string", "error is not a string")
  return e
end
"#;

fn config() -> EngineConfig {
    EngineConfig {
        workers: 2,
        default_budget: BudgetLimits::default(),
        ..EngineConfig::default()
    }
}

/// An engine with a frozen clock (1700000000) over `cards`.
fn eng(cards: Arc<dyn CardStore>) -> Engine {
    let services = HostServices {
        modules: Arc::new(PackageRoots::default()),
        clock: Arc::new(ManualClock::new(T0)),
        cards,
        ..HostServices::default()
    };
    Engine::start_blocking(config(), services).expect("engine starts")
}

async fn val(e: &Engine, code: &str) -> serde_json::Value {
    let (t, _) = run_code(e, &format!("{PRE}\n{code}")).await;
    completed(&t)
}

#[tokio::test]
async fn item111_create_fills_defaults() {
    let e = eng(Arc::new(MemoryCardStore::new()));
    let v = val(
        &e,
        r#"
        local r = alc.card.create({pkg = {name = "pk"}})
        local c = alc.card.get(r.card_id)
        return {
          r.card_id:match("^pk_model_20231114T221320_%x%x%x%x%x%x$") ~= nil,
          r.path == nil, r.pkg, c.schema_version, c.created_at,
          c.created_by:sub(1, 4), c.card_id == r.card_id, c.pkg.name,
          alc.card.get("missing") == nil,
        }"#,
    )
    .await;
    assert_eq!(
        v,
        json!([
            true,
            true,
            "pk",
            "card/v0",
            "2023-11-14T22:13:20Z",
            "alc@",
            true,
            "pk",
            true
        ])
    );
}

#[tokio::test]
async fn create_keeps_given_fields_and_fingerprints_params() {
    let e = eng(Arc::new(MemoryCardStore::new()));
    let v = val(
        &e,
        r#"
        local r = alc.card.create({pkg = {name = "pk"}, created_at = "x", schema_version = "s",
          params = {b = 2, a = "q"}, param_fingerprint = "stale", gone = alc.json_null})
        local c = alc.card.get(r.card_id)
        return {c.created_at, c.schema_version, c.param_fingerprint, c.gone == nil}"#,
    )
    .await;
    // 64-bit wrapping DJB2 over `{"a":"q","b":2}`.
    let text = r#"{"a":"q","b":2}"#;
    let h = text.bytes().fold(5381u64, |h, b| {
        h.wrapping_mul(33).wrapping_add(u64::from(b))
    });
    assert_eq!(v, json!(["x", "s", format!("{h:016x}"), true]));
}

#[tokio::test]
async fn item112_model_short_and_distinct_ids() {
    let store: Arc<dyn CardStore> = Arc::new(MemoryCardStore::new());
    let e = eng(store.clone());
    let v = val(
        &e,
        r#"
        local a = alc.card.create({pkg = {name = "pk"}, model = {id = "claude-opus-4-6"}})
        local b = alc.card.create({pkg = {name = "pk"}, model = {id = "gpt-4o"}})
        local c1 = alc.card.create({pkg = {name = "pk"}})
        local c2 = alc.card.create({pkg = {name = "pk"}})
        return {a.card_id:sub(1, 10), b.card_id:sub(1, 6), c1.card_id ~= c2.card_id}"#,
    )
    .await;
    assert_eq!(v, json!(["pk_opus46_", "pk_4o_", true]));
    // Two sessions creating identical cards under the same fixed clock.
    let code = r#"return alc.card.create({pkg = {name = "same"}, x = 1}).card_id"#;
    let first = val(&e, code).await;
    let second = val(&e, code).await;
    assert_ne!(first, second);
    assert_eq!(store.list(Some("same")).unwrap().len(), 2);
}

#[tokio::test]
async fn item113_create_errors() {
    let e = eng(Arc::new(MemoryCardStore::new()));
    let v = val(
        &e,
        r#"
        local first = alc.card.create({pkg = {name = "pk"}, card_id = "pk_a"})
        return {
          E(alc.card.create, {}),
          E(alc.card.create, {pkg = {name = "../evil"}}),
          first.card_id,
          E(alc.card.create, {pkg = {name = "pk"}, card_id = "pk_a"}),
          E(alc.card.create, {pkg = {name = "other"}, card_id = "pk_a"}),
          E(alc.card.create, {pkg = {name = "pk"}, card_id = "../x"}),
          E(alc.card.create, {pkg = {name = "pk"}, card_id = ".hidden"}),
          E(alc.card.create, 5),
          E(alc.card.create, {pkg = {name = "pk"}, f = print}),
        }"#,
    )
    .await;
    assert_eq!(
        v,
        json!([
            "alc.card.create: pkg.name is required",
            "alc.card.create: invalid name '../evil'",
            "pk_a",
            "alc.card.create: card 'pk_a' already exists (immutable)",
            "alc.card.create: card 'pk_a' already exists (immutable)",
            "alc.card.create: invalid name '../x'",
            "alc.card.create: invalid name '.hidden'",
            "alc.card.create: input must be a table",
            "alc.card.create: cannot encode value of type 'function' at $.f",
        ])
    );
}

#[tokio::test]
async fn item114_append() {
    let e = eng(Arc::new(MemoryCardStore::new()));
    let v = val(
        &e,
        r#"
        local id = alc.card.create({pkg = {name = "pk"}}).card_id
        local merged = alc.card.append(id, {extra = {y = 2}})
        local e1 = E(alc.card.append, id, {extra = 1, other = 2})
        local after = alc.card.get(id)
        return {
          merged.extra.y, merged.pkg.name, merged.card_id == id,
          e1 == "alc.card.append: key 'extra' already set on card '" .. id .. "' (immutable)",
          after.other == nil,
          E(alc.card.append, "nope", {}),
          E(alc.card.append, id, 5),
        }"#,
    )
    .await;
    assert_eq!(
        v,
        json!([
            2,
            "pk",
            true,
            true,
            true,
            "alc.card.append: card 'nope' not found",
            "alc.card.append: bad argument #2 'fields' (table expected, got number)",
        ])
    );
}

#[tokio::test]
async fn item115_samples() {
    let e = eng(Arc::new(MemoryCardStore::new()));
    let v = val(
        &e,
        r#"
        local id = alc.card.create({pkg = {name = "pk"}, card_id = "pk_1"}).card_id
        local id2 = alc.card.create({pkg = {name = "pk"}, card_id = "pk_2"}).card_id
        local id3 = alc.card.create({pkg = {name = "pk"}, card_id = "pk_3"}).card_id
        local w = alc.card.write_samples(id, {{case="c0", passed=true}, {case="c1", passed=false},
          {case="c2", passed=true}})
        local function cases(rows)
          local out = {}
          for i, r in ipairs(rows) do out[i] = r.case end
          return out
        end
        return {
          w.count,
          cases(alc.card.read_samples(id)),
          cases(alc.card.read_samples(id, {where = {passed = true}})),
          cases(alc.card.read_samples(id, {offset = 1, limit = 1})),
          cases(alc.card.read_samples(id, {where = {passed = true}, offset = 1})),
          E(alc.card.write_samples, id, {}),
          alc.card.write_samples(id2, {}).count,
          E(alc.card.write_samples, id3, {a = 1}),
          E(alc.card.write_samples, "nope", {}),
          #alc.card.read_samples(id2),
          #alc.card.read_samples(id3),
        }"#,
    )
    .await;
    assert_eq!(
        v,
        json!([
            3,
            ["c0", "c1", "c2"],
            ["c0", "c2"],
            ["c1"],
            ["c2"],
            "alc.card.write_samples: samples already exist for 'pk_1' (write-once)",
            0,
            "alc.card.write_samples: samples must be an array",
            "alc.card.write_samples: card 'nope' not found",
            0,
            0
        ])
    );
}

#[tokio::test]
async fn item116_find_and_list() {
    let clock = Arc::new(ManualClock::new(T0));
    let services = HostServices {
        clock: clock.clone(),
        cards: Arc::new(MemoryCardStore::new()),
        ..HostServices::default()
    };
    let e = Engine::start_blocking(config(), services).expect("engine starts");
    // Three cards, one second apart: no pass_rate, 0.5, 1 (integer; the newest).
    for (id, stats) in [
        ("pk_none", "nil"),
        ("pk_half", "{pass_rate = 0.5}"),
        ("pk_one", "{pass_rate = 1}"),
    ] {
        val(
            &e,
            &format!(
                "alc.card.create({{pkg = {{name = 'pk'}}, card_id = '{id}', stats = {stats}}})"
            ),
        )
        .await;
        clock.advance(1000);
    }
    val(
        &e,
        "alc.card.create({pkg = {name = 'other'}, card_id = 'zz'})",
    )
    .await;
    let v = val(
        &e,
        r#"
        local function ids(rows)
          local out = alc.array({})
          for i, r in ipairs(rows) do out[i] = r.card_id end
          return out
        end
        local list = alc.card.list({pkg = "pk"})
        return {
          ids(alc.card.find({pkg = "pk", order_by = "-stats.pass_rate"})),
          ids(alc.card.find({pkg = "pk", order_by = "stats.pass_rate"})),
          ids(alc.card.find({pkg = "pk", where = {stats = {pass_rate = {gte = 0.8}}}})),
          ids(alc.card.find({pkg = "pk", where = {pkg = "pk"}})),
          ids(alc.card.find({pkg = "pk", where = {pkg = {name = "pk"}}})),
          ids(list),
          list[1].pass_rate == 1, list[3].pass_rate == nil, list[1].pkg, list[1].created_at,
          ids(alc.card.find({where = {stats = {pass_rate = {["in"] = {0.5, 1}}}},
            order_by = {"-stats.pass_rate"}})),
          ids(alc.card.find({where = {_or = {{card_id = "zz"}, {stats = {pass_rate = 1.0}}}}})),
          ids(alc.card.find({where = {_not = {pkg = {name = "pk"}}}})),
          ids(alc.card.find({where = {stats = {exists = false}}})),
          ids(alc.card.find({pkg = "pk", offset = 1, limit = 1})),
          ids(alc.card.find({where = {card_id = {starts_with = "pk_", ne = "pk_one"}}})),
          ids(alc.card.find()),
          E(alc.card.find, {order_by = 5}),
          E(alc.card.find, {limit = -1}),
          E(alc.card.find, {where = {x = {["in"] = 3}}}),
          E(alc.card.find, 7),
        }"#,
    )
    .await;
    assert_eq!(
        v,
        json!([
            ["pk_one", "pk_half", "pk_none"],
            ["pk_half", "pk_one", "pk_none"],
            ["pk_one"],
            [],
            ["pk_one", "pk_half", "pk_none"],
            ["pk_one", "pk_half", "pk_none"],
            true,
            true,
            "pk",
            "2023-11-14T22:13:22Z",
            ["pk_one", "pk_half"],
            ["zz", "pk_one"],
            ["zz"],
            ["zz", "pk_none"],
            ["pk_half"],
            ["pk_half", "pk_none"],
            ["zz", "pk_one", "pk_half", "pk_none"],
            "alc.card.find: order_by must be a path or an array of paths",
            "alc.card.find: limit must be a non-negative integer",
            "alc.card.find: 'in' at 'x' expects an array",
            "alc.card.find: bad argument #1 'query' (table expected, got number)",
        ])
    );
}

#[tokio::test]
async fn list_ties_by_card_id_descending() {
    let e = eng(Arc::new(MemoryCardStore::new()));
    let v = val(
        &e,
        r#"
        for _, id in ipairs({"b", "c", "a"}) do
          alc.card.create({pkg = {name = "pk"}, card_id = id})
        end
        local out = {}
        for i, r in ipairs(alc.card.list()) do out[i] = r.card_id end
        return out"#,
    )
    .await;
    assert_eq!(v, json!(["c", "b", "a"]));
}

#[tokio::test]
async fn item117_lineage_and_aliases() {
    let e = eng(Arc::new(MemoryCardStore::new()));
    let v = val(
        &e,
        r#"
        local a = alc.card.create({pkg = {name = "pk"}, card_id = "a", stats = {pass_rate = 0.1}}).card_id
        local b = alc.card.create({pkg = {name = "pk"}, card_id = "b",
          metadata = {prior_card_id = a, prior_relation = "derived_from"}}).card_id
        local c = alc.card.create({pkg = {name = "pk"}, card_id = "c",
          metadata = {prior_card_id = b}}).card_id
        local l = alc.card.lineage({card_id = c})
        local nodes = {}
        for i, n in ipairs(l.nodes) do nodes[i] = n.card_id .. "(" .. n.depth .. ")" end
        local down = alc.card.lineage({card_id = a, direction = "down", include_stats = false})
        local dn = {}
        for i, n in ipairs(down.nodes) do dn[i] = n.card_id .. "(" .. n.depth .. ")" end
        local short = alc.card.lineage({card_id = c, depth = 1})
        local filtered = alc.card.lineage({card_id = c, direction = "both",
          relation_filter = {"derived_from"}})
        local row = alc.card.alias_set("best", c, {note = "n"})
        local rows = alc.card.alias_list()
        return {
          nodes, #l.edges, l.edges[1].from, l.edges[1].to, l.edges[2].relation, l.truncated,
          l.root, l.nodes[3].stats.pass_rate,
          dn, down.nodes[1].stats == nil, down.edges[2].from,
          #short.nodes, short.truncated,
          #filtered.nodes,
          alc.card.lineage({card_id = "unknown"}) == nil,
          E(alc.card.lineage, {card_id = c, direction = "sideways"}),
          row.name, row.card_id, row.note, row.set_at,
          alc.card.get_by_alias("best").card_id == c,
          alc.card.get_by_alias("unknown") == nil,
          #rows, rows[1].name, rows[1].note, type(rows[1].set_at),
          #alc.card.alias_list({pkg = "pk"}),
          E(alc.card.alias_set, "../x", c),
          E(alc.card.alias_set, "x", "nope"),
        }"#,
    )
    .await;
    assert_eq!(
        v,
        json!([
            ["c(0)", "b(-1)", "a(-2)"],
            2,
            "c",
            "b",
            "derived_from",
            false,
            "c",
            0.1,
            ["a(0)", "b(1)", "c(2)"],
            true,
            "c",
            2,
            true,
            1,
            true,
            "alc.card.lineage: direction must be 'up', 'down', or 'both' (got 'sideways')",
            "best",
            "c",
            "n",
            "2023-11-14T22:13:20Z",
            true,
            true,
            1,
            "best",
            "n",
            "string",
            0,
            "alc.card.alias_set: invalid name '../x'",
            "alc.card.alias_set: card 'nope' not found",
        ])
    );
}

/// Item 131, card part: errors are plain strings starting with the qualified name.
#[tokio::test]
async fn item131_card_errors_are_plain_strings() {
    let e = eng(Arc::new(MemoryCardStore::new()));
    let v = val(
        &e,
        r#"
        local ok, e = pcall(alc.card.create, 5)
        return {ok, type(e), e:match("^alc%.card%.create: ") ~= nil,
          e:find("stack traceback", 1, true) == nil,
          E(alc.card.get, {}), E(alc.card.list, 3)}"#,
    )
    .await;
    assert_eq!(
        v,
        json!([
            false,
            "string",
            true,
            true,
            "alc.card.get: bad argument #1 'card_id' (string expected, got table)",
            "alc.card.list: bad argument #1 'filter' (table expected, got number)",
        ])
    );
}

/// Item 134: the key sets of `alc`, `alc.state`, `alc.stats` and `alc.card` equal §2
/// exactly, every function member is a function, and `alc.llm = nil` stays in its session.
#[tokio::test]
async fn item134_key_sets() {
    let e = eng(Arc::new(MemoryCardStore::new()));
    let v = val(
        &e,
        r#"
        local function keys(t)
          local out = {}
          for k in pairs(t) do out[#out + 1] = k end
          table.sort(out)
          return table.concat(out, " ")
        end
        local function sorted(s)
          local out = {}
          for w in s:gmatch("%S+") do out[#out + 1] = w end
          table.sort(out)
          return table.concat(out, " ")
        end
        local funcs = "llm llm_batch ask fork json_encode json_decode array object chunk " ..
          "match_enum match_bool parse_score parse_number json_extract fingerprint log progress " ..
          "time budget_remaining budget_check cache cache_info cache_clear map reduce filter vote " ..
          "ground specify llm_safe llm_json tuning parallel pipe eval"
        local values = "json_null env state card stats math"
        local bad = {}
        for f in funcs:gmatch("%S+") do
          if type(alc[f]) ~= "function" then bad[#bad + 1] = f end
        end
        for _, group in ipairs({"state", "stats", "card"}) do
          for k, f in pairs(alc[group]) do
            if type(f) ~= "function" then bad[#bad + 1] = group .. "." .. k end
          end
        end
        local out = {
          keys(alc) == sorted(funcs .. " " .. values),
          keys(alc.state), keys(alc.stats), keys(alc.card), #bad,
        }
        alc.llm = nil
        return out"#,
    )
    .await;
    assert_eq!(
        v,
        json!([
            true,
            "delete get has incr keys list set set_nx show update",
            "get llm_calls record",
            "alias_list alias_set append create find get get_by_alias lineage list read_samples write_samples",
            0
        ])
    );
    assert_eq!(val(&e, "return type(alc.llm)").await, json!("function"));
}

/// The file store: the reference layout under the cards directory, shared by sessions.
#[tokio::test]
async fn file_store_layout_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cards");
    let e = eng(Arc::new(FileCardStore::new(&root)));
    let v = val(
        &e,
        r#"
        local id = alc.card.create({pkg = {name = "pk"}, model = {id = "gpt-4o"},
          stats = {pass_rate = 0.5, n = 2}, list = {1, 2}}).card_id
        alc.card.write_samples(id, {{case = "a"}, {case = "b"}})
        alc.card.append(id, {note = "x"})
        alc.card.alias_set("best", id, {pkg = "pk"})
        return id"#,
    )
    .await;
    let id = v.as_str().unwrap().to_string();
    assert!(root.join("pk").join(format!("{id}.toml")).is_file());
    assert!(root
        .join("pk")
        .join(format!("{id}.samples.jsonl"))
        .is_file());
    assert!(root.join("_aliases.toml").is_file());
    let text = std::fs::read_to_string(root.join("pk").join(format!("{id}.toml"))).unwrap();
    assert!(text.contains("schema_version = \"card/v0\""), "{text}");
    let samples =
        std::fs::read_to_string(root.join("pk").join(format!("{id}.samples.jsonl"))).unwrap();
    assert_eq!(samples, "{\"case\":\"a\"}\n{\"case\":\"b\"}\n");
    // Another session (and another store over the same directory) sees everything.
    let e2 = eng(Arc::new(FileCardStore::new(&root)));
    let v = val(
        &e2,
        &format!(
            r#"
        local c = alc.card.get("{id}")
        local s = alc.card.list()[1]
        return {{c.note, c.stats.n, c.list[2], s.model, s.pass_rate,
          #alc.card.read_samples("{id}"), alc.card.get_by_alias("best").card_id}}"#
        ),
    )
    .await;
    assert_eq!(v, json!(["x", 2, 2, "gpt-4o", 0.5, 2, id]));
}

fn durable_engine(db: &Path, cards: &Path, clock_ms: i64) -> Engine {
    let journal = SqliteJournal::open(db, Durability::Normal).expect("journal opens");
    let services = HostServices {
        clock: Arc::new(ManualClock::new(clock_ms)),
        state: Arc::new(journal.state_store()),
        state_shares_journal: true,
        cards: Arc::new(FileCardStore::new(cards)),
        ..HostServices::default()
    };
    Engine::start_with_journal(config(), Arc::new(journal), services).expect("engine starts")
}

/// Card reads and generated ids are served from the journal when a session is rebuilt after
/// a restart: the replayed script sees the values it saw before, even though the store has
/// changed meanwhile, and its create is not applied a second time.
#[test]
fn card_reads_and_ids_are_replayed_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alc.db");
    let cards = dir.path().join("cards");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let a = durable_engine(&db, &cards, T0);
        val(&a, "alc.card.create({pkg = {name = 'pk'}, card_id = 'base', v = 1})").await;
        let spec = SessionSpec::new(Program::Code {
            source: r#"
                local made = alc.card.create({pkg = {name = "pk"}, n = 1}).card_id
                local seen = #alc.card.list()
                local base = alc.card.get("base")
                local found = #alc.card.find({where = {extra = {exists = true}}})
                local answer = alc.llm("saw " .. seen .. " " .. tostring(base.extra) .. " " .. found)
                return {made = made, seen = seen, extra = base.extra or "none", found = found,
                  now = #alc.card.list(), answer = answer}
            "#
            .into(),
            name: None,
        });
        let id = a.spawn(spec).await.unwrap();
        let UntilPause::Paused { .. } = a.run_until_pause(&id, HANG).await.unwrap() else {
            panic!("expected a pause")
        };
        // Meanwhile another session changes the store.
        val(
            &a,
            "alc.card.append('base', {extra = 'later'}) alc.card.create({pkg = {name = 'pk'}, card_id = 'late'})",
        )
        .await;
        a.shutdown(ShutdownMode::Drain).await;
        drop(a);
        let made_before: Vec<String> = FileCardStore::new(&cards)
            .list(Some("pk"))
            .unwrap()
            .iter()
            .map(|c| c.card["card_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(made_before.len(), 3, "{made_before:?}");

        // A later process (the clock moved on) rebuilds the session from the journal.
        let b = durable_engine(&db, &cards, T0 + 65_000);
        let UntilPause::Paused { snapshot } = b.run_until_pause(&id, HANG).await.unwrap() else {
            panic!("adopted paused")
        };
        let batch = snapshot.pending.clone().unwrap();
        assert_eq!(prompt_of(&batch.queries[0]), "saw 2 nil 0");
        b.resume(
            &id,
            alc_core::Answers {
                round: Some(batch.round),
                answers: vec![alc_core::Answer::text(
                    Some(batch.queries[0].id.clone()),
                    "ok",
                )],
            },
        )
        .await
        .unwrap();
        let t = b.wait(&id).await.unwrap();
        let Outcome::Completed { value } = t.outcome else {
            panic!("{:?}", t.outcome)
        };
        let made = value["made"].as_str().unwrap();
        assert!(made.starts_with("pk_model_20231114T221320_"), "{made}");
        assert!(made_before.iter().any(|m| m == made));
        assert_eq!(value["seen"], json!(2));
        assert_eq!(value["extra"], json!("none"));
        assert_eq!(value["found"], json!(0));
        assert_eq!(value["now"], json!(3), "live reads after the replay see the store");
        // The replayed create wrote nothing new.
        assert_eq!(FileCardStore::new(&cards).list(None).unwrap().len(), 3);
        b.shutdown(ShutdownMode::Drain).await;
    });
}
