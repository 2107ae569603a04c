--- debate: two sides argue for k rounds, then a judge decides.
---
--- Each round asks both debaters in one batch; each sees the transcript so far.
---
--- Knobs (ctx):
---   task         string   the question or proposition (required)
---   side_a       string   stance of debater A (default "argue that the proposition holds")
---   side_b       string   stance of debater B (default "argue that the proposition does not hold")
---   rounds       integer  number of rounds (default 2)
---   turn_tokens  integer  token cap per turn (default 400)
---   judge_tokens integer  token cap of the verdict (default 600)
--- Result: ctx.result = { winner = "A"|"B"|"TIE", answer, verdict, transcript = [{round, a, b}] }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "debate",
  version = "0.1.0",
  description = "Two debaters argue opposite sides for k rounds; a judge names the winner",
  category = "synthesis",
}

local function transcript_text(transcript)
  local out = {}
  for _, t in ipairs(transcript) do
    out[#out + 1] = string.format("Round %d\nA: %s\nB: %s", t.round, t.a, t.b)
  end
  return #out > 0 and table.concat(out, "\n\n") or "(no turns yet)"
end

--- Reads `WINNER: A|B|TIE` from a verdict; anything else is a tie.
function M.parse_winner(verdict)
  local w = (U.tagged(verdict, "WINNER") or ""):upper()
  local first = w:match("^%s*(%a+)")
  if first == "A" or first == "B" then return first end
  return "TIE"
end

function M.run(ctx)
  local task = ctx.task or error("debate: ctx.task is required")
  local side_a = ctx.side_a or "argue that the proposition holds"
  local side_b = ctx.side_b or "argue that the proposition does not hold"
  local rounds = ctx.rounds or 2
  local transcript = {}
  for r = 1, rounds do
    local so_far = transcript_text(transcript)
    local function turn(name, stance)
      return {
        prompt = string.format(
          "Debate topic:\n%s\n\nYou are debater %s; your job is to %s.\n\nTranscript so far:\n%s\n\n"
            .. "Round %d of %d: make your strongest new point and answer the other side's last point.",
          task, name, stance, so_far, r, rounds),
        max_tokens = ctx.turn_tokens or 400,
      }
    end
    local said = alc.llm_batch({ turn("A", side_a), turn("B", side_b) })
    transcript[r] = { round = r, a = said[1], b = said[2] }
  end
  local verdict = alc.llm(string.format(
    "Debate topic:\n%s\n\nDebater A had to %s. Debater B had to %s.\n\n%s\n\nJudge the debate on "
      .. "evidence and reasoning, not style. Explain briefly, then write\nWINNER: A, B or TIE\n"
      .. "ANSWER: <the best-supported answer to the topic>",
    task, side_a, side_b, transcript_text(transcript)), { max_tokens = ctx.judge_tokens or 600 })
  local winner = M.parse_winner(verdict)
  U.record("debate.rounds", rounds)
  ctx.result = {
    winner = winner, answer = U.tagged(verdict, "ANSWER") or winner, verdict = verdict, transcript = transcript,
  }
  return ctx
end

return M
