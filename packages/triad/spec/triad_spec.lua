local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["triad"] = nil
local triad = require("triad")

describe("triad", function()
  it("has meta", function()
    expect(triad.meta.name).to.equal("triad")
    expect(triad.meta.version).to.equal("0.1.0")
  end)

  it("runs proposer, critic/proposer rounds and a judge", function()
    local log = mock({
      "It is 41.\nANSWER: 41", "6*7 is not 41.", "Fixed.\nANSWER: 42",
      "Check the units.", "No units.\nANSWER: 42", "Fine.", "Still 42.\nANSWER: 42",
      "The proposer is right.\nANSWER: 42",
    })
    local ctx = triad.run({ task = "What is 6*7?" })
    expect(shape(log)).to.equal("llm,llm,llm,llm,llm,llm,llm,llm")
    expect(log.opts[1].system).to.match("proposer")
    expect(log.opts[2].system).to.match("critic")
    expect(log.opts[8].system).to.match("judge")
    expect(log.opts[1].max_tokens).to.equal(400)
    expect(log.opts[8].max_tokens).to.equal(500)
    expect(log.prompts[2]).to.match("It is 41")
    expect(log.prompts[3]).to.match("6%*7 is not 41")
    expect(log.prompts[8]).to.match("%[critic%]\nCheck the units%.")
    expect(ctx.result.answer).to.equal("42")
    expect(#ctx.result.transcript).to.equal(7)
    expect(log.stats["triad.round"]).to.equal(3)
  end)

  it("honours rounds and token knobs", function()
    local log = mock({ "ANSWER: a", "ANSWER: b" })
    local ctx = triad.run({ task = "t", rounds = 0, gen_tokens = 10, judge_tokens = 20 })
    expect(shape(log)).to.equal("llm,llm")
    expect(log.opts[1].max_tokens).to.equal(10)
    expect(log.opts[2].max_tokens).to.equal(20)
    expect(ctx.result.answer).to.equal("b")
    expect(ctx.result.proposal).to.equal("ANSWER: a")
  end)

  it("requires a task", function()
    mock({})
    expect(function() triad.run({}) end).to.fail.with("ctx.task is required")
  end)
end)
