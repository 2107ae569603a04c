-- The `alc` table as every VM starts with it: `llm`, `llm_batch` and `log`, and the
-- `__index` that builds everything else on first access (`stdlib.lua`, engine.md §5.7).
--
-- Each host-yield function (these two, `ask` and `fork`) is a thin wrapper over a Rust
-- validator that checks the arguments, the yieldability of the call site and the budget,
-- in that order, and stashes the request; nothing is published unless all three pass
-- (engine.md §4.2).
local P = ...
local host = P.host
local host_yield = P.host_yield
local can_host_yield = P.can_host_yield
local raw_error = error

local alc = {}

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
  return host.mark_array(texts)
end

function alc.log(level, msg)
  host.alc_log(level, msg)
end

-- Everything else (`ask`, `fork`, JSON helpers, state, cards, stats, combinators, text
-- helpers, alc.math, alc.env…) is built on first access, so a session that never touches it does
-- not carry it (engine.md §5.7). Assignments always win: a member the script set before
-- the first access keeps the script's value.
local stdlib_loaded = false
local raw_rawget = rawget
local raw_next = next
local raw_rawset = rawset
-- `__index` loads the rest on its first call; `__pairs` calls it for that (one function
-- less in every VM).
local function index(t, k)
  if stdlib_loaded then return nil end
  stdlib_loaded = true
  local built = {}
  host.install_stdlib(built, P)
  for name, v in raw_next, built do
    if raw_rawget(alc, name) == nil then raw_rawset(alc, name, v) end
  end
  return raw_rawget(t, k)
end
setmetatable(alc, {
  __index = index,
  __pairs = function(t)
    index(t)
    return raw_next, t, nil
  end,
})

return alc
