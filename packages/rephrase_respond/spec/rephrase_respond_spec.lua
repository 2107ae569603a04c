local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["rephrase_respond"] = nil
local rr = require("rephrase_respond")

describe("rephrase_respond", function()
  it("has meta", function()
    expect(rr.meta.name).to.equal("rephrase_respond")
  end)

  it("rephrases then answers the restatement", function()
    local log = mock({ "  Was Obama born in an even-numbered year?  ", "1961 is odd\nANSWER: no" })
    local ctx = rr.run({ task = "Was Obama born in an even year?" })
    expect(shape(log)).to.equal("llm,llm")
    expect(log.prompts[1]).to.match("Restate this question")
    expect(log.prompts[2]).to.match("Restated question:\nWas Obama born in an even%-numbered year%?\n")
    expect(ctx.result.rephrased).to.equal("Was Obama born in an even-numbered year?")
    expect(ctx.result.answer).to.equal("no")
  end)

  it("requires a task", function()
    mock({})
    expect(function() rr.run({}) end).to.fail()
  end)
end)
