local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["ucb"] = nil
local ucb = require("ucb")

describe("ucb", function()
  it("has meta and a UCB1 formula", function()
    expect(ucb.meta.name).to.equal("ucb")
    expect(ucb.meta.version).to.equal("0.1.0")
    expect(ucb.ucb1(0, 0, 5)).to.equal(math.huge)
    expect(math.abs(ucb.ucb1(8, 2, 4) - (4 + math.sqrt(math.log(4)))) < 1e-9).to.equal(true)
  end)

  it("batches generation and scoring, then refines the UCB1 pick", function()
    local log = mock({
      "ANSWER: 40", "ANSWER: 42", "ANSWER: 41",
      "SCORE: 3", "SCORE: 8", "SCORE: 5",
      "better\nANSWER: 42", "SCORE: 9",
      "ANSWER: 41.5", "SCORE: 2",
    })
    local ctx = ucb.run({ task = "What is 6*7?" })
    expect(shape(log)).to.equal("batch3,batch3,llm,llm,llm,llm")
    expect(log.calls[1].items[1].temperature).to.equal(0.9)
    expect(log.prompts[5]).to.match("Candidate answer:\nANSWER: 42")
    -- round 1: arm 2 (mean 8) has the highest UCB1; round 2: arm 2 again (8.5 + 1.18 > 5 + 1.67)
    expect(log.prompts[7]).to.match("Current solution:\nANSWER: 42")
    expect(ctx.result.pulls).to.equal({ 2, 2 })
    expect(log.prompts[9]).to.match("Current solution:\nbetter\nANSWER: 42")
    expect(ctx.result.answer).to.equal("42")
    expect(ctx.result.best_index).to.equal(2)
    expect(ctx.result.arms[2].pulls).to.equal(3)
    expect(ctx.result.arms[2].mean).to.equal(19 / 3)
    expect(ctx.result.arms[2].text).to.equal("better\nANSWER: 42")
  end)

  it("honours n and rounds", function()
    local log = mock({ "ANSWER: a", "ANSWER: b", "SCORE: 1", "SCORE: 6" })
    local ctx = ucb.run({ task = "t", n = 2, rounds = 0 })
    expect(shape(log)).to.equal("batch2,batch2")
    expect(ctx.result.answer).to.equal("b")
  end)

  it("requires a task", function()
    mock({})
    expect(function() ucb.run({}) end).to.fail.with("ctx.task is required")
  end)
end)
