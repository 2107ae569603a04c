--- maieutic: explain both truth values, test each explanation, keep the consistent side.
---
--- One batch asks for the best explanation that the statement is TRUE and the best that
--- it is FALSE; a second batch asks whether each explanation is itself sound. When
--- exactly one side survives it wins; otherwise a judge weighs both.
---
--- Knobs (ctx):
---   task  string  the statement or yes/no question (required)
--- Result: ctx.result = { answer = "TRUE"|"FALSE"|"UNKNOWN", explanations = {true_side, false_side},
---                        sound = {true_side, false_side}, judged }

local M = {}

M.meta = {
  name = "maieutic",
  version = "0.1.0",
  description = "Maieutic prompting: abductive explanations for both truth values, kept if self-consistent",
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

--- Reads `SOUND: YES|NO` from a check (anything else counts as NO).
function M.is_sound(text)
  local v = (tagged(text, "SOUND") or ""):upper()
  return v:match("^%s*YES") ~= nil
end

local function truth(text)
  local v = (tagged(text, "VERDICT") or ""):upper()
  if v:find("TRUE", 1, true) then return "TRUE" end
  if v:find("FALSE", 1, true) then return "FALSE" end
  return "UNKNOWN"
end

function M.run(ctx)
  local task = ctx.task or error("maieutic: ctx.task is required")
  local function explain(side)
    return { prompt = string.format(
      "Statement:\n%s\n\nGive the strongest explanation of why the statement is %s.", task, side), max_tokens = 400 }
  end
  local ex = alc.llm_batch({ explain("TRUE"), explain("FALSE") })
  local function check(e)
    return { prompt = string.format(
      "Explanation:\n%s\n\nIs this explanation factually and logically sound on its own? Answer with a line "
        .. "SOUND: YES or SOUND: NO.", e), max_tokens = 200 }
  end
  local checks = alc.llm_batch({ check(ex[1]), check(ex[2]) })
  local sound_true, sound_false = M.is_sound(checks[1]), M.is_sound(checks[2])
  local answer, judged
  if sound_true and not sound_false then
    answer, judged = "TRUE", false
  elseif sound_false and not sound_true then
    answer, judged = "FALSE", false
  else
    local verdict = alc.llm(string.format(
      "Statement:\n%s\n\nCase for TRUE:\n%s\n\nCase for FALSE:\n%s\n\nWeigh both cases. End with\n"
        .. "VERDICT: TRUE or VERDICT: FALSE", task, ex[1], ex[2]), { max_tokens = 500 })
    answer, judged = truth(verdict), true
  end
  record("maieutic.judged", judged)
  ctx.result = {
    answer = answer, judged = judged,
    explanations = { true_side = ex[1], false_side = ex[2] },
    sound = { true_side = sound_true, false_side = sound_false },
  }
  return ctx
end

return M
