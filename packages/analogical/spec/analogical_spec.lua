local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["analogical"] = nil
local an = require("analogical")

describe("analogical", function()
  it("has meta", function()
    expect(an.meta.name).to.equal("analogical")
  end)

  it("recalls examples and solves with them", function()
    local log = mock({
      "Sure.\nEXAMPLE 1: sum 1..10\nuse n(n+1)/2\nEXAMPLE 2: sum of odds\nn^2",
      "by the formula\nANSWER: 5050",
    })
    local ctx = an.run({ task = "Sum 1..100", n_analogies = 2 })
    expect(shape(log)).to.equal("llm,llm")
    expect(log.prompts[1]).to.match("Recall 2 different problems")
    expect(ctx.result.analogies).to.equal({ "sum 1..10\nuse n(n+1)/2", "sum of odds\nn^2" })
    expect(log.prompts[2]).to.match("1%. sum 1%.%.10\nuse n%(n%+1%)/2\n2%. sum of odds")
    expect(ctx.result.answer).to.equal("5050")
  end)

  it("passes unstructured recollections through", function()
    local log = mock({ "just a memory", "ANSWER: x" })
    local ctx = an.run({ task = "t" })
    expect(log.prompts[2]).to.match("Related solved problems:\njust a memory\n")
    expect(#ctx.result.analogies).to.equal(0)
  end)
end)
