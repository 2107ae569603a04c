--- ensemble_vote: different problem-solving approaches, one batch, vote, tie-break.
---
--- Every approach answers in one batch (its own system prompt). When the winning answer
--- does not have more than `threshold` of the votes, one extra call picks among the
--- distinct answers.
---
--- Knobs (ctx):
---   task        string          the problem (required)
---   approaches  array of string approach instructions (default: four built-in ones)
---   threshold   number          required vote share, exclusive (default 0.5)
--- Result: ctx.result = { answer, share, tie_break, tally, answers }

local M = {}

M.meta = {
  name = "ensemble_vote",
  version = "0.1.0",
  description = "Ensemble of distinct solving approaches in one batch, majority vote with a tie-break call",
  category = "aggregation",
}

M.default_approaches = {
  "Work backwards from what the question asks for.",
  "Reason from first principles, defining every quantity.",
  "Estimate roughly first, then compute exactly and compare.",
  "Test your reasoning on a small concrete example before answering.",
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

function M.run(ctx)
  local task = ctx.task or error("ensemble_vote: ctx.task is required")
  local approaches = ctx.approaches or M.default_approaches
  local threshold = ctx.threshold or 0.5
  local items = {}
  for i, a in ipairs(approaches) do
    items[i] = {
      prompt = string.format("Problem:\n%s\n\nEnd with\nANSWER: <final answer>", task),
      system = "Solve problems with this approach: " .. a,
      max_tokens = 600,
    }
  end
  local replies = alc.llm_batch(items)
  local answers = {}
  for i, r in ipairs(replies) do answers[i] = answer_of(r) end
  local winner, count, tally = vote(answers)
  local share = count / #answers
  local tie_break = false
  if share <= threshold and #tally > 1 then
    local options = {}
    for i, t in ipairs(tally) do options[i] = string.format("%s (%d votes)", t.answer, t.count) end
    local pick = alc.llm(string.format(
      "Problem:\n%s\n\nIndependent solvers disagree. Their answers:\n%s\n\nDecide which answer is correct. "
        .. "End with\nANSWER: <one of the answers>", task, numbered(options)), { max_tokens = 500 })
    winner, tie_break = answer_of(pick), true
  end
  record("ensemble_vote.share", share)
  ctx.result = { answer = winner, share = share, tie_break = tie_break, tally = arr(tally), answers = answers }
  return ctx
end

return M
