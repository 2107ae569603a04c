local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["critic_loop"] = nil
local cl = require("critic_loop")

describe("critic_loop", function()
  it("has meta", function()
    expect(cl.meta.name).to.equal("critic_loop")
  end)

  it("revises the failing criteria until all pass", function()
    local log = mock({
      "d1",
      "correct: PASS\ncomplete: FAIL - no units\nclear: PASS",
      "d2",
      "correct: PASS\ncomplete: PASS\nclear: pass",
    })
    local ctx = cl.run({ task = "Speed of light?" })
    expect(shape(log)).to.equal("llm,llm,llm,llm")
    expect(log.calls[2].opts.system).to.equal("You are a strict reviewer.")
    expect(log.prompts[2]).to.match("complete: PASS or FAIL")
    expect(log.prompts[3]).to.match("failing: complete\n")
    expect(ctx.result.answer).to.equal("d2")
    expect(ctx.result.passed).to.be(true)
    expect(ctx.result.failures[1]).to.equal({ "complete" })
  end)

  it("treats a missing criterion line as a failure", function()
    expect(cl.failed_criteria("tone: PASS", { "tone", "length" })).to.equal({ "length" })
  end)

  it("stops after max_rounds without a final revision", function()
    local log = mock({ "d1", "tone: FAIL", "d2", "tone: FAIL" })
    local ctx = cl.run({ task = "t", criteria = { "tone" }, max_rounds = 2 })
    expect(#log.prompts).to.equal(4)
    expect(ctx.result.passed).to.be(false)
    expect(ctx.result.rounds).to.equal(2)
  end)
end)
