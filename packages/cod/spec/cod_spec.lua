local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["cod"] = nil
local cod = require("cod")

describe("cod", function()
  it("has meta", function()
    expect(cod.meta.name).to.equal("cod")
    expect(cod.meta.version).to.equal("0.1.0")
    expect(cod.run).to.be.a("function")
  end)

  it("makes one sequential call per round, each building on the last summary", function()
    local log = mock({
      "SUMMARY: A story about a cat.",
      "MISSING: Tom; Paris\nSUMMARY: Tom the cat lives in Paris.",
      "MISSING: 2020\nSUMMARY: Tom, a Paris cat, was born\nin 2020.",
    })
    local ctx = cod.run({ text = "Tom is a cat. He lives in Paris. He was born in 2020.", rounds = 3,
                          target_length = 20 })
    expect(shape(log)).to.equal("llm,llm,llm")
    expect(log.prompts[1]).to.match("about 20 words")
    expect(log.prompts[2]).to.match("A story about a cat%.")
    expect(log.prompts[3]).to.match("Tom the cat lives in Paris%.")
    expect(log.opts[1].max_tokens).to.equal(600)
    expect(ctx.result.answer).to.equal("Tom, a Paris cat, was born\nin 2020.")
    expect(#ctx.result.summaries).to.equal(3)
    expect(ctx.result.missing[2]).to.equal("Tom; Paris")
    expect(ctx.result.input_words).to.equal(13)
    expect(ctx.result.output_words).to.equal(8)
    expect(log.stats["cod.rounds"]).to.equal(3)
  end)

  it("falls back to the task and to untagged replies", function()
    local log = mock({ "plain summary", "MISSING: x" })
    local ctx = cod.run({ task = "Some text to compress.", rounds = 2, gen_tokens = 99 })
    expect(log.prompts[1]).to.match("Some text to compress%.")
    expect(log.opts[2].max_tokens).to.equal(99)
    expect(ctx.result.summaries[1]).to.equal("plain summary")
    expect(ctx.result.answer).to.equal("plain summary")
  end)

  it("requires a text", function()
    mock({})
    expect(function() cod.run({}) end).to.fail.with("ctx.text %(or ctx.task%) is required")
  end)
end)
