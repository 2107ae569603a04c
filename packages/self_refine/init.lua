--- self_refine: generate, get scored feedback, refine until good enough.
---
--- Knobs (ctx):
---   task       string   the task (required)
---   max_iters  integer  maximum feedback rounds (default 3)
---   threshold  number   stop once the feedback score (1-10) reaches it (default 8)
--- Result: ctx.result = { answer, score, iterations, scores }

local M = {}

M.meta = {
  name = "self_refine",
  version = "0.1.0",
  description = "Self-refine: scored self-feedback and refinement until a score threshold is met",
  category = "refinement",
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

function M.run(ctx)
  local task = ctx.task or error("self_refine: ctx.task is required")
  local max_iters, threshold = ctx.max_iters or 3, ctx.threshold or 8
  local output = alc.llm(string.format("Task:\n%s\n\nProduce your answer.", task), { max_tokens = 800 })
  local scores, score = {}, nil
  for i = 1, max_iters do
    local feedback = alc.llm(string.format(
      "Task:\n%s\n\nAnswer under review:\n%s\n\nGive specific, actionable feedback, then rate the answer "
        .. "on a last line SCORE: <1-10>.", task, output), { max_tokens = 400 })
    score = score_of(feedback, 1, 10, 1)
    scores[i] = score
    if score >= threshold or i == max_iters then break end
    output = alc.llm(string.format(
      "Task:\n%s\n\nCurrent answer:\n%s\n\nFeedback:\n%s\n\nProduce an improved answer that applies the "
        .. "feedback. Reply with the answer only.", task, output, feedback), { max_tokens = 800 })
  end
  record("self_refine.iterations", #scores)
  record("self_refine.final_score", score)
  ctx.result = { answer = output, score = score, iterations = #scores, scores = scores }
  return ctx
end

return M
