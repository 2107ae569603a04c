--- maieutic: a tree of explanations for and against a proposition, kept only where
--- they are logically consistent, then a verdict from what survives.
---
--- The tree grows one level at a time, `max_depth` levels deep. For every node to be
--- expanded the model writes an explanation that supports it and one that opposes it
--- (one batch for the whole level), then judges whether each explanation really bears
--- that relation to its parent: CONSISTENT, CONTRADICTORY or INDEPENDENT (a second
--- batch; an unreadable judgement counts as independent). Only consistent
--- explanations are explained further. Finally the consistent supporting and opposing
--- explanations (stance relative to each one's parent, collected depth-first) are
--- weighed into a verdict: "likely true", "likely false", "insufficient evidence"
--- (or "unknown" when the reply names none). A level whose calls plus the verdict do
--- not fit in the session budget (ctx.budget) is not grown, and `budget_limited` is
--- true.
--- Calls: 4 per expanded node (two batches per level), plus one.
---
--- Knobs (ctx):
---   proposition         string   the claim to examine (required; ctx.task is used when absent)
---   max_depth           integer  levels of explanations (default 2)
---   gen_tokens          integer  token cap of each explanation and of the verdict (default 300)
---   consistency_tokens  integer  token cap of each consistency judgement (default 100)
--- Result: ctx.result = { answer = verdict, verdict, synthesis,
---                         tree = {proposition, depth, children = [node], relation?, consistency?},
---                         evidence = {support = [text], oppose = [text]},
---                         consistency = {consistent, contradictory, independent},
---                         total_llm_calls, budget_limited }

local U = require("strategy_util")

local M = {}

M.meta = {
  name = "maieutic",
  version = "0.1.0",
  description = "Maieutic prompting: a tree of explanations for and against, filtered for consistency, then a verdict",
  category = "reasoning",
  paper = "Maieutic Prompting: Logically Consistent Reasoning with Recursive Explanations, Jung et al., 2022 "
    .. "(arXiv:2205.11822; EMNLP 2022)",
}

M.spec = {
  entries = {
    run = {
      input = { proposition = "string (or task)", max_depth = "integer?", gen_tokens = "integer?",
                consistency_tokens = "integer?" },
      result = { answer = "string", verdict = "string", synthesis = "string", tree = "table",
                 evidence = "{support = string[], oppose = string[]}",
                 consistency = "{consistent, contradictory, independent}", total_llm_calls = "integer",
                 budget_limited = "boolean" },
    },
  },
}

--- The relation a consistency judgement reports: "consistent", "contradictory" or
--- "independent" (also for a reply that names none of them).
function M.classify(reply)
  local up = tostring(reply or ""):upper()
  if up:find("CONTRADICT") or up:find("INCONSISTENT") or up:find("NOT CONSISTENT", 1, true) then
    return "contradictory"
  end
  if up:find("INDEPENDENT") or up:find("IRRELEVANT") then return "independent" end
  if up:find("CONSISTENT") then return "consistent" end
  return "independent"
end

--- The verdict of a synthesis, read from its `VERDICT:` line.
function M.verdict_of(synthesis)
  local v = U.tagged(synthesis, "VERDICT")
  if v == nil then return "unknown" end
  v = v:lower()
  if v:find("insufficient") then return "insufficient evidence" end
  if v:find("false") then return "likely false" end
  if v:find("true") then return "likely true" end
  return "unknown"
end

local function explain_item(node, stance, tokens)
  return {
    prompt = string.format(
      "Proposition: \"%s\"\n\nWrite one clear, specific explanation that %s this proposition. State it as a "
        .. "factual claim that can itself be judged true or false.", node.proposition,
      stance == "support" and "SUPPORTS" or "OPPOSES"),
    system = string.format("You write %s explanations: concrete, checkable claims, not opinions.",
      stance == "support" and "supporting" or "opposing"),
    max_tokens = tokens,
  }
end

local function check_item(parent, child, stance, tokens)
  return {
    prompt = string.format(
      "Parent proposition: \"%s\"\nChild proposition: \"%s\"\n\nThe child is meant to %s the parent. Does it?\n"
        .. "- CONSISTENT: it really does %s the parent\n- CONTRADICTORY: it works against that relation\n"
        .. "- INDEPENDENT: it has no bearing on the parent\n\nReply with one word: CONSISTENT, CONTRADICTORY or "
        .. "INDEPENDENT.", parent, child, stance, stance),
    system = "You check logical relations strictly.",
    max_tokens = tokens,
  }
end

local function walk(node, f)
  f(node)
  for _, child in ipairs(node.children) do walk(child, f) end
end

function M.run(ctx)
  local proposition = ctx.proposition
  if proposition == nil then proposition = ctx.task end
  if type(proposition) ~= "string" or U.trim(proposition) == "" then
    error("maieutic: ctx.proposition (or ctx.task) is required (a non-empty string)")
  end
  local max_depth = U.int_knob("maieutic", ctx, "max_depth", 2, 0)
  local gen_tokens = U.int_knob("maieutic", ctx, "gen_tokens", 300, 1)
  local consistency_tokens = U.int_knob("maieutic", ctx, "consistency_tokens", 100, 1)

  local root = { proposition = proposition, depth = 0, children = {} }
  local frontier, calls, limited = { root }, 0, false
  for _ = 1, max_depth do
    if #frontier == 0 then break end
    local cost = 4 * #frontier
    if U.fit(cost, 1) < cost then
      limited = true
      break
    end
    local items = {}
    for _, node in ipairs(frontier) do
      items[#items + 1] = explain_item(node, "support", gen_tokens)
      items[#items + 1] = explain_item(node, "oppose", gen_tokens)
    end
    local texts = alc.llm_batch(items)
    local checks = {}
    for i, node in ipairs(frontier) do
      texts[2 * i - 1], texts[2 * i] = U.trim(texts[2 * i - 1]), U.trim(texts[2 * i])
      checks[#checks + 1] = check_item(node.proposition, texts[2 * i - 1], "support", consistency_tokens)
      checks[#checks + 1] = check_item(node.proposition, texts[2 * i], "oppose", consistency_tokens)
    end
    local verdicts = alc.llm_batch(checks)
    calls = calls + #items + #checks
    local next_level = {}
    for i, node in ipairs(frontier) do
      for j, stance in ipairs({ "support", "oppose" }) do
        local k = 2 * (i - 1) + j
        local child = { proposition = texts[k], relation = stance, consistency = M.classify(verdicts[k]),
                        depth = node.depth + 1, children = {} }
        node.children[j] = child
        if child.consistency == "consistent" and child.depth < max_depth then next_level[#next_level + 1] = child end
      end
    end
    frontier = next_level
  end

  local counts = { consistent = 0, contradictory = 0, independent = 0 }
  local support, oppose = {}, {}
  walk(root, function(n)
    if n.consistency then counts[n.consistency] = counts[n.consistency] + 1 end
    if n.consistency == "consistent" then
      if n.relation == "support" then support[#support + 1] = n.proposition
      else oppose[#oppose + 1] = n.proposition end
    end
  end)

  local function listing(title, list)
    if #list == 0 then return title .. ": (none)" end
    return title .. ":\n" .. U.numbered(list)
  end
  local synthesis = alc.llm(string.format(
    "Proposition: \"%s\"\n\nExplanations for and against it were checked for logical consistency. These held "
      .. "up:\n\n%s\n\n%s\n\n(%d contradictory and %d irrelevant explanations were set aside.)\n\nJudging only "
      .. "by the consistent explanations above, how should the proposition be assessed? Reply with\n"
      .. "VERDICT: likely true | likely false | insufficient evidence\nREASONING: <why>",
    proposition, listing("Supporting", support), listing("Opposing", oppose), counts.contradictory,
    counts.independent),
    { system = "You weigh the evidence you are given from both sides and add none of your own.",
      max_tokens = gen_tokens })
  calls = calls + 1

  local verdict = M.verdict_of(synthesis)
  local function arrays(n)
    n.children = U.arr(n.children)
    for _, c in ipairs(n.children) do arrays(c) end
  end
  arrays(root)
  U.record("maieutic.consistent", counts.consistent)
  ctx.result = {
    answer = verdict, verdict = verdict, synthesis = U.trim(synthesis), tree = root,
    evidence = { support = U.arr(support), oppose = U.arr(oppose) }, consistency = counts,
    total_llm_calls = calls, budget_limited = limited,
  }
  return ctx
end

return M
