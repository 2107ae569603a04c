--- dmad: diverse multi-agent debate.
---
--- n agents, each bound to a different reasoning method, answer the task in one batch.
--- Then, for n_rounds rounds, every agent reads the other agents' latest responses and
--- writes an updated one (one batch per round), keeping its own method. The final
--- answers are majority-voted (ties go to the agent listed first).
--- Calls: n_agents * (n_rounds + 1), in n_rounds + 1 batches.
---
--- Knobs (ctx):
---   task           string    the question (required)
---   n_agents       integer   number of agents, at least 2 (default 3)
---   n_rounds       integer   debate rounds after the opening answers (default 2)
---   methods        string[]  reasoning methods assigned round-robin to the agents
---                            (default: step-by-step, backward checking, program-style)
---   init_prompt    string    opening prompt template, `%s` = task
---   debate_prompt  string    debate prompt template, `%s` = task, then the other responses
---   system_prompt  string    base system prompt (the agent's method is appended)
---   extract_fn     function  reply -> answer (default: the ANSWER line, else the last line)
---   gen_tokens     integer   token cap per call (default 500)
---   temperature    number    temperature of every call (default: host default)
--- Result: ctx.result = { answer, votes, agreement, answers, tally, rounds = [[reply]],
---                         methods, n_agents, n_rounds, total_llm_calls }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "dmad",
  version = "0.1.0",
  description = "Diverse multi-agent debate: agents with different reasoning methods revise over rounds, then vote",
  category = "synthesis",
  paper = "Breaking Mental Set to Improve Reasoning through Diverse Multi-Agent Debate, Liu et al., 2025 (after Du et al., 2023)",
}

M.spec = {
  entries = {
    run = {
      input = { task = "string", n_agents = "integer?", n_rounds = "integer?", methods = "string[]?",
                init_prompt = "string?", debate_prompt = "string?", system_prompt = "string?",
                extract_fn = "function?", gen_tokens = "integer?", temperature = "number?" },
      result = { answer = "string", votes = "integer", agreement = "number", answers = "string[]",
                 tally = "{answer, count}[]", rounds = "string[][]", methods = "string[]",
                 n_agents = "integer", n_rounds = "integer", total_llm_calls = "integer" },
    },
  },
}

M.DEFAULT_METHODS = {
  "forward step-by-step reasoning: derive the answer one justified step at a time",
  "backward checking: propose a candidate answer, then test it against every condition of the problem",
  "program-style reasoning: define named quantities and compute them like a small program",
}

M.INIT_PROMPT = "Problem:\n%s\n\nSolve it using your assigned method. End with a last line\nANSWER: <answer>"

M.DEBATE_PROMPT = "Problem:\n%s\n\nOther agents, who used different methods, answered:\n%s\n\n"
  .. "Examine their reasoning with your own method: point out any error, adopt any point that holds up, "
  .. "and give your updated solution. End with a last line\nANSWER: <answer>"

function M.run(ctx)
  local task = ctx.task or error("dmad: ctx.task is required")
  local n = ctx.n_agents or 3
  local rounds = ctx.n_rounds or 2
  if n < 2 then error("dmad: ctx.n_agents must be at least 2") end
  if rounds < 0 then error("dmad: ctx.n_rounds must not be negative") end
  local methods = ctx.methods or M.DEFAULT_METHODS
  if #methods == 0 then error("dmad: ctx.methods must not be empty") end
  local extract = ctx.extract_fn or U.answer_of
  local base = ctx.system_prompt or "You are one agent in a debate among problem solvers."
  local agent_methods, systems = {}, {}
  for i = 1, n do
    agent_methods[i] = methods[(i - 1) % #methods + 1]
    systems[i] = base .. " Your reasoning method: " .. agent_methods[i] .. "."
  end
  local function item(prompt, i)
    return { prompt = prompt, system = systems[i], max_tokens = ctx.gen_tokens or 500, temperature = ctx.temperature }
  end
  local items = {}
  for i = 1, n do items[i] = item(string.format(ctx.init_prompt or M.INIT_PROMPT, task), i) end
  local history = { alc.llm_batch(items) }
  for r = 1, rounds do
    local prev = history[r]
    items = {}
    for i = 1, n do
      local others = {}
      for j = 1, n do
        if j ~= i then
          others[#others + 1] = string.format("[Agent %d, %s]\n%s", j, agent_methods[j], U.trim(prev[j]))
        end
      end
      items[i] = item(string.format(ctx.debate_prompt or M.DEBATE_PROMPT, task, table.concat(others, "\n\n")), i)
    end
    history[r + 1] = alc.llm_batch(items)
  end
  local answers = {}
  for i, reply in ipairs(history[#history]) do answers[i] = U.trim(extract(reply)) end
  local winner, votes, tally = U.vote(answers)
  U.record("dmad.agreement", votes / n)
  local arr_rounds = {}
  for r, replies in ipairs(history) do arr_rounds[r] = U.arr(replies) end
  ctx.result = {
    answer = winner or "", votes = votes, agreement = votes / n, answers = U.arr(answers), tally = U.arr(tally),
    rounds = U.arr(arr_rounds), methods = U.arr(agent_methods), n_agents = n, n_rounds = rounds,
    total_llm_calls = n * (rounds + 1),
  }
  return ctx
end

return M
