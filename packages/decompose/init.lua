--- decompose: split into independent subtasks, solve them in one batch, merge.
---
--- Knobs (ctx):
---   task          string   the task (required)
---   max_subtasks  integer  cap on subtasks (default 4)
--- Result: ctx.result = { answer, merged, subtasks = [{subtask, result}] }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "decompose",
  version = "0.1.0",
  description = "Split into independent subtasks, solve them in parallel (one batch), merge the parts",
  category = "planning",
}

function M.run(ctx)
  local task = ctx.task or error("decompose: ctx.task is required")
  local max = ctx.max_subtasks or 4
  local split = alc.llm(string.format(
    "Task:\n%s\n\nSplit it into at most %d subtasks that can be done independently of each other. "
      .. "Reply with a numbered list only.", task, max), { max_tokens = 400 })
  local subtasks = U.list_items(split, max)
  if #subtasks == 0 then subtasks = { task } end
  local items = {}
  for i, s in ipairs(subtasks) do
    items[i] = {
      prompt = string.format("Overall task (for context):\n%s\n\nYour part:\n%s\n\nComplete only your part.", task, s),
      max_tokens = 600,
    }
  end
  local parts = alc.llm_batch(items)
  local done, blocks = {}, {}
  for i, s in ipairs(subtasks) do
    done[i] = { subtask = s, result = parts[i] }
    blocks[i] = string.format("Part %d (%s):\n%s", i, s, parts[i])
  end
  local merged = alc.llm(string.format(
    "Task:\n%s\n\n%s\n\nCombine the parts into one consistent result, resolving overlaps. End with\n"
      .. "ANSWER: <the combined result in one line>", task, table.concat(blocks, "\n\n")), { max_tokens = 900 })
  U.record("decompose.subtasks", #subtasks)
  ctx.result = { answer = U.answer_of(merged), merged = merged, subtasks = done }
  return ctx
end

return M
