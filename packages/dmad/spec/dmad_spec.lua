local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["dmad"] = nil
local dmad = require("dmad")

describe("dmad", function()
  it("has meta", function()
    expect(dmad.meta.name).to.equal("dmad")
    expect(dmad.meta.version).to.equal("0.1.0")
    expect(dmad.run).to.be.a("function")
  end)

  it("runs one batch per round with distinct methods, then votes", function()
    local log = mock({
      "A0\nANSWER: 41", "B0\nANSWER: 42", "C0\nANSWER: 42",
      "A1\nANSWER: 42", "B1\nANSWER: 42", "C1\nANSWER: 42",
      "A2\nANSWER: 42", "B2\nANSWER: 42", "C2\nANSWER: 40",
    })
    local ctx = dmad.run({ task = "What is 6*7?" })
    expect(shape(log)).to.equal("batch3,batch3,batch3")
    expect(log.opts[1].system).to.match("forward step%-by%-step")
    expect(log.opts[2].system).to.match("backward checking")
    expect(log.opts[3].system).to.match("program%-style")
    expect(log.opts[1].max_tokens).to.equal(500)
    -- agent 1 in round 1 sees agents 2 and 3, not itself
    expect(log.prompts[4]).to.match("%[Agent 2, backward checking")
    expect(log.prompts[4]).to.match("C0")
    expect(log.prompts[4]:find("A0", 1, true)).to.equal(nil)
    expect(log.prompts[7]).to.match("B1")
    expect(ctx.result.answer).to.equal("42")
    expect(ctx.result.votes).to.equal(2)
    expect(ctx.result.total_llm_calls).to.equal(9)
    expect(#ctx.result.rounds).to.equal(3)
    expect(log.stats["dmad.agreement"]).to.equal(2 / 3)
  end)

  it("honours knobs and a custom extractor", function()
    local log = mock({ "x", "y", "<b>7</b>", "<b>7</b>" })
    local ctx = dmad.run({ task = "t", n_agents = 2, n_rounds = 1, methods = { "m1" }, gen_tokens = 64,
                           temperature = 0.3, extract_fn = function(s) return s:match("<b>(.-)</b>") or "" end })
    expect(shape(log)).to.equal("batch2,batch2")
    expect(log.opts[2].system).to.match("m1")
    expect(log.opts[3].temperature).to.equal(0.3)
    expect(log.opts[3].max_tokens).to.equal(64)
    expect(ctx.result.answer).to.equal("7")
  end)

  it("validates inputs", function()
    mock({})
    expect(function() dmad.run({}) end).to.fail.with("ctx.task is required")
    expect(function() dmad.run({ task = "t", n_agents = 1 }) end).to.fail.with("at least 2")
  end)
end)
