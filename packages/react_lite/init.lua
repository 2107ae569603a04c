--- react_lite: thought/action loop without external tools.
---
--- Each step the model writes a thought and one action: `LOOKUP[question]` (answered by
--- a separate, focused model call acting as the knowledge source) or `FINISH[answer]`.
--- A step without a valid action gets an observation asking for one. After `max_steps`
--- without FINISH, one more call forces an answer.
---
--- Knobs (ctx):
---   task       string   the question (required)
---   max_steps  integer  thought/action steps (default 4)
--- Result: ctx.result = { answer, steps = [{thought, action, observation?}], finished }

local M = {}

M.meta = {
  name = "react_lite",
  version = "0.1.0",
  description = "ReAct-style loop without tools: thoughts, LOOKUP actions answered by the model, FINISH",
  category = "agent",
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

--- The action of a step: ("FINISH", answer), ("LOOKUP", question) or nil.
function M.parse_action(text)
  local finish = text:match("FINISH%[(.-)%]")
  if finish then return "FINISH", trim(finish) end
  local lookup = text:match("LOOKUP%[(.-)%]")
  if lookup then return "LOOKUP", trim(lookup) end
  return nil
end

local function trace_text(steps)
  if #steps == 0 then return "(empty)" end
  local out = {}
  for i, s in ipairs(steps) do
    out[i] = string.format("Step %d: %s\nObservation: %s", i, s.thought, s.observation or "-")
  end
  return table.concat(out, "\n")
end

function M.run(ctx)
  local task = ctx.task or error("react_lite: ctx.task is required")
  local max_steps = ctx.max_steps or 4
  local steps, answer, finished = {}, nil, false
  for _ = 1, max_steps do
    local reply = alc.llm(string.format(
      "Question:\n%s\n\nTrace so far:\n%s\n\nWrite 'Thought: ...' and then exactly one action line:\n"
        .. "Action: LOOKUP[<a factual sub-question>] or Action: FINISH[<final answer>]",
      task, trace_text(steps)), { max_tokens = 300 })
    local kind, arg = M.parse_action(reply)
    local step = { thought = trim(reply), action = kind }
    steps[#steps + 1] = step
    if kind == "FINISH" then
      answer, finished = arg, true
      break
    elseif kind == "LOOKUP" then
      step.observation = trim(alc.llm(string.format(
        "Answer this factual question in one or two sentences:\n%s", arg), { max_tokens = 150 }))
    else
      step.observation = "No valid action. Use LOOKUP[...] or FINISH[...]."
    end
  end
  if not finished then
    local final = alc.llm(string.format(
      "Question:\n%s\n\nTrace:\n%s\n\nGive your best final answer now. End with\nANSWER: <final answer>",
      task, trace_text(steps)), { max_tokens = 300 })
    answer = answer_of(final)
  end
  record("react_lite.steps", #steps)
  ctx.result = { answer = answer, steps = steps, finished = finished }
  return ctx
end

return M
