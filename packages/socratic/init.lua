--- socratic: a questioner asks probing questions, an answerer replies, then conclude.
---
--- Each turn asks for the single most useful next question (or DONE) and then answers
--- it; the final call answers the task from the whole dialogue.
---
--- Knobs (ctx):
---   task   string   the problem (required)
---   turns  integer  maximum question/answer turns (default 3)
--- Result: ctx.result = { answer, dialogue = [{question, answer}], conclusion }

local M = {}

M.meta = {
  name = "socratic",
  version = "0.1.0",
  description = "Socratic questioning: probing question/answer turns, then a reasoned conclusion",
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

local function dialogue_text(d)
  if #d == 0 then return "(no questions yet)" end
  local out = {}
  for i, t in ipairs(d) do out[i] = string.format("Q%d: %s\nA%d: %s", i, t.question, i, t.answer) end
  return table.concat(out, "\n")
end

--- True when a questioner reply says the inquiry is complete (a line "DONE").
function M.is_done(text)
  for line in (tostring(text) .. "\n"):gmatch("(.-)\r?\n") do
    if trim(line):upper() == "DONE" then return true end
  end
  return false
end

function M.run(ctx)
  local task = ctx.task or error("socratic: ctx.task is required")
  local turns = ctx.turns or 3
  local dialogue = {}
  for _ = 1, turns do
    local q = alc.llm(string.format(
      "Problem:\n%s\n\nDialogue so far:\n%s\n\nAs a Socratic tutor, ask the one question that would most "
        .. "clarify or test the reasoning needed. If the dialogue already settles the problem, reply DONE.",
      task, dialogue_text(dialogue)), { max_tokens = 150 })
    if M.is_done(q) then break end
    local a = alc.llm(string.format(
      "Problem:\n%s\n\nDialogue so far:\n%s\n\nAnswer this question carefully and briefly:\n%s",
      task, dialogue_text(dialogue), trim(q)), { max_tokens = 300 })
    dialogue[#dialogue + 1] = { question = trim(q), answer = trim(a) }
  end
  local conclusion = alc.llm(string.format(
    "Problem:\n%s\n\nDialogue:\n%s\n\nDraw the conclusion the dialogue supports. End with\nANSWER: <final answer>",
    task, dialogue_text(dialogue)), { max_tokens = 600 })
  record("socratic.turns", #dialogue)
  ctx.result = { answer = answer_of(conclusion), dialogue = arr(dialogue), conclusion = conclusion }
  return ctx
end

return M
