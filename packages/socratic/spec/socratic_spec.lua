local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["socratic"] = nil
local so = require("socratic")

describe("socratic", function()
  it("has meta", function()
    expect(so.meta.name).to.equal("socratic")
  end)

  it("alternates questions and answers, then concludes", function()
    local log = mock({ "What is a prime?", "Only divisible by 1 and itself.", "Is 9 divisible by 3?", "Yes.",
      "DONE", "so no\nANSWER: not prime" })
    local ctx = so.run({ task = "Is 9 prime?" })
    expect(shape(log)).to.equal("llm,llm,llm,llm,llm,llm")
    expect(log.prompts[1]).to.match("%(no questions yet%)")
    expect(log.prompts[2]).to.match("briefly:\nWhat is a prime%?")
    expect(log.prompts[3]).to.match("Q1: What is a prime%?\nA1: Only divisible")
    expect(log.prompts[6]).to.match("A2: Yes%.")
    expect(#ctx.result.dialogue).to.equal(2)
    expect(ctx.result.answer).to.equal("not prime")
    expect(log.stats["socratic.turns"]).to.equal(2)
  end)

  it("honours the turn limit", function()
    local log = mock({ "q1", "a1", "ANSWER: z" })
    local ctx = so.run({ task = "t", turns = 1 })
    expect(#log.prompts).to.equal(3)
    expect(ctx.result.dialogue).to.equal({ { question = "q1", answer = "a1" } })
  end)

  it("recognises DONE only on its own line", function()
    expect(so.is_done("  done \n")).to.be(true)
    expect(so.is_done("Are we done yet?")).to.be(false)
  end)
end)
