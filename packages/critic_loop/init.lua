--- critic_loop: a separate critic checks named criteria; the writer fixes failures.
---
--- Knobs (ctx):
---   task        string          the task (required)
---   criteria    array of string criteria the critic marks PASS or FAIL
---                               (default {"correct", "complete", "clear"})
---   max_rounds  integer         maximum critic rounds (default 3)
--- Result: ctx.result = { answer, passed, rounds, failures = [[criterion...] per round] }

local M = {}

M.meta = {
  name = "critic_loop",
  version = "0.1.0",
  description = "Writer and checklist critic loop: revise until every named criterion passes",
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

--- Criteria whose line is missing or does not start with PASS.
function M.failed_criteria(review, criteria)
  local failed = {}
  for _, c in ipairs(criteria) do
    local v = (tagged(review, c) or ""):upper()
    if v:sub(1, 4) ~= "PASS" then failed[#failed + 1] = c end
  end
  return failed
end

function M.run(ctx)
  local task = ctx.task or error("critic_loop: ctx.task is required")
  local criteria = ctx.criteria or { "correct", "complete", "clear" }
  local max_rounds = ctx.max_rounds or 3
  local lines = {}
  for i, c in ipairs(criteria) do lines[i] = c .. ": PASS or FAIL - <reason>" end
  local draft = alc.llm(string.format("Task:\n%s\n\nWrite your answer.", task), { max_tokens = 800 })
  local failures, passed, rounds = {}, false, 0
  for r = 1, max_rounds do
    rounds = r
    local review = alc.llm(string.format(
      "Task:\n%s\n\nAnswer to review:\n%s\n\nReview the answer against each criterion, one line each:\n%s",
      task, draft, table.concat(lines, "\n")), { max_tokens = 400, system = "You are a strict reviewer." })
    local failed = M.failed_criteria(review, criteria)
    failures[r] = arr(failed)
    if #failed == 0 then passed = true; break end
    if r == max_rounds then break end
    draft = alc.llm(string.format(
      "Task:\n%s\n\nYour answer:\n%s\n\nThe reviewer marked these criteria as failing: %s\nReview:\n%s\n\n"
        .. "Revise the answer so every criterion passes. Reply with the answer only.",
      task, draft, table.concat(failed, ", "), review), { max_tokens = 800 })
  end
  record("critic_loop.rounds", rounds)
  ctx.result = { answer = draft, passed = passed, rounds = rounds, failures = failures }
  return ctx
end

return M
