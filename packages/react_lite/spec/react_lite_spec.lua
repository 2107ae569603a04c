local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["react_lite"] = nil
local rl = require("react_lite")

describe("react_lite", function()
  it("has meta", function()
    expect(rl.meta.name).to.equal("react_lite")
  end)

  it("looks things up, then finishes", function()
    local log = mock({
      "Thought: need the year\nAction: LOOKUP[When did Apollo 11 land?]",
      "In July 1969.",
      "Thought: got it\nAction: FINISH[1969]",
    })
    local ctx = rl.run({ task = "Year of the first Moon landing?" })
    expect(shape(log)).to.equal("llm,llm,llm")
    expect(log.prompts[2]).to.match("sentences:\nWhen did Apollo 11 land%?")
    expect(log.prompts[3]).to.match("Observation: In July 1969%.")
    expect(ctx.result.answer).to.equal("1969")
    expect(ctx.result.finished).to.be(true)
    expect(log.stats["react_lite.steps"]).to.equal(2)
  end)

  it("forces an answer after max_steps", function()
    local log = mock({ "Thought: hmm", "Thought: still hmm", "ANSWER: guess" })
    local ctx = rl.run({ task = "t", max_steps = 2 })
    expect(#log.prompts).to.equal(3)
    expect(log.prompts[2]).to.match("No valid action")
    expect(ctx.result.answer).to.equal("guess")
    expect(ctx.result.finished).to.be(false)
  end)

  it("parses actions", function()
    expect({ rl.parse_action("Action: FINISH[ 42 ]") }).to.equal({ "FINISH", "42" })
    expect(rl.parse_action("nothing")).to_not.exist()
  end)
end)
