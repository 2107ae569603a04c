-- The `alc` table: host-yield functions and the members the engine core owns.
--
-- Each host-yield function is a thin wrapper over a Rust validator that checks the
-- arguments, the yieldability of the call site and the budget, in that order, and
-- stashes the request; nothing is published unless all three pass (engine.md §4.2).
local P = ...
local host = P.host
local host_yield = P.host_yield
local can_host_yield = P.can_host_yield
local raw_error = error
local raw_type = type
local raw_setmetatable = setmetatable
local json = P.json
local raw_tostring = tostring

local alc = {}
for k, v in pairs(json) do alc[k] = v end

local mark_array = alc.array

function alc.llm(prompt, opts)
  local token, err = host.request_llm(prompt, opts, can_host_yield())
  if token == nil then raw_error(err, 0) end
  local texts, failure = host_yield(token)
  if failure ~= nil then raw_error(failure, 0) end
  return texts[1]
end

function alc.llm_batch(items)
  local token, err = host.request_batch(items, can_host_yield())
  if token == nil then raw_error(err, 0) end
  local texts, failure = host_yield(token)
  if failure ~= nil then raw_error(failure, 0) end
  return mark_array(texts)
end

function alc.ask(question, opts)
  local token, err, unavailable = host.request_ask(question, opts, can_host_yield())
  if unavailable then
    return raw_type(opts) == "table" and opts.default or nil, "unavailable"
  end
  if token == nil then raw_error(err, 0) end
  local value, status = host_yield(token)
  if status ~= "accepted" then
    return raw_type(opts) == "table" and opts.default or nil, status
  end
  return value, status
end

function alc.fork(strategies, ctx, opts)
  local token, err = host.request_fork(strategies, ctx, opts, can_host_yield())
  if token == nil then raw_error(err, 0) end
  local results, failure = host_yield(token)
  if failure ~= nil then raw_error(failure, 0) end
  return results
end

function alc.log(level, msg)
  host.alc_log(level, msg)
end

function alc.progress(step, total, msg)
  local err = host.progress(step, total, msg)
  if err then raw_error(err, 0) end
end

function alc.budget_remaining()
  return host.budget_remaining()
end

function alc.budget_check()
  local r = host.budget_remaining()
  if r == nil then return true end
  for _, v in pairs(r) do
    if v <= 0 then return false end
  end
  return true
end

function alc.time()
  return host.clock("alc_time")
end

alc.stats = {
  record = function(key, value)
    local err = host.stats_record(key, value)
    if err then raw_error(err, 0) end
  end,
  get = function(key) return host.stats_get(key) end,
  llm_calls = function() return host.llm_calls() end,
}

-- alc.state (lua-api.md §2.8): each call is one journaled effect.
local state_call = host.state
local function st(op, a, b, c)
  return (function(err, ...)
    if err ~= nil then raw_error(err, 0) end
    return ...
  end)(state_call(op, a, b, c))
end

alc.state = {
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
    if raw_type(fn) ~= "function" then
      raw_error("alc.state.update: bad argument #2 'fn' (function expected, got " .. raw_type(fn) .. ")", 0)
    end
    -- Sessions of this process take turns on the key (`update_lock`); compare-and-set
    -- still guards against other processes and against a holder that went away.
    local unlock <close> = raw_type(key) == "string" and host.state_lock(key)
      and raw_setmetatable({}, { __close = function() host.state_unlock(key) end }) or nil
    for attempt = 1, 5 do
      local cur, version = st("get_versioned", key)
      if cur == nil then cur = default end
      local new = fn(cur)
      if st("cas", key, version, new) then
        if new == json.json_null then return nil end
        return new
      end
      -- Two sessions updating one key in lockstep on two workers would keep colliding;
      -- a short randomised pause breaks the symmetry.
      host.state_backoff(attempt)
    end
    raw_error("alc.state.update: conflict on '" .. raw_tostring(key) .. "'", 0)
  end,
}

-- alc.card (lua-api.md §2.9): each call is one journaled effect.
local card_call = host.card
local function cd(op, a, b, c)
  local err, v = card_call(op, a, b, c)
  if err ~= nil then raw_error(err, 0) end
  return v
end

alc.card = {
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

-- The rest of the standard library (combinators, text helpers, alc.math, alc.env…) is
-- built on first access, so a session that never touches it does not carry it
-- (engine.md §5.7). Assignments always win: a member set by the script is a plain field.
local stdlib_loaded = false
local raw_rawget = rawget
local raw_next = next
local install_stdlib = P.install_stdlib
local function load_stdlib()
  if not stdlib_loaded then
    stdlib_loaded = true
    install_stdlib(alc)
  end
end
setmetatable(alc, {
  __index = function(t, k)
    if stdlib_loaded then return nil end
    load_stdlib()
    return raw_rawget(t, k)
  end,
  __pairs = function(t)
    load_stdlib()
    return raw_next, t, nil
  end,
})

return alc
