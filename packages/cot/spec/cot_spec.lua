local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock = T.mock

package.loaded["cot"] = nil
local cot = require("cot")

describe("cot", function()
  it("has meta", function()
    expect(cot.meta.name).to.equal("cot")
    expect(cot.meta.version).to.equal("0.1.0")
    expect(cot.run).to.be.a("function")
  end)

  it("makes one call and splits the tagged answer", function()
    local log = mock({ "1. 6 * 7 is 42.\n2. Nothing else.\nANSWER: 42" })
    local ctx = cot.run({ task = "What is 6 times 7?" })
    expect(#log.prompts).to.equal(1)
    expect(log.prompts[1]).to.match("What is 6 times 7%?")
    expect(log.prompts[1]).to.match("ANSWER: <your final answer>")
    expect(log.opts[1].max_tokens).to.equal(900)
    expect(ctx.result.answer).to.equal("42")
    expect(ctx.result.reasoning).to.equal("1. 6 * 7 is 42.\n2. Nothing else.")
    expect(log.stats["cot.reasoning_chars"]).to.equal(#ctx.result.reasoning)
  end)

  it("honours a custom tag and falls back to the last line", function()
    local a, r = cot.split_answer("step\nFINAL: yes", "final")
    expect(a).to.equal("yes")
    expect(r).to.equal("step")
    a = cot.split_answer("one\ntwo\n\n", "ANSWER")
    expect(a).to.equal("two")
    local log = mock({ "x\nRESULT: 7" })
    local ctx = cot.run({ task = "t", answer_tag = "RESULT", max_tokens = 50 })
    expect(ctx.result.answer).to.equal("7")
    expect(log.opts[1].max_tokens).to.equal(50)
  end)

  it("requires a task", function()
    mock({})
    expect(function() cot.run({}) end).to.fail.with("ctx.task is required")
  end)
end)
