local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["rank"] = nil
local rank = require("rank")

describe("rank", function()
  it("has meta", function()
    expect(rank.meta.name).to.equal("rank")
    expect(rank.meta.version).to.equal("0.1.0")
  end)

  it("generates in one batch and runs a knockout, one batch per round", function()
    local log = mock({
      "ANSWER: 1", "ANSWER: 2", "ANSWER: 3", "ANSWER: 4",
      "B is better\nWINNER: B", "WINNER: A",
      "WINNER: B",
    })
    local ctx = rank.run({ task = "Pick a number" })
    expect(shape(log)).to.equal("batch4,batch2,batch1")
    expect(log.calls[1].items[1].temperature).to.equal(0.9)
    expect(log.opts[1].max_tokens).to.equal(500)
    expect(log.prompts[5]).to.match("Response A:\nANSWER: 1")
    expect(log.prompts[5]).to.match("quality, accuracy, completeness")
    expect(log.prompts[7]).to.match("Response A:\nANSWER: 2")
    expect(log.prompts[7]).to.match("Response B:\nANSWER: 3")
    expect(ctx.result.answer).to.equal("3")
    expect(ctx.result.best_index).to.equal(3)
    expect(#ctx.result.matches).to.equal(3)
    expect(log.stats["rank.matches"]).to.equal(3)
  end)

  it("gives a bye to an odd survivor and honours knobs", function()
    local log = mock({ "ANSWER: x", "ANSWER: y", "ANSWER: z", "WINNER: A", "WINNER: B" })
    local ctx = rank.run({ task = "t", candidates = 3, criteria = "brevity", gen_tokens = 50 })
    expect(shape(log)).to.equal("batch3,batch1,batch1")
    expect(log.opts[1].max_tokens).to.equal(50)
    expect(log.prompts[4]).to.match("brevity")
    expect(ctx.result.answer).to.equal("z")
    log = mock({ "ANSWER: only" })
    ctx = rank.run({ task = "t", candidates = 1 })
    expect(shape(log)).to.equal("batch1")
    expect(ctx.result.answer).to.equal("only")
  end)

  it("reads the winner leniently", function()
    expect(rank.pick("WINNER: b")).to.equal("B")
    expect(rank.pick("Response B")).to.equal("B")
    expect(rank.pick("no idea")).to.equal("A")
  end)
end)
