local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["mcts"] = nil
local mcts = require("mcts")

describe("mcts", function()
  it("has meta and a UCB1 value", function()
    expect(mcts.meta.name).to.equal("mcts")
    expect(mcts.meta.version).to.equal("0.1.0")
    expect(mcts.ucb1({ visits = 0, value = 0 }, 3, 1.41)).to.equal(math.huge)
    expect(mcts.ucb1({ visits = 1, value = 5 }, 1, 1.41)).to.equal(5)
  end)

  it("expands and scores in batches, then concludes along the most visited path", function()
    local log = mock({
      "Step A", "Step B", "SCORE: 3", "SCORE: 8",            -- it 1: expand root
      "B then C\nANSWER: 42", "B then D", "SCORE: 9", "SCORE: 4", -- it 2: descend to B (higher mean), expand
      "So 42.\nANSWER: 42",                                   -- conclusion
    })
    local ctx = mcts.run({ task = "What is 6*7?", iterations = 2 })
    expect(shape(log)).to.equal("batch2,batch2,batch2,batch2,llm")
    expect(log.prompts[1]).to.match("%(none yet%)")
    expect(log.calls[1].items[1].temperature).to.equal(0.8)
    expect(log.prompts[3]).to.match("1%. Step A")
    expect(log.prompts[5]).to.match("1%. Step B")
    expect(log.prompts[7]).to.match("1%. Step B\n2%. B then C")
    expect(log.prompts[9]).to.match("2%. B then C")
    expect(ctx.result.answer).to.equal("42")
    expect(ctx.result.nodes).to.equal(5)
    expect(log.stats["mcts.nodes"]).to.equal(5)
  end)

  it("stops expanding finished or maximal paths", function()
    local log = mock({ "ANSWER: 1", "SCORE: 6", "ANSWER: 1" })
    local ctx = mcts.run({ task = "t", iterations = 3, branching = 1, max_depth = 2 })
    expect(shape(log)).to.equal("batch1,batch1,llm")
    expect(ctx.result.answer).to.equal("1")
  end)

  it("reflects on low scores and feeds the lessons forward", function()
    local log = mock({ "bad", "SCORE: 1", "Do not guess.", "good", "SCORE: 7", "ANSWER: ok" })
    local ctx = mcts.run({ task = "t", iterations = 2, branching = 1, reflection = true, reflection_threshold = 5 })
    expect(shape(log)).to.equal("batch1,batch1,llm,batch1,batch1,llm")
    expect(log.prompts[4]).to.match("Lessons from earlier attempts:\n1%. Do not guess%.")
    expect(ctx.result.reflections).to.equal({ "Do not guess." })
    expect(ctx.result.answer).to.equal("ok")
  end)
end)
