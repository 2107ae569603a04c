local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["debate"] = nil
local debate = require("debate")

describe("debate", function()
  it("has meta", function()
    expect(debate.meta.name).to.equal("debate")
  end)

  it("runs one batch of two turns per round, then the judge", function()
    local log = mock({ "a1", "b1", "a2", "b2", "reasons\nWINNER: B\nANSWER: no" })
    local ctx = debate.run({ task = "Is P = NP?" })
    expect(shape(log)).to.equal("batch2,batch2,llm")
    expect(log.prompts[1]).to.match("debater A")
    expect(log.prompts[2]).to.match("debater B")
    expect(log.prompts[1]).to.match("%(no turns yet%)")
    expect(log.prompts[3]).to.match("A: a1\nB: b1")
    expect(log.prompts[5]).to.match("Round 2\nA: a2\nB: b2")
    expect(ctx.result.winner).to.equal("B")
    expect(ctx.result.answer).to.equal("no")
    expect(#ctx.result.transcript).to.equal(2)
  end)

  it("honours rounds and reads ties", function()
    local log = mock({ "a", "b", "hmm" })
    local ctx = debate.run({ task = "t", rounds = 1, side_a = "defend X", side_b = "defend Y" })
    expect(shape(log)).to.equal("batch2,llm")
    expect(log.prompts[1]).to.match("defend X")
    expect(ctx.result.winner).to.equal("TIE")
  end)

  it("parses winners", function()
    expect(debate.parse_winner("WINNER: a (clearly)")).to.equal("A")
    expect(debate.parse_winner("winner: tie")).to.equal("TIE")
    expect(debate.parse_winner("nothing")).to.equal("TIE")
  end)
end)
