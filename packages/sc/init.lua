--- sc: self-consistency.
---
--- Samples `n` independent reasoning paths in one batch (each with its own angle of
--- approach, at a sampling temperature), reads each path's final `ANSWER:` line, and
--- returns the majority answer (compared case-, space- and trailing-punctuation-
--- insensitively; a tie goes to the answer seen first). Paths without an ANSWER line
--- get one extraction call each, in a second batch. The consensus line is written
--- from the tally, without a further call. When the session budget (ctx.budget) is
--- smaller than `n`, fewer paths are sampled and `budget_limited` is true; paths whose
--- extraction does not fit fall back to their last line.
--- Calls: n, plus one per path without an ANSWER line.
---
--- Knobs (ctx):
---   task         string   the question (required)
---   n            integer  number of sampled paths (default 5)
---   gen_tokens   integer  token cap per path (default 400)
---   temperature  number   sampling temperature (default 0.8)
--- Result: ctx.result = { answer, answer_norm, consensus, paths = [{reasoning, answer}],
---                         votes = [answer_norm per path], vote_counts = {[answer_norm] = count},
---                         n_sampled, total_llm_calls, agreement, tally = [{answer, count}],
---                         budget_limited }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "sc",
  version = "0.1.0",
  description = "Self-consistency: n sampled reasoning paths in one batch, majority vote on the answers",
  category = "aggregation",
  paper = "Self-Consistency Improves Chain of Thought Reasoning in Language Models, Wang et al., 2022 "
    .. "(arXiv:2203.11171; ICLR 2023)",
}

M.spec = {
  entries = {
    run = {
      input = { task = "string", n = "integer?", gen_tokens = "integer?", temperature = "number?" },
      result = { answer = "string?", answer_norm = "string?", consensus = "string",
                 paths = "{reasoning, answer}[]", votes = "string[]", vote_counts = "table",
                 n_sampled = "integer", total_llm_calls = "integer", agreement = "number",
                 tally = "{answer, count}[]", budget_limited = "boolean" },
    },
  },
}

--- Angles of approach, given to the paths in turn so they do not all reason alike.
M.ANGLES = {
  "Reason step by step.",
  "Start from the basic definitions and principles involved.",
  "Look at the problem from an unusual angle before settling on an answer.",
  "Estimate what the answer should look like first, then work it out exactly.",
  "Split the problem into smaller parts and solve them one at a time.",
  "Check your reasoning against a simple special case as you go.",
  "Think about what could make an obvious answer wrong before you commit.",
}

--- An answer as shown: trimmed, inner white space folded, trailing punctuation dropped,
--- case kept. Non-strings give "".
function M.clean(a)
  if type(a) ~= "string" then return "" end
  return (U.trim(a):gsub("%s+", " "):gsub("[%.!%?,;:]+$", ""))
end

--- The key answers are counted by: `clean` in lower case.
function M.key(a)
  return M.clean(a):lower()
end

function M.run(ctx)
  local task = U.text_knob("sc", ctx)
  local want = U.int_knob("sc", ctx, "n", 5, 1)
  local gen_tokens = U.int_knob("sc", ctx, "gen_tokens", 400, 1)
  local temperature = ctx.temperature or 0.8
  if type(temperature) ~= "number" or temperature < 0 or temperature > 2 then
    error("sc: ctx.temperature must be a number from 0 to 2, got " .. tostring(temperature))
  end

  local n = math.max(1, U.fit(want, 0))
  local items = {}
  for i = 1, n do
    items[i] = {
      prompt = string.format(
        "Question:\n%s\n\n%s Show your reasoning, then give your final answer on a last line of the form\n"
          .. "ANSWER: <answer>", task, M.ANGLES[(i - 1) % #M.ANGLES + 1]),
      system = "You are a careful reasoner who thinks a problem through before answering.",
      temperature = temperature,
      max_tokens = gen_tokens,
    }
  end
  local samples = alc.llm_batch(items)
  local calls = n

  local paths, missing = {}, {}
  for i, s in ipairs(samples) do
    local tagged = U.tagged(s, "ANSWER")
    paths[i] = { reasoning = s, answer = tagged or U.last_line(s) }
    if tagged == nil then missing[#missing + 1] = i end
  end
  local extract = U.fit(#missing, 0)
  if extract > 0 then
    local ex = {}
    for j = 1, extract do
      ex[j] = {
        prompt = string.format(
          "Question:\n%s\n\nReasoning:\n%s\n\nWhat final answer does this reasoning reach? Reply with the "
            .. "answer only, as briefly as possible.", task, samples[missing[j]]),
        max_tokens = 100,
      }
    end
    local replies = alc.llm_batch(ex)
    for j = 1, extract do paths[missing[j]].answer = U.trim(replies[j]) end
    calls = calls + extract
  end

  local votes, counts, shown, order = {}, {}, {}, {}
  for i, p in ipairs(paths) do
    local k = M.key(p.answer)
    votes[i] = k
    if k ~= "" then
      if counts[k] == nil then
        counts[k], shown[k] = 0, M.clean(p.answer)
        order[#order + 1] = k
      end
      counts[k] = counts[k] + 1
    end
  end
  local best
  for _, k in ipairs(order) do
    if best == nil or counts[k] > counts[best] then best = k end
  end
  local tally = {}
  for i, k in ipairs(order) do tally[i] = { answer = shown[k], count = counts[k] } end
  local top = best and counts[best] or 0
  local consensus
  if best then
    consensus = string.format("%d of %d paths agreed on: %s", top, n, shown[best])
  else
    consensus = string.format("None of the %d paths gave a readable answer.", n)
  end

  U.record("sc.n", n)
  U.record("sc.agreement", top / n)
  ctx.result = {
    answer = best and shown[best] or nil, answer_norm = best, consensus = consensus,
    paths = U.arr(paths), votes = U.arr(votes), vote_counts = counts, n_sampled = n,
    total_llm_calls = calls, agreement = top / n, tally = U.arr(tally),
    budget_limited = n < want or extract < #missing,
  }
  return ctx
end

return M
