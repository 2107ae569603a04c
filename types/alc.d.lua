---@meta alc
-- LuaCATS definitions of the `alc.*` strategy API and the `ctx` global, for editors backed by
-- lua-language-server. Declarations only: nothing here runs inside a session (the engine builds
-- the real `alc` table). Source of truth: docs spec `lua-api.md` §1.2, §2, §3.
--
-- Conventions used in the descriptions:
--   * "Pauses" = host-yield call: the session waits until an answerer supplies input.
--   * "Journaled" = the result is recorded and served from the journal on replay.
--   * "Budgeted" = the call consumes LLM budget (see `alc.budget_remaining`).
--   * Every error raised by an `alc.*` function is a plain string `alc.<name>: <reason>`, except the
--     stable code prefixes `budget_exceeded: `, `provider_error[<class>]: `, `scripted_no_match: `,
--     `not_yieldable: `, `invalid_request: ` and `stats_limit: `.
--   * Argument errors read `alc.<name>: bad argument #<n> '<param>' (<expected> expected, got <type>)`.

---------------------------------------------------------------------------------------------------
-- Shared aliases
---------------------------------------------------------------------------------------------------

---A Lua value the JSON rules can encode: nil, boolean, number, UTF-8 string, `alc.json_null`, or a
---table of those (no functions, threads, other userdata, cycles, or nesting deeper than 128).
---@alias alc.JsonValue nil|boolean|number|string|alc.JsonNull|table

---Diagnostic level for `alc.log`; any other string is kept verbatim and treated as `info`.
---@alias alc.LogLevel "error"|"warn"|"info"|"debug"|"trace"|string

---How `alc.ask` ended.
---@alias alc.AskStatus "accepted"|"declined"|"cancelled"|"timeout"|"unavailable"

---A strategy reference for `alc.pipe`: a package name (must export `run`) or an inline stage.
---@alias alc.PipeStage string|fun(ctx: alc.Ctx): table

---Card query predicate: keys are ANDed; `_and` / `_or` take arrays of predicates, `_not` negates; a
---table whose keys are all operators (`eq ne lt lte gt gte in nin exists contains starts_with`,
---`in` written `["in"]`) is a leaf comparison; other tables descend into a section; scalars mean `eq`.
---@alias alc.CardWhere table<string, any>

---------------------------------------------------------------------------------------------------
-- Globals
---------------------------------------------------------------------------------------------------

---Budget limits read from `ctx.budget` when it is a table (other shapes are package data).
---Fields must be non-negative integers; others are ignored with a `warn` log.
---@class alc.BudgetLimits
---@field max_llm_calls? integer Maximum LLM queries for the whole session (fork children and pipe stages included).
---@field max_elapsed_ms? integer Maximum virtual-clock milliseconds since session start, pauses included.
---@field max_tokens? integer Maximum tokens (provider usage, else an estimate) for the session.

---The session context: decoded from the host's JSON context. Writable.
---`ctx.env` (when a table) is consumed by the engine to build `alc.env` and is not visible here.
---@class alc.Ctx
---@field task? string The task text given to the strategy.
---@field result? any Where a package run conventionally puts its answer.
---@field budget? alc.BudgetLimits|number|string|any Budget limits when a table; otherwise opaque package data (e.g. an iteration count).
---@field _ns? string State namespace for `alc.state` (default `"default"`); must match `^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$`.
---@field auto_card? boolean Package knob used by the corpus to request a run card.
---@field pipe_history? alc.PipeHistoryEntry[] Set by `alc.pipe` on the working copy.
---@field [string] any Package knobs.

---The session context (see `alc.Ctx`).
---@type alc.Ctx
ctx = {}

---The strategy API. An ordinary writable table: members may be replaced at run time, and Layer 1
---helpers look up `alc.llm` and friends through this global at call time.
---@class alc
alc = {}

---------------------------------------------------------------------------------------------------
-- 2.1 Host-yield functions
---------------------------------------------------------------------------------------------------

---Options of `alc.llm` (also accepted per item by `alc.llm_batch` and by the Layer 1 wrappers).
---Invalid values fall back leniently with a `warn` log instead of raising.
---@class alc.LlmOpts
---@field system? string|number System prompt; numbers are coerced, other types ignored with a `warn` log.
---@field max_tokens? integer Answer length cap (default 1024); non-integral values truncated; < 1 or non-number → 1024.
---@field temperature? number Sampling temperature in [0, 2]; out of range or non-numeric → ignored.
---@field model? string Model hint (≤ 200 bytes) the answerer may honour.
---@field role? string Routing hint (≤ 64 bytes), e.g. `"grader"`.
---@field grounded? boolean Host hint: answer from evidence (default false).
---@field underspecified? boolean Host hint: the prompt needs intent from outside (default false).
---@field cache_key? string `alc.cache` only: explicit memo key (ignored by `alc.llm`).
---@field cache_skip? boolean `alc.cache` only: bypass the memo without reading or storing (ignored by `alc.llm`).

---One query of `alc.llm_batch`: a prompt plus any `alc.llm` option.
---@class alc.BatchItem: alc.LlmOpts
---@field prompt string|number The prompt text (required).

---Flat object schema accepted by `alc.ask`.
---@class alc.AskSchema
---@field type "object"
---@field properties table<string, alc.AskSchemaProperty>
---@field required? string[]

---@class alc.AskSchemaProperty
---@field type "string"|"number"|"integer"|"boolean"
---@field enum? any[]
---@field description? string

---Options of `alc.ask`. `choices` and `schema` are mutually exclusive.
---@class alc.AskOpts
---@field choices? string[] 1–64 strings; the answer must be one of them.
---@field schema? alc.AskSchema Flat object schema; the answer is then a table.
---@field default? any Returned (with a non-`accepted` status) when no accepted answer arrives.
---@field timeout_ms? integer ≥ 1; resume with status `timeout` after this long without an answer.

---Options of `alc.fork`.
---@class alc.ForkOpts
---@field on_error? "skip"|"abort" `"abort"` raises on the first child failure; anything else (default `"skip"`) records it.

---One entry of the `alc.fork` result, in input order.
---@class alc.ForkResult
---@field strategy string Package name of the child.
---@field ok boolean Whether the child finished without error.
---@field result? any JSON copy of the child's return value (when `ok`).
---@field error? string Error message without traceback (when not `ok`).

---Ask the model. Pauses, journaled, budgeted (1 call).
---
---Errors: `alc.llm: bad argument #1 'prompt' (string expected, got <type>)`;
---`invalid_request: prompt and system exceed 1048576 bytes`; `not_yieldable: alc.llm cannot pause here (...)`;
---`budget_exceeded: ...`; answerer failures `provider_error[<class>]: ...` / `scripted_no_match: ...`.
---@param prompt string|number Prompt text (≤ 1 MiB together with `system`).
---@param opts? alc.LlmOpts Query options.
---@return string answer The answer text (possibly empty, never nil).
function alc.llm(prompt, opts) end

---Ask the model several questions in one pause. Pauses, journaled, budgeted (n calls, admitted all or none).
---Answers are returned in input order whatever order they arrive in.
---
---Errors: `alc.llm_batch: items must be a non-empty array`; `alc.llm_batch: item <i>: table expected, got <type>`;
---`alc.llm_batch: item <i>: prompt is required`; `invalid_request: batch of <n> exceeds 256 items`;
---`budget_exceeded: ...`; on answerer failure the first failing item's error (input order) after all items finish.
---@param items alc.BatchItem[] Non-empty array of at most 256 queries.
---@return string[] answers One answer per item, in input order.
function alc.llm_batch(items) end

---Ask a person (not a model). Pauses (unless no human channel exists), journaled, not budgeted.
---Returns `(answer, "accepted")`, or `(opts.default, status)` with status `declined`, `cancelled`, `timeout` or
---`unavailable` (the last without pausing when the session has no channel to a person).
---
---Errors: `alc.ask: question must be a non-empty string`; `alc.ask: opts.choices and opts.schema are mutually exclusive`;
---`alc.ask: opts.choices must be an array of 1 to 64 strings`; `alc.ask: unsupported schema: <reason>`;
---`not_yieldable: ...`; answerer failures such as `scripted_no_match: ...`.
---@param question string|number Non-empty question text.
---@param opts? alc.AskOpts Choices or schema, default and timeout.
---@return any answer A string (free text or chosen choice), a table (schema), or `opts.default`.
---@return alc.AskStatus status How the question ended.
function alc.ask(question, opts) end

---Run several packages as child sessions on a JSON copy of `ctx`, scheduled deterministically; all blocked
---children's queries share one pause. Pauses, journaled, budgeted (children's calls, shared session budget).
---Each child runs `require(name).run(ctx_copy)` in a fresh VM with its own state namespace.
---
---Errors: `alc.fork: strategies must be a non-empty array`; `alc.fork: invalid strategy name '<n>'`;
---`alc.fork: ctx must be a table`; `alc.fork: ctx: cannot encode value of type '<type>' at <path>`;
---`alc.fork: nested fork is not supported` (inside a child); with `on_error = "abort"`,
---`alc.fork: strategy '<name>' failed: <message>`.
---@param strategies string[] Non-empty array of package names (at most 16).
---@param ctx table Context copied to each child through the JSON rules.
---@param opts? alc.ForkOpts Failure policy.
---@return alc.ForkResult[] results One record per child, in input order.
function alc.fork(strategies, ctx, opts) end

---------------------------------------------------------------------------------------------------
-- 2.2 JSON and data markers
---------------------------------------------------------------------------------------------------

---The JSON-null sentinel type: truthy, `~= nil`, equal only to itself, `tostring` gives `"null"`.
---@class alc.JsonNull: userdata

---Encode a Lua value as compact JSON with object keys sorted bytewise.
---
---Errors: `alc.json_encode: <reason> at <path>` (e.g. `cycle detected`, `invalid UTF-8`,
---`cannot encode value of type '<type>'`, `unsupported key type '<type>'`, `duplicate key '<k>'`,
---`array index too large`, `array-marked table has non-index key '<k>'`); `alc.json_encode: document too large`.
---@param value alc.JsonValue Value to encode.
---@return string json Compact JSON text.
function alc.json_encode(value) end

---Decode strict RFC 8259 JSON. Top-level `null` → nil; `null` in arrays → `alc.json_null`; `null` object
---members are absent; arrays come back array-marked; integers stay integers.
---
---Errors: `alc.json_decode: <reason> at line <l> column <c>`; `alc.json_decode: document too large`.
---@param text string|number JSON text (≤ 16 MiB, depth ≤ 128).
---@return any value The decoded value.
function alc.json_decode(text) end

---The JSON-null sentinel: encodes as `null` and stands for `null` inside decoded arrays.
---@type alc.JsonNull
alc.json_null = nil

---Mark a table (or a new empty table) as a JSON array so it encodes as `[...]` even when empty.
---The mark is kept in a weak side registry; the metatable is untouched.
---
---Errors: argument error for a non-table.
---@generic T: table
---@param t? T Table to mark; a new one when omitted.
---@return T t The same table.
function alc.array(t) end

---Mark a table (or a new empty table) as a JSON object so it encodes as `{...}` even when empty or
---integer-keyed (integer keys are written in decimal).
---
---Errors: argument error for a non-table.
---@generic T: table
---@param t? T Table to mark; a new one when omitted.
---@return T t The same table.
function alc.object(t) end

---------------------------------------------------------------------------------------------------
-- 2.3 Text helpers
---------------------------------------------------------------------------------------------------

---Options of `alc.chunk`.
---@class alc.ChunkOpts
---@field mode? "lines"|"chars" Split unit (default `"lines"`; chars counts Unicode scalar values).
---@field size? integer Window size ≥ 0 (default 50); 0 gives an empty array.
---@field overlap? integer Overlap ≥ 0 between consecutive windows (default 0).

---Split text into overlapping windows of lines (joined with `"\n"`) or characters.
---
---Errors: `alc.chunk: opts.mode must be "lines" or "chars"`; `alc.chunk: opts.size must be a non-negative integer`
---(likewise for `opts.overlap`).
---@param text string Text to split.
---@param opts? alc.ChunkOpts Mode, size and overlap.
---@return string[] chunks Windows in order; empty text → empty array.
function alc.chunk(text, opts) end

---Options of `alc.match_enum`.
---@class alc.MatchEnumOpts
---@field threshold? number Minimum Jaro-Winkler similarity for the fuzzy fallback (default 0.7).

---Pick the candidate a free-text answer names: the case-insensitive candidate whose last occurrence starts
---latest, else the best fuzzy (Jaro-Winkler) token match at or above the threshold.
---@param text string Text to search.
---@param candidates string[] Candidate labels (empty ones are ignored).
---@param opts? alc.MatchEnumOpts Fuzzy threshold.
---@return string|nil choice The candidate as spelled in `candidates`, or nil.
function alc.match_enum(text, candidates, opts) end

---Read a yes/no verdict: the polarity of the whole-word affirmative (`approved yes ok accept pass confirm agree
---true lgtm`) or negative (`rejected no deny block fail refuse disagree false`) word that starts last wins.
---No negation handling.
---@param text string Text to inspect.
---@return boolean|nil verdict true, false, or nil when no keyword occurs.
function alc.match_bool(text) end

---Parse a 1..10 score: the first run of ASCII digits in `tostring(s)`, clamped to 1..10.
---@param s any Text holding the score.
---@param default? number Returned unclamped when there are no digits (default 5).
---@return number score
function alc.parse_score(s, default) end

---Parse the first number in a string, optionally through a Lua pattern with one capture.
---@param text any Text to parse; a non-string gives nil.
---@param pattern? string Lua pattern whose match is passed to `tonumber`.
---@return number|nil n
function alc.parse_number(text, pattern) end

---Extract a JSON table from model output: the whole string, else a fenced block (```json first), else
---brace-balanced `{...}` then `[...]` substrings; the first candidate that decodes to a table wins.
---@param raw any Model output; a non-string gives nil.
---@return table|nil value
function alc.json_extract(raw) end

---Normalised text hash: lower-cased, whitespace collapsed and trimmed, 32-bit DJB2.
---@param s any Value passed through `tostring`.
---@return string hex 8 lower-case hex digits.
function alc.fingerprint(s) end

---------------------------------------------------------------------------------------------------
-- 2.4 Log and progress
---------------------------------------------------------------------------------------------------

---Append an entry `{level, source = "alc.log", message}` to the session log (write-only from Lua;
---messages over 4 KiB are truncated). Both arguments go through `tostring`.
---@param level alc.LogLevel Level name; unknown strings are kept and treated as `info`.
---@param msg any Message.
function alc.log(level, msg) end

---Replace the session's progress record and emit a progress notification.
---
---Errors: raised on negative or non-integral `step` / `total`.
---@param step integer Steps done (≥ 0).
---@param total integer Total steps (≥ 0; 0 = unknown).
---@param msg? string Optional status text.
function alc.progress(step, total, msg) end

---------------------------------------------------------------------------------------------------
-- 2.5 Stats
---------------------------------------------------------------------------------------------------

---Custom session statistics, reported as `stats.custom`.
---@class alc.stats
alc.stats = {}

---Record a custom statistic (last write wins; the value is copied at call time). In a fork child the key
---becomes `fork[<i>].<key>`.
---
---Errors: `stats_limit: ...` beyond 256 keys or 64 KiB encoded; encoding errors for non-JSON values.
---@param key string Non-empty, ≤ 128 bytes.
---@param value alc.JsonValue JSON-encodable value.
function alc.stats.record(key, value) end

---Read back a recorded statistic.
---@param key string Key given to `record`.
---@return any value A fresh copy, or nil when unset.
function alc.stats.get(key) end

---Number of LLM queries admitted so far in the whole session (a batch of n counts n; fork children
---included; `alc.ask` not counted).
---@return integer calls
function alc.stats.llm_calls() end

---------------------------------------------------------------------------------------------------
-- 2.6 Budget
---------------------------------------------------------------------------------------------------

---Remaining amounts, present only for the limits in effect, floored at 0.
---@class alc.BudgetRemaining
---@field llm_calls? integer LLM queries still admissible.
---@field elapsed_ms? integer Virtual milliseconds left before `max_elapsed_ms`.
---@field tokens? integer Tokens left before `max_tokens`.

---Remaining session budget. Journaled.
---Budgeted calls that do not fit raise `budget_exceeded: max_llm_calls (<max>) reached (<used> used)`,
---`budget_exceeded: max_llm_calls (<max>) would be exceeded by a batch of <k> (<used> used)`,
---`budget_exceeded: max_elapsed_ms (<max>ms) reached (<e>ms elapsed)` or
---`budget_exceeded: max_tokens (<max>) reached (<used> used)`.
---@return alc.BudgetRemaining|nil remaining nil when no limit is in effect.
function alc.budget_remaining() end

---Whether any budget is left: true without a budget, false when any present remaining field is ≤ 0.
---@return boolean ok
function alc.budget_check() end

---------------------------------------------------------------------------------------------------
-- 2.7 Time and environment
---------------------------------------------------------------------------------------------------

---Current virtual time in float seconds since the Unix epoch (millisecond resolution or better,
---non-decreasing within a session). Journaled.
---@return number seconds
function alc.time() end

---Read-only view of the session environment snapshot (built from `ctx.env` inject / dotenv / process
---environment, filtered by the project allow-list). Index with `alc.env.KEY`. Any assignment raises
---`alc.env is readonly`; `pairs` is not supported; cannot be JSON-encoded.
---@class alc.Env: userdata
---@field [string] string|nil
local Env = {}

---Read one variable with a fallback.
---@param key string Variable name.
---@param default? string Returned when the variable is absent.
---@return string|nil value
function Env:get(key, default) end

---Copy the listed variables that exist into a plain table.
---@param keys string[] Variable names.
---@return table<string, string> vars Only the keys that exist.
function Env:use(keys) end

---The session environment snapshot (present, possibly empty, in every session and fork child).
---@type alc.Env
alc.env = nil

---------------------------------------------------------------------------------------------------
-- 2.8 alc.state — persistent key-value store
---------------------------------------------------------------------------------------------------

---Persistent key-value store shared across sessions and processes using the same home, scoped by the
---namespace `ctx._ns` (else `"default"`; fork children get `<parent session id>/fork-<i>`). Each call is
---atomic and journaled; values are JSON-encodable (≤ 1 MiB) and every read returns a fresh copy.
---Keys: 1–256 bytes of UTF-8, no control characters, no `/`, `\` or `..`.
---
---Common errors: `alc.state: invalid namespace '<ns>'`; `alc.state: invalid key '<key>' (<reason>)`;
---`alc.state.set: value too large`; encoding errors `alc.state.<fn>: <reason> at <path>`.
---@class alc.state
alc.state = {}

---Read a value.
---@param key string|number Key.
---@param default? any Returned as given when the key is absent.
---@return any value Stored value or `default`.
function alc.state.get(key, default) end

---Write a value; nil or `alc.json_null` deletes the key.
---@param key string|number Key.
---@param value alc.JsonValue Value to store.
function alc.state.set(key, value) end

---Delete a key.
---@param key string|number Key.
---@return boolean existed true if the key existed.
function alc.state.delete(key) end

---Test whether a key exists.
---@param key string|number Key.
---@return boolean present
function alc.state.has(key) end

---List keys of the namespace, sorted bytewise.
---@param prefix? string Only keys starting with this prefix.
---@return string[] keys
function alc.state.keys(prefix) end

---Write only if the key is absent.
---
---Errors: argument error for a nil value.
---@param key string|number Key.
---@param value alc.JsonValue Value to store (not nil).
---@return boolean written false if the key already existed.
function alc.state.set_nx(key, value) end

---Atomically add to a numeric value (integer arithmetic when both operands are integers).
---
---Errors: `alc.state.incr: value at '<key>' is not a number`; `alc.state.incr: integer overflow at '<key>'`.
---@param key string|number Key.
---@param delta? number Increment (default 1).
---@param default? number Starting value when absent (default 0).
---@return number value The new value.
function alc.state.incr(key, delta, default) end

---Read-modify-write with optimistic concurrency: `fn(current or default)` may run up to 5 times;
---returning nil deletes the key.
---
---Errors: `alc.state.update: conflict on '<key>'` after 5 attempts; errors raised by `fn` propagate.
---@param key string|number Key.
---@param fn fun(current: any): any Computes the new value from the current one.
---@param default? any Passed to `fn` when the key is absent.
---@return any value The new value.
function alc.state.update(key, fn, default) end

---List the `<id>` parts of keys `<prefix>:<id>`, sorted.
---@param prefix string Must match `[A-Za-z0-9_.-]+`.
---@return string[] ids
function alc.state.list(prefix) end

---Read the value at `<prefix>:<id>`.
---
---Errors: `alc.state.show: key '<prefix>:<id>' not found in namespace '<ns>'`.
---@param prefix string Key prefix.
---@param id string Identifier after the colon.
---@return any value
function alc.state.show(prefix, id) end

---------------------------------------------------------------------------------------------------
-- 2.9 alc.card — run records
---------------------------------------------------------------------------------------------------

---@class alc.CardPkg
---@field name string Package name (required on create).
---@field [string] any

---A write-once record of one run or evaluation. `null` members are dropped on storage.
---@class alc.Card
---@field card_id string Generated `<pkg>_<model_short>_<YYYYMMDDTHHMMSS>_<hex6>` or caller-supplied (1–128 of `[A-Za-z0-9_.-]`, not starting with `.`).
---@field schema_version string `"card/v0"` unless given.
---@field created_at string UTC `YYYY-MM-DDTHH:MM:SSZ` from the virtual clock.
---@field created_by string `"alc@<product version>"` unless given.
---@field pkg alc.CardPkg Package the card belongs to.
---@field model? {id?: string, [string]: any} Model description.
---@field scenario? {name?: string, [string]: any} Scenario description.
---@field stats? {pass_rate?: number, [string]: any} Result statistics.
---@field params? table Run parameters.
---@field param_fingerprint? string 16 hex digits computed from `params`.
---@field metadata? {prior_card_id?: string, prior_relation?: string, [string]: any} Lineage links.
---@field [string] any

---@class alc.CardCreateResult
---@field card_id string Id of the new card.
---@field pkg string Package name.

---Summary row of `alc.card.list` / `alc.card.find`.
---@class alc.CardSummary
---@field card_id string
---@field pkg string Package name.
---@field created_at? string
---@field model? string `model.id`.
---@field scenario? string `scenario.name`.
---@field pass_rate? number `stats.pass_rate`.

---@class alc.CardFilter
---@field pkg? string Exact package name.

---@class alc.CardQuery
---@field pkg? string Exact package name.
---@field where? alc.CardWhere Predicate over card fields.
---@field order_by? string|string[] Dotted path(s); `-` prefix = descending; missing values sort last.
---@field limit? integer
---@field offset? integer

---@class alc.ReadSamplesOpts
---@field offset? integer Matching rows to skip (default 0).
---@field limit? integer
---@field where? alc.CardWhere Predicate evaluated per row.

---@class alc.WriteSamplesResult
---@field count integer Rows written.

---@class alc.AliasOpts
---@field pkg? string
---@field note? string

---@class alc.AliasRow
---@field name string
---@field card_id string
---@field pkg? string
---@field set_at string
---@field note? string

---@class alc.LineageQuery
---@field card_id string Start card.
---@field direction? "up"|"down"|"both" Which links to follow (default `"up"`; anything else raises).
---@field depth? integer Maximum depth (default 10).
---@field include_stats? boolean Include node stats (default true).
---@field relation_filter? string|string[] Only follow these relations.

---@class alc.LineageNode
---@field card_id string
---@field pkg string
---@field depth integer Negative upwards, positive downwards.
---@field prior_card_id? string
---@field prior_relation? string
---@field stats? table

---@class alc.LineageEdge
---@field from string Child card id.
---@field to string Parent card id.
---@field relation? string

---@class alc.Lineage
---@field root string Start card id.
---@field nodes alc.LineageNode[]
---@field edges alc.LineageEdge[]
---@field truncated boolean Whether the depth limit cut the graph.

---Write-once run records. Operations are atomic; reads are journaled.
---@class alc.card
alc.card = {}

---Create a card; `schema_version`, `created_at`, `created_by`, `card_id` and `param_fingerprint` are filled in.
---Journaled (id).
---
---Errors: `alc.card.create: input must be a table`; `alc.card.create: pkg.name is required`;
---`alc.card.create: invalid name '<x>'`; `alc.card.create: card '<id>' already exists (immutable)`.
---@param t alc.Card|table Card fields; `t.pkg.name` is required.
---@return alc.CardCreateResult created
function alc.card.create(t) end

---Read a full card. Journaled.
---@param card_id string
---@return alc.Card|nil card
function alc.card.get(card_id) end

---List card summaries, newest first. Journaled.
---@param filter? alc.CardFilter
---@return alc.CardSummary[] cards
function alc.card.list(filter) end

---Query cards with predicates, ordering and paging. Journaled.
---
---`where`: keys of one table are ANDed; `_and`/`_or` take arrays of predicates, `_not` negates;
---a table whose keys are all operators (`eq ne lt lte gt gte ["in"] nin exists contains
---starts_with`) compares the value at its path, any other table descends into a section, a
---scalar means `eq`. Missing fields: `ne`, `nin` and `exists = false` hold, others do not.
---@param query? alc.CardQuery
---@return alc.CardSummary[] cards
function alc.card.find(query) end

---Add new top-level keys to a card (existing keys are immutable).
---
---Errors: `alc.card.append: key '<k>' already set on card '<id>' (immutable)`;
---`alc.card.append: card '<id>' not found`.
---@param card_id string
---@param fields table New keys.
---@return alc.Card card The merged card.
function alc.card.append(card_id, fields) end

---Attach per-case sample rows to a card (write-once).
---
---Errors: `alc.card.write_samples: samples already exist for '<id>' (write-once)`;
---`alc.card.write_samples: card '<id>' not found`; `alc.card.write_samples: samples must be an array`.
---@param card_id string
---@param rows alc.JsonValue[] Array (possibly empty) of JSON values.
---@return alc.WriteSamplesResult result
function alc.card.write_samples(card_id, rows) end

---Read sample rows, optionally filtered and paged (`offset` counts matching rows). Journaled.
---@param card_id string
---@param opts? alc.ReadSamplesOpts
---@return any[] rows Empty when there are no samples.
function alc.card.read_samples(card_id, opts) end

---Bind (or rebind) a name to a card. `set_at` comes from the virtual clock.
---
---Errors: `alc.card.alias_set: invalid name '<x>'` (names follow the card-id rule);
---`alc.card.alias_set: card '<id>' not found`.
---@param name string Alias name.
---@param card_id string
---@param opts? alc.AliasOpts
---@return alc.AliasRow row
function alc.card.alias_set(name, card_id, opts) end

---List alias rows. Journaled.
---@param filter? alc.CardFilter
---@return alc.AliasRow[] rows
function alc.card.alias_list(filter) end

---Read the card an alias points to. Journaled.
---@param name string Alias name.
---@return alc.Card|nil card
function alc.card.get_by_alias(name) end

---Follow `metadata.prior_card_id` links up, down or both. Journaled.
---
---Errors: `alc.card.lineage: direction must be 'up', 'down', or 'both' (got '<x>')`.
---@param query alc.LineageQuery
---@return alc.Lineage|nil lineage nil for an unknown start card.
function alc.card.lineage(query) end

---------------------------------------------------------------------------------------------------
-- 2.10 alc.math — statistics and seeded generators
---------------------------------------------------------------------------------------------------

---Seeded generator (userdata; `tostring` gives `"alc.math.rng"`), same stream as Rust rand 0.9 `StdRng`
---seeded with `seed_from_u64`. Independent of `math.random`.
---@class alc.Rng: userdata

---Wilson score interval.
---@class alc.WilsonCI
---@field lower number Floored at 0.
---@field upper number Capped at 1.
---@field center number

---Statistics and seeded generators. Array arguments must be non-empty sequences of finite numbers:
---`alc.math.<fn>: expected non-empty array`, `alc.math.<fn>: element at index <i> is NaN or infinite`.
---Implementations may also provide the optional extended group (samplers, tests, CDF/PPF, ...).
---@class alc.math
alc.math = {}

---Create a seeded generator.
---@param seed integer ≥ 0.
---@return alc.Rng rng
function alc.math.rng_create(seed) end

---Next uniform float in [0, 1).
---@param rng alc.Rng
---@return number x
function alc.math.rng_float(rng) end

---Uniform integer in [min, max].
---
---Errors: `alc.math.rng_int: min (<a>) must be <= max (<b>)`.
---@param rng alc.Rng
---@param min integer
---@param max integer
---@return integer n
function alc.math.rng_int(rng, min, max) end

---Arithmetic mean.
---@param xs number[]
---@return number mean
function alc.math.mean(xs) end

---Sample variance (n − 1 denominator; 0 for a single element).
---@param xs number[]
---@return number variance
function alc.math.variance(xs) end

---Sample standard deviation.
---@param xs number[]
---@return number stddev
function alc.math.stddev(xs) end

---Median, i.e. `percentile(xs, 50)`.
---@param xs number[]
---@return number median
function alc.math.median(xs) end

---Percentile with linear interpolation between closest ranks of the sorted data.
---
---Errors: `alc.math.percentile: p must be in [0, 100], got <p>`.
---@param xs number[]
---@param p number In [0, 100].
---@return number value
function alc.math.percentile(xs, p) end

---Wilson score confidence interval for a binomial proportion.
---
---Errors: `alc.math.wilson_ci: total must be > 0`; an error for `confidence` outside [0, 1].
---@param successes number
---@param total number > 0.
---@param confidence number In [0, 1], e.g. 0.95.
---@return alc.WilsonCI ci
function alc.math.wilson_ci(successes, total, confidence) end

---------------------------------------------------------------------------------------------------
-- 2.11 Layer 1 combinators
---------------------------------------------------------------------------------------------------

---Apply `fn(item, i)` over `ipairs(items)` (stops at the first nil); errors from `fn` propagate unchanged.
---@generic T, R
---@param items T[]
---@param fn fun(item: T, i: integer): R
---@return R[] results In order.
function alc.map(items, fn) end

---Left fold `acc = fn(acc, items[i], i)`; without `init` starts from `items[1]` at `i = 2`.
---@generic T, A
---@param items T[]
---@param fn fun(acc: A, item: T, i: integer): A
---@param init? A Initial accumulator.
---@return A|nil acc nil for an empty array without `init`.
function alc.reduce(items, fn, init) end

---Keep items whose `fn(item, i)` is truthy, in order.
---@generic T
---@param items T[]
---@param fn fun(item: T, i: integer): any
---@return T[] kept
function alc.filter(items, fn) end

---Result of `alc.vote`.
---@class alc.VoteResult
---@field winner? string Trimmed `tostring` of the most frequent answer (ties → first seen); nil when empty.
---@field count integer Votes for the winner.
---@field total integer `#answers`.

---Majority vote over answers (exact counting of trimmed `tostring` keys).
---@param answers any[]
---@return alc.VoteResult result
function alc.vote(answers) end

---`alc.llm` with `grounded = true` added to a copy of `opts`. Pauses, budgeted.
---@param claim string|number Prompt.
---@param opts? alc.LlmOpts
---@return string answer
function alc.ground(claim, opts) end

---`alc.llm` with `underspecified = true` added to a copy of `opts`. Pauses, budgeted.
---@param prompt string|number
---@param opts? alc.LlmOpts
---@return string answer
function alc.specify(prompt, opts) end

---`alc.llm` under `pcall`: on error logs `warn` `alc.llm_safe: <err>` and returns `default`.
---Deadline, resource limits and cancellation are never caught. Pauses, budgeted.
---@param prompt string|number
---@param opts? alc.LlmOpts
---@param default? any Returned on error.
---@return string|any answer
function alc.llm_safe(prompt, opts, default) end

---`alc.llm` then `alc.json_extract`; on failure logs `warn` and retries once with a JSON-only system prompt
---and a repair prompt (at most 2 calls). Pauses, budgeted.
---@param prompt string|number
---@param opts? alc.LlmOpts
---@return table|nil value Extracted JSON table, or nil.
---@return string raw The last raw answer.
function alc.llm_json(prompt, opts) end

---Memoised `alc.llm` for this session (capacity 256, oldest evicted). Key: `opts.cache_key`, else the
---compact sorted JSON of prompt and the query options present; `opts.cache_skip = true` bypasses.
---Pauses and is budgeted on a miss.
---@param prompt string|number
---@param opts? alc.LlmOpts
---@return string answer
function alc.cache(prompt, opts) end

---@class alc.CacheInfo
---@field entries integer Cached answers.
---@field hits integer
---@field misses integer
---@field max_entries integer Always 256.

---Statistics of the session's `alc.cache`.
---@return alc.CacheInfo info
function alc.cache_info() end

---Empty the session's `alc.cache` and reset its counters.
function alc.cache_clear() end

---@class alc.TuningOpts
---@field prefix? string Read overrides from `ctx[prefix]` instead of `ctx`.

---Merge package defaults with overrides from `ctx`: for each key of `defaults` (except `_schema`) a non-nil
---source value deep-merges (both non-array tables) or replaces; keys only in the source are not copied.
---A non-table `defaults` is returned as is; a non-table `ctx[prefix]` logs `warn` and uses defaults.
---@generic T
---@param defaults T
---@param ctx? table Override source.
---@param opts? alc.TuningOpts
---@return T merged
function alc.tuning(defaults, ctx, opts) end

---Options of `alc.parallel`: query options copied into string prompts, plus a post-processor.
---@class alc.ParallelOpts: alc.LlmOpts
---@field post_fn? fun(resp: string, item: any, i: integer): any Maps each answer.

---Build one `alc.llm_batch` from `prompt_fn(item, i)` (a string prompt or an `alc.BatchItem`).
---Pauses, budgeted (n calls).
---
---Errors: `alc.parallel: items must be a non-empty array`; `alc.parallel: prompt_fn must be a function`;
---`alc.parallel: prompt_fn returned table without .prompt at index <i>`;
---`alc.parallel: prompt_fn must return string or table, got <type> at index <i>`.
---@param items any[] Non-empty array.
---@param prompt_fn fun(item: any, i: integer): string|alc.BatchItem
---@param opts? alc.ParallelOpts
---@return any[] results Answers (or `post_fn` results) in input order.
function alc.parallel(items, prompt_fn, opts) end

---------------------------------------------------------------------------------------------------
-- 2.12 alc.pipe
---------------------------------------------------------------------------------------------------

---One stage record in `ctx.pipe_history`.
---@class alc.PipeHistoryEntry
---@field strategy string Package name or `(inline-<i>)`.
---@field result? any The stage's `ctx.result` (on success).
---@field error? string The caught error message (on skip/continue).

---@class alc.PipeOpts
---@field on_error? "abort"|"skip"|"continue" `"abort"` (default) propagates stage errors; `"skip"`/`"continue"` record them and go on.
---@field on_stage? fun(i: integer, name: string, ctx: alc.Ctx) Called after each successful stage.

---Run strategies in sequence on a shallow copy of `ctx` (with `pipe_history = {}`); between stages a
---non-nil `ctx.result` becomes the next `ctx.task` (JSON for tables). Pauses, budgeted through its stages.
---
---Errors: `alc.pipe: strategies must be a non-empty array`; `alc.pipe: ctx must be a table`;
---`alc.pipe: strategy '<name>' has no run function`;
---`alc.pipe: stage <i> ('<name>') must return a table, got <type>`.
---@param strategies alc.PipeStage[] Non-empty array of package names or functions.
---@param ctx table Initial context.
---@param opts? alc.PipeOpts
---@return alc.Ctx ctx The final context, with `pipe_history`.
function alc.pipe(strategies, ctx, opts) end

---------------------------------------------------------------------------------------------------
-- 2.13 alc.eval
---------------------------------------------------------------------------------------------------

---@class alc.EvalOpts
---@field strategy_opts? table Options passed to the strategy.
---@field auto_card? boolean Create a card with the stats and per-case samples.
---@field card_pkg? string Card package name (default: the strategy).

---Simple scenario form (evalframe defines the full set).
---@class alc.EvalScenario
---@field name? string
---@field cases table[]
---@field graders? string[] e.g. `{"exact_match"}`.

---Evaluation report (evalframe's shape).
---@class alc.EvalReport
---@field card_id? string Set when `auto_card` created a card.
---@field [string] any

---Evaluate a strategy on a scenario through the `evalframe` package, in this session. Pauses, budgeted.
---
---Errors: `alc.eval: scenario is required`; `alc.eval: strategy must be a string package name`;
---`alc.eval: evalframe is not installed`; `alc.eval: could not resolve scenario '<name>'`;
---`alc.eval: unknown grader '<g>'`; `alc.eval: case <i> must have an 'input' field`.
---@param scenario alc.EvalScenario|table|string Table, or a name resolved by `require(name)` then `require("scenarios." .. name)`.
---@param strategy string Package name.
---@param opts? alc.EvalOpts
---@return alc.EvalReport report
function alc.eval(scenario, strategy, opts) end

