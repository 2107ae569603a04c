-- The `alc` standard library beyond the core (lua-api.md §2.3, §2.7, §2.10–§2.13).
--
-- Runs once per VM after `alc.lua`, with `(P, ALC, raw)`: the sandbox's private table,
-- the `alc` table being built, and the raw Layer-0 functions of `src/stdlib/*.rs`. Raw
-- functions return `(value, nil)` or `(nil, message)`; the wrappers below raise the
-- message with `error(msg, 0)`, so every error is a plain string (§1.11).
--
-- Combinators look `alc.llm` and friends up through the global `alc` at call time
-- (checklist item 64), so a script that replaces `alc.llm` changes them too. Returns the
-- `__index` and `__newindex` metamethods of the `alc.env` userdata.
local P, ALC, raw = ...

local host_log = P.host.log
local json_encode = P.json.json_encode
local json_decode = P.json.json_decode
local mark_array = P.json.array

local error, type, tostring, tonumber, pairs, ipairs, pcall, require =
  error, type, tostring, tonumber, pairs, ipairs, pcall, require
local sfmt, smatch, sfind, ssub, sgsub, slower, sbyte =
  string.format, string.match, string.find, string.sub, string.gsub, string.lower, string.byte
local mmax, mmin = math.max, math.min
local tremove = table.remove

--- The `alc` table scripts see now (the global, or the one being built).
local function A()
  local g = alc
  if type(g) == "table" then return g end
  return ALC
end

local function warn_log(source, msg) host_log("warn", source, msg) end

local function bad_arg(fname, n, param, expected, v)
  error(sfmt("alc.%s: bad argument #%d '%s' (%s expected, got %s)", fname, n, param, expected,
    type(v)), 0)
end

local function check_opts(fname, n, opts)
  if opts ~= nil and type(opts) ~= "table" then bad_arg(fname, n, "opts", "table", opts) end
end

local function shallow_copy(t)
  local out = {}
  if type(t) == "table" then
    for k, v in pairs(t) do out[k] = v end
  end
  return out
end

local function wrap(f)
  return function(...)
    local r, e = f(...)
    if e ~= nil then error(e, 0) end
    return r
  end
end

-- Core members built on demand (lua-api.md §2.1, §2.8, §2.9, §2.14) -------------------

for k, v in pairs(P.json) do ALC[k] = v end

local host = P.host
local setmetatable = setmetatable
local host_yield, can_host_yield = P.host_yield, P.can_host_yield

function ALC.ask(question, opts)
  local token, err, unavailable = host.request_ask(question, opts, can_host_yield())
  if unavailable then
    return type(opts) == "table" and opts.default or nil, "unavailable"
  end
  if token == nil then error(err, 0) end
  local value, status = host_yield(token)
  if status ~= "accepted" then
    return type(opts) == "table" and opts.default or nil, status
  end
  return value, status
end

function ALC.fork(strategies, ctx, opts)
  local token, err = host.request_fork(strategies, ctx, opts, can_host_yield())
  if token == nil then error(err, 0) end
  local results, failure = host_yield(token)
  if failure ~= nil then error(failure, 0) end
  return results
end

function ALC.progress(step, total, msg)
  local err = host.progress(step, total, msg)
  if err then error(err, 0) end
end

function ALC.budget_remaining()
  return host.budget_remaining()
end

function ALC.budget_check()
  local r = host.budget_remaining()
  if r == nil then return true end
  for _, v in pairs(r) do
    if v <= 0 then return false end
  end
  return true
end

function ALC.time()
  return host.clock("alc_time")
end

ALC.stats = {
  record = function(key, value)
    local err = host.stats_record(key, value)
    if err then error(err, 0) end
  end,
  get = function(key) return host.stats_get(key) end,
  llm_calls = function() return host.llm_calls() end,
}

-- alc.state (lua-api.md §2.8): each call is one journaled effect.
local state_call = host.state
local function st(op, a, b, c)
  return (function(err, ...)
    if err ~= nil then error(err, 0) end
    return ...
  end)(state_call(op, a, b, c))
end

ALC.state = {
  get = function(key, default)
    local found, v = st("get", key)
    if not found then return default end
    return v
  end,
  set = function(key, value) st("set", key, value) end,
  delete = function(key) return (st("delete", key)) end,
  has = function(key) return (st("has", key)) end,
  keys = function(prefix) return (st("keys", prefix)) end,
  set_nx = function(key, value) return (st("set_nx", key, value)) end,
  incr = function(key, delta, default) return (st("incr", key, delta, default)) end,
  list = function(prefix) return (st("list", prefix)) end,
  show = function(prefix, id)
    local _, v = st("show", prefix, id)
    return v
  end,
  update = function(key, fn, default)
    if type(fn) ~= "function" then
      error("alc.state.update: bad argument #2 'fn' (function expected, got " .. type(fn) .. ")", 0)
    end
    -- Sessions of this process take turns on the key (`update_lock`); compare-and-set
    -- still guards against other processes and against a holder that went away.
    local unlock <close> = type(key) == "string" and host.state_lock(key)
      and setmetatable({}, { __close = function() host.state_unlock(key) end }) or nil
    for attempt = 1, 5 do
      local cur, version = st("get_versioned", key)
      if cur == nil then cur = default end
      local new = fn(cur)
      if st("cas", key, version, new) then
        if new == P.json.json_null then return nil end
        return new
      end
      -- Two sessions updating one key in lockstep on two workers would keep colliding;
      -- a short randomised pause breaks the symmetry.
      host.state_backoff(attempt)
    end
    error("alc.state.update: conflict on '" .. tostring(key) .. "'", 0)
  end,
}

-- alc.card (lua-api.md §2.9): each call is one journaled effect.
local card_call = host.card
local function cd(op, a, b, c)
  local err, v = card_call(op, a, b, c)
  if err ~= nil then error(err, 0) end
  return v
end

ALC.card = {
  create = function(t) return cd("create", t) end,
  get = function(card_id) return cd("get", card_id) end,
  list = function(filter) return cd("list", filter) end,
  find = function(query) return cd("find", query) end,
  append = function(card_id, fields) return cd("append", card_id, fields) end,
  write_samples = function(card_id, rows) return cd("write_samples", card_id, rows) end,
  read_samples = function(card_id, opts) return cd("read_samples", card_id, opts) end,
  alias_set = function(name, card_id, opts) return cd("alias_set", name, card_id, opts) end,
  alias_list = function(filter) return cd("alias_list", filter) end,
  get_by_alias = function(name) return cd("get_by_alias", name) end,
  lineage = function(query) return cd("lineage", query) end,
}

-- §2.3 text helpers --------------------------------------------------------------------

ALC.chunk = wrap(raw.chunk)
ALC.match_enum = wrap(raw.match_enum)
ALC.match_bool = wrap(raw.match_bool)

function ALC.parse_score(s, default)
  local digits = smatch(tostring(s), "%d+")
  if digits == nil then
    if default == nil then return 5 end
    return default
  end
  local n = tonumber(digits)
  return mmax(1, mmin(10, n))
end

function ALC.parse_number(text, pattern)
  if type(text) ~= "string" then return nil end
  local m
  if pattern ~= nil then
    m = smatch(text, pattern)
  else
    m = smatch(text, "%-?%d+%.?%d*")
  end
  if m == nil then return nil end
  return tonumber(m)
end

local function decode_table(s)
  if s == nil then return nil end
  local ok, v = pcall(json_decode, s)
  if ok and type(v) == "table" then return v end
  return nil
end

-- Brace-balanced `open … close` substrings left to right; the first that decodes wins.
local function scan_balanced(raw_text, open, close)
  local pos = 1
  while true do
    local s = sfind(raw_text, open, pos, true)
    if s == nil then return nil end
    local depth, e = 0, nil
    for i = s, #raw_text do
      local c = ssub(raw_text, i, i)
      if c == open then
        depth = depth + 1
      elseif c == close then
        depth = depth - 1
        if depth == 0 then
          e = i
          break
        end
      end
    end
    if e == nil then return nil end
    local t = decode_table(ssub(raw_text, s, e))
    if t ~= nil then return t end
    pos = e + 1
  end
end

function ALC.json_extract(raw_text)
  if type(raw_text) ~= "string" then return nil end
  local t = decode_table(raw_text)
  if t ~= nil then return t end
  local body = smatch(raw_text, "```json%s*(.-)%s*```") or smatch(raw_text, "```%s*(.-)%s*```")
  t = decode_table(body)
  if t ~= nil then return t end
  t = scan_balanced(raw_text, "{", "}")
  if t ~= nil then return t end
  return scan_balanced(raw_text, "[", "]")
end

function ALC.fingerprint(s)
  local text = sgsub(slower(tostring(s)), "%s+", " ")
  text = smatch(text, "^ ?(.-) ?$")
  local h = 5381
  for i = 1, #text do
    h = (h * 33 + sbyte(text, i)) % 4294967296
  end
  return sfmt("%08x", h)
end

-- §2.10 alc.math -------------------------------------------------------------------------

local M = {}
for name, f in pairs(raw.math) do M[name] = wrap(f) end
ALC.math = M

-- §2.11 combinators ----------------------------------------------------------------------

function ALC.map(items, fn)
  if type(items) ~= "table" then bad_arg("map", 1, "items", "table", items) end
  if type(fn) ~= "function" then bad_arg("map", 2, "fn", "function", fn) end
  local out = mark_array({})
  for i, item in ipairs(items) do out[i] = fn(item, i) end
  return out
end

function ALC.reduce(items, fn, init)
  if type(items) ~= "table" then bad_arg("reduce", 1, "items", "table", items) end
  if type(fn) ~= "function" then bad_arg("reduce", 2, "fn", "function", fn) end
  local acc, i = init, 1
  if init == nil then
    acc, i = items[1], 2
    if acc == nil then return nil end
  end
  while items[i] ~= nil do
    acc = fn(acc, items[i], i)
    i = i + 1
  end
  return acc
end

function ALC.filter(items, fn)
  if type(items) ~= "table" then bad_arg("filter", 1, "items", "table", items) end
  if type(fn) ~= "function" then bad_arg("filter", 2, "fn", "function", fn) end
  local out = mark_array({})
  for i, item in ipairs(items) do
    if fn(item, i) then out[#out + 1] = item end
  end
  return out
end

function ALC.vote(answers)
  if type(answers) ~= "table" then bad_arg("vote", 1, "answers", "table", answers) end
  local counts, order = {}, {}
  for _, a in ipairs(answers) do
    local key = smatch(tostring(a), "^%s*(.-)%s*$")
    if counts[key] == nil then
      counts[key] = 0
      order[#order + 1] = key
    end
    counts[key] = counts[key] + 1
  end
  local winner, count = nil, 0
  for _, key in ipairs(order) do
    if counts[key] > count then winner, count = key, counts[key] end
  end
  return { winner = winner, count = count, total = #answers }
end

local function flagged(fname, flag)
  return function(prompt, opts)
    check_opts(fname, 2, opts)
    local o = shallow_copy(opts)
    o[flag] = true
    return A().llm(prompt, o)
  end
end
ALC.ground = flagged("ground", "grounded")
ALC.specify = flagged("specify", "underspecified")

function ALC.llm_safe(prompt, opts, default)
  local ok, r = pcall(A().llm, prompt, opts)
  if ok then return r end
  warn_log("alc.llm_safe", "alc.llm_safe: " .. tostring(r))
  return default
end

local JSON_SYSTEM = "You output only valid JSON: no prose, no explanations, no markdown fences."

function ALC.llm_json(prompt, opts)
  check_opts("llm_json", 2, opts)
  local a = A()
  local first = a.llm(prompt, opts)
  local t = a.json_extract(first)
  if t ~= nil then return t, first end
  warn_log("alc.llm_json", "alc.llm_json: response is not valid JSON; retrying once")
  local o = shallow_copy(opts)
  o.system = JSON_SYSTEM
  local repair = "Your previous response could not be parsed as JSON.\n\nPrevious response:\n"
    .. tostring(first) .. "\n\nOriginal request:\n" .. tostring(prompt)
    .. "\n\nRespond again to the original request with only valid JSON."
  local second = a.llm(repair, o)
  t = a.json_extract(second)
  if t ~= nil then return t, second end
  warn_log("alc.llm_json", "alc.llm_json: retry response is not valid JSON either")
  return nil, second
end

-- Per-session memo of `alc.cache`: entries by key, keys in insertion order.
local CACHE_MAX = 256
local cache_entries, cache_order, cache_count, cache_hits, cache_misses = {}, {}, 0, 0, 0
local CACHE_FIELDS = { "system", "max_tokens", "temperature", "model", "role", "grounded",
  "underspecified" }

local function cache_key(prompt, opts)
  if opts ~= nil and opts.cache_key ~= nil then return "k:" .. tostring(opts.cache_key) end
  local k = { prompt = prompt }
  if opts ~= nil then
    for _, f in ipairs(CACHE_FIELDS) do k[f] = opts[f] end
  end
  local ok, s = pcall(json_encode, k)
  if not ok then return nil end
  return "j:" .. s
end

function ALC.cache(prompt, opts)
  check_opts("cache", 2, opts)
  if opts ~= nil and opts.cache_skip == true then return A().llm(prompt, opts) end
  local key = cache_key(prompt, opts)
  if key == nil then return A().llm(prompt, opts) end
  local hit = cache_entries[key]
  if hit ~= nil then
    cache_hits = cache_hits + 1
    host_log("debug", "alc.cache", "alc.cache: hit")
    return hit
  end
  cache_misses = cache_misses + 1
  host_log("debug", "alc.cache", "alc.cache: miss")
  local r = A().llm(prompt, opts)
  if cache_entries[key] == nil then
    if cache_count >= CACHE_MAX then
      local oldest = tremove(cache_order, 1)
      cache_entries[oldest] = nil
      cache_count = cache_count - 1
    end
    cache_order[#cache_order + 1] = key
    cache_count = cache_count + 1
  end
  cache_entries[key] = r
  return r
end

function ALC.cache_info()
  return { entries = cache_count, hits = cache_hits, misses = cache_misses,
    max_entries = CACHE_MAX }
end

function ALC.cache_clear()
  cache_entries, cache_order, cache_count, cache_hits, cache_misses = {}, {}, 0, 0, 0
end

local function tune(defaults, source)
  local out = {}
  for k, v in pairs(defaults) do
    if k ~= "_schema" then
      local s = source[k]
      if s == nil then
        out[k] = v
      elseif type(v) == "table" and type(s) == "table" and v[1] == nil then
        out[k] = tune(v, s)
      else
        out[k] = s
      end
    end
  end
  return out
end

function ALC.tuning(defaults, ctx, opts)
  if type(defaults) ~= "table" then return defaults end
  local source = ctx
  if type(opts) == "table" and opts.prefix ~= nil and type(ctx) == "table" then
    source = ctx[opts.prefix]
    if source ~= nil and type(source) ~= "table" then
      warn_log("alc.tuning", sfmt("alc.tuning: ctx.%s is a %s, not a table; using defaults",
        tostring(opts.prefix), type(source)))
      source = nil
    end
  end
  if type(source) ~= "table" then source = {} end
  return tune(defaults, source)
end

local FORWARDED = { "system", "max_tokens", "temperature", "model", "role", "grounded",
  "underspecified" }

function ALC.parallel(items, prompt_fn, opts)
  if type(items) ~= "table" or items[1] == nil then
    error("alc.parallel: items must be a non-empty array", 0)
  end
  if type(prompt_fn) ~= "function" then error("alc.parallel: prompt_fn must be a function", 0) end
  check_opts("parallel", 3, opts)
  opts = opts or {}
  local reqs = {}
  for i, item in ipairs(items) do
    local p = prompt_fn(item, i)
    local tp = type(p)
    if tp == "string" then
      local req = { prompt = p }
      for _, f in ipairs(FORWARDED) do req[f] = opts[f] end
      reqs[i] = req
    elseif tp == "table" then
      if type(p.prompt) ~= "string" then
        error("alc.parallel: prompt_fn returned table without .prompt at index " .. i, 0)
      end
      reqs[i] = p
    else
      error("alc.parallel: prompt_fn must return string or table, got " .. tp .. " at index " .. i, 0)
    end
  end
  local resps = A().llm_batch(reqs)
  local post = opts.post_fn
  if post == nil then return resps end
  local out = mark_array({})
  for i = 1, #reqs do out[i] = post(resps[i], items[i], i) end
  return out
end

-- §2.12 pipe -------------------------------------------------------------------------------

local function run_stage(i, s, ctx)
  local name, run
  if type(s) == "function" then
    name, run = "(inline-" .. i .. ")", s
  else
    name = tostring(s)
    local m = require(s)
    run = type(m) == "table" and m.run or nil
    if type(run) ~= "function" then
      error("alc.pipe: strategy '" .. name .. "' has no run function", 0)
    end
  end
  return name, run
end

function ALC.pipe(strategies, ctx, opts)
  if type(strategies) ~= "table" or strategies[1] == nil then
    error("alc.pipe: strategies must be a non-empty array", 0)
  end
  if type(ctx) ~= "table" then error("alc.pipe: ctx must be a table", 0) end
  check_opts("pipe", 3, opts)
  opts = opts or {}
  local catch = opts.on_error == "skip" or opts.on_error == "continue"
  local cur = shallow_copy(ctx)
  local history = mark_array({})
  cur.pipe_history = history
  local n = #strategies
  for i = 1, n do
    local s = strategies[i]
    local name = type(s) == "function" and "(inline-" .. i .. ")" or tostring(s)
    local function stage()
      local run
      name, run = run_stage(i, s, cur)
      local r = run(cur)
      if type(r) ~= "table" then
        error(sfmt("alc.pipe: stage %d ('%s') must return a table, got %s", i, name, type(r)), 0)
      end
      return r
    end
    local ok, r
    if catch then
      ok, r = pcall(stage)
    else
      ok, r = true, stage()
    end
    if ok then
      cur = r
      history[#history + 1] = { strategy = name, result = cur.result }
      cur.pipe_history = history
      local result = cur.result
      if i < n and result ~= nil then
        if type(result) == "table" then
          cur.task = json_encode(result)
        else
          cur.task = tostring(result)
        end
      end
      if type(opts.on_stage) == "function" then opts.on_stage(i, name, cur) end
    else
      local msg = tostring(r)
      warn_log("alc.pipe", sfmt("alc.pipe: stage %d ('%s') failed: %s", i, name, msg))
      history[#history + 1] = { strategy = name, error = msg }
      cur.pipe_history = history
    end
  end
  return cur
end

-- §2.13 eval -------------------------------------------------------------------------------
--
-- A facade over the `evalframe` package: resolves the scenario through `require`, turns the
-- simple form into an evalframe suite, runs the strategy on every case inside this session
-- (host-yield calls pass through) and optionally records the result as a card.

local loaded = package.loaded

--- True when `err` is `require`'s "module '<name>' not found" error.
local function not_found(err, name)
  return type(err) == "string" and sfind(err, "module '" .. name .. "' not found", 1, true) == 1
end

--- What `evalframe.std` expects from its host (json, file reads through the sandbox, time).
local function evalframe_std()
  return {
    json = { encode = json_encode, decode = json_decode },
    fs = {
      read_file = function(path)
        local f, e = io.open(path, "r")
        if not f then error("std.fs.read_file: " .. tostring(e), 2) end
        local text = f:read("a")
        f:close()
        return text
      end,
      file_exists = function(path)
        local f = io.open(path, "r")
        if f then f:close() return true end
        return false
      end,
    },
    time = function() return A().time() end,
  }
end

local function load_evalframe()
  if loaded["evalframe.std"] == nil then loaded["evalframe.std"] = evalframe_std() end
  local ok, ef = pcall(require, "evalframe")
  if ok and type(ef) == "table" then return ef end
  if not ok and not not_found(ef, "evalframe") then
    error("alc.eval: cannot load evalframe: " .. tostring(ef), 0)
  end
  error("alc.eval: evalframe is not installed", 0)
end

local function resolve_scenario(name)
  for _, mod in ipairs({ name, "scenarios." .. name }) do
    local ok, v = pcall(require, mod)
    if ok then
      if type(v) ~= "table" then
        error(sfmt("alc.eval: scenario '%s' resolved to %s, expected table", name, type(v)), 0)
      end
      return v
    end
    if not not_found(v, mod) and not (type(v) == "string" and sfind(v, "invalid module name", 1, true)) then
      error(sfmt("alc.eval: scenario '%s': %s", name, tostring(v)), 0)
    end
  end
  error("alc.eval: could not resolve scenario '" .. name .. "'", 0)
end

--- The text of a strategy's result (`ctx.result`, or a text field of it, else JSON).
local function result_text(r)
  if type(r) ~= "table" then return tostring(r) end
  local v = r.result
  if type(v) == "string" then return v end
  if type(v) == "table" then
    for _, k in ipairs({ "answer", "summary", "output", "text" }) do
      if type(v[k]) == "string" then return v[k] end
    end
    return json_encode(v)
  end
  if v == nil then return json_encode(r) end
  return tostring(v)
end

--- A provider running `strategy` on a case input (used when evalframe offers none for us).
local function strategy_provider(strategy, strategy_opts)
  return function(input)
    local m = require(strategy)
    if type(m) ~= "table" or type(m.run) ~= "function" then
      error("alc.eval: strategy '" .. strategy .. "' has no run function", 0)
    end
    local run_ctx = { task = input }
    for k, v in pairs(strategy_opts or {}) do run_ctx[k] = v end
    local started = A().time()
    local ok, r = pcall(m.run, run_ctx)
    local elapsed = (A().time() - started) * 1000
    if not ok then
      return { text = "", error = tostring(r), model = "algocline:" .. strategy, latency_ms = elapsed }
    end
    return { text = result_text(r), model = "algocline:" .. strategy, latency_ms = elapsed }
  end
end

local function suite_spec(ef, spec, provider)
  local out = { provider = provider }
  -- Full form: positional `ef.bind` entries are kept as they are.
  local full = false
  for i = 1, #spec do
    if type(spec[i]) == "table" and ef.bind.is_binding(spec[i]) then full = true end
  end
  if full then
    for i = 1, #spec do out[i] = spec[i] end
    out.cases = spec.cases
    return out
  end
  local graders = spec.graders
  if graders == nil then graders = { "exact_match" } end
  if type(graders) == "string" then graders = { graders } end
  if type(graders) ~= "table" then
    error("alc.eval: graders must be an array of grader names", 0)
  end
  for i, g in ipairs(graders) do
    local grader = g
    if type(g) == "string" then
      grader = ef.graders[g]
      if grader == nil then error("alc.eval: unknown grader '" .. g .. "'", 0) end
    elseif type(g) ~= "table" and type(g) ~= "function" then
      error(sfmt("alc.eval: grader %d must be a name, got %s", i, type(g)), 0)
    end
    out[i] = ef.bind({ grader })
  end
  local cases = {}
  if type(spec.cases) ~= "table" then error("alc.eval: scenario has no cases", 0) end
  for i, c in ipairs(spec.cases) do
    if type(c) == "table" and ef.case.is_case(c) then
      cases[i] = c
    elseif type(c) == "table" and c.input ~= nil then
      cases[i] = ef.case(c)
    else
      error(sfmt("alc.eval: case %d must have an 'input' field", i), 0)
    end
  end
  out.cases = cases
  return out
end

function ALC.eval(scenario, strategy, opts)
  if scenario == nil then error("alc.eval: scenario is required", 0) end
  if type(strategy) ~= "string" then
    error("alc.eval: strategy must be a string package name", 0)
  end
  check_opts("eval", 3, opts)
  opts = opts or {}
  if type(scenario) ~= "string" and type(scenario) ~= "table" then
    bad_arg("eval", 1, "scenario", "table or string", scenario)
  end
  local ef = load_evalframe()
  local spec, scenario_name
  if type(scenario) == "string" then
    scenario_name = scenario
    spec = resolve_scenario(scenario)
  else
    spec = scenario
    if type(scenario.name) == "string" then scenario_name = scenario.name end
  end
  local providers = type(ef.providers) == "table" and ef.providers or {}
  local provider
  if providers.algocline ~= nil then
    provider = providers.algocline({ strategy = strategy, opts = opts.strategy_opts })
  else
    provider = strategy_provider(strategy, opts.strategy_opts)
  end
  local name = strategy .. ":" .. (scenario_name or "inline")
  local suite = ef.suite(name)(suite_spec(ef, spec, provider))
  local report = suite:run()
  if type(report.to_table) == "function" then report = report:to_table() end
  if opts.auto_card then
    local agg = type(report.aggregated) == "table" and report.aggregated or {}
    local scores = type(agg.scores) == "table" and agg.scores or {}
    local card = A().card
    local made = card.create({
      pkg = { name = opts.card_pkg or strategy },
      scenario = { name = scenario_name or "inline" },
      stats = { pass_rate = agg.pass_rate, mean_score = scores.mean, n = agg.total,
        passed = agg.passed },
    })
    card.write_samples(made.card_id, mark_array(report.results or {}))
    report.card_id = made.card_id
    host_log("info", "alc.eval", "alc.eval: card " .. made.card_id)
  end
  return report
end

-- §2.7 alc.env -----------------------------------------------------------------------------

local env_get = raw.env_get
local env_methods = {}

function env_methods.get(self, key, default)
  if type(self) ~= "userdata" then key, default = self, key end
  local v = env_get(key)
  if v == nil then return default end
  return v
end

function env_methods.use(self, keys)
  if type(self) ~= "userdata" then keys = self end
  if type(keys) ~= "table" then bad_arg("env:use", 1, "keys", "table", keys) end
  local out = {}
  for _, k in ipairs(keys) do
    local v = env_get(k)
    if v ~= nil then out[k] = v end
  end
  return out
end

local function env_index(_, key)
  local m = env_methods[key]
  if m ~= nil then return m end
  return env_get(key)
end

local function env_newindex()
  error("alc.env is readonly", 0)
end

return env_index, env_newindex
