--- cot: chain of thought in one call.
---
--- Asks the model to reason step by step and to finish with a tagged answer line,
--- then splits the reply into the reasoning and the final answer.
---
--- Knobs (ctx):
---   task        string   the question (required)
---   answer_tag  string   tag of the final line (default "ANSWER")
---   max_tokens  integer  token cap of the call (default 900)
---   system      string   system prompt override
--- Result: ctx.result = { answer, reasoning, raw }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "cot",
  version = "0.1.0",
  description = "Chain of thought: step-by-step reasoning ending with a tagged answer line",
  category = "reasoning",
}

M.spec = {
  entries = {
    run = {
      input = { task = "string", answer_tag = "string?", max_tokens = "integer?", system = "string?" },
      result = { answer = "string", reasoning = "string", raw = "string" },
    },
  },
}

-- Strict variant of strategy_util.trim (which also accepts nil and non-strings): it
-- errors on anything but a string, so it stays private rather than being unified.
local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

--- Splits `text` at its last `<tag>:` line; without one, the last non-empty line is
--- the answer.
function M.split_answer(text, tag)
  local lines = {}
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do lines[#lines + 1] = line end
  local want = tag:lower() .. ":"
  for i = #lines, 1, -1 do
    local l = trim(lines[i])
    if l:lower():sub(1, #want) == want then
      local before = {}
      for j = 1, i - 1 do before[#before + 1] = lines[j] end
      return trim(l:sub(#want + 1)), trim(table.concat(before, "\n"))
    end
  end
  for i = #lines, 1, -1 do
    if trim(lines[i]) ~= "" then
      local before = {}
      for j = 1, i - 1 do before[#before + 1] = lines[j] end
      return trim(lines[i]), trim(table.concat(before, "\n"))
    end
  end
  return "", ""
end

function M.run(ctx)
  local task = ctx.task or error("cot: ctx.task is required")
  local tag = ctx.answer_tag or "ANSWER"
  local prompt = string.format(
    "Problem:\n%s\n\nWork through the problem one numbered step at a time, stating what each step "
      .. "establishes. When you are done, write a last line of the form\n%s: <your final answer>",
    task, tag)
  local raw = alc.llm(prompt, {
    system = ctx.system or "You reason carefully and show your intermediate steps.",
    max_tokens = ctx.max_tokens or 900,
  })
  local answer, reasoning = M.split_answer(raw, tag)
  U.record("cot.reasoning_chars", #reasoning)
  ctx.result = { answer = answer, reasoning = reasoning, raw = raw }
  return ctx
end

return M
