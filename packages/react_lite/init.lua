--- react_lite: thought/action loop without external tools.
---
--- Each step the model writes a thought and one action: `LOOKUP[question]` (answered by
--- a separate, focused model call acting as the knowledge source) or `FINISH[answer]`.
--- A step without a valid action gets an observation asking for one. After `max_steps`
--- without FINISH, one more call forces an answer.
---
--- Knobs (ctx):
---   task       string   the question (required)
---   max_steps  integer  thought/action steps (default 4)
--- Result: ctx.result = { answer, steps = [{thought, action, observation?}], finished }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "react_lite",
  version = "0.1.0",
  description = "ReAct-style loop without tools: thoughts, LOOKUP actions answered by the model, FINISH",
  category = "agent",
}

--- The action of a step: ("FINISH", answer), ("LOOKUP", question) or nil.
function M.parse_action(text)
  local finish = text:match("FINISH%[(.-)%]")
  if finish then return "FINISH", U.trim(finish) end
  local lookup = text:match("LOOKUP%[(.-)%]")
  if lookup then return "LOOKUP", U.trim(lookup) end
  return nil
end

local function trace_text(steps)
  if #steps == 0 then return "(empty)" end
  local out = {}
  for i, s in ipairs(steps) do
    out[i] = string.format("Step %d: %s\nObservation: %s", i, s.thought, s.observation or "-")
  end
  return table.concat(out, "\n")
end

function M.run(ctx)
  local task = ctx.task or error("react_lite: ctx.task is required")
  local max_steps = ctx.max_steps or 4
  local steps, answer, finished = {}, nil, false
  for _ = 1, max_steps do
    local reply = alc.llm(string.format(
      "Question:\n%s\n\nTrace so far:\n%s\n\nWrite 'Thought: ...' and then exactly one action line:\n"
        .. "Action: LOOKUP[<a factual sub-question>] or Action: FINISH[<final answer>]",
      task, trace_text(steps)), { max_tokens = 300 })
    local kind, arg = M.parse_action(reply)
    local step = { thought = U.trim(reply), action = kind }
    steps[#steps + 1] = step
    if kind == "FINISH" then
      answer, finished = arg, true
      break
    elseif kind == "LOOKUP" then
      step.observation = U.trim(alc.llm(string.format(
        "Answer this factual question in one or two sentences:\n%s", arg), { max_tokens = 150 }))
    else
      step.observation = "No valid action. Use LOOKUP[...] or FINISH[...]."
    end
  end
  if not finished then
    local final = alc.llm(string.format(
      "Question:\n%s\n\nTrace:\n%s\n\nGive your best final answer now. End with\nANSWER: <final answer>",
      task, trace_text(steps)), { max_tokens = 300 })
    answer = U.answer_of(final)
  end
  U.record("react_lite.steps", #steps)
  ctx.result = { answer = answer, steps = steps, finished = finished }
  return ctx
end

return M
