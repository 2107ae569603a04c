local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["self_refine"] = nil
local sr = require("self_refine")

describe("self_refine", function()
  it("has meta", function()
    expect(sr.meta.name).to.equal("self_refine")
  end)

  it("refines until the score reaches the threshold", function()
    local log = mock({ "v1", "vague\nSCORE: 4", "v2", "better\nSCORE: 8" })
    local ctx = sr.run({ task = "Write a haiku" })
    expect(shape(log)).to.equal("llm,llm,llm,llm")
    expect(log.prompts[2]).to.match("Answer under review:\nv1")
    expect(log.prompts[3]).to.match("Feedback:\nvague")
    expect(log.prompts[4]).to.match("Answer under review:\nv2")
    expect(ctx.result.answer).to.equal("v2")
    expect(ctx.result.scores).to.equal({ 4, 8 })
    expect(log.stats["self_refine.final_score"]).to.equal(8)
  end)

  it("does not refine after the last feedback round", function()
    local log = mock({ "v1", "SCORE: 2", "v2", "SCORE: 3" })
    local ctx = sr.run({ task = "t", max_iters = 2, threshold = 9 })
    expect(#log.prompts).to.equal(4)
    expect(ctx.result.answer).to.equal("v2")
    expect(ctx.result.score).to.equal(3)
  end)

  it("clamps scores", function()
    mock({ "v1", "SCORE: 42" })
    local ctx = sr.run({ task = "t" })
    expect(ctx.result.score).to.equal(10)
  end)
end)
