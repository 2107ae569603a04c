local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["rerank"] = nil
local rerank = require("rerank")

describe("rerank", function()
  it("has meta", function()
    expect(rerank.meta.name).to.equal("rerank")
  end)

  it("rates every candidate in one batch and keeps the best", function()
    local log = mock({ "c1", "c2", "c3", "c4", "SCORE: 6", "SCORE: 9", "SCORE: 9", "SCORE: 2" })
    local ctx = rerank.run({ task = "Name a prime" })
    expect(shape(log)).to.equal("batch4,batch4")
    expect(log.prompts[2]).to.match("attempt 2")
    expect(log.prompts[7]).to.match("Candidate answer:\nc3")
    expect(ctx.result.best_index).to.equal(2)
    expect(ctx.result.answer).to.equal("c2")
    expect(ctx.result.scores).to.equal({ 6, 9, 9, 2 })
  end)

  it("runs a pairwise knockout with a bye", function()
    local log = mock({ "c1", "c2", "c3", "BETTER: 2", "BETTER: 1" })
    local ctx = rerank.run({ task = "t", k = 3, mode = "pairwise" })
    expect(shape(log)).to.equal("batch3,batch1,batch1")
    expect(log.prompts[4]).to.match("Answer 1:\nc1\n\nAnswer 2:\nc2")
    expect(log.prompts[5]).to.match("Answer 1:\nc2\n\nAnswer 2:\nc3")
    expect(ctx.result.answer).to.equal("c2")
    expect(ctx.result.rounds).to.equal(2)
  end)

  it("rejects an unknown mode", function()
    mock({})
    expect(function() rerank.run({ task = "t", mode = "borda" }) end).to.fail.with("ctx.mode")
  end)
end)
