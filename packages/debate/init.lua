--- debate: two sides argue for k rounds, then a judge decides.
---
--- Each round asks both debaters in one batch; each sees the transcript so far.
---
--- Knobs (ctx):
---   task         string   the question or proposition (required)
---   side_a       string   stance of debater A (default "argue that the proposition holds")
---   side_b       string   stance of debater B (default "argue that the proposition does not hold")
---   rounds       integer  number of rounds (default 2)
---   turn_tokens  integer  token cap per turn (default 400)
---   judge_tokens integer  token cap of the verdict (default 600)
--- Result: ctx.result = { winner = "A"|"B"|"TIE", answer, verdict, transcript = [{round, a, b}] }

local M = {}

M.meta = {
  name = "debate",
  version = "0.1.0",
  description = "Two debaters argue opposite sides for k rounds; a judge names the winner",
  category = "synthesis",
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

local function transcript_text(transcript)
  local out = {}
  for _, t in ipairs(transcript) do
    out[#out + 1] = string.format("Round %d\nA: %s\nB: %s", t.round, t.a, t.b)
  end
  return #out > 0 and table.concat(out, "\n\n") or "(no turns yet)"
end

--- Reads `WINNER: A|B|TIE` from a verdict; anything else is a tie.
function M.parse_winner(verdict)
  local w = (tagged(verdict, "WINNER") or ""):upper()
  local first = w:match("^%s*(%a+)")
  if first == "A" or first == "B" then return first end
  return "TIE"
end

function M.run(ctx)
  local task = ctx.task or error("debate: ctx.task is required")
  local side_a = ctx.side_a or "argue that the proposition holds"
  local side_b = ctx.side_b or "argue that the proposition does not hold"
  local rounds = ctx.rounds or 2
  local transcript = {}
  for r = 1, rounds do
    local so_far = transcript_text(transcript)
    local function turn(name, stance)
      return {
        prompt = string.format(
          "Debate topic:\n%s\n\nYou are debater %s; your job is to %s.\n\nTranscript so far:\n%s\n\n"
            .. "Round %d of %d: make your strongest new point and answer the other side's last point.",
          task, name, stance, so_far, r, rounds),
        max_tokens = ctx.turn_tokens or 400,
      }
    end
    local said = alc.llm_batch({ turn("A", side_a), turn("B", side_b) })
    transcript[r] = { round = r, a = said[1], b = said[2] }
  end
  local verdict = alc.llm(string.format(
    "Debate topic:\n%s\n\nDebater A had to %s. Debater B had to %s.\n\n%s\n\nJudge the debate on "
      .. "evidence and reasoning, not style. Explain briefly, then write\nWINNER: A, B or TIE\n"
      .. "ANSWER: <the best-supported answer to the topic>",
    task, side_a, side_b, transcript_text(transcript)), { max_tokens = ctx.judge_tokens or 600 })
  local winner = M.parse_winner(verdict)
  record("debate.rounds", rounds)
  ctx.result = {
    winner = winner, answer = tagged(verdict, "ANSWER") or winner, verdict = verdict, transcript = transcript,
  }
  return ctx
end

return M
