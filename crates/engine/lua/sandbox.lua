-- The session sandbox: shims over the stock library and the host-yield protocol.
--
-- This chunk runs once per VM, before any user code, with the stock globals still in
-- place. It captures the raw functions it needs as locals (upvalues nothing else can
-- reach: the `debug` library is never opened), replaces or removes globals, and returns
-- the entry function the engine turns into the session's root coroutine.
--
-- Only what every session needs is built here. The shims most sessions never call
-- (coroutine resume/wrap/yield/close, `xpcall`, `load`, output, files, dates, clock,
-- environment, argument-less reseeding, `require`, trusted mode) live in
-- `sandbox_more.lua`, loaded on their first use through small forwarding functions, so a
-- paused session does not carry them (engine.md §5.7).
--
-- Yield kinds (engine.md §4.4, §13 note 2): a host request yields `(HOST, token)`, a
-- user `coroutine.yield` yields `(USER, ...)`, a hook preemption yields nothing at all.
-- `P` is the private table shared with the engine and the other chunks; `HOST` and
-- `USER` are the yield tags.
local P, HOST, USER = ...

local host = P.host

local raw_yield = coroutine.yield
local raw_running = coroutine.running
local raw_isyieldable = coroutine.isyieldable
local raw_pcall = pcall
local raw_xpcall = xpcall
local raw_error = error
local raw_load = load
local raw_setmetatable = setmetatable
local raw_tostring = tostring
local raw_type = type
local raw_select = select
local raw_rawget = rawget
local raw_getmetatable = getmetatable
-- Stock functions of the base and package libraries trusted mode restores (the other
-- libraries can be opened afresh).
local raw_loadfile, raw_searchpath = loadfile, package.searchpath
local tointeger = math.tointeger

local aborting = host.aborting

-- The chain of user coroutines resumed through the shims (engine.md §4.3): a host
-- request may pause only when no frame in it was resumed from a context that cannot
-- yield. Such frames are counted in the VM host (one C call per update: a preemption can
-- fall between two Lua instructions, never inside a C function; `sandbox_more.lua` updates
-- the count).
local blocked = host.blocked

local function can_host_yield()
  return raw_isyieldable() and blocked() == 0
end
P.can_host_yield = can_host_yield

-- Re-raises an error caught while the VM is aborting, so nothing can swallow an abort.
local function rethrow_if_aborting(ok, ...)
  if not ok and aborting() then raw_error((...), 0) end
  return ok, ...
end

pcall = function(f, ...)
  return rethrow_if_aborting(raw_pcall(f, ...))
end

-- Stock argument errors for the shims, so no engine-internal name or position leaks.
local function check_arg(ok, fname, expected, n, v, argn)
  if ok then return end
  argn = argn or 1
  local got = n < argn and "no value" or raw_type(v)
  raw_error("bad argument #" .. argn .. " to '" .. fname .. "' (" .. expected .. " expected, got "
    .. got .. ")", 3)
end

-- Finalizers run with hooks off (also when a cancelled VM is dropped), so the sandbox
-- refuses metatables that carry `__gc`.
setmetatable = function(...)
  local t, mt = ...
  local n = raw_select("#", ...)
  check_arg(raw_type(t) == "table", "setmetatable", "table", n, t)
  check_arg(mt == nil and n >= 2 or raw_type(mt) == "table", "setmetatable", "nil or table", n, mt, 2)
  if raw_type(mt) == "table" and raw_rawget(mt, "__gc") ~= nil then
    raw_error("setmetatable: __gc metamethods are not allowed in the sandbox", 2)
  end
  -- With both arguments checked, the only failure left is a protected metatable.
  local ok, r = raw_pcall(raw_setmetatable, t, mt)
  if not ok then raw_error("cannot change a protected metatable", 2) end
  return r
end

dofile, loadfile = nil, nil
string.dump = nil
debug = nil

local more -- the loader of the rest, below

-- A forwarder to `more()[name]`, called in tail position so error levels and tracebacks
-- see the script's frames, not the forwarder's. All forwarders share one prototype; the
-- names are those of the field the forwarder fills where one is free (a string every VM
-- already holds).
local function forward(name)
  return function(...) return more()[name](...) end
end

load = forward("load")
xpcall = forward("xpcall")
print = forward("print")
warn = forward("warn")

-- The standard files: the handles exist from the start, their methods come with the rest.
local shim_files = {}
local file_mt = {
  __index = forward("__index"),
  __name = "FILE*",
  __tostring = forward("__tostring"),
}
local stdout = raw_setmetatable({}, file_mt)
local stderr = raw_setmetatable({}, file_mt)
shim_files[stdout], shim_files[stderr] = "stdout", "stderr"

-- The stock `io` library is not opened: its file functions are not available here, and
-- the sandbox's `io` holds only these.
io = {
  stdout = stdout, stderr = stderr, write = forward("write"), type = forward("type"),
  open = forward("open"), flush = forward("flush"),
}
package.loaded.io = io

os.time = forward("time")
os.date = forward("date")
os.clock = forward("clock")
os.getenv = forward("getenv")
os.execute, os.remove, os.rename, os.exit, os.tmpname, os.setlocale = nil, nil, nil, nil, nil, nil

-- A removed function leaves its node behind (a table's hash part is resized only when it
-- next grows), so the two libraries that lost functions are rebuilt with what is left:
-- `string` takes 16 nodes instead of 32, `os` 8 instead of 16. The string metatable's
-- `__index` follows.
do
  local loaded = package.loaded
  for _, name in next, { "string", "os" } do
    local t = {}
    for k, v in next, loaded[name] do t[k] = v end
    _G[name], loaded[name] = t, t
  end
  raw_getmetatable("").__index = string
end

-- Randomness: seeded per session (the engine seeds through `P.randomseed`, the stock
-- function); an argument-less reseed takes the next value of the session's derived seed
-- stream (`sandbox_more.lua`).
P.randomseed = math.randomseed
math.randomseed = forward("randomseed")

-- Module loading: only through the engine's resolver (lua-api.md §1.8).
package.path, package.cpath = "", ""
package.searchpath, package.loadlib = nil, nil
package.loaded.debug = nil

-- The rest of the sandbox (`sandbox_more.lua`), loaded on first use. `K` is what it shares
-- with this chunk, in the order it unpacks them (an array: no key strings to keep alive in
-- every VM).
local K = {
  P, raw_loadfile, raw_searchpath, raw_yield, raw_running, raw_pcall, raw_error, raw_load,
  raw_setmetatable, raw_tostring, raw_type, raw_select, raw_rawget, tointeger, aborting,
  raw_xpcall, check_arg, stdout, shim_files, rethrow_if_aborting,
  false, -- [21]: the root coroutine of the session, set by `entry`
  HOST, USER,
}
local MORE = nil
function more()
  local m = MORE
  if m == nil then
    m = host.sandbox_more()(K)
    MORE = m
  end
  return m
end

coroutine.resume = forward("resume")
coroutine.wrap = forward("wrap")
-- Only a coroutine resumed through the shims above can yield to its user, so this one
-- lives with them.
coroutine.yield = forward("yield")
coroutine.close = forward("close")

package.searchers = {
  forward("preload_searcher"),
  forward("engine_searcher"),
}
require = forward("require")

-- The error handler of the root coroutine: message and traceback, kept apart.
local FAILURE = {}
local function on_error(e)
  if aborting() then return e end
  local te, message = raw_type(e), nil
  if te == "string" then
    message = e
  elseif te == "number" then
    message = raw_tostring(e)
  else
    local mt = raw_getmetatable(e)
    if raw_type(mt) == "table" and raw_rawget(mt, "__tostring") ~= nil then
      local ok, s = raw_pcall(raw_tostring, e)
      if ok and raw_type(s) == "string" then message = s end
    end
    message = message or "error object: " .. te
  end
  return { [FAILURE] = true, message = message, traceback = host.traceback() }
end

--- The body of the session's root coroutine: `true` and the script's first result (the
--- session's result), or `false`, the message and the traceback.
function P.entry(main, ...)
  K[21] = raw_running()
  local ok, info = raw_xpcall(main, on_error, ...)
  if ok then return true, info end
  if raw_type(info) == "table" and info[FAILURE] then
    return false, info.message, info.traceback
  end
  -- The handler did not run: a memory error, or an error inside the handler.
  return false, info, nil, true
end

--- Issues a host request prepared by a Layer-0 validator and returns the reply.
function P.host_yield(token)
  return raw_yield(HOST, token)
end

--- The rest of the sandbox, for the engine: `package_main` (the main function of a
--- package run) and `enable_trusted` (trusted mode) are called from there.
P.more = more

return P
