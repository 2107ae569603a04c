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

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "pot",
  version = "0.1.0",
  description = "Program of thought: the model writes named calculations, the runner evaluates them exactly",
  category = "reasoning",
}

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
  local answer = value ~= nil and fmt(value) or U.answer_of(program)
  if explain and value ~= nil then
    local lines = {}
    for i, s in ipairs(steps) do lines[i] = string.format("%s = %s = %s", s.name, s.expr, fmt(s.value)) end
    local final = alc.llm(string.format(
      "Problem:\n%s\n\nExact computed values:\n%s\nResult: %s\n\nState the final answer to the problem, "
        .. "with units if any. End with\nANSWER: <final answer>", task, table.concat(lines, "\n"), fmt(value)),
      { max_tokens = 300 })
    answer = U.answer_of(final)
  end
  U.record("pot.steps", #steps)
  U.record("pot.errors", #errors)
  ctx.result = { answer = answer, value = value, steps = U.arr(steps), errors = U.arr(errors) }
  return ctx
end

return M
