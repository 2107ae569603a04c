--- strategy_util: shared helpers of the bundled strategies (a library, no `run`).
---
--- Text helpers for reading model replies (tagged lines, final answers, scores, lists),
--- the answer key and majority vote used by the voting strategies, and host helpers
--- that degrade gracefully when the host lacks the feature (`alc.array`, `alc.stats`,
--- the budget functions behind `calls_left` and `fit`). Use it with
--- `local U = require("strategy_util")`.
--- Spec helpers (a mocked `alc`) live in the sub-module `strategy_util.testing`.

local M = {}

M.meta = {
  name = "strategy_util",
  version = "0.1.0",
  description = "Library: shared text, answer, score, list and vote helpers of the bundled strategies",
  category = "library",
}

--- Leading and trailing white space removed; nil becomes "" and other values are
--- converted with tostring.
function M.trim(s)
  return (tostring(s or ""):gsub("^%s+", ""):gsub("%s+$", ""))
end

--- Value of the last line `TAG: value` (tag compared case-insensitively), or nil.
function M.tagged(text, tag)
  local want, found = tag:lower() .. ":", nil
  for line in (tostring(text or "") .. "\n"):gmatch("(.-)\r?\n") do
    local l = M.trim(line)
    if l:lower():sub(1, #want) == want then found = M.trim(l:sub(#want + 1)) end
  end
  return found
end

--- The last non-empty line of a text ("" when there is none).
function M.last_line(text)
  local last = ""
  for line in (tostring(text or "") .. "\n"):gmatch("(.-)\r?\n") do
    if M.trim(line) ~= "" then last = M.trim(line) end
  end
  return last
end

--- The final answer of a reply: its ANSWER line, else its last line.
function M.answer_of(text)
  return M.tagged(text, "ANSWER") or M.last_line(text)
end

--- Lower case, single spaces, no trailing punctuation: the key answers are compared by.
function M.normalize(a)
  local s = M.trim(a):lower():gsub("%s+", " ")
  s = s:gsub("[%.!%?,;:]+$", "")
  return s
end

--- A number in [lo, hi] read from a `SCORE:` line, else from the first number of the
--- text; `default` when there is none.
function M.score_of(text, lo, hi, default)
  local s = M.tagged(text, "SCORE") or tostring(text or "")
  local n = tonumber(s:match("%-?%d+%.?%d*"))
  if n == nil then return default end
  if n < lo then n = lo elseif n > hi then n = hi end
  return n
end

--- Items of a numbered (`1.` / `1)`) or bulleted (`-` / `*`) list, in order; at most
--- `max` of them when given.
function M.list_items(text, max)
  local items = {}
  for line in (tostring(text or "") .. "\n"):gmatch("(.-)\r?\n") do
    local item = line:match("^%s*%d+[%.%)]%s+(.+)$") or line:match("^%s*[%-%*]%s+(.+)$")
    if item and M.trim(item) ~= "" then
      items[#items + 1] = M.trim(item)
      if max and #items >= max then break end
    end
  end
  return items
end

--- Majority vote over normalised answers; a tie goes to the answer seen first.
--- Returns winner (as first written), its count, and the tally in first-seen order.
function M.vote(answers)
  local order, counts, shown = {}, {}, {}
  for _, a in ipairs(answers) do
    local k = M.normalize(a)
    if k ~= "" then
      if counts[k] == nil then
        order[#order + 1] = k
        counts[k] = 0
        shown[k] = M.trim(a)
      end
      counts[k] = counts[k] + 1
    end
  end
  local best
  for _, k in ipairs(order) do
    if best == nil or counts[k] > counts[best] then best = k end
  end
  local tally = {}
  for i, k in ipairs(order) do tally[i] = { answer = shown[k], count = counts[k] } end
  return best and shown[best] or nil, best and counts[best] or 0, tally
end

--- Marks a table as a JSON array (so an empty one encodes as [] rather than {}).
function M.arr(t)
  if type(alc.array) == "function" then return alc.array(t) end
  return t
end

--- Records a number in the session stats when the host provides them.
function M.record(key, value)
  if alc.stats and alc.stats.record then alc.stats.record(key, value) end
end

--- Numbered lines `1. text` joined by newlines.
function M.numbered(items)
  local out = {}
  for i, s in ipairs(items) do out[i] = string.format("%d. %s", i, s) end
  return table.concat(out, "\n")
end

--- LLM calls the session may still make: the `llm_calls` of `alc.budget_remaining()`
--- (0 once `alc.budget_check()` reports any limit spent), or math.huge when no call
--- limit is in effect or the host has no budget functions.
function M.calls_left()
  if type(alc.budget_check) == "function" and alc.budget_check() == false then return 0 end
  if type(alc.budget_remaining) ~= "function" then return math.huge end
  local r = alc.budget_remaining()
  if type(r) ~= "table" or type(r.llm_calls) ~= "number" then return math.huge end
  return r.llm_calls
end

--- How many of `want` calls fit in the budget when `reserve` calls must stay
--- available for later steps: min(want, calls_left() - reserve), never below 0.
function M.fit(want, reserve)
  local room = M.calls_left() - (reserve or 0)
  if room < 0 then room = 0 end
  if want < room then return want end
  return math.floor(room)
end

--- The integer knob `ctx[name]` of strategy `who`: `default` when it is absent, else
--- the value (an integral float is accepted), checked to be an integer of at least
--- `min`; anything else raises an error naming the strategy and the knob.
function M.int_knob(who, ctx, name, default, min)
  local v = ctx[name]
  if v == nil then return default end
  if type(v) ~= "number" or v ~= math.floor(v) or v == math.huge or v == -math.huge then
    error(string.format("%s: ctx.%s must be an integer, got %s", who, name, type(v) == "string" and
      string.format("%q", v) or tostring(v)), 2)
  end
  v = math.tointeger(v) or v
  if min ~= nil and v < min then
    error(string.format("%s: ctx.%s must be at least %d, got %s", who, name, min, tostring(v)), 2)
  end
  return v
end

--- The required text `ctx[name]` (default "task") of strategy `who`; an error saying
--- `ctx.<name> is required` when it is absent, not a string or blank.
function M.text_knob(who, ctx, name)
  name = name or "task"
  local v = ctx[name]
  if type(v) ~= "string" or M.trim(v) == "" then
    error(string.format("%s: ctx.%s is required (a non-empty string)", who, name), 2)
  end
  return v
end

return M
