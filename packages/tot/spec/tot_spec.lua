local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["tot"] = nil
local tot = require("tot")

describe("tot", function()
  it("has meta", function()
    expect(tot.meta.name).to.equal("tot")
  end)

  it("expands, scores and keeps the beam at each level", function()
    local log = mock({
      "s1", "s2",                            -- level 1 proposals
      "SCORE: 4", "SCORE: 9",                -- level 1 scores: frontier s2, s1
      "s2a", "s2b", "s1a", "s1b",            -- level 2 proposals, frontier order
      "SCORE: 5", "SCORE: 6", "SCORE: 8", "SCORE: 8",
      "done\nANSWER: 24",
    })
    local ctx = tot.run({ task = "Make 24", breadth = 2, depth = 2, beam = 2 })
    expect(shape(log)).to.equal("batch2,batch2,batch4,batch4,llm")
    expect(log.prompts[5]).to.match("Steps so far:\n1%. s2\n")
    expect(log.prompts[7]).to.match("Steps so far:\n1%. s1\n")
    expect(log.prompts[13]).to.match("1%. s1\n2%. s1a")
    expect(ctx.result.best_path).to.equal({ "s1", "s1a" })
    expect(ctx.result.answer).to.equal("24")
    expect(ctx.result.explored).to.equal(6)
  end)

  it("follows the best path to the final answer", function()
    local log = mock({
      "x", "y", "SCORE: 3", "SCORE: 8",
      "y1", "y2", "SCORE: 6", "SCORE: 6",
      "ANSWER: 7",
    })
    local ctx = tot.run({ task = "t", breadth = 2, depth = 2, beam = 1 })
    expect(shape(log)).to.equal("batch2,batch2,batch2,batch2,llm")
    expect(log.prompts[5]).to.match("1%. y")
    expect(log.prompts[9]).to.match("1%. y\n2%. y1")
    expect(ctx.result.best_path).to.equal({ "y", "y1" })
    expect(ctx.result.best_score).to.equal(6)
    expect(ctx.result.answer).to.equal("7")
    expect(ctx.result.explored).to.equal(4)
    expect(log.stats["tot.explored"]).to.equal(4)
  end)

  it("treats an unreadable score as the minimum", function()
    mock({ "a", "b", "no idea", "SCORE: 2", "ANSWER: b" })
    local ctx = tot.run({ task = "t", breadth = 2, depth = 1, beam = 1 })
    expect(ctx.result.best_path).to.equal({ "b" })
  end)
end)
