local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["reflect"] = nil
local reflect = require("reflect")

describe("reflect", function()
  it("has meta", function()
    expect(reflect.meta.name).to.equal("reflect")
  end)

  it("runs draft, then critique and revision for each round", function()
    local log = mock({ "draft 1", "too short", "draft 2", "missing example", "draft 3" })
    local ctx = reflect.run({ task = "Explain tides" })
    expect(shape(log)).to.equal("llm,llm,llm,llm,llm")
    expect(log.prompts[1]).to.match("Explain tides")
    expect(log.prompts[2]).to.match("Candidate answer:\ndraft 1")
    expect(log.prompts[3]).to.match("Critique:\ntoo short")
    expect(log.prompts[4]).to.match("draft 2")
    expect(log.prompts[5]).to.match("missing example")
    expect(ctx.result.answer).to.equal("draft 3")
    expect(ctx.result.rounds_used).to.equal(2)
    expect(ctx.result.stopped_early).to.be(false)
    expect(log.stats["reflect.rounds"]).to.equal(2)
  end)

  it("stops when the critic finds nothing", function()
    local log = mock({ "good draft", "No issues." })
    local ctx = reflect.run({ task = "t", rounds = 5 })
    expect(#log.prompts).to.equal(2)
    expect(ctx.result.answer).to.equal("good draft")
    expect(ctx.result.stopped_early).to.be(true)
  end)

  it("honours a custom stop phrase", function()
    local log = mock({ "d", "fix x", "d2", "LGTM" })
    local ctx = reflect.run({ task = "t", rounds = 3, stop_phrase = "LGTM" })
    expect(#log.prompts).to.equal(4)
    expect(log.prompts[2]).to.match("reply exactly: LGTM")
    expect(ctx.result.answer).to.equal("d2")
  end)
end)
