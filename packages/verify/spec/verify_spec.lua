local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["verify"] = nil
local verify = require("verify")

describe("verify", function()
  it("has meta", function()
    expect(verify.meta.name).to.equal("verify")
  end)

  it("stops at the first passing check", function()
    local log = mock({ "ANSWER: 12", "fine\nVERDICT: CORRECT" })
    local ctx = verify.run({ task = "3 * 4" })
    expect(shape(log)).to.equal("llm,llm")
    expect(log.prompts[2]).to.match("Proposed solution:\nANSWER: 12")
    expect(ctx.result.verified).to.be(true)
    expect(ctx.result.answer).to.equal("12")
    expect(ctx.result.attempts).to.equal(1)
  end)

  it("retries with the objections", function()
    local log = mock({ "ANSWER: 13", "wrong\nVERDICT: INCORRECT", "ANSWER: 12", "VERDICT: correct" })
    local ctx = verify.run({ task = "3 * 4" })
    expect(#log.prompts).to.equal(4)
    expect(log.prompts[3]).to.match("Reviewer's objections:\nwrong")
    expect(ctx.result.answer).to.equal("12")
    expect(ctx.result.attempts).to.equal(2)
    expect(log.stats["verify.verified"]).to.be(true)
  end)

  it("gives up after max_retries", function()
    local bad = "VERDICT: INCORRECT"
    local log = mock({ "ANSWER: 1", bad, "ANSWER: 2", bad, "ANSWER: 3", bad })
    local ctx = verify.run({ task = "t" })
    expect(#log.prompts).to.equal(6)
    expect(ctx.result.verified).to.be(false)
    expect(ctx.result.answer).to.equal("3")
    expect(verify.passed("VERDICT: INCORRECT")).to_not.be.truthy()
  end)
end)
