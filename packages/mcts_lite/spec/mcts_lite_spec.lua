local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

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
