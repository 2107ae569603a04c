--- pot: program of thought. The model writes the calculation, Lua computes it.
---
--- The model answers with lines `CALC <name> = <expression>` (numbers, + - * / % ^,
--- parentheses and names from earlier lines) and a line `RESULT <name>`. The runner
--- evaluates the expressions itself, so arithmetic is exact; with `explain` a second call
--- states the final answer from the computed values.
---
--- Knobs (ctx):
---   task     string   the problem (required)
---   explain  boolean  phrase the final answer with a second call (default true)
--- Result: ctx.result = { answer, value, steps = [{name, expr, value}], errors = [text] }
--- (without a computable program: value is nil and answer is the reply's ANSWER line)

local M = {}

M.meta = {
  name = "pot",
  version = "0.1.0",
  description = "Program of thought: the model writes named calculations, the runner evaluates them exactly",
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

local function fmt(v)
  if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2^53 then
    return string.format("%d", v)
  end
  if math.type(v) == "float" then return string.format("%.10g", v) end
  return tostring(v)
end

--- Evaluates one arithmetic expression with the given variables; returns value or nil, err.
function M.evaluate(expr, vars)
  local bad
  local substituted = expr:gsub("[%a_][%w_]*", function(name)
    local v = vars[name]
    if v == nil then bad = bad or name; return name end
    return "(" .. fmt(v) .. ")"
  end)
  if bad then return nil, "unknown name '" .. bad .. "'" end
  if not substituted:match("^[%d%s%.%+%-%*/%%%^%(%)]+$") then
    return nil, "unsupported characters in '" .. expr .. "'"
  end
  local chunk = load("return " .. substituted, "=calc", "t", {})
  if not chunk then return nil, "cannot parse '" .. expr .. "'" end
  local ok, v = pcall(chunk)
  if not ok or type(v) ~= "number" then return nil, "cannot evaluate '" .. expr .. "'" end
  if v ~= v or v == math.huge or v == -math.huge then return nil, "'" .. expr .. "' is not finite" end
  return v
end

--- Runs the CALC/RESULT program of a reply.
function M.execute(text)
  local vars, steps, errors, result_name = {}, {}, {}, nil
  for line in (tostring(text) .. "\n"):gmatch("(.-)\r?\n") do
    local name, expr = line:match("^%s*CALC%s+([%a_][%w_]*)%s*=%s*(.-)%s*$")
    if name then
      local v, err = M.evaluate(expr, vars)
      if v == nil then
        errors[#errors + 1] = err
      else
        vars[name] = v
        steps[#steps + 1] = { name = name, expr = expr, value = v }
      end
    end
    local r = line:match("^%s*RESULT%s+([%a_][%w_]*)%s*$")
    if r then result_name = r end
  end
  local value = result_name and vars[result_name]
  if value == nil and #steps > 0 then value = steps[#steps].value end
  return value, steps, errors
end

function M.run(ctx)
  local task = ctx.task or error("pot: ctx.task is required")
  local explain = ctx.explain ~= false
  local program = alc.llm(string.format(
    "Problem:\n%s\n\nDo not compute anything yourself. Write the computation as lines of the form\n"
      .. "CALC <name> = <expression>\nusing numbers, + - * / %% ^, parentheses and names defined on earlier lines, "
      .. "and finish with a line\nRESULT <name>", task), { max_tokens = 500 })
  local value, steps, errors = M.execute(program)
  -- Without a computable program the reply's own answer line (or last line) stands.
  local answer = value ~= nil and fmt(value) or answer_of(program)
  if explain and value ~= nil then
    local lines = {}
    for i, s in ipairs(steps) do lines[i] = string.format("%s = %s = %s", s.name, s.expr, fmt(s.value)) end
    local final = alc.llm(string.format(
      "Problem:\n%s\n\nExact computed values:\n%s\nResult: %s\n\nState the final answer to the problem, "
        .. "with units if any. End with\nANSWER: <final answer>", task, table.concat(lines, "\n"), fmt(value)),
      { max_tokens = 300 })
    answer = answer_of(final)
  end
  record("pot.steps", #steps)
  record("pot.errors", #errors)
  ctx.result = { answer = answer, value = value, steps = arr(steps), errors = arr(errors) }
  return ctx
end

return M
