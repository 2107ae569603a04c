local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["sc"] = nil
local sc = require("sc")

describe("sc", function()
  it("has meta", function()
    expect(sc.meta.name).to.equal("sc")
    expect(sc.meta.category).to.be.a("string")
  end)

  it("samples n answers in one batch and takes the majority", function()
    local log = mock({ "a\nANSWER: Paris", "ANSWER: paris.", "ANSWER: Lyon", "b\nANSWER: Lyon", "ANSWER: Paris" })
    local ctx = sc.run({ task = "Capital of France?" })
    expect(shape(log)).to.equal("batch5")
    expect(log.calls[1].items[1].temperature).to.equal(0.8)
    for i = 1, 5 do expect(log.prompts[i]).to.match("Capital of France%?") end
    expect(ctx.result.answer).to.equal("Paris")
    expect(ctx.result.votes).to.equal(3)
    expect(ctx.result.agreement).to.equal(0.6)
    expect(ctx.result.tally).to.equal({ { answer = "Paris", count = 3 }, { answer = "Lyon", count = 2 } })
    expect(log.stats["sc.n"]).to.equal(5)
  end)

  it("breaks ties by first appearance and honours n", function()
    local log = mock({ "ANSWER: B", "ANSWER: A", "ANSWER: A", "ANSWER: B" })
    local ctx = sc.run({ task = "t", n = 4, temperature = 0.3 })
    expect(shape(log)).to.equal("batch4")
    expect(log.calls[1].items[4].temperature).to.equal(0.3)
    expect(ctx.result.answer).to.equal("B")
  end)

  it("uses the last line without an ANSWER tag", function()
    mock({ "thinking\n12", "12" })
    local ctx = sc.run({ task = "t", n = 2 })
    expect(ctx.result.answer).to.equal("12")
    expect(ctx.result.votes).to.equal(2)
  end)
end)
