-- The `alc` table as every VM starts with it: `llm`, `llm_batch` and `log`, and the
-- `__index` that builds everything else on first access (`stdlib.lua`, engine.md §5.7).
--
-- Each host-yield function (these two, `ask` and `fork`) is a thin wrapper over a Rust
-- validator that checks the arguments, the yieldability of the call site and the budget,
-- in that order, and stashes the request; nothing is published unless all three pass
-- (engine.md §4.2).
local P = ...

local alc = {}

-- What the functions below call, captured now in one array that each of them captures
-- alone (one upvalue per VM instead of one per name). Each place is a compile-time
-- constant, declared in a `local` of its own (Lua folds only the last name of a `local`
-- statement).
local A = { P.host, P.can_host_yield, P.host_yield, error, rawget, next, rawset, P, false, false }
local HOST <const> = 1
local CAN_HOST_YIELD <const> = 2
local HOST_YIELD <const> = 3
local ERROR <const> = 4
local RAWGET <const> = 5
local NEXT <const> = 6
local RAWSET <const> = 7
local PRIVATE <const> = 8
local LOADED <const> = 9 -- whether the rest of the library is installed
local INDEX <const> = 10 -- `alc`'s `__index`, below

function alc.llm(prompt, opts)
  local token, err = A[HOST].request_llm(prompt, opts, A[CAN_HOST_YIELD]())
  if token == nil then A[ERROR](err, 0) end
  local texts, failure = A[HOST_YIELD](token)
  if failure ~= nil then A[ERROR](failure, 0) end
  return texts[1]
end

function alc.llm_batch(items)
  local host = A[HOST]
  local token, err = host.request_batch(items, A[CAN_HOST_YIELD]())
  if token == nil then A[ERROR](err, 0) end
  local texts, failure = A[HOST_YIELD](token)
  if failure ~= nil then A[ERROR](failure, 0) end
  return host.mark_array(texts)
end

function alc.log(level, msg)
  A[HOST].alc_log(level, msg)
end

-- Everything else (`ask`, `fork`, JSON helpers, state, cards, stats, combinators, text
-- helpers, alc.math, alc.env…) is built on first access, so a session that never touches it does
-- not carry it (engine.md §5.7). Assignments always win: a member the script set before
-- the first access keeps the script's value. `__index` loads the rest on its first call
-- (`t` is `alc` itself); `__pairs` calls it for that.
A[INDEX] = function(t, k)
  if A[LOADED] then return nil end
  A[LOADED] = true
  local built = {}
  A[HOST].install_stdlib(built, A[PRIVATE])
  local rawget, rawset = A[RAWGET], A[RAWSET]
  for name, v in A[NEXT], built do
    if rawget(t, name) == nil then rawset(t, name, v) end
  end
  return rawget(t, k)
end
setmetatable(alc, {
  __index = A[INDEX],
  __pairs = function(t)
    A[INDEX](t)
    return A[NEXT], t, nil
  end,
})

return alc
