--- decompose: split into independent subtasks, solve them in one batch, merge.
---
--- One call splits the task into at most `max_subtasks` self-contained subtasks (a
--- numbered list; without one, the whole task is the only subtask). The subtasks are
--- solved in one batch, each seeing the overall task for context, and a last call
--- merges the partial results into one answer. When the session budget (ctx.budget)
--- is short, fewer subtasks are asked for, so that every one of them and the merge
--- can still be paid for (`budget_limited` is then true).
--- Calls: 2 + #subtasks (split, one batch, merge).
---
--- Knobs (ctx):
---   task            string   the task (required)
---   max_subtasks    integer  subtasks at most (default 5)
---   subtask_tokens  integer  token cap per subtask (default 400)
---   merge_tokens    integer  token cap of the merge (default 600)
--- Result: ctx.result = { answer, subtasks = [subtask], subtask_results = [text], decomposition_raw,
---                         total_llm_calls, budget_limited }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "decompose",
  version = "0.1.0",
  description = "Split into independent subtasks, solve them in parallel (one batch), merge the parts",
  category = "planning",
  paper = "Decomposed Prompting: A Modular Approach for Solving Complex Tasks, Khot et al., 2022 "
    .. "(arXiv:2210.02406; ICLR 2023)",
}

M.spec = {
  entries = {
    run = {
      input = { task = "string", max_subtasks = "integer?", subtask_tokens = "integer?", merge_tokens = "integer?" },
      result = { answer = "string", subtasks = "string[]", subtask_results = "string[]",
                 decomposition_raw = "string", total_llm_calls = "integer", budget_limited = "boolean" },
    },
  },
}

--- The subtasks of a split reply: its numbered items, at most `max`.
function M.parse_subtasks(raw, max)
  local out = {}
  for line in (tostring(raw or "") .. "\n"):gmatch("(.-)\r?\n") do
    local item = line:match("^%s*%d+[%.%)]%s+(.+)$")
    if item and U.trim(item) ~= "" then
      out[#out + 1] = U.trim(item)
      if #out >= max then break end
    end
  end
  return out
end

function M.run(ctx)
  local task = U.text_knob("decompose", ctx)
  local want = U.int_knob("decompose", ctx, "max_subtasks", 5, 1)
  local subtask_tokens = U.int_knob("decompose", ctx, "subtask_tokens", 400, 1)
  local merge_tokens = U.int_knob("decompose", ctx, "merge_tokens", 600, 1)

  -- the split and the merge are always paid for; the subtasks get what is left
  local max = math.max(1, U.fit(want, 2))
  local raw = alc.llm(string.format(
    "Task:\n%s\n\nBreak this task into at most %d sub-tasks that can each be done on its own, without the "
      .. "others' results. Together they should cover the whole task, without overlapping. Put the more "
      .. "basic ones first. Reply with a numbered list only:\n1. <sub-task>\n2. <sub-task>", task, max),
    { system = "You plan work: you split tasks into self-contained, non-overlapping parts.", max_tokens = 300 })

  local subtasks = M.parse_subtasks(raw, max)
  if #subtasks == 0 then subtasks = { task } end
  alc.log("info", string.format("decompose: %d subtask(s)", #subtasks))

  local items = {}
  for i, s in ipairs(subtasks) do
    items[i] = {
      prompt = string.format(
        "You are doing one part of a larger task.\n\nOverall task:\n%s\n\nYour part (%d of %d):\n%s\n\n"
          .. "Complete only your part, thoroughly and self-contained.", task, i, #subtasks, s),
      system = "You are a specialist who solves exactly the part assigned to you.",
      max_tokens = subtask_tokens,
    }
  end
  local results = alc.llm_batch(items)

  local blocks = {}
  for i, s in ipairs(subtasks) do blocks[i] = string.format("## Part %d: %s\n%s", i, s, U.trim(results[i])) end
  local merged = alc.llm(string.format(
    "Overall task:\n%s\n\nResults of its parts:\n\n%s\n\nMerge these results into one coherent, complete "
      .. "response to the overall task. Resolve any contradictions between the parts, remove repetition, and "
      .. "keep every distinct contribution.", task, table.concat(blocks, "\n\n")),
    { system = "You integrate partial results into a single well-structured answer.", max_tokens = merge_tokens })

  U.record("decompose.subtasks", #subtasks)
  ctx.result = {
    answer = U.trim(merged), subtasks = U.arr(subtasks), subtask_results = U.arr(results),
    decomposition_raw = raw, total_llm_calls = #subtasks + 2, budget_limited = max < want,
  }
  return ctx
end

return M
