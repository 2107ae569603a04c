local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["pot"] = nil
local pot = require("pot")

describe("pot", function()
  it("has meta", function()
    expect(pot.meta.name).to.equal("pot")
  end)

  it("evaluates the program and phrases the answer", function()
    local log = mock({
      "CALC apples = 3 * 4\nCALC left = apples - 5\nRESULT left",
      "ANSWER: 7 apples",
    })
    local ctx = pot.run({ task = "Apples" })
    expect(shape(log)).to.equal("llm,llm")
    expect(log.prompts[2]).to.match("apples = 3 %* 4 = 12\nleft = apples %- 5 = 7\nResult: 7")
    expect(ctx.result.value).to.equal(7)
    expect(ctx.result.answer).to.equal("7 apples")
    expect(#ctx.result.steps).to.equal(2)
  end)

  it("answers with the value alone when explain is off", function()
    local log = mock({ "CALC x = 2 ^ 10\nCALC y = x / 4" })
    local ctx = pot.run({ task = "t", explain = false })
    expect(#log.prompts).to.equal(1)
    expect(ctx.result.answer).to.equal("256")
  end)

  it("falls back to the reply's answer without a program", function()
    local log = mock({ "I just know it.\nANSWER: 5" })
    local ctx = pot.run({ task = "t" })
    expect(#log.prompts).to.equal(1)
    expect(ctx.result.value).to_not.exist()
    expect(ctx.result.answer).to.equal("5")
  end)

  it("refuses anything but arithmetic", function()
    expect(pot.evaluate("os.exit()", {})).to_not.exist()
    local v, err = pot.evaluate("a + 1", {})
    expect(err).to.match("unknown name 'a'")
    expect(pot.evaluate("(1 + 2) * 3 % 4", {})).to.equal(1)
    local value, steps, errors = pot.execute("CALC a = 1 / 0\nCALC b = 2")
    expect(#errors).to.equal(1)
    expect(value).to.equal(2)
  end)
end)
