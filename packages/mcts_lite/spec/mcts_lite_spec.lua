local describe, it, expect = lust.describe, lust.it, lust.expect

-- Replaces the global `alc` with canned answers (strings, or functions of the prompt)
-- served in call order; records every prompt and the shape of every call.
local function mock(answers)
  local log = { calls = {}, prompts = {}, stats = {} }
  local n = 0
  local function answer(prompt)
    n = n + 1
    log.prompts[n] = prompt
    local a = answers[n]
    if type(a) == "function" then a = a(prompt) end
    if a == nil then error("no canned answer for prompt " .. n .. ": " .. tostring(prompt)) end
    return a
  end
  _G.alc = {
    llm = function(prompt, opts)
      log.calls[#log.calls + 1] = { kind = "llm", opts = opts or {} }
      return answer(prompt)
    end,
    llm_batch = function(items)
      log.calls[#log.calls + 1] = { kind = "batch", size = #items, items = items }
      local out = {}
      for i, item in ipairs(items) do out[i] = answer(item.prompt) end
      return out
    end,
    stats = { record = function(k, v) log.stats[k] = v end },
    log = function() end,
    progress = function() end,
  }
  return log
end

-- The call sequence as text, e.g. "llm,batch3,llm".
local function shape(log)
  local parts = {}
  for i, c in ipairs(log.calls) do
    parts[i] = c.kind == "llm" and "llm" or ("batch" .. c.size)
  end
  return table.concat(parts, ",")
end
package.loaded["mcts_lite"] = nil
local mcts = require("mcts_lite")

describe("mcts_lite", function()
  it("has meta", function()
    expect(mcts.meta.name).to.equal("mcts_lite")
  end)

  it("expands the root, then descends into the better child", function()
    local log = mock({
      "A", "SCORE: 3",      -- iteration 1: root -> A
      "B", "SCORE: 8",      -- iteration 2: root -> B
      "B1", "SCORE: 9",     -- iteration 3: UCB picks B -> B1
      "B2", "SCORE: 7",     -- iteration 4: B again -> B2
      "ANSWER: 99",
    })
    local ctx = mcts.run({ task = "puzzle" })
    expect(shape(log)).to.equal("llm,llm,llm,llm,llm,llm,llm,llm,llm")
    expect(log.prompts[5]).to.match("Steps so far:\n1%. B")
    expect(log.prompts[7]).to.match("Steps so far:\n1%. B")
    expect(ctx.result.path).to.equal({ "B", "B1" })
    expect(ctx.result.answer).to.equal("99")
    expect(ctx.result.nodes).to.equal(5)
    expect(ctx.result.root_visits).to.equal(4)
  end)

  it("stops expanding at max_depth without extra calls", function()
    local log = mock({ "A", "SCORE: 5", "ANSWER: done" })
    local ctx = mcts.run({ task = "t", iterations = 3, max_children = 1, max_depth = 1 })
    expect(#log.prompts).to.equal(3)
    expect(ctx.result.path).to.equal({ "A" })
    expect(ctx.result.root_visits).to.equal(3)
  end)
end)
