--- cot: chain of thought.
---
--- By default one call: the model reasons in `depth` numbered steps, one insight each,
--- then concludes and ends with a tagged answer line; the reply is split into the
--- chain of steps, the conclusion and the answer.
--- With `iterative = true` the chain is built one step per call instead, each call
--- seeing the steps so far (so they run in order), and a last call synthesises the
--- chain into the conclusion. When the session budget (ctx.budget) cannot pay for
--- the next step plus the synthesis, the chain stops early and `budget_limited` is
--- true.
--- Calls: 1 (iterative: depth + 1).
---
--- Knobs (ctx):
---   task          string   the question (required)
---   depth         integer  reasoning steps (default 3; iterative with 0 synthesises directly)
---   iterative     boolean  one call per step, then a synthesis call (default false)
---   answer_tag    string   tag of the final line (default "ANSWER")
---   max_tokens    integer  token cap of the single call (default 900)
---   step_tokens   integer  iterative: token cap of each step (default 200)
---   synth_tokens  integer  iterative: token cap of the synthesis (default 500)
---   system        string   system prompt of the single call or of the step calls
--- Result: ctx.result = { answer, conclusion, chain = [step], total_llm_calls, budget_limited }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "cot",
  version = "0.1.0",
  description = "Chain of thought: numbered reasoning steps, then a conclusion ending with a tagged answer line",
  category = "reasoning",
  paper = "Chain-of-Thought Prompting Elicits Reasoning in Large Language Models, Wei et al., 2022 "
    .. "(arXiv:2201.11903; NeurIPS 2022)",
}

M.spec = {
  entries = {
    run = {
      input = { task = "string", depth = "integer?", iterative = "boolean?", answer_tag = "string?",
                max_tokens = "integer?", step_tokens = "integer?", synth_tokens = "integer?", system = "string?" },
      result = { answer = "string", conclusion = "string", chain = "string[]", total_llm_calls = "integer",
                 budget_limited = "boolean" },
    },
  },
}

M.SYSTEM = "You reason carefully, one concrete insight per step."

--- Splits a reasoning reply into its numbered steps (`1.`, `2)` or `Step 3:`; a step
--- runs on over the following lines until a blank line or the next step) and the
--- rest after them, which is the conclusion. A line starting with `tag:` or
--- `Conclusion:` ends the steps. Returns steps, conclusion (both trimmed).
function M.split(text, tag)
  local steps, rest, current, done = {}, {}, nil, false
  local stop = { tag:lower() .. ":", "conclusion:" }
  for line in (tostring(text or "") .. "\n"):gmatch("(.-)\r?\n") do
    local l = U.trim(line)
    local low = l:lower()
    if not done and (low:sub(1, #stop[1]) == stop[1] or low:sub(1, #stop[2]) == stop[2]) then done = true end
    if done then
      rest[#rest + 1] = line
    else
      local item = l:match("^%d+[%.%)]%s+(.+)$") or l:match("^[Ss]tep%s+%d+%s*[:%.%)]%s*(.+)$")
      if item then
        current = #steps + 1
        steps[current] = U.trim(item)
      elseif l == "" then
        current = nil
      elseif current then
        steps[current] = steps[current] .. " " .. l
      elseif #steps > 0 then
        done = true
        rest[#rest + 1] = line
      end
    end
  end
  return steps, U.trim(table.concat(rest, "\n"))
end

local function steps_text(chain)
  local lines = {}
  for i, s in ipairs(chain) do lines[i] = string.format("Step %d: %s", i, s) end
  return table.concat(lines, "\n")
end

local function answer_of(text, tag)
  return U.tagged(text, tag) or U.last_line(text)
end

local function single(ctx, task, depth, tag)
  local tokens = U.int_knob("cot", ctx, "max_tokens", 900, 1)
  local raw = alc.llm(string.format(
    "Problem:\n%s\n\nThink it through step by step in %d numbered steps (1., 2., ...), each stating one key "
      .. "insight that builds on the previous ones. Then state your conclusion, and finish with a last line "
      .. "of the form\n%s: <your final answer>", task, depth, tag),
    { system = ctx.system or M.SYSTEM, max_tokens = tokens })
  local chain, rest = M.split(raw, tag)
  if #chain == 0 or rest == "" then rest = U.trim(raw) end
  return {
    answer = answer_of(raw, tag), conclusion = rest, chain = U.arr(chain),
    total_llm_calls = 1, budget_limited = false,
  }
end

local function iterative(ctx, task, depth, tag)
  local step_tokens = U.int_knob("cot", ctx, "step_tokens", 200, 1)
  local synth_tokens = U.int_knob("cot", ctx, "synth_tokens", 500, 1)
  local chain, limited = {}, false
  for i = 1, depth do
    if U.fit(1, 1) < 1 then
      limited = true
      break
    end
    local prompt
    if i == 1 then
      prompt = string.format(
        "Problem:\n%s\n\nReason about it step by step. Write only the first step: the first key insight "
          .. "needed to solve it, in one or two sentences.", task)
    else
      prompt = string.format(
        "Problem:\n%s\n\nReasoning so far:\n%s\n\nWrite only the next step: one new insight that builds on "
          .. "the steps above, in one or two sentences. Do not repeat earlier steps.", task, steps_text(chain))
    end
    chain[i] = U.trim(alc.llm(prompt, { system = ctx.system or M.SYSTEM, max_tokens = step_tokens }))
  end
  local body = #chain > 0 and ("Reasoning chain:\n" .. steps_text(chain) .. "\n\n") or ""
  local conclusion = alc.llm(string.format(
    "Problem:\n%s\n\n%sDraw the reasoning together into a clear, complete answer to the problem. "
      .. "Finish with a last line of the form\n%s: <your final answer>", task, body, tag),
    { system = "You synthesise a chain of reasoning into a correct, concise answer.", max_tokens = synth_tokens })
  return {
    answer = answer_of(conclusion, tag), conclusion = U.trim(conclusion), chain = U.arr(chain),
    total_llm_calls = #chain + 1, budget_limited = limited,
  }
end

function M.run(ctx)
  local task = U.text_knob("cot", ctx)
  if ctx.iterative ~= nil and type(ctx.iterative) ~= "boolean" then
    error("cot: ctx.iterative must be a boolean, got " .. tostring(ctx.iterative))
  end
  local depth = U.int_knob("cot", ctx, "depth", 3, ctx.iterative and 0 or 1)
  local tag = ctx.answer_tag or "ANSWER"
  if type(tag) ~= "string" or not tag:match("^[%w_][%w_ ]*$") then
    error("cot: ctx.answer_tag must be a word such as \"ANSWER\", got " .. tostring(tag))
  end
  local result = ctx.iterative and iterative(ctx, task, depth, tag) or single(ctx, task, depth, tag)
  U.record("cot.steps", #result.chain)
  ctx.result = result
  return ctx
end

return M
