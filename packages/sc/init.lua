--- sc: self-consistency.
---
--- Samples `n` independent reasoning paths in one batch, reads each path's final
--- answer and returns the majority answer (ties go to the answer seen first).
---
--- Knobs (ctx):
---   task         string   the question (required)
---   n            integer  number of samples (default 5)
---   temperature  number   sampling temperature (default 0.8)
---   gen_tokens   integer  token cap per sample (default 600)
--- Result: ctx.result = { answer, votes, n, agreement, tally = [{answer, count}], answers }

local M = {}

M.meta = {
  name = "sc",
  version = "0.1.0",
  description = "Self-consistency: n sampled reasoning paths in one batch, majority vote on the answers",
  category = "aggregation",
}

local function trim(s)
  return (tostring(s or ""):gsub("^%s+", ""):gsub("%s+$", ""))
end

-- Value of the last line `TAG: value` (tag compared case-insensitively), or nil.
local function tagged(text, tag)
  local want, found = tag:lower() .. ":", nil
  for line in (tostring(text or "") .. "\n"):gmatch("(.-)\r?\n") do
    local l = trim(line)
    if l:lower():sub(1, #want) == want then found = trim(l:sub(#want + 1)) end
  end
  return found
end

-- The last non-empty line of a text.
local function last_line(text)
  local last = ""
  for line in (tostring(text or "") .. "\n"):gmatch("(.-)\r?\n") do
    if trim(line) ~= "" then last = trim(line) end
  end
  return last
end

-- The final answer of a reply: its ANSWER line, else its last line.
local function answer_of(text)
  return tagged(text, "ANSWER") or last_line(text)
end

-- Lower case, single spaces, no trailing punctuation: the key answers are compared by.
local function normalize(a)
  local s = trim(a):lower():gsub("%s+", " ")
  s = s:gsub("[%.!%?,;:]+$", "")
  return s
end

-- A number in [lo, hi] read from a `SCORE:` line, else from the first number of the
-- text; `default` when there is none.
local function score_of(text, lo, hi, default)
  local s = tagged(text, "SCORE") or tostring(text or "")
  local n = tonumber(s:match("%-?%d+%.?%d*"))
  if n == nil then return default end
  if n < lo then n = lo elseif n > hi then n = hi end
  return n
end

-- Items of a numbered (`1.` / `1)`) or bulleted (`-` / `*`) list, in order.
local function list_items(text, max)
  local items = {}
  for line in (tostring(text or "") .. "\n"):gmatch("(.-)\r?\n") do
    local item = line:match("^%s*%d+[%.%)]%s+(.+)$") or line:match("^%s*[%-%*]%s+(.+)$")
    if item and trim(item) ~= "" then
      items[#items + 1] = trim(item)
      if max and #items >= max then break end
    end
  end
  return items
end

-- Majority vote over normalised answers; a tie goes to the answer seen first.
-- Returns winner (as first written), its count, and the tally in first-seen order.
local function vote(answers)
  local order, counts, shown = {}, {}, {}
  for _, a in ipairs(answers) do
    local k = normalize(a)
    if k ~= "" then
      if counts[k] == nil then
        order[#order + 1] = k
        counts[k] = 0
        shown[k] = trim(a)
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

-- Marks a table as a JSON array (so an empty one encodes as [] rather than {}).
local function arr(t)
  if type(alc.array) == "function" then return alc.array(t) end
  return t
end

-- Records a number in the session stats when the host provides them.
local function record(key, value)
  if alc.stats and alc.stats.record then alc.stats.record(key, value) end
end

-- Numbered lines `1. text` joined by newlines.
local function numbered(items)
  local out = {}
  for i, s in ipairs(items) do out[i] = string.format("%d. %s", i, s) end
  return table.concat(out, "\n")
end

M.vote = vote

function M.run(ctx)
  local task = ctx.task or error("sc: ctx.task is required")
  local n = ctx.n or 5
  if n < 1 then error("sc: ctx.n must be at least 1") end
  local prompt = string.format(
    "Question:\n%s\n\nReason about it independently and briefly, then give your final answer "
      .. "on a last line of the form\nANSWER: <answer>", task)
  local items = {}
  for i = 1, n do
    items[i] = { prompt = prompt, temperature = ctx.temperature or 0.8, max_tokens = ctx.gen_tokens or 600 }
  end
  local samples = alc.llm_batch(items)
  local answers = {}
  for i, s in ipairs(samples) do answers[i] = answer_of(s) end
  local winner, count, tally = vote(answers)
  record("sc.n", n)
  record("sc.agreement", count / n)
  ctx.result = {
    answer = winner, votes = count, n = n, agreement = count / n, tally = arr(tally), answers = answers,
  }
  return ctx
end

return M
