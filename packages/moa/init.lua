--- moa: mixture of agents.
---
--- n_layers layers of proposers, then one aggregator. In layer 1 every proposer
--- answers the task on its own; in each later layer every proposer sees all responses
--- of the previous layer as reference material and writes an improved response. Each
--- layer is one batch. The aggregator synthesises the last layer into the answer.
--- Calls: n_proposers * n_layers + 1, in n_layers batches plus one call.
---
--- Knobs (ctx):
---   task               string    the question (required)
---   proposers          table[]   proposers { model = string?, system = string? } (or plain
---                                system-prompt strings); the model, when given, is passed on
---   personas           string[]  alternative to proposers: one system prompt per proposer
---                                (default when neither is given: three built-in personas)
---   n_layers           integer   proposer layers (default 3)
---   proposer_prompt    string    first-layer prompt template, `%s` = task
---   aggregator_prompt  string    system prompt of the aggregator
---   system_prompt      string    system prompt of proposers without their own
---   proposer_tokens    integer   token cap per proposal (default 700)
---   aggregator_tokens  integer   token cap of the aggregation (default 900)
---   temperature        number    proposer temperature (default 0.7)
--- Result: ctx.result = { answer, response, layers = [[response]], n_layers, n_proposers,
---                         source, total_llm_calls }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "moa",
  version = "0.1.0",
  description = "Mixture of agents: layers of batched proposers refining each other, then one aggregator",
  category = "synthesis",
  paper = "Mixture-of-Agents Enhances Large Language Model Capabilities, Wang et al., 2024",
}

M.spec = {
  entries = {
    run = {
      input = { task = "string", proposers = "table[]?", personas = "string[]?", n_layers = "integer?",
                proposer_prompt = "string?", aggregator_prompt = "string?", system_prompt = "string?",
                proposer_tokens = "integer?", aggregator_tokens = "integer?", temperature = "number?" },
      result = { answer = "string", response = "string", layers = "string[][]", n_layers = "integer",
                 n_proposers = "integer", source = "string", total_llm_calls = "integer" },
    },
  },
}

M.DEFAULT_PERSONAS = {
  "You are a careful analyst who reasons from first principles.",
  "You are a domain expert who brings in relevant facts and standard methods.",
  "You are a critical reviewer who looks for edge cases and common mistakes.",
}

M.PROPOSER_PROMPT = "Task:\n%s\n\nGive a complete, correct response. If the task has a definite "
  .. "answer, end with a last line\nANSWER: <answer>"

M.AGGREGATOR_PROMPT = "You synthesise several candidate responses into one answer of the highest "
  .. "quality. Treat them critically: some may be wrong or biased. Do not just copy one; combine what "
  .. "is correct into a single accurate, coherent response."

--- The proposer list and where it came from ("proposers", "personas" or "default").
function M.proposers_of(ctx)
  local list, source = nil, "default"
  if ctx.proposers ~= nil then
    list, source = ctx.proposers, "proposers"
  elseif ctx.personas ~= nil then
    list, source = ctx.personas, "personas"
  else
    list = M.DEFAULT_PERSONAS
  end
  if type(list) ~= "table" or #list == 0 then error("moa: ctx." .. source .. " must be a non-empty array") end
  local out = {}
  for i, p in ipairs(list) do
    if type(p) == "string" then out[i] = { system = p }
    elseif type(p) == "table" then out[i] = { model = p.model, system = p.system }
    else error("moa: ctx." .. source .. "[" .. i .. "] must be a string or a table") end
  end
  return out, source
end

local function reference_block(responses)
  local parts = {}
  for i, r in ipairs(responses) do parts[i] = string.format("[Response %d]\n%s", i, U.trim(r)) end
  return table.concat(parts, "\n\n")
end

function M.run(ctx)
  local task = ctx.task or error("moa: ctx.task is required")
  local layers_n = ctx.n_layers or 3
  if layers_n < 1 then error("moa: ctx.n_layers must be at least 1") end
  local proposers, source = M.proposers_of(ctx)
  local first = string.format(ctx.proposer_prompt or M.PROPOSER_PROMPT, task)
  local layers = {}
  for l = 1, layers_n do
    local prompt = first
    if l > 1 then
      prompt = string.format("%s\n\nResponses from the previous round of agents, for reference (they may "
        .. "contain mistakes):\n\n%s\n\nWrite your own improved response.", first, reference_block(layers[l - 1]))
    end
    local items = {}
    for i, p in ipairs(proposers) do
      items[i] = { prompt = prompt, system = p.system or ctx.system_prompt, model = p.model,
                   temperature = ctx.temperature or 0.7, max_tokens = ctx.proposer_tokens or 700 }
    end
    layers[l] = alc.llm_batch(items)
  end
  local response = alc.llm(string.format(
    "Task:\n%s\n\nCandidate responses:\n\n%s\n\nWrite the single best response to the task. If it has a "
      .. "definite answer, end with a last line\nANSWER: <answer>", task, reference_block(layers[layers_n])),
    { system = ctx.aggregator_prompt or M.AGGREGATOR_PROMPT, max_tokens = ctx.aggregator_tokens or 900 })
  local calls = #proposers * layers_n + 1
  U.record("moa.calls", calls)
  local arr_layers = {}
  for l, rs in ipairs(layers) do arr_layers[l] = U.arr(rs) end
  ctx.result = {
    answer = U.tagged(response, "ANSWER") or U.trim(response), response = response, layers = U.arr(arr_layers),
    n_layers = layers_n, n_proposers = #proposers, source = source, total_llm_calls = calls,
  }
  return ctx
end

return M
