--- rerank: generate k candidates, then select one by rating or by a pairwise knockout.
---
--- Knobs (ctx):
---   task         string   the task (required)
---   k            integer  candidates (default 4)
---   mode         string   "rating" (each candidate scored 1-10 in one batch; ties go to
---                         the earlier candidate) or "pairwise" (knockout rounds, one batch
---                         of comparisons per round; an odd candidate gets a bye) (default "rating")
---   temperature  number   sampling temperature of the candidates (default 0.9)
--- Result: ctx.result = { answer, best_index, candidates, scores | rounds }

local M = {}

M.meta = {
  name = "rerank",
  version = "0.1.0",
  description = "Generate k candidates in one batch, then pick one by ratings or pairwise knockout",
  category = "selection",
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

--- Reads `BETTER: 1|2` from a comparison; anything else keeps the first.
function M.parse_better(text)
  local v = tagged(text, "BETTER") or ""
  if v:match("^%s*2") then return 2 end
  return 1
end

function M.run(ctx)
  local task = ctx.task or error("rerank: ctx.task is required")
  local k, mode = ctx.k or 4, ctx.mode or "rating"
  if mode ~= "rating" and mode ~= "pairwise" then error("rerank: ctx.mode must be 'rating' or 'pairwise'") end
  local items = {}
  for i = 1, k do
    items[i] = {
      prompt = string.format("Task:\n%s\n\nWrite a complete answer (attempt %d).", task, i),
      temperature = ctx.temperature or 0.9, max_tokens = 700,
    }
  end
  local candidates = alc.llm_batch(items)
  local result = { candidates = candidates }
  if mode == "rating" then
    local rate = {}
    for i, c in ipairs(candidates) do
      rate[i] = { prompt = string.format(
        "Task:\n%s\n\nCandidate answer:\n%s\n\nJudge correctness and usefulness. Reply with a line SCORE: <1-10>.",
        task, c), max_tokens = 100 }
    end
    local ratings = alc.llm_batch(rate)
    local scores, best = {}, 1
    for i, r in ipairs(ratings) do
      scores[i] = score_of(r, 1, 10, 1)
      if scores[i] > scores[best] then best = i end
    end
    result.scores, result.best_index = scores, best
  else
    local alive, rounds = {}, 0
    for i = 1, #candidates do alive[i] = i end
    while #alive > 1 do
      rounds = rounds + 1
      local cmp = {}
      for p = 1, #alive - 1, 2 do
        cmp[#cmp + 1] = { prompt = string.format(
          "Task:\n%s\n\nAnswer 1:\n%s\n\nAnswer 2:\n%s\n\nWhich answer is better? Reply with a line BETTER: 1 or BETTER: 2.",
          task, candidates[alive[p]], candidates[alive[p + 1]]), max_tokens = 100 }
      end
      local verdicts = alc.llm_batch(cmp)
      local next_alive = {}
      for j, v in ipairs(verdicts) do
        local a, b = alive[2 * j - 1], alive[2 * j]
        next_alive[#next_alive + 1] = M.parse_better(v) == 2 and b or a
      end
      if #alive % 2 == 1 then next_alive[#next_alive + 1] = alive[#alive] end
      alive = next_alive
    end
    result.rounds, result.best_index = rounds, alive[1]
  end
  result.answer = candidates[result.best_index]
  record("rerank.k", k)
  record("rerank.best_index", result.best_index)
  ctx.result = result
  return ctx
end

return M
