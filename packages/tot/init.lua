--- tot: tree of thoughts with a beam.
---
--- At each level every frontier node proposes `breadth` next steps (one batch for the
--- whole level), every proposal is scored 1-10 by the model (a second batch), and the
--- `beam` best partial solutions survive (ties keep proposal order). After `depth`
--- levels the best path is turned into a final answer.
---
--- Knobs (ctx):
---   task     string   the problem (required)
---   breadth  integer  proposals per node (default 3)
---   depth    integer  levels (default 2)
---   beam     integer  survivors per level (default 2)
--- Result: ctx.result = { answer, best_path, best_score, explored }

local M = {}

M.meta = {
  name = "tot",
  version = "0.1.0",
  description = "Tree of thoughts: batched proposals, model-scored, beam search over reasoning steps",
  category = "search",
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

local function path_text(path)
  if #path == 0 then return "(none yet)" end
  return numbered(path)
end

function M.run(ctx)
  local task = ctx.task or error("tot: ctx.task is required")
  local breadth, depth, beam = ctx.breadth or 3, ctx.depth or 2, ctx.beam or 2
  local frontier = { { path = {}, score = 0 } }
  local explored = 0
  for level = 1, depth do
    local items, parents = {}, {}
    for _, node in ipairs(frontier) do
      for j = 1, breadth do
        items[#items + 1] = {
          prompt = string.format(
            "Problem:\n%s\n\nSteps so far:\n%s\n\nPropose candidate %d of %d for the next step. "
              .. "Reply with that single step only.", task, path_text(node.path), j, breadth),
          max_tokens = 200,
        }
        parents[#items] = node
      end
    end
    local proposals = alc.llm_batch(items)
    local children, score_items = {}, {}
    for i, step in ipairs(proposals) do
      local path = {}
      for k, s in ipairs(parents[i].path) do path[k] = s end
      path[#path + 1] = trim(step)
      children[i] = { path = path, index = i }
      score_items[i] = {
        prompt = string.format(
          "Problem:\n%s\n\nPartial solution:\n%s\n\nHow likely is this partial solution to lead to a "
            .. "correct answer? Reply with a line SCORE: <1-10>.", task, path_text(path)),
        max_tokens = 60,
      }
    end
    local scores = alc.llm_batch(score_items)
    for i, child in ipairs(children) do child.score = score_of(scores[i], 1, 10, 1) end
    explored = explored + #children
    table.sort(children, function(x, y)
      if x.score ~= y.score then return x.score > y.score end
      return x.index < y.index
    end)
    frontier = {}
    for i = 1, math.min(beam, #children) do frontier[i] = children[i] end
  end
  local best = frontier[1]
  local final = alc.llm(string.format(
    "Problem:\n%s\n\nReasoning steps:\n%s\n\nFollow these steps to their conclusion and end with\n"
      .. "ANSWER: <final answer>", task, path_text(best.path)), { max_tokens = 500 })
  record("tot.explored", explored)
  record("tot.best_score", best.score)
  ctx.result = { answer = answer_of(final), best_path = best.path, best_score = best.score, explored = explored }
  return ctx
end

return M
