--- analogical: recall solved related problems, then solve the task by analogy.
---
--- Knobs (ctx):
---   task         string   the problem (required)
---   n_analogies  integer  related problems to recall (default 3)
--- Result: ctx.result = { answer, analogies = [text], solution }

local M = {}

M.meta = {
  name = "analogical",
  version = "0.1.0",
  description = "Analogical prompting: self-generated related problems with solutions guide the answer",
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

--- Splits a recall reply into its `EXAMPLE n:` blocks (text before the first is dropped).
function M.split_examples(text)
  local blocks, current = {}, nil
  for line in (tostring(text) .. "\n"):gmatch("(.-)\r?\n") do
    if line:match("^%s*EXAMPLE%s*%d+%s*:") then
      current = { trim(line:gsub("^%s*EXAMPLE%s*%d+%s*:", "")) }
      blocks[#blocks + 1] = current
    elseif current then
      current[#current + 1] = line
    end
  end
  local out = {}
  for i, b in ipairs(blocks) do out[i] = trim(table.concat(b, "\n")) end
  return out
end

function M.run(ctx)
  local task = ctx.task or error("analogical: ctx.task is required")
  local n = ctx.n_analogies or 3
  local recall = alc.llm(string.format(
    "Problem:\n%s\n\nRecall %d different problems you know that resemble this one in structure. For each, "
      .. "write a block starting with 'EXAMPLE <i>:' giving the problem and a worked solution.", task, n),
    { max_tokens = 900 })
  local examples = M.split_examples(recall)
  local shown = #examples > 0 and numbered(examples) or trim(recall)
  local solution = alc.llm(string.format(
    "Related solved problems:\n%s\n\nNow solve this problem, reusing whatever transfers from them:\n%s\n\n"
      .. "End with\nANSWER: <final answer>", shown, task), { max_tokens = 800 })
  record("analogical.examples", #examples)
  ctx.result = { answer = answer_of(solution), analogies = arr(examples), solution = solution }
  return ctx
end

return M
