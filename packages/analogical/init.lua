--- analogical: recall solved related problems, then solve the task by analogy.
---
--- Knobs (ctx):
---   task         string   the problem (required)
---   n_analogies  integer  related problems to recall (default 3)
--- Result: ctx.result = { answer, analogies = [text], solution }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "analogical",
  version = "0.1.0",
  description = "Analogical prompting: self-generated related problems with solutions guide the answer",
  category = "reasoning",
}

--- Splits a recall reply into its `EXAMPLE n:` blocks (text before the first is dropped).
function M.split_examples(text)
  local blocks, current = {}, nil
  for line in (tostring(text) .. "\n"):gmatch("(.-)\r?\n") do
    if line:match("^%s*EXAMPLE%s*%d+%s*:") then
      current = { U.trim(line:gsub("^%s*EXAMPLE%s*%d+%s*:", "")) }
      blocks[#blocks + 1] = current
    elseif current then
      current[#current + 1] = line
    end
  end
  local out = {}
  for i, b in ipairs(blocks) do out[i] = U.trim(table.concat(b, "\n")) end
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
  local shown = #examples > 0 and U.numbered(examples) or U.trim(recall)
  local solution = alc.llm(string.format(
    "Related solved problems:\n%s\n\nNow solve this problem, reusing whatever transfers from them:\n%s\n\n"
      .. "End with\nANSWER: <final answer>", shown, task), { max_tokens = 800 })
  U.record("analogical.examples", #examples)
  ctx.result = { answer = U.answer_of(solution), analogies = U.arr(examples), solution = solution }
  return ctx
end

return M
