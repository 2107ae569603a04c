--- triad: three-role deliberation (proposer, critic, judge).
---
--- The proposer answers; for `rounds` rounds the critic attacks the current proposal
--- and the proposer answers the critique with a revised proposal; finally a judge
--- reads the whole exchange and gives the verdict. Every step depends on the one
--- before, so the calls are sequential.
---
--- Knobs (ctx):
---   task          string   the question or claim (required)
---   rounds        integer  critique/revision rounds after the opening (default 3)
---   gen_tokens    integer  token cap per proposal or critique (default 400)
---   judge_tokens  integer  token cap of the verdict (default 500)
--- Result: ctx.result = { answer, verdict, proposal, transcript = [{role, text}], rounds }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "triad",
  version = "0.1.0",
  description = "Triad: proposer and critic exchange for k rounds, then a judge rules on the final answer",
  category = "synthesis",
  paper = "Improving Factuality and Reasoning in Language Models through Multiagent Debate, Du et al., 2023",
}

M.spec = {
  entries = {
    run = {
      input = { task = "string", rounds = "integer?", gen_tokens = "integer?", judge_tokens = "integer?" },
      result = { answer = "string", verdict = "string", proposal = "string", transcript = "array", rounds = "integer" },
    },
  },
}

local function show(transcript)
  local out = {}
  for i, t in ipairs(transcript) do out[i] = string.format("[%s]\n%s", t.role, t.text) end
  return table.concat(out, "\n\n")
end

function M.run(ctx)
  local task = ctx.task or error("triad: ctx.task is required")
  local rounds = ctx.rounds or 3
  if rounds < 0 then error("triad: ctx.rounds must be non-negative") end
  local gt = ctx.gen_tokens or 400

  local proposal = alc.llm(string.format(
    "Question:\n%s\n\nPropose an answer and argue for it concisely. End with a line\nANSWER: <answer>", task),
    { system = "You are the proposer: you commit to an answer and defend it.", max_tokens = gt })
  local transcript = { { role = "proposer", text = proposal } }

  for r = 1, rounds do
    local critique = alc.llm(string.format(
      "Question:\n%s\n\nCurrent proposal:\n%s\n\nFind the most serious flaws, gaps or errors in this proposal "
        .. "and say what a correct answer must account for.", task, proposal),
      { system = "You are the critic: you look for what is wrong, not for what is right.", max_tokens = gt })
    transcript[#transcript + 1] = { role = "critic", text = critique }
    proposal = alc.llm(string.format(
      "Question:\n%s\n\nYour proposal:\n%s\n\nCritique:\n%s\n\nAddress the critique: fix what is right in it, "
        .. "rebut what is not. Give your revised proposal, ending with a line\nANSWER: <answer>",
      task, proposal, critique),
      { system = "You are the proposer: you commit to an answer and defend it.", max_tokens = gt })
    transcript[#transcript + 1] = { role = "proposer", text = proposal }
    U.record("triad.round", r)
  end

  local verdict = alc.llm(string.format(
    "Question:\n%s\n\nDeliberation between a proposer and a critic:\n%s\n\nAs the impartial judge, weigh the "
      .. "arguments and rule on the correct answer. End with a line\nANSWER: <answer>", task, show(transcript)),
    { system = "You are the judge: you decide on the merits of the arguments.", max_tokens = ctx.judge_tokens or 500 })

  ctx.result = {
    answer = U.answer_of(verdict), verdict = verdict, proposal = proposal,
    transcript = U.arr(transcript), rounds = rounds,
  }
  return ctx
end

return M
