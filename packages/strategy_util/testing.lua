--- strategy_util.testing: test helpers for the specs of the bundled strategies.
---
--- Not used by any strategy at run time; a spec loads it with
---   local T = require("strategy_util.testing")
---   local mock, shape = T.mock, T.shape
---
--- `mock(answers, opts?)` replaces the global `alc` with a fake host serving canned answers
--- and returns a log of what the strategy asked; `shape(log)` condenses the call
--- sequence to text; `with_alc(fake, f, ...)` runs `f` under a given `alc` and puts
--- the previous one back.

local M = {}

--- Replaces the global `alc` with canned answers served in call order, one per prompt
--- (`alc.llm` takes one, `alc.llm_batch` one per item). An answer is a string, or a
--- function of the prompt returning one; running out of answers raises an error.
--- Returns the log, filled in as the strategy runs:
---   log.calls[i]   = { kind = "llm", opts = <opts or {}> }
---                  | { kind = "batch", size = <#items>, items = <items> }
---   log.prompts[n] = the n-th prompt (batch items count one each, in order)
---   log.opts[n]    = the options of the n-th prompt (the `opts` of `alc.llm`, as
---                    given; for a batch, the item itself)
---   log.stats[k]   = the last value recorded with `alc.stats.record(k, v)`
--- With `opts.max_llm_calls`, the fake host also has a call budget like the engine's:
--- `alc.budget_remaining()` reports `{ llm_calls = <left> }`, `alc.budget_check()`
--- is false once none are left, and a call or a whole batch that does not fit raises
--- a `budget_exceeded:` error without using an answer.
function M.mock(answers, opts)
  local log = { calls = {}, prompts = {}, opts = {}, stats = {} }
  local n = 0
  local limit = opts and opts.max_llm_calls
  local function admit(k)
    if limit == nil or n + k <= limit then return end
    if k == 1 then error(string.format("budget_exceeded: max_llm_calls (%d) reached (%d used)", limit, n), 0) end
    error(string.format("budget_exceeded: max_llm_calls (%d) would be exceeded by a batch of %d (%d used)",
      limit, k, n), 0)
  end
  local function answer(prompt, opts)
    n = n + 1
    log.prompts[n] = prompt
    log.opts[n] = opts
    local a = answers[n]
    if type(a) == "function" then a = a(prompt) end
    if a == nil then error("no canned answer for prompt " .. n .. ": " .. tostring(prompt)) end
    return a
  end
  _G.alc = {
    llm = function(prompt, opts)
      admit(1)
      log.calls[#log.calls + 1] = { kind = "llm", opts = opts or {} }
      return answer(prompt, opts)
    end,
    llm_batch = function(items)
      admit(#items)
      log.calls[#log.calls + 1] = { kind = "batch", size = #items, items = items }
      local out = {}
      for i, item in ipairs(items) do out[i] = answer(item.prompt, item) end
      return out
    end,
    stats = { record = function(k, v) log.stats[k] = v end },
    log = function() end,
    progress = function() end,
  }
  if limit ~= nil then
    _G.alc.budget_remaining = function() return { llm_calls = math.max(0, limit - n) } end
    _G.alc.budget_check = function() return n < limit end
  end
  return log
end

--- The call sequence of a mock's log as text, e.g. "llm,batch3,llm".
function M.shape(log)
  local parts = {}
  for i, c in ipairs(log.calls) do
    parts[i] = c.kind == "llm" and "llm" or ("batch" .. c.size)
  end
  return table.concat(parts, ",")
end

--- Calls `f(...)` protected with the global `alc` set to `fake`, then restores the
--- previous `alc` whatever happened. Returns what `pcall` returns.
function M.with_alc(fake, f, ...)
  local saved = _G.alc
  _G.alc = fake
  local res = table.pack(pcall(f, ...))
  _G.alc = saved
  return table.unpack(res, 1, res.n)
end

return M
