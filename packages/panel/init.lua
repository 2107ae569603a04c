--- panel: a panel of roles discusses the task, a moderator synthesises.
---
--- Each role states its position in turn and, from the second speaker on, answers
--- the arguments made so far ("one by one"). With `parallel = true` the roles do not
--- see each other and all speak in one batch instead ("simultaneous talk"), which is
--- faster but loses the exchange. A moderator then weighs the arguments, names what
--- they agree and disagree on, and concludes with a tagged answer line. When the
--- session budget (ctx.budget) cannot pay for every role plus the moderator, the
--- last roles do not speak and `budget_limited` is true.
--- Calls: #roles + 1 (parallel: one batch of #roles, then one call).
---
--- Knobs (ctx):
---   task          string    the topic or question (required)
---   roles         string[]  the speakers, in speaking order (default advocate, critic, pragmatist)
---   parallel      boolean   all roles speak at once, without seeing each other (default false)
---   view_tokens   integer   token cap of each argument (default 250)
---   synth_tokens  integer   token cap of the synthesis (default 400)
--- Result: ctx.result = { answer, synthesis, arguments = [{role, text}], mode = "sequential"|"parallel",
---                         total_llm_calls, budget_limited }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "panel",
  version = "0.1.0",
  description = "Panel of roles arguing in turn (or at once, in one batch), then a moderator's synthesis",
  category = "synthesis",
  paper = "ChatEval: Towards Better LLM-based Evaluators through Multi-Agent Debate, Chan et al., 2023 "
    .. "(arXiv:2308.07201; ICLR 2024)",
}

M.spec = {
  entries = {
    run = {
      input = { task = "string", roles = "string[]?", parallel = "boolean?", view_tokens = "integer?",
                synth_tokens = "integer?" },
      result = { answer = "string", synthesis = "string", arguments = "{role, text}[]", mode = "string",
                 total_llm_calls = "integer", budget_limited = "boolean" },
    },
  },
}

M.DEFAULT_ROLES = { "advocate", "critic", "pragmatist" }

local function roles_of(ctx)
  local roles = ctx.roles
  if roles == nil then return M.DEFAULT_ROLES end
  if type(roles) ~= "table" or #roles == 0 then error("panel: ctx.roles must be a non-empty array of strings") end
  for i, r in ipairs(roles) do
    if type(r) ~= "string" or U.trim(r) == "" then
      error(string.format("panel: ctx.roles[%d] must be a non-empty string", i))
    end
  end
  return roles
end

local function transcript(arguments)
  local lines = {}
  for i, a in ipairs(arguments) do lines[i] = string.format("[%s]: %s", a.role, a.text) end
  return table.concat(lines, "\n\n")
end

local function speaker(role)
  return string.format("You speak on a panel as the %s. Stay in that role and be specific.", role)
end

function M.run(ctx)
  local task = U.text_knob("panel", ctx)
  local roles = roles_of(ctx)
  if ctx.parallel ~= nil and type(ctx.parallel) ~= "boolean" then
    error("panel: ctx.parallel must be a boolean, got " .. tostring(ctx.parallel))
  end
  local parallel = ctx.parallel == true
  local view_tokens = U.int_knob("panel", ctx, "view_tokens", 250, 1)
  local synth_tokens = U.int_knob("panel", ctx, "synth_tokens", 400, 1)

  local speaking = math.max(1, U.fit(#roles, 1))
  local arguments = {}
  if parallel then
    local items = {}
    for i = 1, speaking do
      items[i] = {
        prompt = string.format("Topic:\n%s\n\nAs the %s, state your position in two or three sentences.",
          task, roles[i]),
        system = speaker(roles[i]), max_tokens = view_tokens,
      }
    end
    local texts = alc.llm_batch(items)
    for i = 1, speaking do arguments[i] = { role = roles[i], text = U.trim(texts[i]) } end
  else
    for i = 1, speaking do
      local prompt
      if i == 1 then
        prompt = string.format("Topic:\n%s\n\nAs the %s, open the discussion: state your position in two or "
          .. "three sentences.", task, roles[i])
      else
        prompt = string.format("Topic:\n%s\n\nThe discussion so far:\n%s\n\nAs the %s, respond: take up specific "
          .. "points made above and state your own position, in two or three sentences.",
          task, transcript(arguments), roles[i])
      end
      arguments[i] = { role = roles[i], text = U.trim(alc.llm(prompt, { system = speaker(roles[i]),
        max_tokens = view_tokens })) }
    end
  end

  local synthesis = alc.llm(string.format(
    "Topic:\n%s\n\nPanel discussion:\n%s\n\nAs the moderator, name where the panel agrees, the key "
      .. "disagreements and how they are best settled, and reach a balanced, actionable conclusion in three "
      .. "or four sentences. Finish with a last line of the form\nANSWER: <the conclusion in one line>",
    task, transcript(arguments)),
    { system = "You are a fair, decisive moderator.", max_tokens = synth_tokens })

  U.record("panel.size", speaking)
  ctx.result = {
    answer = U.tagged(synthesis, "ANSWER") or U.trim(synthesis), synthesis = U.trim(synthesis),
    arguments = U.arr(arguments), mode = parallel and "parallel" or "sequential",
    total_llm_calls = speaking + 1, budget_limited = speaking < #roles,
  }
  return ctx
end

return M
