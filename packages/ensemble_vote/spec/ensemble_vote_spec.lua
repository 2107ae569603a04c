local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["ensemble_vote"] = nil
local ev = require("ensemble_vote")

describe("ensemble_vote", function()
  it("has meta", function()
    expect(ev.meta.name).to.equal("ensemble_vote")
  end)

  it("takes a clear majority without a tie-break", function()
    local log = mock({ "ANSWER: 7", "ANSWER: 7", "ANSWER: 8", "ANSWER: 7" })
    local ctx = ev.run({ task = "3 + 4" })
    expect(shape(log)).to.equal("batch4")
    expect(log.calls[1].items[2].system).to.match("first principles")
    expect(ctx.result.answer).to.equal("7")
    expect(ctx.result.share).to.equal(0.75)
    expect(ctx.result.tie_break).to.be(false)
  end)

  it("asks for a tie-break on a split vote", function()
    local log = mock({ "ANSWER: 7", "ANSWER: 8", "ANSWER: 8", "ANSWER: 7", "ANSWER: 8" })
    local ctx = ev.run({ task = "t" })
    expect(shape(log)).to.equal("batch4,llm")
    expect(log.prompts[5]).to.match("1%. 7 %(2 votes%)\n2%. 8 %(2 votes%)")
    expect(ctx.result.answer).to.equal("8")
    expect(ctx.result.tie_break).to.be(true)
  end)

  it("skips the tie-break when everyone agrees", function()
    local log = mock({ "ANSWER: x", "ANSWER: X." })
    local ctx = ev.run({ task = "t", approaches = { "a", "b" }, threshold = 1 })
    expect(shape(log)).to.equal("batch2")
    expect(ctx.result.answer).to.equal("x")
  end)
end)
