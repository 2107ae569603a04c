-- Test prelude of `alc pkg test` (interfaces.md §4.2, lua-api.md §1.3).
--
-- Our own implementation of a lust-style API: a global `lust` with `describe`, `it`,
-- `expect`, `before`, `after` (the first three also as globals). `expect(v)` returns a
-- chain whose words (`to`, `to_not`, `be`, `have`, ...) end in a matcher call:
--   expect(x).to.equal(y)        deep equality (optional numeric tolerance)
--   expect(x).to.be(y)           raw equality
--   expect(x).to.exist()         x ~= nil
--   expect(x).to.be.truthy()     x is neither nil nor false
--   expect(x).to.be.a("table")   type (or metatable ancestry for a table argument)
--   expect(t).to.have(v)         t holds a value deep-equal to v
--   expect(s).to.match(p)        string.find(s, p)
--   expect(f).to.fail()          f raises; `.to.fail.with(p)` also matches the message
-- `to_not` (or `not_to`) negates the matcher.
--
-- The runner hands the spec's source in `ctx.__lust`; this chunk loads it with its
-- logical chunk name, runs it, and returns the results table. Progress is mirrored in
-- the stats record `lust` so the runner can still report a spec that paused.

local spec_info = ctx.__lust or {}
ctx = {}

local real_record = alc and alc.stats and alc.stats.record
local raw_error, raw_pcall, raw_type, raw_tostring = error, pcall, type, tostring
local sformat, sfind, ssub = string.format, string.find, string.sub
local tinsert, tconcat = table.insert, table.concat

print = function() end

local results = {}
local counts = { passed = 0, failed = 0 }
local filter = spec_info.filter
local names = {}      -- current describe path
local befores = {}    -- befores[level] = array of functions
local afters = {}

local function short(msg, limit)
  msg = raw_tostring(msg)
  if #msg > limit then msg = ssub(msg, 1, limit) .. "..." end
  return msg
end

local function mirror(current)
  if not real_record then return end
  local done = {}
  for i, r in ipairs(results) do
    done[i] = { name = short(r.name, 200), ok = r.ok, error = r.error and short(r.error, 300) or nil }
  end
  raw_pcall(real_record, "lust", { done = done, current = current })
end

local function message_of(err)
  if raw_type(err) == "string" then return err end
  local ok, s = raw_pcall(raw_tostring, err)
  if ok and raw_type(s) == "string" then return s end
  return "error object: " .. raw_type(err)
end

local function record(name, ok, err)
  if ok then counts.passed = counts.passed + 1 else counts.failed = counts.failed + 1 end
  tinsert(results, { name = name, ok = ok, error = err })
  mirror(nil)
end

local lust = {}

function lust.describe(name, fn)
  tinsert(names, raw_tostring(name))
  befores[#names] = {}
  afters[#names] = {}
  local ok, err = raw_pcall(fn)
  if not ok then
    record(tconcat(names, " > ") .. " (describe body)", false, message_of(err))
  end
  befores[#names] = nil
  afters[#names] = nil
  names[#names] = nil
end

function lust.it(name, fn)
  local full = tconcat(names, " > ")
  full = (full ~= "" and (full .. " > ") or "") .. raw_tostring(name)
  if filter and not sfind(full, filter, 1, true) then return end
  mirror(full)
  local ok, err = true, nil
  for level = 1, #names do
    for _, f in ipairs(befores[level] or {}) do
      if ok then ok, err = raw_pcall(f, name) end
    end
  end
  if ok then ok, err = raw_pcall(fn) end
  for level = #names, 1, -1 do
    for _, f in ipairs(afters[level] or {}) do
      local aok, aerr = raw_pcall(f, name)
      if ok and not aok then ok, err = false, aerr end
    end
  end
  record(full, ok, (not ok) and message_of(err) or nil)
end

function lust.before(fn)
  local level = #names
  befores[level] = befores[level] or {}
  tinsert(befores[level], fn)
end

function lust.after(fn)
  local level = #names
  afters[level] = afters[level] or {}
  tinsert(afters[level], fn)
end

-- Deep equality with an optional numeric tolerance; cycles are handled by a seen set.
local function deep_equal(a, b, eps, seen)
  if a == b then return true end
  local ta, tb = raw_type(a), raw_type(b)
  if ta ~= tb then return false end
  if ta == "number" then return eps ~= nil and math.abs(a - b) <= eps end
  if ta ~= "table" then return false end
  seen = seen or {}
  if seen[a] == b then return true end
  seen[a] = b
  for k, v in next, a do
    if not deep_equal(v, rawget(b, k), eps, seen) then return false end
  end
  for k in next, b do
    if rawget(a, k) == nil then return false end
  end
  return true
end
lust.deep_equal = deep_equal

-- A compact preview of values for failure messages (sorted keys, bounded depth).
local function preview(v, depth)
  depth = depth or 0
  local tv = raw_type(v)
  if tv == "string" then return sformat("%q", v) end
  if tv == "function" or tv == "thread" or tv == "userdata" then
    return "<" .. tv .. ">"
  end
  if tv ~= "table" then return message_of(v) end
  if depth > 3 then return "{...}" end
  local keys = {}
  for k in next, v do tinsert(keys, k) end
  table.sort(keys, function(x, y)
    local tx, ty = raw_type(x), raw_type(y)
    if tx ~= ty then return tx < ty end
    if tx == "number" or tx == "string" then return x < y end
    return false
  end)
  local parts = {}
  for i, k in ipairs(keys) do
    if i > 20 then tinsert(parts, "..."); break end
    local key = (raw_type(k) == "number" and k == i) and "" or ("[" .. preview(k, depth + 1) .. "]=")
    tinsert(parts, key .. preview(rawget(v, k), depth + 1))
  end
  return "{" .. tconcat(parts, ", ") .. "}"
end

local function show(v)
  return short(preview(v), 400)
end

local function has_ancestor(v, class)
  local mt = getmetatable(v)
  local guard = 0
  while mt ~= nil and guard < 100 do
    if mt == class then return true end
    local idx = raw_type(mt) == "table" and rawget(mt, "__index") or nil
    if idx == class then return true end
    mt = raw_type(idx) == "table" and getmetatable(idx) or nil
    guard = guard + 1
  end
  return false
end

-- Matchers: each returns (holds, message if it should hold, message if it should not).
local matchers = {}

function matchers.be(v, x)
  return rawequal(v, x), "expected " .. show(v) .. " to be " .. show(x),
    "expected " .. show(v) .. " to not be " .. show(x)
end

function matchers.equal(v, x, eps)
  return deep_equal(v, x, eps), "expected " .. show(v) .. " to equal " .. show(x),
    "expected " .. show(v) .. " to not equal " .. show(x)
end

function matchers.exist(v)
  return v ~= nil, "expected " .. show(v) .. " to exist", "expected " .. show(v) .. " to not exist"
end

function matchers.truthy(v)
  return v ~= nil and v ~= false, "expected " .. show(v) .. " to be truthy",
    "expected " .. show(v) .. " to not be truthy"
end

function matchers.a(v, t)
  local holds
  if raw_type(t) == "string" then
    holds = raw_type(v) == t
  elseif raw_type(t) == "table" then
    holds = has_ancestor(v, t)
  else
    raw_error("expect: a()/an() takes a type name or a class table", 3)
  end
  return holds, "expected " .. show(v) .. " to be a " .. raw_tostring(t),
    "expected " .. show(v) .. " to not be a " .. raw_tostring(t)
end
matchers.an = matchers.a

function matchers.have(v, x)
  if raw_type(v) ~= "table" then
    return false, "expected " .. show(v) .. " to be a table holding " .. show(x),
      "expected " .. show(v) .. " to not hold " .. show(x)
  end
  local found = false
  for _, item in next, v do
    if deep_equal(item, x) then found = true; break end
  end
  return found, "expected " .. show(v) .. " to have " .. show(x),
    "expected " .. show(v) .. " to not have " .. show(x)
end

function matchers.match(v, p)
  local holds = raw_type(v) == "string" and sfind(v, p) ~= nil
  return holds, "expected " .. show(v) .. " to match " .. show(p),
    "expected " .. show(v) .. " to not match " .. show(p)
end

local function call_failure(v)
  if raw_type(v) ~= "function" and not (getmetatable(v) and getmetatable(v).__call) then
    raw_error("expect: fail() needs a function, got " .. raw_type(v), 3)
  end
  local ok, err = raw_pcall(v)
  return ok, err
end

function matchers.fail(v)
  local ok = call_failure(v)
  return not ok, "expected " .. show(v) .. " to fail", "expected " .. show(v) .. " to not fail"
end

-- `with` only follows `fail`.
function matchers.with(v, pattern)
  local ok, err = call_failure(v)
  local msg = (not ok) and message_of(err) or nil
  local holds = (not ok) and sfind(msg, pattern) ~= nil
  local got = ok and "no error" or ("error " .. show(msg))
  return holds, "expected " .. show(v) .. " to fail with " .. show(pattern) .. ", got " .. got,
    "expected " .. show(v) .. " to not fail with " .. show(pattern) .. ", got " .. got
end

local chain_words = {
  to = true, be = true, been = true, is = true, that = true, which = true, ["and"] = true,
  has = true, have = true, with = true, does = true, a = true, an = true, fail = true,
}

local Chain = {}

local function chain(value, negated, word, prev)
  return setmetatable({ _value = value, _negated = negated, _word = word, _prev = prev }, Chain)
end

Chain.__index = function(self, key)
  local value, negated, word = rawget(self, "_value"), rawget(self, "_negated"), rawget(self, "_word")
  if key == "to_not" or key == "not_to" then
    return chain(value, not negated, key, word)
  end
  if matchers[key] ~= nil or chain_words[key] then
    if key == "with" and word ~= "fail" then
      raw_error("expect: 'with' must follow 'fail'", 2)
    end
    return chain(value, negated, key, word)
  end
  raw_error("expect: unknown word '" .. raw_tostring(key) .. "'", 2)
end

Chain.__call = function(self, ...)
  local word = rawget(self, "_word")
  local m = matchers[word]
  if m == nil then
    raw_error("expect: '" .. raw_tostring(word) .. "' is not a matcher", 2)
  end
  local holds, yes_msg, no_msg = m(rawget(self, "_value"), ...)
  local negated = rawget(self, "_negated")
  if negated then
    if holds then raw_error(no_msg, 2) end
  elseif not holds then
    raw_error(yes_msg, 2)
  end
  return true
end

function lust.expect(v)
  return chain(v, false, nil, nil)
end

_G.lust = lust
describe, it, expect = lust.describe, lust.it, lust.expect

local source = spec_info.source
local chunk_name = spec_info.chunk or "spec"
if raw_type(source) ~= "string" then
  return { passed = 0, failed = 1, results = { { name = "(spec file)", ok = false, error = "no spec source" } } }
end
local fn, load_err = load(source, "@" .. chunk_name, "t")
if not fn then
  record("(loading " .. chunk_name .. ")", false, message_of(load_err))
else
  local ok, err = raw_pcall(fn)
  if not ok then
    record("(top level of " .. chunk_name .. ")", false, message_of(err))
  end
end

return { passed = counts.passed, failed = counts.failed, results = results }
