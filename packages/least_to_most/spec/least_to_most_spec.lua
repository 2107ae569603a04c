local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["least_to_most"] = nil
local ltm = require("least_to_most")

describe("least_to_most", function()
  it("has meta", function()
    expect(ltm.meta.name).to.equal("least_to_most")
  end)

  it("answers each sub-question with the earlier answers in view", function()
    local log = mock({ "1. How many apples?\n2. How many left?", "5", "3", "so\nANSWER: 3" })
    local ctx = ltm.run({ task = "Apples problem" })
    expect(shape(log)).to.equal("llm,llm,llm,llm")
    expect(log.prompts[2]).to.match("%(nothing yet%)")
    expect(log.prompts[2]).to.match("Now answer: How many apples%?")
    expect(log.prompts[3]).to.match("Q1: How many apples%?\nA1: 5")
    expect(log.prompts[4]).to.match("A2: 3")
    expect(ctx.result.answer).to.equal("3")
    expect(ctx.result.subproblems[2]).to.equal({ question = "How many left?", answer = "3" })
  end)

  it("caps the number of sub-questions", function()
    local log = mock({ "1. a\n2. b\n3. c", "x", "y", "ANSWER: z" })
    local ctx = ltm.run({ task = "t", max_subproblems = 2 })
    expect(#log.prompts).to.equal(4)
    expect(#ctx.result.subproblems).to.equal(2)
  end)

  it("goes straight to the answer without a list", function()
    local log = mock({ "no list here", "ANSWER: 1" })
    local ctx = ltm.run({ task = "t" })
    expect(#log.prompts).to.equal(2)
    expect(ctx.result.answer).to.equal("1")
  end)
end)
