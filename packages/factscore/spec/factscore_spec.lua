local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["factscore"] = nil
local factscore = require("factscore")

describe("factscore", function()
  it("has meta", function()
    expect(factscore.meta.name).to.equal("factscore")
    expect(factscore.meta.version).to.equal("0.1.0")
    expect(factscore.run).to.be.a("function")
  end)

  it("reads verdicts", function()
    expect(factscore.supported_of("ok\nVERDICT: SUPPORTED")).to.equal(true)
    expect(factscore.supported_of("VERDICT: NOT SUPPORTED")).to.equal(false)
    expect(factscore.supported_of("YES")).to.equal(true)
    expect(factscore.supported_of("No.")).to.equal(false)
  end)

  it("extracts facts once and verifies them in one batch", function()
    local log = mock({
      "1. Paris is the capital of France.\n2. Paris has 50 million people.",
      "True.\nVERDICT: SUPPORTED", "Far fewer.\nVERDICT: NOT SUPPORTED",
    })
    local ctx = factscore.run({ text = "Paris, capital of France, has 50 million people.", context = "Paris: 2M people." })
    expect(shape(log)).to.equal("llm,batch2")
    expect(log.prompts[1]).to.match("capital of France, has 50 million")
    expect(log.prompts[2]).to.match("Reference material:\nParis: 2M people%.")
    expect(log.prompts[3]).to.match("Claim:\nParis has 50 million people%.")
    expect(log.opts[2].max_tokens).to.equal(200)
    expect(ctx.result.score).to.equal(0.5)
    expect(ctx.result.total).to.equal(2)
    expect(ctx.result.unsupported[1]).to.equal("Paris has 50 million people.")
    expect(ctx.result.answer).to.equal("Paris, capital of France, has 50 million people.")
    expect(log.stats["factscore.score"]).to.equal(0.5)
  end)

  it("answers the task first when there is no text", function()
    local log = mock({ "6*7 is 42.\nANSWER: 42", "- 6 times 7 equals 42.", "VERDICT: SUPPORTED" })
    local ctx = factscore.run({ task = "What is 6*7?" })
    expect(shape(log)).to.equal("llm,llm,batch1")
    expect(log.prompts[2]).to.match("6%*7 is 42%.")
    expect(ctx.result.answer).to.equal("42")
    expect(ctx.result.score).to.equal(1)
  end)

  it("requires a text or task", function()
    mock({})
    expect(function() factscore.run({}) end).to.fail.with("is required")
  end)
end)
