local describe, it, expect = lust.describe, lust.it, lust.expect
local T = require("strategy_util.testing")
local mock, shape = T.mock, T.shape

package.loaded["maieutic"] = nil
local mai = require("maieutic")

describe("maieutic", function()
  it("has meta and spec", function()
    expect(mai.meta.name).to.equal("maieutic")
    expect(mai.meta.version).to.equal("0.1.0")
    expect(mai.meta.category).to.equal("reasoning")
    expect(mai.meta.paper).to.match("Jung et al%., 2022")
    expect(mai.meta.paper).to.match("2205%.11822")
    expect(mai.spec.entries.run.input.max_depth).to.equal("integer?")
    expect(mai.spec.entries.run.result.verdict).to.equal("string")
  end)

  it("classifies consistency judgements", function()
    expect(mai.classify("CONSISTENT")).to.equal("consistent")
    expect(mai.classify("consistent.")).to.equal("consistent")
    expect(mai.classify("CONTRADICTORY")).to.equal("contradictory")
    expect(mai.classify("Inconsistent")).to.equal("contradictory")
    expect(mai.classify("INDEPENDENT")).to.equal("independent")
    expect(mai.classify("no idea")).to.equal("independent")
  end)

  it("reads the verdict line", function()
    expect(mai.verdict_of("VERDICT: likely true\nREASONING: x")).to.equal("likely true")
    expect(mai.verdict_of("VERDICT: [Likely False]")).to.equal("likely false")
    expect(mai.verdict_of("verdict: insufficient evidence")).to.equal("insufficient evidence")
    expect(mai.verdict_of("VERDICT: maybe")).to.equal("unknown")
    expect(mai.verdict_of("I think it is true")).to.equal("unknown")
  end)

  it("grows two levels by default, expanding only consistent explanations", function()
    local log = mock({
      -- level 1: support and oppose of the root, then their checks
      "Whales breathe air with lungs.", "Whales live in water like fish.",
      "CONSISTENT", "CONTRADICTORY",
      -- level 2: only the consistent support node is expanded
      "Lungs are a mammalian trait here.", "Some fish gulp air too.",
      "CONSISTENT", "INDEPENDENT",
      "VERDICT: likely true\nREASONING: the consistent evidence supports it",
    })
    local ctx = mai.run({ proposition = "Whales are mammals." })
    expect(shape(log)).to.equal("batch2,batch2,batch2,batch2,llm")
    expect(log.prompts[1]).to.match('Proposition: "Whales are mammals%."')
    expect(log.prompts[1]).to.match("SUPPORTS")
    expect(log.prompts[2]).to.match("OPPOSES")
    expect(log.opts[1].max_tokens).to.equal(300)
    expect(log.prompts[3]).to.match('Child proposition: "Whales breathe air with lungs%."')
    expect(log.prompts[4]).to.match("meant to oppose the parent")
    expect(log.opts[3].max_tokens).to.equal(100)
    expect(log.prompts[5]).to.match('Proposition: "Whales breathe air with lungs%."')
    expect(log.prompts[7]).to.match('Parent proposition: "Whales breathe air with lungs%."')
    expect(log.prompts[9]).to.match("Supporting:\n1%. Whales breathe air with lungs%.\n2%. Lungs are a mammalian")
    expect(log.prompts[9]).to.match("Opposing: %(none%)")
    expect(log.prompts[9]).to.match("%(1 contradictory and 1 irrelevant")
    local r = ctx.result
    expect(r.verdict).to.equal("likely true")
    expect(r.answer).to.equal("likely true")
    expect(r.synthesis).to.match("^VERDICT: likely true")
    expect(r.evidence).to.equal({
      support = { "Whales breathe air with lungs.", "Lungs are a mammalian trait here." }, oppose = {},
    })
    expect(r.consistency).to.equal({ consistent = 2, contradictory = 1, independent = 1 })
    expect(r.tree.proposition).to.equal("Whales are mammals.")
    expect(r.tree.depth).to.equal(0)
    expect(#r.tree.children).to.equal(2)
    local sup, opp = r.tree.children[1], r.tree.children[2]
    expect(sup.relation).to.equal("support")
    expect(sup.consistency).to.equal("consistent")
    expect(sup.depth).to.equal(1)
    expect(#sup.children).to.equal(2)
    expect(sup.children[2]).to.equal({ proposition = "Some fish gulp air too.", relation = "oppose",
      consistency = "independent", depth = 2, children = {} })
    expect(opp.consistency).to.equal("contradictory")
    expect(opp.children).to.equal({})
    expect(r.total_llm_calls).to.equal(9)
    expect(r.budget_limited).to.equal(false)
  end)

  it("expands every consistent node of a level in one batch", function()
    local log = mock({
      "s", "o", "CONSISTENT", "CONSISTENT",
      "s1", "s2", "o1", "o2", "CONSISTENT", "CONSISTENT", "CONSISTENT", "CONSISTENT",
      "VERDICT: insufficient evidence",
    })
    local ctx = mai.run({ proposition = "p" })
    expect(shape(log)).to.equal("batch2,batch2,batch4,batch4,llm")
    expect(log.prompts[7]).to.match('Proposition: "o"')
    -- stances are relative to the parent, collected depth-first
    expect(ctx.result.evidence.support).to.equal({ "s", "s1", "o1" })
    expect(ctx.result.evidence.oppose).to.equal({ "s2", "o", "o2" })
    expect(ctx.result.consistency.consistent).to.equal(6)
    expect(ctx.result.verdict).to.equal("insufficient evidence")
  end)

  it("takes ctx.task when there is no proposition, and honours the knobs", function()
    local log = mock({ "s", "o", "CONSISTENT", "CONSISTENT", "VERDICT: likely false" })
    local ctx = mai.run({ task = "The moon is cheese.", max_depth = 1, gen_tokens = 40, consistency_tokens = 5 })
    expect(shape(log)).to.equal("batch2,batch2,llm")
    expect(log.prompts[1]).to.match("The moon is cheese%.")
    expect(log.opts[1].max_tokens).to.equal(40)
    expect(log.opts[3].max_tokens).to.equal(5)
    expect(log.opts[5].max_tokens).to.equal(40)
    expect(ctx.result.verdict).to.equal("likely false")
    expect(ctx.result.tree.children[1].children).to.equal({})
  end)

  it("judges the bare proposition with max_depth 0", function()
    local log = mock({ "no verdict line" })
    local ctx = mai.run({ proposition = "p", max_depth = 0 })
    expect(shape(log)).to.equal("llm")
    expect(ctx.result.verdict).to.equal("unknown")
    expect(ctx.result.consistency).to.equal({ consistent = 0, contradictory = 0, independent = 0 })
  end)

  it("does not grow a level the budget cannot pay for", function()
    -- level 1 costs 4; level 2 would cost 8 more, but only 2 calls are left
    local log = mock({ "s", "o", "CONSISTENT", "CONSISTENT", "VERDICT: likely true" }, { max_llm_calls = 6 })
    local ctx = mai.run({ proposition = "p" })
    expect(shape(log)).to.equal("batch2,batch2,llm")
    expect(ctx.result.budget_limited).to.equal(true)
    expect(ctx.result.total_llm_calls).to.equal(5)
  end)

  it("rejects bad input with clear messages", function()
    mock({})
    expect(function() mai.run({}) end).to.fail.with("maieutic: ctx.proposition %(or ctx.task%) is required")
    expect(function() mai.run({ proposition = 3 }) end).to.fail.with("maieutic: ctx.proposition %(or ctx.task%)")
    expect(function() mai.run({ proposition = "p", max_depth = -1 }) end)
      .to.fail.with("maieutic: ctx.max_depth must be at least 0")
    expect(function() mai.run({ proposition = "p", gen_tokens = 0 }) end)
      .to.fail.with("maieutic: ctx.gen_tokens must be at least 1")
  end)
end)
