--- least_to_most: reduce to simpler sub-questions, answer them in order.
---
--- One call lists sub-questions from easiest to hardest; each is then answered in
--- sequence with the earlier answers in view; a last call answers the original task.
---
--- Knobs (ctx):
---   task             string   the problem (required)
---   max_subproblems  integer  cap on sub-questions (default 5)
--- Result: ctx.result = { answer, subproblems = [{question, answer}] }

local M = {}

M.meta = {
  name = "least_to_most",
  version = "0.1.0",
  description = "Least-to-most prompting: simpler sub-questions answered in order, then the original",
  category = "reasoning",
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
  local task = ctx.task or error("least_to_most: ctx.task is required")
  local max = ctx.max_subproblems or 5
  local plan = alc.llm(string.format(
    "Problem:\n%s\n\nBefore solving it, list the simpler questions whose answers lead to the solution, "
      .. "easiest first, as a numbered list of at most %d items.", task, max), { max_tokens = 400 })
  local questions = list_items(plan, max)
  local solved = {}
  for i, q in ipairs(questions) do
    local known = {}
    for j, s in ipairs(solved) do known[j] = string.format("Q%d: %s\nA%d: %s", j, s.question, j, s.answer) end
    local a = alc.llm(string.format(
      "Problem:\n%s\n\nAlready answered:\n%s\n\nNow answer: %s\nReply with a short answer.",
      task, #known > 0 and table.concat(known, "\n") or "(nothing yet)", q), { max_tokens = 300 })
    solved[i] = { question = q, answer = trim(a) }
  end
  local known = {}
  for j, s in ipairs(solved) do known[j] = string.format("Q%d: %s\nA%d: %s", j, s.question, j, s.answer) end
  local final = alc.llm(string.format(
    "Problem:\n%s\n\nAnswers to the sub-questions:\n%s\n\nAnswer the problem. End with\nANSWER: <final answer>",
    task, #known > 0 and table.concat(known, "\n") or "(none)"), { max_tokens = 500 })
  record("least_to_most.subproblems", #solved)
  ctx.result = { answer = answer_of(final), subproblems = arr(solved) }
  return ctx
end

return M
